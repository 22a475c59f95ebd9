//! The torture suite: a history checker across processes. Every value carries its writer, a
//! sequence number per writer and key, and a checksum. Each process writes, removes and reads
//! shared keys for a fixed number of operations, half of them on 64 hot keys (so that keys are
//! read again and again while others write them), and asserts that every value it reads is
//! whole (no torn read), that, per writer and key, the sequence numbers it sees never go back
//! (no stale read after a newer one), that a value of its own it reads is the last it wrote
//! there, and that it made many such comparisons. Half the processes also iterate over the map
//! in a second thread all the while: every value yielded is whole, no key comes twice in one
//! iteration, and sequence numbers never go back from one iteration to the next. With 2, 4 and
//! 8 processes, over a small table (heavy collisions, overflow chains) and a large one;
//! `verify` is clean afterwards.

#[path = "../common/mod.rs"]
mod common;

use common::{Gated, Rng, UniqueName, env_u64, role, wait_at_start_line};
use shared_hashmap_posix::{Layout, SharedHashMap};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const VALUE: usize = 1024;

/// Half of each process's operations go to keys `0..HOT_KEYS`.
const HOT_KEYS: u64 = 64;

/// The longest a whole torture run may take, however busy the machine.
const RUN_BOUND: Duration = Duration::from_secs(120);

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
    wait_at_start_line();
    let (done, iterated) = (AtomicBool::new(false), AtomicU64::new(0));
    let iterates = me % 2 == 0;
    std::thread::scope(|scope| {
        let iterator =
            iterates.then(|| scope.spawn(|| iterate_until(&map, keys, &done, &iterated)));
        // An iterating process goes on operating until one iteration has run entirely meanwhile
        // (or the iterating thread has failed).
        let more = || {
            iterator
                .as_ref()
                .is_some_and(|iterator| !iterator.is_finished())
                && iterated.load(Ordering::Relaxed) == 0
        };
        let stop_iterating = SetOnDrop(&done);
        let comparisons = history(&map, me, keys, ops, &more);
        drop(stop_iterating);
        // Many reads find a key this process has seen before, from the same writer: the check
        // had something to compare (0.25 to 0.45 of the operations). How many found a newer
        // value that another process wrote meanwhile depends on the scheduler (1/10 of them
        // on an idle machine, 1/2000 on a busy one), so it is not asserted.
        assert!(
            comparisons.same_writer >= ops / 8,
            "process {me}: too few comparisons: {comparisons:?}"
        );
        if let Some(iterator) = iterator {
            iterator.join().unwrap();
            assert!(iterated.load(Ordering::Relaxed) >= 1);
        }
    });
}

/// Sets its flag when dropped, also when the thread panics (so that a failing process ends).
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// How many reads the stale-read check compared with an earlier read or write of the same
/// key and writer, and how many of those found a newer sequence number.
#[derive(Debug, Default)]
struct Comparisons {
    same_writer: u64,
    newer: u64,
}

/// Runs `ops` random operations on `keys` keys as writer `me`, and more while `more()`,
/// checking every read.
fn history(
    map: &SharedHashMap,
    me: u64,
    keys: u64,
    ops: u64,
    more: &dyn Fn() -> bool,
) -> Comparisons {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (me + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    // This writer's last sequence number per key; the highest seen per (key, writer).
    let mut next_seq: HashMap<u64, u64> = HashMap::new();
    let mut seen: HashMap<(u64, u64), u64> = HashMap::new();
    let mut comparisons = Comparisons::default();
    let mut out = [0u8; VALUE];
    let mut done = 0;
    while done < ops || more() {
        done += 1;
        let key = if rng.next() % 2 == 0 {
            rng.next() % HOT_KEYS.min(keys)
        } else {
            rng.next() % keys
        };
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
                    if writer == me {
                        // Every later write of ours to this key replaced the earlier ones.
                        assert_eq!(
                            Some(&seq),
                            next_seq.get(&key),
                            "key {key}: read our own write {seq}, not our last"
                        );
                    }
                    match seen.get_mut(&(key, writer)) {
                        Some(last) => {
                            assert!(
                                seq >= *last,
                                "stale read: key {key} writer {writer} went {last} -> {seq}"
                            );
                            comparisons.same_writer += 1;
                            comparisons.newer += u64::from(seq > *last);
                            *last = seq;
                        }
                        None => {
                            seen.insert((key, writer), seq);
                        }
                    }
                }
            }
        }
    }
    comparisons
}

/// Iterates over the whole map again and again until `done`: every value whole, no key twice
/// in one iteration, and per key and writer no sequence number older than one an earlier
/// iteration yielded. Counts in `iterated` the iterations that ended before `done` was set
/// (that ran entirely while this process was operating).
fn iterate_until(map: &SharedHashMap, keys: u64, done: &AtomicBool, iterated: &AtomicU64) {
    let mut seen: HashMap<(u64, u64), u64> = HashMap::new();
    while !done.load(Ordering::Relaxed) {
        let mut yielded = HashSet::new();
        for entry in map.iter::<8, VALUE>() {
            let (key, bytes) = entry.unwrap();
            let key = u64::from_le_bytes(key[..].try_into().expect("an 8-byte key"));
            assert!(key < keys, "iteration yielded a foreign key {key}");
            assert!(yielded.insert(key), "iteration yielded key {key} twice");
            let (writer, seq) = parse(&bytes, key);
            let last = seen.entry((key, writer)).or_insert(seq);
            assert!(
                seq >= *last,
                "stale iteration: key {key} writer {writer} went {last} -> {seq}"
            );
            *last = seq;
        }
        if !done.load(Ordering::Relaxed) {
            iterated.fetch_add(1, Ordering::Relaxed);
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
    let mut children = Gated::new();
    for writer in 0..processes {
        children.spawn("historian", name.as_str(), &env(writer));
    }
    children.go();
    for (writer, status) in children.join(RUN_BOUND).into_iter().enumerate() {
        assert!(status.success(), "process {writer} failed: {status}");
    }
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
