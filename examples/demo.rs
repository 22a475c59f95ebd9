//! Several processes share one map by name: each writes its own keys, reads everybody's and
//! counts into a shared counter, while the parent prints live totals; then the map is checked
//! (exact counter, every process's report, `verify` clean) and removed.
//!
//! `cargo run --release --example demo [processes] [seconds]`

use shared_hashmap_posix::{Layout, SharedHashMap};
use std::process::Command;
use std::time::{Duration, Instant};

const KEYS_PER_PROCESS: u64 = 10_000;

fn key(process: u64, n: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&process.to_le_bytes());
    key[8..].copy_from_slice(&n.to_le_bytes());
    key
}

fn report_key(process: u64) -> [u8; 16] {
    key(u64::MAX, process)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        return child(
            &args[2],
            args[3].parse()?,
            args[4].parse()?,
            args[5].parse()?,
        );
    }
    let processes: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4);
    let seconds: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3.0);
    let name = format!("shared-hashmap-demo-{}", std::process::id());
    let layout = Layout::new(
        (processes * KEYS_PER_PROCESS + processes + 16) as usize,
        16,
        64,
    )?;
    // The map's name is removed when `map` is dropped, also when the demo fails.
    let map = SharedHashMap::create(&name, layout)?.unlink_on_drop();
    println!(
        "map {name:?} in /dev/shm: capacity {}, keys up to 16 bytes, values up to 64 ({:.1} MiB); \
         {processes} processes for {seconds} s",
        layout.capacity(),
        layout.region_size() as f64 / (1 << 20) as f64
    );

    let exe = std::env::current_exe()?;
    let mut children = (0..processes)
        .map(|id| {
            Command::new(&exe)
                .args([
                    "child",
                    &name,
                    &id.to_string(),
                    &seconds.to_string(),
                    &processes.to_string(),
                ])
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;

    // Live totals, read from the counter every process adds to.
    let started = Instant::now();
    let mut last = (0i64, started);
    while started.elapsed() < Duration::from_secs_f64(seconds) {
        std::thread::sleep(Duration::from_millis(500));
        let ops = counter(&map, b"ops")?;
        let rate = (ops - last.0) as f64 / last.1.elapsed().as_secs_f64() / 1e6;
        println!(
            "  {:>4.1} s: {ops:>11} operations so far, {rate:>6.2} M ops/s",
            started.elapsed().as_secs_f64()
        );
        last = (ops, Instant::now());
    }
    for child in &mut children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a child process failed: {status}").into());
        }
    }

    // Every process's report, and checks.
    let mut adds = 0;
    let mut total = 0;
    for id in 0..processes {
        let report = map
            .get_into::<32>(&report_key(id))?
            .ok_or("a process left no report")?;
        // Four little-endian words; anything else in the map is reported, not sliced into.
        let field = |i: usize| {
            report
                .get(i * 8..i * 8 + 8)
                .and_then(|word| word.try_into().ok())
                .map(u64::from_le_bytes)
                .ok_or(format!(
                    "process {id}'s report is {} bytes, not 32",
                    report.len()
                ))
        };
        let (gets, hits, inserts, elapsed_us) = (field(0)?, field(1)?, field(2)?, field(3)?);
        let ops = gets + inserts * 2;
        println!(
            "process {id}: {gets:>9} gets ({:>3.0}% hits), {inserts:>8} inserts, {inserts:>8} counter adds: {:>5.2} M ops/s",
            100.0 * hits as f64 / gets.max(1) as f64,
            ops as f64 / elapsed_us as f64
        );
        adds += inserts;
        total += ops;
    }
    println!(
        "all processes: {:.2} M ops/s",
        total as f64 / started.elapsed().as_secs_f64() / 1e6
    );
    let counted = counter(&map, b"total-inserts")? as u64;
    let report = map.verify()?;
    println!(
        "check: shared counter {counted} = {adds} adds across processes: {}; {} entries; verify clean",
        if counted == adds {
            "exact"
        } else {
            "LOST COUNTS"
        },
        report.entries
    );
    if counted != adds {
        return Err("the shared counter lost counts".into());
    }
    Ok(())
}

/// One process: one write of its own key, eight reads of anybody's, one shared count, again.
fn child(
    name: &str,
    id: u64,
    seconds: f64,
    processes: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let map = SharedHashMap::open(name)?;
    let (mut gets, mut hits, mut inserts) = (0u64, 0u64, 0u64);
    let mut out = [0u8; 64];
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs_f64(seconds) {
        for _ in 0..256 {
            map.insert(&key(id, n % KEYS_PER_PROCESS), &[(n % 251) as u8; 64])?;
            for r in 0..8 {
                let other = (id + r) % processes;
                hits += u64::from(
                    map.get(&key(other, (n * 7 + r) % KEYS_PER_PROCESS), &mut out)?
                        .is_some(),
                );
            }
            map.fetch_add(b"total-inserts", 1)?;
            gets += 8;
            inserts += 1;
            n += 1;
        }
        map.fetch_add(b"ops", 256 * 10)?;
    }
    let elapsed_us = started.elapsed().as_micros() as u64;
    let mut report = [0u8; 32];
    for (i, field) in [gets, hits, inserts, elapsed_us].into_iter().enumerate() {
        report[i * 8..i * 8 + 8].copy_from_slice(&field.to_le_bytes());
    }
    map.insert(&report_key(id), &report)?;
    Ok(())
}

fn counter(map: &SharedHashMap, name: &[u8]) -> Result<i64, shared_hashmap_posix::Error> {
    let value = map
        .get_into::<8>(name)
        .map_err(|source| shared_hashmap_posix::Error::Map {
            name: map.name().to_owned(),
            source,
        })?;
    Ok(value.map_or(0, |bytes| {
        i64::from_le_bytes(bytes.into_array().unwrap_or_default())
    }))
}
