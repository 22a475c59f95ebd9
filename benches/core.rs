//! Single-thread core operations, against the maps a user would pick instead.
//!
//! Dimensions:
//! - operation: `get_hit`, `get_miss` (every get copies the 64-byte value out), `insert` of a
//!   new key, `remove` of a present key;
//! - table: 2^12 entries (fits in cache) and 2^20 entries (does not), at 50% load;
//! - map: `std::collections::HashMap` (SipHash), `hashbrown::HashMap` with foldhash at a fixed
//!   seed (the single-thread ceiling), and this crate's `RawMap` over a `Vec<u64>` region;
//! - `churn`: `get_miss` on a fresh 2^12 table and on one after 10 million insert/delete cycles
//!   at the same 50% load.
//!
//! Keys are 16 bytes and values 64, from a deterministic generator; every map gets the same
//! keys in the same order. Inserts and removes are timed in batches that move the load between
//! 50% and 62.5%; the batch is undone, untimed, before the next. After the run the ratios to
//! the other maps are printed from criterion's saved estimates (`cargo bench --bench core`).

use criterion::{BenchmarkId, Criterion, criterion_group};
use shared_hashmap::{Layout, RawMap, region_bytes};
use std::hint::black_box;
use std::time::{Duration, Instant};

type Key = [u8; 16];
type Value = [u8; 64];

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn key(i: u64) -> Key {
    let a = splitmix(i);
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&a.to_le_bytes());
    key[8..].copy_from_slice(&splitmix(a).to_le_bytes());
    key
}

fn value(i: u64) -> Value {
    let mut value = [0u8; 64];
    for (n, word) in value.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&splitmix(i ^ n as u64).to_le_bytes());
    }
    value
}

/// The operations every map under test offers, in the form this bench uses them.
trait BenchMap {
    const NAME: &'static str;
    fn with_capacity(capacity: usize) -> Self;
    fn get(&self, key: &Key, out: &mut Value) -> bool;
    fn insert(&mut self, key: &Key, value: &Value);
    fn remove(&mut self, key: &Key) -> bool;
}

struct Std(std::collections::HashMap<Key, Value>);

impl BenchMap for Std {
    const NAME: &'static str = "std";
    fn with_capacity(capacity: usize) -> Self {
        Std(std::collections::HashMap::with_capacity(capacity))
    }
    #[inline]
    fn get(&self, key: &Key, out: &mut Value) -> bool {
        self.0.get(key).map(|v| *out = *v).is_some()
    }
    #[inline]
    fn insert(&mut self, key: &Key, value: &Value) {
        self.0.insert(*key, *value);
    }
    #[inline]
    fn remove(&mut self, key: &Key) -> bool {
        self.0.remove(key).is_some()
    }
}

struct Brown(hashbrown::HashMap<Key, Value, foldhash::fast::FixedState>);

impl BenchMap for Brown {
    const NAME: &'static str = "hashbrown";
    fn with_capacity(capacity: usize) -> Self {
        Brown(hashbrown::HashMap::with_capacity_and_hasher(
            capacity,
            foldhash::fast::FixedState::with_seed(0),
        ))
    }
    #[inline]
    fn get(&self, key: &Key, out: &mut Value) -> bool {
        self.0.get(key).map(|v| *out = *v).is_some()
    }
    #[inline]
    fn insert(&mut self, key: &Key, value: &Value) {
        self.0.insert(*key, *value);
    }
    #[inline]
    fn remove(&mut self, key: &Key) -> bool {
        self.0.remove(key).is_some()
    }
}

struct Ours(RawMap<'static>);

impl BenchMap for Ours {
    const NAME: &'static str = "shared-hashmap";
    fn with_capacity(capacity: usize) -> Self {
        let layout = Layout::new(capacity, 16, 64).unwrap();
        let words = Box::leak(vec![0u64; layout.region_size().div_ceil(8)].into_boxed_slice());
        Ours(RawMap::init_with_seed(region_bytes(words), layout, 0x5eed).unwrap())
    }
    #[inline]
    fn get(&self, key: &Key, out: &mut Value) -> bool {
        self.0.get(key, out).unwrap().is_some()
    }
    #[inline]
    fn insert(&mut self, key: &Key, value: &Value) {
        self.0.insert(key, value).unwrap();
    }
    #[inline]
    fn remove(&mut self, key: &Key) -> bool {
        self.0.remove(key).unwrap()
    }
}

/// The keys of one table: present (in shuffled order), absent, and fresh ones to insert.
struct Keys {
    present: Vec<Key>,
    absent: Vec<Key>,
    fresh: Vec<Key>,
}

impl Keys {
    fn new(capacity: usize) -> Keys {
        let live = capacity as u64 / 2;
        let mut order: Vec<u64> = (0..live).collect();
        // A fixed shuffle, so lookups hit the table in random order.
        for i in (1..order.len()).rev() {
            order.swap(i, (splitmix(i as u64) % (i as u64 + 1)) as usize);
        }
        Keys {
            present: order.into_iter().map(key).collect(),
            absent: (live * 4..live * 5).map(key).collect(),
            fresh: (live * 8..live * 8 + live / 4).map(key).collect(),
        }
    }
}

fn filled<M: BenchMap>(capacity: usize, keys: &Keys) -> M {
    let mut map = M::with_capacity(capacity);
    for (i, k) in keys.present.iter().enumerate() {
        map.insert(k, &value(i as u64));
    }
    map
}

/// Times `op` over `keys` in turn, `iters` times in all.
fn time_lookups<M: BenchMap>(map: &M, keys: &[Key], iters: u64) -> Duration {
    let mut out = [0u8; 64];
    let start = Instant::now();
    for (_, k) in (0..iters).zip(keys.iter().cycle()) {
        black_box(map.get(black_box(k), &mut out));
        black_box(&out);
    }
    start.elapsed()
}

/// Times `timed` over batches of `batch`, undoing each with `undo`, untimed.
fn time_batches<M: BenchMap>(
    map: &mut M,
    batch: &[Key],
    iters: u64,
    timed: fn(&mut M, &Key),
    undo: fn(&mut M, &Key),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let keys = &batch[..(iters - done).min(batch.len() as u64) as usize];
        let start = Instant::now();
        for k in keys {
            timed(map, black_box(k));
        }
        total += start.elapsed();
        for k in keys {
            undo(map, k);
        }
        done += keys.len() as u64;
    }
    total
}

fn bench_map<M: BenchMap>(c: &mut Criterion, capacity: usize, keys: &Keys) {
    let group_name = format!("core-{capacity}");
    let mut group = c.benchmark_group(&group_name);
    let mut map: M = filled(capacity, keys);
    group.bench_function(BenchmarkId::new("get_hit", M::NAME), |b| {
        b.iter_custom(|iters| time_lookups(&map, &keys.present, iters))
    });
    group.bench_function(BenchmarkId::new("get_miss", M::NAME), |b| {
        b.iter_custom(|iters| time_lookups(&map, &keys.absent, iters))
    });
    group.bench_function(BenchmarkId::new("insert", M::NAME), |b| {
        b.iter_custom(|iters| {
            time_batches(
                &mut map,
                &keys.fresh,
                iters,
                |m, k| m.insert(k, &[7; 64]),
                |m, k| {
                    m.remove(k);
                },
            )
        })
    });
    let removable = &keys.present[..keys.fresh.len()];
    group.bench_function(BenchmarkId::new("remove", M::NAME), |b| {
        b.iter_custom(|iters| {
            time_batches(
                &mut map,
                removable,
                iters,
                |m, k| {
                    black_box(m.remove(k));
                },
                |m, k| m.insert(k, &[7; 64]),
            )
        })
    });
    group.finish();
}

fn core_ops(c: &mut Criterion) {
    for capacity in [1 << 12, 1 << 20] {
        let keys = Keys::new(capacity);
        bench_map::<Std>(c, capacity, &keys);
        bench_map::<Brown>(c, capacity, &keys);
        bench_map::<Ours>(c, capacity, &keys);
    }
}

fn churn(c: &mut Criterion) {
    const CAPACITY: usize = 1 << 12;
    const CYCLES: u64 = 10_000_000;
    let keys = Keys::new(CAPACITY);
    let mut group = c.benchmark_group("churn");
    let fresh: Ours = filled(CAPACITY, &keys);
    group.bench_function("get_miss/fresh", |b| {
        b.iter_custom(|iters| time_lookups(&fresh, &keys.absent, iters))
    });
    let mut churned: Ours = filled(CAPACITY, &keys);
    let live = keys.present.len() as u64;
    // Remove the oldest key and insert a new one, CYCLES times: the live count stays at 50%.
    for n in 0..CYCLES {
        churned.remove(&key(order_key(n, &keys)));
        churned.insert(&key(live * 16 + n), &[1; 64]);
    }
    group.bench_function("get_miss/churned", |b| {
        b.iter_custom(|iters| time_lookups(&churned, &keys.absent, iters))
    });
    group.finish();
}

/// The key the `n`th churn cycle removes: the originals first, then the churn's own, oldest first.
fn order_key(n: u64, keys: &Keys) -> u64 {
    let live = keys.present.len() as u64;
    if n < live { n } else { live * 16 + n - live }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = core_ops, churn
}

/// The mean time per iteration criterion saved for `group/function/parameter`, in ns.
fn estimate(group: &str, id: &str) -> Option<f64> {
    let base = std::env::var_os("CRITERION_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| "target".into(), std::path::PathBuf::from);
            target.join("criterion")
        });
    let json =
        std::fs::read_to_string(base.join(group).join(id).join("new/estimates.json")).ok()?;
    let mean = &json[json.find("\"mean\"")?..];
    let at = mean.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    mean[at..].split([',', '}']).next()?.trim().parse().ok()
}

/// Prints ns/op for each map and this crate's time as a fraction of the others'.
fn print_ratios() {
    println!("\nshared-hashmap time / other map's time (below 1.00: shared-hashmap is faster)");
    println!(
        "{:<14} {:<9} {:>9} {:>9} {:>9} {:>7} {:>9}",
        "table", "op", "ours ns", "std ns", "brown ns", "/std", "/brown"
    );
    for capacity in [1usize << 12, 1 << 20] {
        for op in ["get_hit", "get_miss", "insert", "remove"] {
            let group = format!("core-{capacity}");
            let get = |name| estimate(&group, &format!("{op}/{name}"));
            let (Some(ours), Some(std), Some(brown)) =
                (get("shared-hashmap"), get("std"), get("hashbrown"))
            else {
                println!("(no saved estimates for {group}/{op}: run without --test)");
                return;
            };
            println!(
                "{:<14} {:<9} {:>9.1} {:>9.1} {:>9.1} {:>7.2} {:>9.2}",
                format!("2^{}", capacity.trailing_zeros()),
                op,
                ours,
                std,
                brown,
                ours / std,
                ours / brown
            );
        }
    }
    if let (Some(fresh), Some(churned)) = (
        estimate("churn", "get_miss/fresh"),
        estimate("churn", "get_miss/churned"),
    ) {
        println!(
            "churn: get_miss after 10M insert/delete cycles {churned:.1} ns vs fresh {fresh:.1} ns: {:.2}x",
            churned / fresh
        );
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if !std::env::args().any(|arg| arg == "--test" || arg == "--list") {
        print_ratios();
    }
}
