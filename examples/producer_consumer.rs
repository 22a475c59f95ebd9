//! One process produces items into a shared map; another consumes them as they appear.
//!
//! `cargo run --release --example producer_consumer [items]`

use shared_hashmap_posix::{Layout, SharedHashMap};
use std::process::Command;
use std::time::{Duration, Instant};

fn item_key(i: u64) -> String {
    format!("item_{i}")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("produce") => return produce(&args[2], args[3].parse()?),
        Some("consume") => return consume(&args[2], args[3].parse()?),
        _ => {}
    }
    let items: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let name = format!("producer-consumer-{}", std::process::id());
    // The map's name is removed when `map` is dropped, however `main` ends.
    let map =
        SharedHashMap::create(&name, Layout::new(items as usize + 16, 32, 64)?)?.unlink_on_drop();
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let mut consumer = Command::new(&exe)
        .args(["consume", &name, &items.to_string()])
        .spawn()?;
    let mut producer = Command::new(&exe)
        .args(["produce", &name, &items.to_string()])
        .spawn()?;
    let (produced, consumed) = (producer.wait()?, consumer.wait()?);
    println!(
        "{items} items through shared memory in {:?}",
        started.elapsed()
    );
    println!(
        "map now holds {} entries (consumed items were removed)",
        map.len()
    );
    if !(produced.success() && consumed.success()) {
        return Err("a child failed".into());
    }
    Ok(())
}

fn produce(name: &str, items: u64) -> Result<(), Box<dyn std::error::Error>> {
    let map = SharedHashMap::open(name)?;
    for i in 0..items {
        map.insert(
            item_key(i).as_bytes(),
            format!("data from producer, item {i}").as_bytes(),
        )?;
    }
    println!("producer: wrote {items} items");
    Ok(())
}

fn consume(name: &str, items: u64) -> Result<(), Box<dyn std::error::Error>> {
    let map = SharedHashMap::open(name)?;
    let mut out = [0u8; 64];
    let started = Instant::now();
    for i in 0..items {
        let key = item_key(i);
        // Wait for the item, then take it out of the map.
        loop {
            if let Some(len) = map.get(key.as_bytes(), &mut out)? {
                if out[..len] != *format!("data from producer, item {i}").as_bytes() {
                    return Err(format!("item {i} holds something else").into());
                }
                map.remove(key.as_bytes())?;
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!("item {i} never arrived").into());
            }
            std::hint::spin_loop();
        }
        if i % (items / 4).max(1) == 0 {
            println!(
                "consumer: took item {i}: {:?}",
                String::from_utf8_lossy(&out[..32.min(out.len())]).trim_end_matches('\0')
            );
        }
    }
    println!("consumer: took all {items} items, in order");
    Ok(())
}
