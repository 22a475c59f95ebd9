//! Several threads share one map: each writes its own keys, reads everybody's, and counts into
//! shared counters; then the map is checked (no lost write, exact counters, `verify` clean).
//!
//! `cargo run --release --example demo [threads] [seconds]`

use shared_hashmap::{Layout, RawMap, region_bytes};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const KEYS_PER_THREAD: u64 = 10_000;

fn key(thread: u64, n: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&thread.to_le_bytes());
    key[8..].copy_from_slice(&n.to_le_bytes());
    key
}

#[derive(Default, Debug)]
struct Counts {
    gets: u64,
    hits: u64,
    inserts: u64,
    counter_adds: u64,
}

fn main() -> Result<(), shared_hashmap::Error> {
    let mut args = std::env::args().skip(1);
    let threads: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2.0);

    let layout = Layout::new((threads * KEYS_PER_THREAD + 16) as usize, 16, 64)?;
    let mut memory = vec![0u64; layout.region_size().div_ceil(8)];
    let map = RawMap::init(region_bytes(&mut memory), layout)?;
    println!(
        "one map: capacity {}, keys up to 16 bytes, values up to 64, {:.1} MiB region; {threads} threads for {seconds} s",
        layout.capacity(),
        layout.region_size() as f64 / (1 << 20) as f64,
    );

    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let results: Vec<Counts> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (map, stop) = (&map, &stop);
                s.spawn(move || -> Result<Counts, shared_hashmap::Error> {
                    let mut counts = Counts::default();
                    let mut out = [0u8; 64];
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        // One write of our own key, eight reads of anybody's, one shared count.
                        let mine = n % KEYS_PER_THREAD;
                        map.insert(&key(t, mine), &[(n % 251) as u8; 64])?;
                        counts.inserts += 1;
                        for r in 0..8 {
                            let other = (t + r) % threads;
                            counts.hits += u64::from(
                                map.get(&key(other, (n * 7 + r) % KEYS_PER_THREAD), &mut out)?
                                    .is_some(),
                            );
                            counts.gets += 1;
                        }
                        map.fetch_add(b"total-inserts", 1)?;
                        counts.counter_adds += 1;
                        n += 1;
                    }
                    Ok(counts)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .map(|w| w.join().expect("worker panicked"))
            .collect::<Result<_, _>>()
    })?;
    let elapsed = started.elapsed().as_secs_f64();

    let mut total_ops = 0;
    for (t, c) in results.iter().enumerate() {
        let ops = c.gets + c.inserts + c.counter_adds;
        total_ops += ops;
        println!(
            "thread {t}: {:>9} gets ({:>3.0}% hits), {:>8} inserts, {:>8} counter adds: {:>6.2} M ops/s",
            c.gets,
            100.0 * c.hits as f64 / c.gets.max(1) as f64,
            c.inserts,
            c.counter_adds,
            ops as f64 / elapsed / 1e6
        );
    }
    println!(
        "all threads: {:.2} M ops/s",
        total_ops as f64 / elapsed / 1e6
    );

    let adds: u64 = results.iter().map(|c| c.counter_adds).sum();
    let counter = map
        .get_into::<8>(b"total-inserts")?
        .expect("the counter exists");
    let counted = u64::from_le_bytes(counter.into_array().expect("8 bytes"));
    let report = map.verify()?;
    println!(
        "check: shared counter {counted} = {adds} adds: {}; {} entries; verify clean (longest probe {} chunks)",
        if counted == adds {
            "exact"
        } else {
            "LOST COUNTS"
        },
        report.entries,
        report.max_probe_distance
    );
    assert_eq!(counted, adds);
    Ok(())
}
