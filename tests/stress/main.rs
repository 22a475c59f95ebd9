//! Many threads on one map: no duplicate keys, no torn or stale reads, exact counters,
//! deleted space reused forever, iteration without duplicates, and locks recovered from owners
//! that die. Every test ends with `verify()`.

#[path = "../support/mod.rs"]
mod support;

use shared_hashmap::{Error, Layout, RawMap, region_bytes};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};
use support::{SharedMemory, TestLiveness, check_value, checked_value, memory, no_dead};

const THREADS: u32 = 6;

fn key(i: u64) -> [u8; 8] {
    i.to_le_bytes()
}

#[test]
fn racing_inserts_of_the_same_keys_never_duplicate() {
    // A small map so that keys collide and probe past their home chunks.
    let layout = Layout::new(300, 8, 8).unwrap();
    let mut mem = memory(&layout);
    let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    let liveness = TestLiveness::new(1, &no_dead());
    let map = map.with_liveness(&liveness);
    for round in 0..20u64 {
        let barrier = Barrier::new(THREADS as usize);
        let replaced = AtomicU64::new(0);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (map, barrier, replaced) = (&map, &barrier, &replaced);
                s.spawn(move || {
                    barrier.wait();
                    // Every thread inserts the same 300 keys, in a different order.
                    for i in 0..300u64 {
                        let k = (i * (u64::from(t) * 2 + 1) + round) % 300;
                        if map.insert(&key(k), &[t as u8]).unwrap() {
                            replaced.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(map.len(), 300);
        // Exactly one insert per key found it absent.
        assert_eq!(
            replaced.load(Ordering::Relaxed),
            300 * u64::from(THREADS) - 300
        );
        let keys: Vec<_> = map.iter::<8, 8>().map(|e| e.unwrap().0).collect();
        assert_eq!(keys.len(), 300);
        assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 300);
        support::verify_exact(&map);
        map.clear().unwrap();
    }
}

#[test]
fn readers_never_see_torn_or_stale_values() {
    readers_never_see_torn_or_stale_values_of::<96>();
}

/// Values of 1 KiB: long enough that on x86-64 processors with AVX, the copies in and out of
/// the slots run as 32-byte AVX loads and stores (`wide.rs`), not SSE2 or word ones.
#[test]
fn readers_never_see_torn_or_stale_long_values() {
    readers_never_see_torn_or_stale_values_of::<1024>();
}

/// Writers rewrite and sometimes remove and reinsert 40 keys, with values of up to `MAX` bytes
/// that carry their writer, sequence number and a checksum, for as long as readers read; the
/// readers check that every value read is whole and no older than one read before it. (With
/// the readers' sequence checks disabled, both sizes failed in each of 4 runs, within 4 s.)
fn readers_never_see_torn_or_stale_values_of<const MAX: usize>() {
    const KEYS: u64 = 40;
    /// Rounds of gets of every key, per reader.
    const ROUNDS: u32 = 20_000;
    let layout = Layout::new(48, 8, MAX).unwrap(); // 7 chunks: heavy sharing
    let mut mem = memory(&layout);
    let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    let liveness = TestLiveness::new(1, &no_dead());
    let map = map.with_liveness(&liveness);
    let readers_left = AtomicU32::new(2);
    let reads = AtomicU64::new(0);
    std::thread::scope(|s| {
        for w in 0..3u32 {
            let (map, readers_left) = (&map, &readers_left);
            s.spawn(move || {
                // Each writer writes every key with its own increasing sequence numbers,
                // sometimes removing and reinserting it, until the readers are done (and every
                // key at least once).
                let mut seq = 0u32;
                while seq < KEYS as u32 || readers_left.load(Ordering::Relaxed) > 0 {
                    let k = key(u64::from(seq) % KEYS);
                    if seq % 17 == 0 {
                        map.remove(&k).unwrap();
                    }
                    map.insert(&k, &checked_value(w, seq, MAX)).unwrap();
                    seq += 1;
                }
            });
        }
        for _ in 0..2 {
            let (map, readers_left, reads) = (&map, &readers_left, &reads);
            s.spawn(move || {
                // Counts this reader out when it ends, by panic too: the writers stop then.
                let _done = CountsOut(readers_left);
                // Per (key, writer): the highest sequence number seen so far.
                let mut seen: HashMap<(u64, u32), u32> = HashMap::new();
                let mut out = [0u8; MAX];
                for _ in 0..ROUNDS {
                    for k in 0..KEYS {
                        if let Some(len) = map.get(&key(k), &mut out).unwrap() {
                            let (writer, seq) = check_value(&out[..len], MAX);
                            assert_eq!(u64::from(seq) % KEYS, k, "value of another key");
                            let last = seen.entry((k, writer)).or_insert(seq);
                            assert!(
                                seq >= *last,
                                "stale read: key {k} writer {writer} went {last} -> {seq}"
                            );
                            *last = seq;
                            reads.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    assert!(reads.load(Ordering::Relaxed) > 1000);
    let report = support::verify_exact(&map);
    assert_eq!(report.entries, KEYS as usize);
}

/// Lowers a count of running threads when dropped.
struct CountsOut<'a>(&'a AtomicU32);

impl Drop for CountsOut<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[test]
fn concurrent_counters_are_exact() {
    let layout = Layout::new(64, 16, 8).unwrap();
    let mut mem = memory(&layout);
    let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    let liveness = TestLiveness::new(1, &no_dead());
    let map = map.with_liveness(&liveness);
    const PER_THREAD: i64 = 2000;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let map = &map;
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    // Three ways to increment: fetch_add, update, and a compare_exchange loop.
                    map.fetch_add(b"fetch_add", 1).unwrap();
                    map.fetch_add(&key(i as u64 % 8), 1).unwrap();
                    map.update::<8, _, _>(b"update", |old| {
                        let n = old.map_or(0, |b| i64::from_le_bytes(b.try_into().unwrap()));
                        Some((n + 1).to_le_bytes())
                    })
                    .unwrap();
                    loop {
                        let current = map.get_into::<8>(b"cas").unwrap();
                        let n = current
                            .as_ref()
                            .map_or(0, |b| i64::from_le_bytes(b[..].try_into().unwrap()));
                        if map
                            .compare_exchange(b"cas", current.as_deref(), &(n + 1).to_le_bytes())
                            .unwrap()
                        {
                            break;
                        }
                    }
                    if t == 0 && i % 100 == 0 {
                        std::thread::yield_now();
                    }
                }
            });
        }
    });
    let total = PER_THREAD * i64::from(THREADS);
    for name in [&b"fetch_add"[..], b"update", b"cas"] {
        assert_eq!(
            map.get_into::<8>(name).unwrap().unwrap(),
            total.to_le_bytes(),
            "{}",
            String::from_utf8_lossy(name)
        );
    }
    let spread: i64 = (0..8)
        .map(|k| {
            i64::from_le_bytes(
                map.get_into::<8>(&key(k))
                    .unwrap()
                    .unwrap()
                    .into_array()
                    .unwrap(),
            )
        })
        .sum();
    assert_eq!(spread, total);
    support::verify_exact(&map);
}

#[test]
fn deleted_space_is_reused_forever() {
    // A steady live count at 90% of capacity while distinct keys come and go, from several
    // threads at once; probe lengths must not grow.
    const CAPACITY: usize = 1000;
    const LIVE: u64 = 900;
    const CYCLES_PER_THREAD: u64 = 150_000;
    let layout = Layout::new(CAPACITY, 8, 8).unwrap();
    let mut mem = memory(&layout);
    let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    let liveness = TestLiveness::new(1, &no_dead());
    let map = map.with_liveness(&liveness);
    let threads = 3u64;
    // Thread t owns keys k with k % threads == t; it keeps LIVE / threads of them live.
    let per_thread = LIVE / threads;
    let mut first_mean = 0.0;
    for phase in 0..4 {
        std::thread::scope(|s| {
            for t in 0..threads {
                let map = &map;
                s.spawn(move || {
                    let owned = |n: u64| n * threads + t;
                    let start = phase * CYCLES_PER_THREAD;
                    if phase == 0 {
                        for n in 0..per_thread {
                            map.insert(&key(owned(n)), &key(owned(n))).unwrap();
                        }
                    }
                    for n in start..start + CYCLES_PER_THREAD {
                        let old = owned(n);
                        let new = owned(n + per_thread);
                        assert!(map.remove(&key(old)).unwrap(), "key {old} lost");
                        assert!(!map.insert(&key(new), &key(new)).unwrap());
                    }
                });
            }
        });
        let report = support::verify_exact(&map);
        assert_eq!(report.entries as u64, per_thread * threads);
        assert_eq!(report.overflow_excess, 0);
        let mean = report.total_probe_distance as f64 / report.entries as f64;
        if phase == 0 {
            first_mean = mean;
        } else {
            // Steady state: the mean probe distance does not creep up (random variation aside).
            assert!(
                mean <= first_mean * 1.5 + 0.05,
                "mean probe distance grew: {first_mean:.3} -> {mean:.3}"
            );
        }
        // Every entry is within a short, bounded distance of home.
        assert!(
            report.max_probe_distance <= 20,
            "max probe distance {}",
            report.max_probe_distance
        );
    }
}

#[test]
fn iteration_during_churn_yields_stable_entries_once_and_nothing_twice() {
    let layout = Layout::new(400, 8, 8).unwrap();
    let mut mem = memory(&layout);
    let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    let liveness = TestLiveness::new(1, &no_dead());
    let map = map.with_liveness(&liveness);
    // Keys 0..200 stay for the whole test; keys 1000.. churn: removed and inserted again.
    for k in 0..200 {
        map.insert(&key(k), b"stable").unwrap();
    }
    for k in 1000..1150 {
        map.insert(&key(k), b"churn").unwrap();
    }
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (map, stop) = (&map, &stop);
            s.spawn(move || {
                let mut n = t;
                while !stop.load(Ordering::Relaxed) {
                    let k = key(1000 + n % 150);
                    map.remove(&k).unwrap();
                    map.insert(&k, b"again").unwrap();
                    map.insert(&key(n % 200), b"stable").unwrap(); // updates keep entries present
                    n += 2;
                }
            });
        }
        for _ in 0..200 {
            let mut seen = HashSet::new();
            for entry in map.iter::<8, 8>() {
                let (k, _) = entry.unwrap();
                assert!(seen.insert(k.clone()), "key {:?} yielded twice", k);
            }
            for k in 0..200 {
                assert!(seen.contains(&key(k)[..]), "stable key {k} not yielded");
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    support::verify_exact(&map);
}

#[test]
fn a_dead_lock_holder_is_taken_over_and_nothing_else_is_affected() {
    let layout = Layout::new(50, 8, 8).unwrap();
    // Leaked, so a thread that never returns (a "dead" owner) can keep a handle on it.
    let mem: &'static SharedMemory = Box::leak(Box::new(SharedMemory::formatted(layout)));
    let dead = no_dead();
    let survivor_liveness = TestLiveness::new(8, &dead);
    let survivor = mem.attach(&survivor_liveness);
    for k in 0..20 {
        survivor.insert(&key(k), b"before").unwrap();
    }
    // The victim stops forever inside an update of key 3, holding its locks: to the map,
    // exactly what a process killed at that instant looks like.
    let (holding_tx, holding_rx) = std::sync::mpsc::channel();
    let victim_liveness: &'static TestLiveness = Box::leak(Box::new(TestLiveness::new(7, &dead)));
    std::thread::spawn(move || {
        let liveness = victim_liveness;
        let victim = mem.attach(liveness);
        let _ = victim.update::<8, _, _>(&key(3), |_| -> Option<[u8; 8]> {
            holding_tx.send(()).unwrap();
            loop {
                std::thread::park();
            }
        });
    });
    holding_rx.recv().unwrap();
    // While the holder lives, readers are not blocked, and writers of its chunk time out
    // without changing anything.
    assert_eq!(survivor.get_into::<8>(&key(3)).unwrap().unwrap(), b"before");
    let impatient_liveness = TestLiveness {
        max_attempts: 200,
        ..TestLiveness::new(9, &dead)
    };
    let impatient = mem.attach(&impatient_liveness);
    assert_eq!(impatient.insert(&key(3), b"blocked"), Err(Error::TimedOut));
    assert_eq!(survivor.get_into::<8>(&key(3)).unwrap().unwrap(), b"before");
    // The owner dies: the next writer takes its lock over, within a bounded time.
    dead.lock().unwrap().push(7);
    let started = Instant::now();
    assert!(survivor.insert(&key(3), b"after").unwrap());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(survivor.get_into::<8>(&key(3)).unwrap().unwrap(), b"after");
    for k in (0..20).filter(|&k| k != 3) {
        assert_eq!(survivor.get_into::<8>(&key(k)).unwrap().unwrap(), b"before");
        survivor.insert(&key(k), b"later").unwrap();
    }
    let report = support::verify_exact(&survivor);
    assert_eq!((report.entries, report.locks_held), (20, 0));
}

#[test]
fn contended_writers_of_neighbouring_chunks_do_not_deadlock() {
    // A map of 2 chunks that is nearly full: most inserts need both chunks' locks, taken in
    // both orders by different threads.
    let layout = Layout::new(14, 8, 8).unwrap();
    let mut mem = memory(&layout);
    let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    let liveness = TestLiveness::new(1, &no_dead());
    let map = map.with_liveness(&liveness);
    let live = Mutex::new(());
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (map, _live) = (&map, &live);
            s.spawn(move || {
                for n in 0..5000u64 {
                    let k = key(t * 4 + n % 4);
                    map.insert(&k, &key(n)).unwrap();
                    if n % 3 == 0 {
                        map.remove(&k).unwrap();
                    }
                }
            });
        }
    });
    support::verify_exact(&map);
}

/// The home chunk of `key` in a map with `seed` and `chunks` chunks (the format's rule,
/// restated here to build keys with chosen homes).
fn home_of(key: &[u8], seed: u64, chunks: usize) -> usize {
    (((shared_hashmap::hash_bytes(seed, key) >> 32) * chunks as u64) >> 32) as usize
}

/// Records, on every wait, whether the waiting writer still holds its home chunk's lock.
struct HomeHeldCheck<'a> {
    home_lock: &'a std::sync::atomic::AtomicU32,
    waits: std::sync::atomic::AtomicU32,
    released_home: AtomicBool,
}

impl shared_hashmap::Liveness for HomeHeldCheck<'_> {
    fn owner_id(&self) -> std::num::NonZeroU32 {
        std::num::NonZeroU32::new(5).unwrap()
    }
    fn is_alive(&self, _owner: u32) -> bool {
        true
    }
    fn wait(&self, _attempt: u32) -> bool {
        if self.home_lock.load(Ordering::SeqCst) != 5 {
            self.released_home.store(true, Ordering::SeqCst);
        }
        self.waits.fetch_add(1, Ordering::SeqCst) < 100
    }
}

#[test]
fn a_writer_waiting_for_a_second_chunk_keeps_its_home_lock() {
    // The review found writers of displaced keys starved: holding the home lock, such a writer
    // let go of it whenever the chunk holding its key was busy, and lost nearly every race
    // (11 updates in 20 s where an ordinary writer of that chunk made 142,303). Writers now
    // wait for a second lock while holding the first, in increasing chunk order. Here chunk 1
    // stays locked by a live owner, and the writer of a key homed in chunk 0 but stored in
    // chunk 1 must wait for it without ever releasing chunk 0.
    const SEED: u64 = 7;
    let layout = Layout::new(14, 8, 8).unwrap();
    assert_eq!(layout.chunks(), 2);
    let mem = SharedMemory::formatted_with_seed(layout, SEED);
    let setup_liveness = TestLiveness::new(1, &no_dead());
    let setup = mem.attach(&setup_liveness);
    let homed_in_zero = (0u64..).map(key).filter(|k| home_of(k, SEED, 2) == 0);
    let mut keys = homed_in_zero.take(9);
    for k in keys.by_ref().take(8) {
        setup.insert(&k, b"fill").unwrap();
    }
    let displaced = keys.next().unwrap();
    setup.insert(&displaced, b"before").unwrap();
    // Control blocks start at offset 64, 32 bytes each; the lock word comes first.
    let (home_lock, chunk_one_lock) = (mem.atomic_u32(64), mem.atomic_u32(64 + 32));
    chunk_one_lock.store(99, Ordering::SeqCst);
    let check = HomeHeldCheck {
        home_lock,
        waits: Default::default(),
        released_home: AtomicBool::new(false),
    };
    let writer = mem.attach_with(&check);
    assert_eq!(writer.insert(&displaced, b"after"), Err(Error::TimedOut));
    assert!(
        check.waits.load(Ordering::SeqCst) > 100,
        "the writer never waited for chunk 1"
    );
    assert!(
        !check.released_home.load(Ordering::SeqCst),
        "the writer let go of its home lock while waiting"
    );
    assert_eq!(
        home_lock.load(Ordering::SeqCst),
        0,
        "the home lock was not released after giving up"
    );
    chunk_one_lock.store(0, Ordering::SeqCst);
    assert_eq!(setup.get_into::<8>(&displaced).unwrap().unwrap(), b"before");
    support::verify_exact(&setup);
}

#[test]
fn ten_million_churn_cycles_at_ninety_percent_of_capacity() {
    // Distinct keys come and go while the live count stays at 90% of capacity: the map keeps
    // working, deleted space is reused, and it verifies clean at the end.
    const CAPACITY: usize = 10_000;
    const LIVE: u64 = 9_000;
    const CYCLES: u64 = if cfg!(miri) { 1_000 } else { 10_000_000 };
    let layout = Layout::new(CAPACITY, 8, 8).unwrap();
    let mut mem = memory(&layout);
    let map = RawMap::init_with_seed(region_bytes(&mut mem), layout, 11).unwrap();
    for n in 0..LIVE {
        map.insert(&key(n), &key(n)).unwrap();
    }
    for n in 0..CYCLES {
        assert!(map.remove(&key(n)).unwrap(), "key {n} lost");
        assert!(!map.insert(&key(n + LIVE), &key(n)).unwrap());
    }
    let report = support::verify_exact(&map);
    assert_eq!(report.entries as u64, LIVE);
    assert_eq!(report.overflow_excess, 0);
    assert!(
        report.max_probe_distance <= 20,
        "max probe distance {}",
        report.max_probe_distance
    );
    assert!(map.contains_key(&key(CYCLES + LIVE - 1)).unwrap());
}
