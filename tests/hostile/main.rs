//! The region is untrusted input: attaching to arbitrary bytes, and operating on a map whose
//! header or body has been scribbled over, gives errors or answers, never a panic, an
//! out-of-bounds access (Miri runs this file too) or an endless loop.

#[path = "../support/mod.rs"]
mod support;

use shared_hashmap::{Corruption, Error, Layout, RawMap, hash_bytes, region_bytes};
use std::time::{Duration, Instant};
use support::{SharedMemory, TestLiveness, memory};

/// Fewer cases under Miri, which is ~1000 times slower.
const CASES: u64 = if cfg!(miri) { 8 } else { 3000 };

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Recomputes the header checksum (word 11) over words 0 and 2..=10, as the format defines it.
fn fix_checksum(bytes: &mut [u8]) {
    let word = |i: usize| u32::from_ne_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
    let mut covered = Vec::new();
    for i in [0, 2, 3, 4, 5, 6, 7, 8, 9, 10] {
        covered.extend_from_slice(&word(i).to_le_bytes());
    }
    let sum = hash_bytes(0, &covered) as u32;
    bytes[44..48].copy_from_slice(&sum.to_ne_bytes());
}

#[test]
fn attaching_to_random_bytes_fails_cleanly() {
    let mut rng = Rng(0x1234_5678);
    let layout = Layout::new(20, 8, 8).unwrap();
    let mut template = memory(&layout);
    let _ = RawMap::init(region_bytes(&mut template), layout).unwrap();
    for case in 0..CASES {
        let words = rng.below(80) as usize;
        let mut region: Vec<u64> = (0..words).map(|_| rng.next()).collect();
        if case % 2 == 1 && words >= 8 {
            // Keep a valid magic, state and version so attach gets past the first checks.
            region[..2].copy_from_slice(&template[..2]);
        }
        let result = RawMap::attach(region_bytes(&mut region));
        assert!(
            result.is_err(),
            "case {case}: random bytes attached as a map"
        );
    }
}

#[test]
fn forged_headers_with_valid_checksums_are_checked() {
    let mut rng = Rng(0x9abc_def0);
    let layout = Layout::new(20, 8, 8).unwrap();
    let mut template = memory(&layout);
    {
        let map = RawMap::init(region_bytes(&mut template), layout).unwrap();
        for k in 0..20u64 {
            map.insert(&k.to_le_bytes(), &k.to_le_bytes()).unwrap();
        }
    }
    let mut liveness = TestLiveness::new(100, &support::no_dead());
    liveness.max_attempts = 50;
    let mut accepted = 0;
    for case in 0..CASES {
        let mut region = template.clone();
        let bytes = region_bytes(&mut region);
        if case % 2 == 0 {
            // A consistent layout (capacity, key and value lengths, chunk count) that may fit
            // the region, and sometimes another seed: accepted, and the body is read with it.
            let forged = Layout::new(
                1 + rng.below(40) as usize,
                rng.below(17) as usize,
                rng.below(17) as usize,
            )
            .unwrap();
            let capacity = forged.capacity() as u64;
            let fields = [
                (4, capacity as u32),
                (5, (capacity >> 32) as u32),
                (6, forged.max_key_len() as u32),
                (7, forged.max_value_len() as u32),
                (8, forged.chunks() as u32),
            ];
            for (word, value) in fields {
                bytes[word * 4..word * 4 + 4].copy_from_slice(&value.to_ne_bytes());
            }
            if rng.below(4) == 0 {
                let word = 9 + rng.below(2) as usize;
                bytes[word * 4..word * 4 + 4].copy_from_slice(&(rng.next() as u32).to_ne_bytes());
            }
        } else {
            // Random capacity, key and value lengths, chunk count.
            for word in [4, 5, 6, 7, 8] {
                if rng.below(2) == 0 {
                    let value = match rng.below(4) {
                        0 => rng.next() as u32,
                        1 => rng.below(64) as u32,
                        2 => u32::MAX - rng.below(4) as u32,
                        _ => 0,
                    };
                    bytes[word * 4..word * 4 + 4].copy_from_slice(&value.to_ne_bytes());
                }
            }
        }
        fix_checksum(bytes);
        match RawMap::attach(bytes) {
            Ok(map) => {
                // A consistent forged layout must still fit the region.
                assert!(
                    map.layout().region_size() <= bytes_len(&template),
                    "case {case}"
                );
                accepted += 1;
                // Operations on a body laid out for another layout: errors or answers.
                let map = map.with_liveness(&liveness);
                for _ in 0..2 {
                    exercise(&map, &mut rng);
                }
            }
            // The checksum was fixed up: only the layout's own checks may refuse it.
            Err(Error::Corrupt(Corruption::HeaderChecksum)) => {
                panic!("case {case}: the forged header failed its checksum (fix_checksum is wrong)")
            }
            Err(Error::Corrupt(_) | Error::RegionTooSmall { .. }) => {}
            Err(other) => panic!("case {case}: unexpected {other:?}"),
        }
    }
    assert!(
        accepted >= CASES / 8,
        "only {accepted} of {CASES} forged headers were accepted"
    );
}

fn bytes_len(words: &[u64]) -> usize {
    words.len() * 8
}

/// Runs every operation once on `map`; each may fail, none may panic.
fn exercise(map: &RawMap<'_>, rng: &mut Rng) {
    let key = rng.below(40).to_le_bytes();
    let mut out = [0u8; 8];
    let _ = map.get(&key, &mut out);
    let _ = map.contains_key(&key);
    let _ = map.insert(&key, &rng.next().to_le_bytes());
    let _ = map.get_into::<4>(&key);
    let _ = map.fetch_add(&key, 1);
    let _ = map.compare_exchange(&key, Some(&out), b"x");
    let _ = map.update::<8, _, _>(&key, |old| old.map(|_| *b"y"));
    let _ = map.remove(&key);
    let _ = map.len();
    let _ = map.is_empty();
    // Every chunk yields at most its 8 slots and one error: iteration ends by itself.
    let limit = map.layout().chunks() * 9;
    let items = map.iter::<8, 8>().take(limit + 1).count();
    assert!(items <= limit, "iteration went on past {limit} items");
    let _ = map.verify();
    let mut scratch = vec![0; map.layout().chunks()];
    let _ = map.verify_exact(&mut scratch);
    if rng.below(4) == 0 {
        let _ = map.clear();
    }
}

#[test]
fn scribbled_maps_never_panic_or_hang() {
    let mut rng = Rng(0x0fed_cba9);
    let layout = Layout::new(40, 8, 8).unwrap();
    let mut pristine = memory(&layout);
    {
        let map = RawMap::init(region_bytes(&mut pristine), layout).unwrap();
        for k in 0..45u64 {
            map.insert(&k.to_le_bytes(), &k.to_le_bytes()).unwrap();
        }
    }
    let dead = support::no_dead();
    // Every owner alive (held locks time out) or every owner dead (held locks are taken over).
    dead.lock().unwrap().extend(1..64);
    let mut alive = TestLiveness::new(100, &support::no_dead());
    alive.max_attempts = 50;
    let mut all_dead = TestLiveness::new(100, &dead);
    all_dead.max_attempts = 200;
    let header_words = 16;
    for case in 0..CASES {
        let mut region = pristine.clone();
        let bytes = region_bytes(&mut region);
        let flips = 1 + rng.below(12);
        for _ in 0..flips {
            // Mostly the body; sometimes the mutable header words (epoch, generation).
            let at = if rng.below(10) == 0 {
                48 + rng.below(16) as usize
            } else {
                header_words * 4 + rng.below((bytes.len() - header_words * 4) as u64) as usize
            };
            bytes[at] = match rng.below(3) {
                0 => rng.next() as u8,
                1 => 0xff,
                _ => 0,
            };
        }
        let liveness = if case % 2 == 0 { &alive } else { &all_dead };
        let started = Instant::now();
        let shared = SharedMemory::new(region);
        let map = shared.attach(liveness);
        for _ in 0..3 {
            exercise(&map, &mut rng);
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "case {case} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_map_whose_every_lock_is_held_by_a_live_owner_still_answers_reads() {
    let layout = Layout::new(40, 8, 8).unwrap();
    let mut region = memory(&layout);
    {
        let map = RawMap::init(region_bytes(&mut region), layout).unwrap();
        for k in 0..30u64 {
            map.insert(&k.to_le_bytes(), &k.to_le_bytes()).unwrap();
        }
    }
    // Set every chunk's lock word (the first word of each 32-byte control block at offset 64).
    let bytes = region_bytes(&mut region);
    for chunk in 0..layout.chunks() {
        let at = 64 + chunk * 32;
        bytes[at..at + 4].copy_from_slice(&77u32.to_ne_bytes());
    }
    let mut liveness = TestLiveness::new(1, &support::no_dead());
    liveness.max_attempts = 100;
    let shared = SharedMemory::new(region);
    let map = shared.attach(&liveness);
    for k in 0..30u64 {
        assert_eq!(
            map.get_into::<8>(&k.to_le_bytes()).unwrap().unwrap(),
            k.to_le_bytes()
        );
    }
    assert_eq!(map.insert(b"new", b"x"), Err(Error::TimedOut));
    assert_eq!(map.len(), 30);
    assert_eq!(map.verify().unwrap().locks_held, layout.chunks());
}
