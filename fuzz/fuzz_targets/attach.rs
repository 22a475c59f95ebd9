//! A map's region overwritten with arbitrary bytes, attached, and driven by arbitrary
//! operations: errors are fine; panics, out-of-bounds accesses and endless loops are not.
//! Some inputs have the header checksum fixed up after the scribbling, so that forged but
//! consistent headers (another layout, another seed) are accepted and the body is read with
//! them; some give attach a region shorter or longer than the layout's size.
//! Every wait is bounded (the liveness below gives up after 64 attempts, without sleeping), and
//! lock holders are alive or dead at random, so both the time-out and the take-over paths run.
//! Each operation must finish within [`OP_LIMIT`]: a probe or a scan that loops on corrupt data
//! fails the run instead of passing as merely slow; an iteration must end by itself after at
//! most 9 items per chunk (8 slots and an error).

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shared_hashmap::{Layout, Liveness, RawMap, hash_bytes, region_bytes};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// The most one operation on a 40-entry map may take, even on a scribbled region; a bounded
/// operation takes microseconds, so this only trips on a loop.
const OP_LIMIT: Duration = Duration::from_secs(2);

struct Bounded;

impl Liveness for Bounded {
    fn owner_id(&self) -> NonZeroU32 {
        NonZeroU32::MIN
    }
    fn is_alive(&self, owner: u32) -> bool {
        owner.is_multiple_of(2)
    }
    fn wait(&self, attempt: u32) -> bool {
        attempt < 64
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Get(u8),
    Insert(u8, u8),
    Remove(u8),
    FetchAdd(u8),
    CompareExchange(u8, u8),
    Update(u8, bool),
    Iterate,
    Clear,
    Verify,
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Small layouts, so chunks, slots and probes are reached by few bytes.
    capacity: u8,
    entries: u8,
    /// Where the scribbled bytes go (0: the header too), and the bytes.
    from: u16,
    scribble: Vec<u8>,
    /// Whether to recompute the header checksum after scribbling.
    fix_checksum: bool,
    /// Bytes added to (or, negative, taken from) the region's length, in units of 4.
    resize: i8,
    ops: Vec<Op>,
}

/// Recomputes the header checksum (word 11) over words 0 and 2..=10, as the format defines it
/// (`src/header.rs`; `tests/hostile` does the same).
fn fix_checksum(bytes: &mut [u8]) {
    let mut covered = Vec::new();
    for i in [0, 2, 3, 4, 5, 6, 7, 8, 9, 10] {
        let word = u32::from_ne_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
        covered.extend_from_slice(&word.to_le_bytes());
    }
    let sum = hash_bytes(0, &covered) as u32;
    bytes[44..48].copy_from_slice(&sum.to_ne_bytes());
}

fuzz_target!(|input: Input| {
    let Ok(layout) = Layout::new(usize::from(input.capacity % 40) + 1, 8, 8) else {
        return;
    };
    let size = layout.region_size();
    // Room for a longer region; zeros past the layout's end, as a larger mapping would have.
    let mut words = vec![0u64; size.div_ceil(8) + 64];
    {
        let Ok(map) = RawMap::init_with_seed(&mut region_bytes(&mut words)[..size], layout, 1)
        else {
            return;
        };
        for k in 0..input.entries % 48 {
            let _ = map.insert(&[k], &[k; 8]);
        }
    }
    let bytes = region_bytes(&mut words);
    let len = size
        .saturating_add_signed(isize::from(input.resize) * 4)
        .min(bytes.len());
    let bytes = &mut bytes[..len];
    if !bytes.is_empty() {
        let from = usize::from(input.from) % bytes.len();
        for (byte, new) in bytes[from..].iter_mut().zip(&input.scribble) {
            *byte = *new;
        }
    }
    if input.fix_checksum && bytes.len() >= 48 {
        fix_checksum(bytes);
    }
    let Ok(map) = RawMap::attach(bytes) else {
        return;
    };
    let map = map.with_liveness(&Bounded);
    let mut out = [0u8; 8];
    for op in input.ops.iter().take(64) {
        let started = Instant::now();
        // Any result is fine: errors are expected from a scribbled region.
        match *op {
            Op::Get(k) => {
                let _ = map.get(&[k], &mut out);
            }
            Op::Insert(k, v) => {
                let _ = map.insert(&[k], &[v; 8]);
            }
            Op::Remove(k) => {
                let _ = map.remove(&[k]);
            }
            Op::FetchAdd(k) => {
                let _ = map.fetch_add(&[k], 1);
            }
            Op::CompareExchange(k, v) => {
                let _ = map.compare_exchange(&[k], Some(&[v; 8]), &[v ^ 1; 8]);
            }
            Op::Update(k, keep) => {
                let _ =
                    map.update::<8, _, _>(&[k], |old| keep.then(|| old.map_or([0; 8], |_| [1; 8])));
            }
            Op::Iterate => {
                let limit = map.layout().chunks() * 9;
                let items = map.iter::<8, 8>().take(limit + 1).count();
                assert!(items <= limit, "iteration went on past {limit} items");
            }
            Op::Clear => {
                let _ = map.clear();
            }
            Op::Verify => {
                let _ = map.verify();
                let mut scratch = vec![0; map.layout().chunks()];
                let _ = map.verify_exact(&mut scratch);
            }
        }
        let _ = map.len();
        let took = started.elapsed();
        assert!(took < OP_LIMIT, "{op:?} took {took:?}");
    }
});
