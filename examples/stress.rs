//! Stress: every process reads, writes and deletes at once on one map, then the map is
//! verified. `scale` measures read throughput for 1, 2, ... processes (up to the number of
//! processors, or the number given), each pinned to a processor and reading 256 keys of its own
//! (few enough to stay in its core's caches: more measure how the machine shares its
//! last-level cache between cores, not the map). The processes of a run start together (they
//! wait for a "go" key), so their measurements overlap. One run's numbers move with the
//! machine's load; `cargo bench --bench processes` measures the same ratios with rounds of one
//! and of k processes interleaved.
//!
//! `cargo run --release --example stress [processes] [seconds]`
//! `cargo run --release --example stress scale [max processes] [seconds]`

use shared_hashmap_posix::{Layout, SharedHashMap};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEYS_PER_PROCESS: u64 = 50_000;
/// The keys each process reads in `scale`.
const SCALE_KEYS: u64 = 256;
/// The start barrier's keys: each child adds 1 to `READY`, then waits for `GO`.
const READY: &[u8] = b"ready";
const GO: &[u8] = b"go";

fn key(process: u64, n: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&process.to_le_bytes());
    key[8..].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    key
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    if arg(1) == Some("child") {
        let ops = child(
            &args[2],
            args[3] == "read",
            args[4].parse()?,
            args[5].parse()?,
            args[6].parse()?,
        )?;
        println!("{ops}");
        return Ok(());
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u64);
    if arg(1) == Some("scale") {
        let max: u64 = arg(2).and_then(|a| a.parse().ok()).unwrap_or(cores);
        let seconds: f64 = arg(3).and_then(|a| a.parse().ok()).unwrap_or(2.0);
        println!(
            "100% reads of 16-byte keys, 64-byte values copied out, {SCALE_KEYS} keys of its own per pinned process ({cores} processors)"
        );
        let mut single = 0.0;
        for processes in 1..=max {
            let rate = run(processes, "read", seconds, false)?;
            if processes == 1 {
                single = rate;
            }
            println!(
                "{processes:>3} processes: {:>7.2} M reads/s, {:.2}x one process ({:.0}% efficiency)",
                rate / 1e6,
                rate / single,
                100.0 * rate / single / processes as f64
            );
        }
        return Ok(());
    }
    let processes: u64 = arg(1).and_then(|a| a.parse().ok()).unwrap_or(cores.max(2));
    let seconds: f64 = arg(2).and_then(|a| a.parse().ok()).unwrap_or(3.0);
    let rate = run(processes, "mixed", seconds, true)?;
    println!("all {processes} processes: {:.2} M ops/s", rate / 1e6);
    Ok(())
}

/// Runs `processes` children in `mode` on one new map for `seconds`; total operations per second.
fn run(
    processes: u64,
    mode: &str,
    seconds: f64,
    verbose: bool,
) -> Result<f64, Box<dyn std::error::Error>> {
    let name = format!("stress-{}-{processes}", std::process::id());
    let map = SharedHashMap::create(
        &name,
        // Room for the start barrier's two keys too.
        Layout::new((processes * KEYS_PER_PROCESS) as usize + 2, 16, 64)?,
    )?;
    let result = (|| {
        for p in 0..processes {
            for n in 0..KEYS_PER_PROCESS / 2 {
                map.insert(&key(p, n), &[p as u8; 64])?;
            }
        }
        let exe = std::env::current_exe()?;
        let children = (0..processes)
            .map(|p| {
                Command::new(&exe)
                    .args([
                        "child",
                        &name,
                        mode,
                        &p.to_string(),
                        &processes.to_string(),
                        &seconds.to_string(),
                    ])
                    .stdout(Stdio::piped())
                    .spawn()
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Once every child is ready, let them all go at once.
        let started = Instant::now();
        while map.get_into::<8>(READY)?.map(|n| n.into_array()) != Some(Ok(processes.to_le_bytes()))
        {
            if started.elapsed() > Duration::from_secs(60) {
                return Err("the children never got ready".into());
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        map.insert(GO, b"")?;
        let mut total = 0.0;
        for (p, child) in children.into_iter().enumerate() {
            let output = child.wait_with_output()?;
            if !output.status.success() {
                return Err(format!("process {p} failed").into());
            }
            let ops: f64 = String::from_utf8_lossy(&output.stdout).trim().parse()?;
            if verbose {
                println!("process {p}: {:>6.2} M ops/s", ops / seconds / 1e6);
            }
            total += ops;
        }
        let report = map.verify()?;
        if verbose {
            println!(
                "verify: clean, {} entries, longest probe {} chunks",
                report.entries, report.max_probe_distance
            );
        }
        Ok(total / seconds)
    })();
    SharedHashMap::unlink(&name)?;
    result
}

/// One process: `read` only looks its own keys up; `mixed` also inserts, updates and removes
/// its own keys and reads everybody's. Returns the number of operations it made.
fn child(
    name: &str,
    read_only: bool,
    id: u64,
    processes: u64,
    seconds: f64,
) -> Result<u64, Box<dyn std::error::Error>> {
    let map = SharedHashMap::open(name)?;
    if read_only {
        pin_to_processor(id)?;
    }
    map.fetch_add(READY, 1)?;
    let waiting = Instant::now();
    while !map.contains_key(GO)? {
        if waiting.elapsed() > Duration::from_secs(60) {
            return Err("no go".into());
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    let mut out = [0u8; 64];
    let started = Instant::now();
    let mut ops = 0u64;
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs_f64(seconds) {
        for _ in 0..1024 {
            n = n.wrapping_add(1);
            let mine = n % KEYS_PER_PROCESS;
            if read_only {
                map.get(&key(id, n % SCALE_KEYS), &mut out)?;
            } else {
                match n % 10 {
                    0 => drop(map.insert(&key(id, mine), &[n as u8; 64])?),
                    1 => drop(map.remove(&key(id, mine.wrapping_sub(7) % KEYS_PER_PROCESS))?),
                    _ => drop(map.get(&key(n % processes, mine), &mut out)?),
                }
            }
            ops += 1;
        }
    }
    Ok(ops)
}

/// Pins this process to the `id`th processor it may run on (modulo their number), so that a
/// lone process is not moved between processors (which costs it its caches).
fn pin_to_processor(id: u64) -> Result<(), Box<dyn std::error::Error>> {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
    let allowed = sched_getaffinity(None)?;
    let processors: Vec<usize> = (0..CpuSet::MAX_CPU)
        .filter(|&cpu| allowed.is_set(cpu))
        .collect();
    let cpu = processors
        .get(id as usize % processors.len().max(1))
        .ok_or("this process may run on no processor")?;
    let mut own = CpuSet::new();
    own.set(*cpu);
    sched_setaffinity(None, &own)?;
    Ok(())
}
