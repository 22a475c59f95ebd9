//! Many processes add to the same counters at once with `fetch_add`; the totals are exact.
//!
//! `cargo run --release --example counters [processes] [adds per process]`

use shared_hashmap_posix::{Layout, SharedMap};
use std::process::Command;
use std::time::Instant;

const COUNTERS: [&str; 4] = ["requests", "bytes", "errors", "users"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("adder") {
        let counters: SharedMap<str, i64> = SharedMap::open(&args[2])?;
        for i in 0..args[3].parse::<u64>()? {
            counters.fetch_add(COUNTERS[(i % 4) as usize], 1)?;
        }
        return Ok(());
    }
    let processes: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(8);
    let adds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let name = format!("counters-{}", std::process::id());
    // The map's name is removed when `counters` is dropped, however `main` ends.
    let counters: SharedMap<str, i64> =
        SharedMap::create(&name, Layout::new(16, 16, 8)?)?.unlink_on_drop();
    let started = Instant::now();
    let exe = std::env::current_exe()?;
    let children = (0..processes)
        .map(|_| {
            Command::new(&exe)
                .args(["adder", &name, &adds.to_string()])
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    for mut child in children {
        if !child.wait()?.success() {
            return Err("an adder failed".into());
        }
    }
    let elapsed = started.elapsed();
    let total: i64 = COUNTERS
        .iter()
        .map(|c| counters.get(c).map(|v| v.unwrap_or(0)))
        .sum::<Result<i64, _>>()?;
    for c in COUNTERS {
        println!("{c:>8}: {}", counters.get(c)?.unwrap_or(0));
    }
    let expected = (processes * adds) as i64;
    println!(
        "{processes} processes, {expected} adds on 4 hot counters in {elapsed:?} ({:.2} M adds/s): total {total}, {}",
        expected as f64 / elapsed.as_secs_f64() / 1e6,
        if total == expected {
            "exact"
        } else {
            "LOST COUNTS"
        }
    );
    if total != expected {
        return Err("counts were lost".into());
    }
    Ok(())
}
