//! Worker processes each compute part of a job (here: the squares of their share of 0..N) into
//! one shared map; the parent checks every result and sums them.
//!
//! `cargo run --release --example distributed [workers] [n]`

use shared_hashmap_posix::{Layout, SharedMap};
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("worker") {
        let (name, worker, workers, n) = (
            &args[2],
            args[3].parse::<u64>()?,
            args[4].parse::<u64>()?,
            args[5].parse::<u64>()?,
        );
        let results: SharedMap<u64, u64> = SharedMap::open(name)?;
        for i in (worker..n).step_by(workers as usize) {
            results.insert(&i, &(i * i))?;
        }
        return Ok(());
    }
    let workers: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4);
    let n: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let name = format!("distributed-{}", std::process::id());
    // The map's name is removed when `results` is dropped, however `main` ends.
    let results: SharedMap<u64, u64> =
        SharedMap::create(&name, Layout::new(n as usize, 8, 8)?)?.unlink_on_drop();
    let exe = std::env::current_exe()?;
    let children = (0..workers)
        .map(|w| {
            Command::new(&exe)
                .args([
                    "worker",
                    &name,
                    &w.to_string(),
                    &workers.to_string(),
                    &n.to_string(),
                ])
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    for mut child in children {
        if !child.wait()?.success() {
            return Err("a worker failed".into());
        }
    }
    let mut sum: u128 = 0;
    for i in 0..n {
        let square = results.get(&i)?.ok_or(format!("result {i} missing"))?;
        if square != i * i {
            return Err(format!("result {i} is {square}, not {}", i * i).into());
        }
        sum += u128::from(square);
    }
    let expected = (0..u128::from(n)).map(|i| i * i).sum::<u128>();
    println!(
        "{workers} workers computed {n} squares; sum {sum} (expected {expected}): {}",
        if sum == expected { "correct" } else { "WRONG" }
    );
    if sum != expected {
        return Err("the sum is wrong".into());
    }
    Ok(())
}
