//! The torture suite: a history checker across processes. Every value carries its writer, a
//! sequence number per writer and key, and a checksum. Each process writes, removes and reads
//! shared keys for a fixed number of operations, and asserts that every value it reads is
//! whole (no torn read) and that, per writer and key, the sequence numbers it sees never go
//! back (no stale read after a newer one). With 2, 4 and 8 processes, over a small table (heavy
//! collisions, overflow chains) and a large one; `verify` is clean afterwards.

#[path = "../common/mod.rs"]
mod common;

use common::{Rng, UniqueName, env_u64, join_all, role, spawn_child};
use shared_hashmap_posix::{Layout, SharedHashMap};
use std::collections::HashMap;

const VALUE: usize = 1024;

/// A value: writer, key, sequence, then filler derived from all three.
fn value(writer: u64, key: u64, seq: u64) -> [u8; VALUE] {
    let mut value = [0u8; VALUE];
    value[..8].copy_from_slice(&writer.to_le_bytes());
    value[8..16].copy_from_slice(&key.to_le_bytes());
    value[16..24].copy_from_slice(&seq.to_le_bytes());
    for (i, word) in value[24..].chunks_exact_mut(8).enumerate() {
        let mixed = (writer << 48 ^ key << 24 ^ seq).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ (i as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        word.copy_from_slice(&mixed.to_le_bytes());
    }
    value
}

/// Writer and sequence of a whole value of `key`; panics on a torn or foreign one.
fn parse(bytes: &[u8], key: u64) -> (u64, u64) {
    assert_eq!(bytes.len(), VALUE, "key {key}: {} bytes", bytes.len());
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let (writer, seq) = (word(0), word(16));
    assert!(
        word(8) == key && bytes == value(writer, key, seq),
        "key {key}: a torn or foreign value"
    );
    (writer, seq)
}

#[test]
fn child() {
    let Some((role, name)) = role() else { return };
    assert_eq!(role, "historian");
    let (me, keys, ops) = (env_u64("WRITER"), env_u64("KEYS"), env_u64("OPS"));
    let map = SharedHashMap::open(&name).unwrap();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (me + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    // This writer's next sequence number per key; the highest seen per (key, writer).
    let mut next_seq: HashMap<u64, u64> = HashMap::new();
    let mut seen: HashMap<(u64, u64), u64> = HashMap::new();
    let mut out = [0u8; VALUE];
    for _ in 0..ops {
        let key = rng.next() % keys;
        let key_bytes = key.to_le_bytes();
        match rng.next() % 10 {
            0..3 => {
                let seq = next_seq.entry(key).or_insert(0);
                *seq += 1;
                map.insert(&key_bytes, &value(me, key, *seq)).unwrap();
                seen.insert((key, me), *seq);
            }
            3 => {
                map.remove(&key_bytes).unwrap();
            }
            _ => {
                if let Some(len) = map.get(&key_bytes, &mut out).unwrap() {
                    let (writer, seq) = parse(&out[..len], key);
                    let last = seen.entry((key, writer)).or_insert(seq);
                    assert!(
                        seq >= *last,
                        "stale read: key {key} writer {writer} went {last} -> {seq}"
                    );
                    *last = seq;
                }
            }
        }
    }
}

fn torture(processes: u64, capacity: usize, keys: u64, ops: u64) {
    let name = UniqueName::new(&format!("torture-{processes}-{capacity}"));
    let map =
        SharedHashMap::create(name.as_str(), Layout::new(capacity, 8, VALUE).unwrap()).unwrap();
    let env = |writer: u64| {
        [
            ("WRITER", writer.to_string()),
            ("KEYS", keys.to_string()),
            ("OPS", ops.to_string()),
        ]
    };
    let children = (0..processes)
        .map(|writer| spawn_child("historian", name.as_str(), &env(writer), false))
        .collect();
    join_all(children);
    // Whatever is left is whole, once per key, counted exactly; the structure is sound.
    let entries: Vec<_> = map.iter::<8, VALUE>().map(|entry| entry.unwrap()).collect();
    for (key, bytes) in &entries {
        parse(bytes, u64::from_le_bytes(key[..].try_into().unwrap()));
    }
    let distinct: std::collections::HashSet<_> =
        entries.iter().map(|(key, _)| key.clone()).collect();
    assert_eq!(distinct.len(), entries.len());
    assert_eq!(map.len(), entries.len());
    let mut scratch = vec![0; map.layout().chunks()];
    assert_eq!(
        map.verify_exact(&mut scratch).unwrap().entries,
        entries.len()
    );
}

#[test]
fn two_processes_small_table() {
    torture(2, 48, 40, 200_000);
}

#[test]
fn four_processes_small_table() {
    torture(4, 48, 40, 100_000);
}

#[test]
fn eight_processes_small_table() {
    torture(8, 48, 40, 50_000);
}

#[test]
fn four_processes_large_table() {
    torture(4, 100_000, 60_000, 200_000);
}

#[test]
fn eight_processes_large_table() {
    torture(8, 100_000, 60_000, 100_000);
}
