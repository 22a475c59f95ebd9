//! Fairness between writers that contend for one chunk's lock. In a test binary of its own so
//! that no other test competes for the processors while it measures.

#[path = "../support/mod.rs"]
mod support;

use shared_hashmap::{Layout, RawMap, region_bytes};
use std::sync::atomic::{AtomicBool, Ordering};
use support::{TestLiveness, memory, no_dead};

fn key(i: u64) -> [u8; 8] {
    i.to_le_bytes()
}

/// The home chunk of `key` in a map with `seed` and `chunks` chunks (the format's rule,
/// restated here to build keys with chosen homes).
fn home_of(key: &[u8], seed: u64, chunks: usize) -> usize {
    (((shared_hashmap::hash_bytes(seed, key) >> 32) * chunks as u64) >> 32) as usize
}

/// Measured on 2 cores: about 100-210 with ordered locking, 1500-3300 without.
const HOT_PER_DISPLACED_LIMIT: f64 = 800.0;

#[test]
fn writers_of_displaced_keys_are_not_starved() {
    // Two chunks. Chunk 0 is full of keys homed there, so `displaced` (homed in chunk 0) lives
    // in chunk 1, whose lock six threads contend for through a hot key homed in chunk 1.
    const SEED: u64 = 7;
    let layout = Layout::new(14, 8, 8).unwrap();
    assert_eq!(layout.chunks(), 2);
    let mut mem = memory(&layout);
    let map = RawMap::init_with_seed(region_bytes(&mut mem), layout, SEED).unwrap();
    let liveness = TestLiveness::new(1, no_dead());
    let map = map.with_liveness(&liveness);
    let homed = |chunk: usize| {
        (0u64..)
            .map(key)
            .filter(move |k| home_of(k, SEED, 2) == chunk)
    };
    let mut in_zero = homed(0);
    for k in in_zero.by_ref().take(8) {
        map.insert(&k, b"fill").unwrap();
    }
    let displaced = in_zero.next().unwrap();
    let hot = homed(1).next().unwrap();
    map.insert(&displaced, &0u64.to_le_bytes()).unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..6 {
            let (map, stop) = (&map, &stop);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    map.fetch_add(&hot, 1).unwrap();
                }
            });
        }
        for _ in 0..2000 {
            map.fetch_add(&displaced, 1).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(
        map.get_into::<8>(&displaced).unwrap().unwrap(),
        2000i64.to_le_bytes()
    );
    // Fairness as a ratio, not a time: how many operations the six hot threads completed for
    // each update of the displaced key. With a writer that let go of its home lock whenever
    // chunk 1 was busy (the design before ordered locking), it lost nearly every race.
    let hot_ops = map
        .get_into::<8>(&hot)
        .unwrap()
        .map_or(0, |n| i64::from_le_bytes(n.into_array().unwrap()));
    let ratio = hot_ops as f64 / 2000.0;
    eprintln!("hot operations per displaced update: {ratio:.1}");
    assert!(
        ratio < HOT_PER_DISPLACED_LIMIT,
        "displaced writer starved: {ratio:.1} hot operations per update"
    );
    support::verify_exact(&map);
}
