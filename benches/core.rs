//! Single-thread operations of this crate's map against the in-process maps that bound what a
//! hash map can do: `std::collections::HashMap` (SipHash) and `hashbrown::HashMap` with
//! foldhash at a fixed seed (the single-thread ceiling).
//!
//! Dimensions (see `support/mod.rs` for the workloads):
//! - workload: `get_hit`, `get_miss` (every get copies the value out), `insert` of a new key,
//!   `update` of a present key, `remove`, and 90/10 and 50/50 read/update mixes;
//! - key/value sizes 8/8, 16/64 and 64/1024 bytes;
//! - tables of 2^12 entries (in cache) and 2^20 (not), each at 25, 50, 75 and 90% load;
//! - `churn`: `get_miss` on a fresh 16/64 table of 2^12 entries at 50% load and on one after
//!   10 million insert/delete cycles at that load;
//! - the cliff: `get_miss` on this crate's map at 90% load against the same table at 50%.
//!
//! Every map gets the same keys in the same order. Each table's timings
//! (`core-16x64-4k-50/OP/MAP`) are followed by ratio benchmarks
//! (`ratio-core-16x64-4k-50/OP/MAP`: MAP's time over this crate's, both timed in every sample;
//! see `support/mod.rs`), the churn timings by `ratio-churn/get_miss/churned`, and each size's
//! 90% table by `ratio-cliff/get_miss/16x64-4k` (its miss time over the 50% table's);
//! `ratio-calibration/OP/shared-hashmap` measures this crate's map against an identical copy,
//! where the true ratio is 1. After a full run the ratios are printed from criterion's saved
//! estimates, with the targets of the core issue; `python3 benches/report.py` turns the same
//! estimates into `benches/README.md`. One family: `cargo bench --bench core -- core-16x64-4k`
//! (which also matches its ratio groups).

mod support;

use criterion::{BenchmarkId, Criterion, SamplingMode};
use std::time::Duration;
use support::{
    Balance, BenchMap, Keys, Op, Ours, Ratio, SIZES, Table, bench_filled, bench_ratios, estimate,
    filled, group_name, key, paired, ratio_estimate, selected, time_op,
};

type Std<const K: usize, const V: usize> = std::collections::HashMap<[u8; K], [u8; V]>;

impl<const K: usize, const V: usize> BenchMap<K, V> for Std<K, V> {
    const NAME: &'static str = "std";
    fn with_capacity(capacity: usize) -> Option<Self> {
        Some(Std::with_capacity(capacity))
    }
    #[inline]
    fn get(&self, key: &[u8; K], out: &mut [u8; V]) -> bool {
        self.get(key).map(|v| *out = *v).is_some()
    }
    #[inline]
    fn insert(&mut self, key: &[u8; K], value: &[u8; V]) {
        self.insert(*key, *value);
    }
    #[inline]
    fn remove(&mut self, key: &[u8; K]) -> bool {
        self.remove(key).is_some()
    }
}

type Brown<const K: usize, const V: usize> =
    hashbrown::HashMap<[u8; K], [u8; V], foldhash::fast::FixedState>;

impl<const K: usize, const V: usize> BenchMap<K, V> for Brown<K, V> {
    const NAME: &'static str = "hashbrown";
    fn with_capacity(capacity: usize) -> Option<Self> {
        Some(Brown::with_capacity_and_hasher(
            capacity,
            foldhash::fast::FixedState::with_seed(0),
        ))
    }
    #[inline]
    fn get(&self, key: &[u8; K], out: &mut [u8; V]) -> bool {
        self.get(key).map(|v| *out = *v).is_some()
    }
    #[inline]
    fn insert(&mut self, key: &[u8; K], value: &[u8; V]) {
        self.insert(*key, *value);
    }
    #[inline]
    fn remove(&mut self, key: &[u8; K]) -> bool {
        self.remove(key).is_some()
    }
}

/// Every workload on every table of one key/value size, for the three maps; then the ratios of
/// the others' times to this crate's, measured together.
fn core_size<const K: usize, const V: usize>(c: &mut Criterion, ratios: &mut Criterion<Ratio>) {
    // The 50% table of the capacity being measured, kept for the cliff ratio.
    let mut half_full: Option<(Table, Keys<K>, Ours)> = None;
    for table in Table::all().filter(|&table| selected((K, V), table)) {
        let keys = Keys::<K>::new(table);
        let mut std: Std<K, V> = filled(table.capacity, &keys).expect("a table");
        let mut brown: Brown<K, V> = filled(table.capacity, &keys).expect("a table");
        let mut ours: Ours = filled::<K, V, _>(table.capacity, &keys).expect("a table");
        let mut group = c.benchmark_group(group_name("core", (K, V), table));
        bench_filled::<K, V, _>(&mut group, &mut std, &keys, &Op::ALL);
        bench_filled::<K, V, _>(&mut group, &mut brown, &keys, &Op::ALL);
        bench_filled::<K, V, _>(&mut group, &mut ours, &keys, &Op::ALL);
        group.finish();
        let mut group = ratios.benchmark_group(group_name(RATIOS, (K, V), table));
        group.sampling_mode(SamplingMode::Flat);
        bench_ratios::<K, V, _, _>(&mut group, &mut ours, &mut std, &keys, &Op::ALL);
        bench_ratios::<K, V, _, _>(&mut group, &mut ours, &mut brown, &keys, &Op::ALL);
        group.finish();
        match table.load {
            50 => half_full = Some((table, keys, ours)),
            90 => {
                if let Some((half, half_keys, half_map)) = half_full.take() {
                    if half.capacity == table.capacity {
                        cliff::<K, V>(ratios, table, (&keys, ours), (&half_keys, half_map));
                    }
                }
            }
            _ => {}
        }
    }
}

/// The group of the cliff ratios: `ratio-cliff/get_miss/16x64-4k` is this crate's miss time in
/// that table at 90% load over its time at 50%, both timed in every sample.
const CLIFF: &str = "ratio-cliff";

/// Measures the cliff ratio of `full`'s table (at 90% load) against `half` (the same at 50%).
fn cliff<const K: usize, const V: usize>(
    ratios: &mut Criterion<Ratio>,
    table: Table,
    full: (&Keys<K>, Ours),
    half: (&Keys<K>, Ours),
) {
    let mut group = ratios.benchmark_group(CLIFF);
    group.sampling_mode(SamplingMode::Flat);
    let (full_keys, half_keys) = (full.0, half.0);
    let mut maps = (full.1, half.1);
    let mut balance = Balance::default();
    let id = format!("{K}x{V}-{}", table.size_label());
    group.bench_function(BenchmarkId::new("get_miss", id), |b| {
        b.iter_custom(|iters| {
            paired(
                iters,
                &mut maps,
                &mut balance,
                |(full, _), n| time_op::<K, V, _>(full, full_keys, Op::GetMiss, n),
                |(_, half), n| time_op::<K, V, _>(half, half_keys, Op::GetMiss, n),
            )
        })
    });
    group.finish();
}

/// The family of the ratio groups: `ratio-core-16x64-4k-50/OP/MAP` is MAP's time over this
/// crate's.
const RATIOS: &str = "ratio-core";

fn core_ops(c: &mut Criterion, ratios: &mut Criterion<Ratio>) {
    core_size::<8, 8>(c, ratios);
    core_size::<16, 64>(c, ratios);
    core_size::<64, 1024>(c, ratios);
}

/// Insert/delete cycles the churned table goes through.
const CHURN_CYCLES: u64 = 10_000_000;

/// The core issue's table: 16-byte keys, 64-byte values, 2^12 entries at 50% load.
const ISSUE_TABLE: Table = Table {
    capacity: 1 << 12,
    load: 50,
};

/// The keys of [`ISSUE_TABLE`] and two maps of this crate holding them.
fn issue_table_twice() -> (Keys<16>, Ours, Ours) {
    let keys = Keys::<16>::new(ISSUE_TABLE);
    let fill = || filled::<16, 64, Ours>(ISSUE_TABLE.capacity, &keys).expect("a table");
    let (first, second) = (fill(), fill());
    (keys, first, second)
}

fn churn(c: &mut Criterion, ratios: &mut Criterion<Ratio>) {
    let (keys, mut fresh, mut churned) = issue_table_twice();
    let live = keys.present.len() as u64;
    // Remove the oldest key and insert a new one: the live count stays at 50%. The keys
    // inserted here (from 2^42 on) are neither absent nor fresh ones.
    let mut oldest = keys.present.clone();
    oldest.reverse();
    for n in 0..CHURN_CYCLES {
        let gone = oldest.pop().unwrap_or_else(|| key((1 << 42) + n - live));
        BenchMap::<16, 64>::remove(&mut churned, &gone);
        BenchMap::<16, 64>::insert(&mut churned, &key((1 << 42) + n), &[1; 64]);
    }
    let mut group = c.benchmark_group("churn");
    for (name, map) in [("fresh", &mut fresh), ("churned", &mut churned)] {
        group.bench_function(BenchmarkId::new("get_miss", name), |b| {
            b.iter_custom(|iters| time_op::<16, 64, _>(map, &keys, Op::GetMiss, iters))
        });
    }
    group.finish();
    let mut group = ratios.benchmark_group(CHURN_RATIO);
    group.sampling_mode(SamplingMode::Flat);
    let mut maps = (churned, fresh);
    let mut balance = Balance::default();
    group.bench_function(BenchmarkId::new("get_miss", "churned"), |b| {
        b.iter_custom(|iters| {
            paired(
                iters,
                &mut maps,
                &mut balance,
                |(churned, _), n| time_op::<16, 64, _>(churned, &keys, Op::GetMiss, n),
                |(_, fresh), n| time_op::<16, 64, _>(fresh, &keys, Op::GetMiss, n),
            )
        })
    });
    group.finish();
}

/// How far a ratio benchmark is from the truth: this crate's map against an identical second
/// copy on [`ISSUE_TABLE`], where the true ratio is 1.
fn calibration(ratios: &mut Criterion<Ratio>) {
    let (keys, mut ours, mut copy) = issue_table_twice();
    let mut group = ratios.benchmark_group(CALIBRATION);
    group.sampling_mode(SamplingMode::Flat);
    bench_ratios::<16, 64, _, _>(&mut group, &mut ours, &mut copy, &keys, &Op::ALL);
    group.finish();
}

/// The group of the calibration ratios: `ratio-calibration/OP/shared-hashmap`.
const CALIBRATION: &str = "ratio-calibration";

/// The group of the churned table's miss time over the fresh one's, measured together.
const CHURN_RATIO: &str = "ratio-churn";

/// The core issue's target for `ours / other` on `op` in a table of `capacity` entries, where
/// it sets one: against std at most 1.0 for get_hit, get_miss and remove, and for insert 1.25
/// in cache and 1.5 out of it; against hashbrown at most 2.5 for get_hit and 3.0 for the rest.
fn target(other: &str, op: Op, capacity: usize) -> Option<f64> {
    match (other, op) {
        ("std", Op::Insert) if capacity <= 1 << 12 => Some(1.25),
        ("std", Op::Insert) => Some(1.5),
        ("std", Op::GetHit | Op::GetMiss | Op::Remove) => Some(1.0),
        ("std", _) => None,
        (_, Op::GetHit) => Some(2.5),
        _ => Some(3.0),
    }
}

/// Prints, for every table and workload, ns/op of each map and this crate's time as a multiple
/// of the others' (from the ratio benchmarks, which measure both together), marking with `!`
/// each ratio over its target.
fn print_ratios() {
    println!("\nshared-hashmap time / other map's time, measured together (below 1.00:");
    println!("shared-hashmap is faster; `!`: over the core issue's target)");
    println!(
        "{:<22} {:<10} {:>9} {:>9} {:>9} {:>7} {:>7}",
        "table", "workload", "ours ns", "std ns", "brown ns", "/std", "/brown"
    );
    let mut missed = 0;
    for (k, v) in SIZES {
        for table in Table::all() {
            let group = group_name("core", (k, v), table);
            let ratio_group = group_name(RATIOS, (k, v), table);
            for op in Op::ALL {
                let id = |map: &str| format!("{}/{map}", op.name());
                let get = |map: &str| estimate(&group, &id(map));
                let (Some(ours), Some(std), Some(brown)) =
                    (get("shared-hashmap"), get("std"), get("hashbrown"))
                else {
                    continue;
                };
                let mut mark = |other: &str| match ratio_estimate(&ratio_group, &id(other)) {
                    Some(theirs_per_ours) => {
                        let ratio = 1.0 / theirs_per_ours;
                        let over = target(other, op, table.capacity).is_some_and(|t| ratio > t);
                        missed += usize::from(over);
                        format!("{ratio:.2}{}", if over { "!" } else { " " })
                    }
                    None => "-".into(),
                };
                let (by_std, by_brown) = (mark("std"), mark("hashbrown"));
                println!(
                    "{group:<22} {:<10} {ours:>9.1} {std:>9.1} {brown:>9.1} {by_std:>7} {by_brown:>7}",
                    op.name()
                );
            }
        }
    }
    println!("{missed} ratios over target");
    let calibration: Vec<String> = Op::ALL
        .iter()
        .filter_map(|op| {
            let id = format!("{}/shared-hashmap", op.name());
            ratio_estimate(CALIBRATION, &id).map(|r| format!("{} {r:.2}", op.name()))
        })
        .collect();
    if !calibration.is_empty() {
        println!(
            "calibration (this crate's map against an identical copy, true ratio 1): {}",
            calibration.join(", ")
        );
    }
    print_cliffs();
    if let Some(ratio) = ratio_estimate(CHURN_RATIO, "get_miss/churned") {
        println!(
            "churn: get_miss after {CHURN_CYCLES} insert/delete cycles costs {ratio:.2}x a fresh table's (target 1.2)"
        );
    }
}

/// Prints this crate's get_miss at 90% load as a multiple of its cost at 50% (target: 3).
fn print_cliffs() {
    for (k, v) in SIZES {
        for size in ["4k", "1m"] {
            if let Some(ratio) = ratio_estimate(CLIFF, &format!("get_miss/{k}x{v}-{size}")) {
                println!(
                    "cliff {k}x{v}-{size}: get_miss at 90% load costs {ratio:.2}x its cost at 50% (target 3)"
                );
            }
        }
    }
}

fn main() {
    support::run(
        Duration::from_millis(300),
        Duration::from_secs(1),
        Duration::from_secs(1),
        |criterion, ratios| {
            core_ops(criterion, ratios);
            // Both on the issue's table, so both left out where `BENCH_TABLES` leaves it out.
            if selected((16, 64), ISSUE_TABLE) {
                churn(criterion, ratios);
                calibration(ratios);
            }
        },
        print_ratios,
    );
}
