//! What the single-process benches share: the tables they measure, deterministic keys and
//! values, the operations a map offers them, the timed workloads, this crate's map owning its
//! region, paired measurements of ratios, and criterion's saved estimates read back to print
//! them.
//!
//! Ratios are measured, not divided: on a shared machine one map's time drifts by tens of
//! percent between two benchmarks seconds apart, so `ours ns / theirs ns` from two separate
//! criterion benchmarks is mostly noise. A ratio benchmark (measurement [`Ratio`]) times both
//! sides within each sample, A for half its share, then B, then A for the other half, each
//! share sized so that both sides run about as long ([`paired`]), so drift slower than one
//! sample cancels; criterion's median over the samples is the ratio reported. Measuring this
//! crate's map against an identical copy of itself (`ratio-calibration` in `core.rs`) shows the
//! method's own error.
//!
//! Every workload calls a map with slices of at most [`CALL`] keys, so that a map with a cost
//! per call (an LMDB transaction) can be measured both per operation and batched.

#![allow(dead_code, unreachable_pub)]

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Throughput};
use shared_hashmap::{Layout, RawMap, SingleProcess};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Keys per call of a map's `*_each` methods (divisible by 10 and 2, so mixes are exact).
pub const CALL: usize = 60;

/// The table sizes: one that fits in cache, one that does not.
pub const CAPACITIES: [usize; 2] = [1 << 12, 1 << 20];

/// The loads, in percent of capacity.
pub const LOADS: [usize; 4] = [25, 50, 75, 90];

/// One table to measure: its capacity (entries) and how full it is.
#[derive(Clone, Copy, Debug)]
pub struct Table {
    pub capacity: usize,
    pub load: usize,
}

impl Table {
    /// Every table, small ones first.
    pub fn all() -> impl Iterator<Item = Table> {
        CAPACITIES
            .into_iter()
            .flat_map(|capacity| LOADS.into_iter().map(move |load| Table { capacity, load }))
    }

    /// The entries in the table while it is measured.
    pub fn live(self) -> usize {
        self.capacity * self.load / 100
    }

    /// How many new keys one timed batch of inserts adds (undone before the next batch).
    pub fn batch(self) -> usize {
        (self.capacity / 64).clamp(CALL, self.capacity - self.live())
    }

    /// `4k` or `1m`: the capacity in criterion ids and in tables.
    pub fn size_label(self) -> String {
        match self.capacity {
            c if c >= 1 << 20 => format!("{}m", c >> 20),
            c => format!("{}k", c >> 10),
        }
    }
}

/// One of the workloads every map runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Looks up present keys, copying each value out.
    GetHit,
    /// Looks up absent keys.
    GetMiss,
    /// Inserts new keys (timed in batches, each removed again untimed).
    Insert,
    /// Overwrites the values of present keys.
    Update,
    /// Removes present keys (timed in batches, each inserted again untimed).
    Remove,
    /// Nine lookups to one update, over present keys.
    Mix90,
    /// One lookup to one update, over present keys.
    Mix50,
}

impl Op {
    /// Every workload, in report order.
    pub const ALL: [Op; 7] = [
        Op::GetHit,
        Op::GetMiss,
        Op::Insert,
        Op::Update,
        Op::Remove,
        Op::Mix90,
        Op::Mix50,
    ];

    /// The name in criterion ids and reports.
    pub fn name(self) -> &'static str {
        match self {
            Op::GetHit => "get_hit",
            Op::GetMiss => "get_miss",
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Remove => "remove",
            Op::Mix90 => "mix_90_10",
            Op::Mix50 => "mix_50_50",
        }
    }

    /// For the mixes, every how many operations one is a write.
    pub fn write_every(self) -> Option<usize> {
        match self {
            Op::Mix90 => Some(10),
            Op::Mix50 => Some(2),
            _ => None,
        }
    }
}

/// A 64-bit mixing function (SplitMix64's finalizer): a bijection, so distinct inputs give
/// distinct outputs.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The `i`th key of `K >= 8` bytes: its first eight bytes are `splitmix(i)`, so distinct `i`
/// give distinct keys; the rest continue the stream.
pub fn key<const K: usize>(i: u64) -> [u8; K] {
    fill(splitmix(i))
}

/// The `i`th value of `V` bytes.
pub fn value<const V: usize>(i: u64) -> [u8; V] {
    fill(splitmix(i ^ 0x5555_5555_5555_5555))
}

fn fill<const N: usize>(first: u64) -> [u8; N] {
    let mut out = [0u8; N];
    let mut word = first;
    for piece in out.chunks_mut(8) {
        piece.copy_from_slice(&word.to_le_bytes()[..piece.len()]);
        word = splitmix(word);
    }
    out
}

/// The keys of one table, the same for every map: present ones (in shuffled order, so lookups
/// hit the table at random), absent ones, and new ones to insert.
pub struct Keys<const K: usize> {
    pub present: Vec<[u8; K]>,
    pub absent: Vec<[u8; K]>,
    pub fresh: Vec<[u8; K]>,
}

impl<const K: usize> Keys<K> {
    pub fn new(table: Table) -> Self {
        let live = table.live() as u64;
        let mut order: Vec<u64> = (0..live).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, (splitmix(i as u64 ^ 0xa5a5) % (i as u64 + 1)) as usize);
        }
        Keys {
            present: order.into_iter().map(key).collect(),
            absent: (1 << 40..(1 << 40) + live).map(key).collect(),
            fresh: (1 << 41..(1 << 41) + table.batch() as u64)
                .map(key)
                .collect(),
        }
    }
}

/// The operations a single-threaded workload needs from a map.
///
/// The `*_each` methods run one operation per key; a map with a cost per call (a transaction)
/// overrides them to measure batching. Each returns how many keys it found, so the work is
/// observable.
pub trait BenchMap<const K: usize, const V: usize>: Sized {
    /// The name in criterion ids and reports.
    const NAME: &'static str;

    /// An empty map that holds at least `capacity` entries, or `None` if this map does not
    /// come in that size.
    fn with_capacity(capacity: usize) -> Option<Self>;

    /// Copies `key`'s value into `out`; whether it was there.
    fn get(&self, key: &[u8; K], out: &mut [u8; V]) -> bool;

    /// Inserts `key` or overwrites its value.
    fn insert(&mut self, key: &[u8; K], value: &[u8; V]);

    /// Removes `key`; whether it was there.
    fn remove(&mut self, key: &[u8; K]) -> bool;

    fn get_each(&mut self, keys: &[[u8; K]], out: &mut [u8; V]) -> usize {
        let mut found = 0;
        for key in keys {
            found += usize::from(self.get(black_box(key), out));
            black_box(&out);
        }
        found
    }

    fn insert_each(&mut self, keys: &[[u8; K]], value: &[u8; V]) -> usize {
        for key in keys {
            self.insert(black_box(key), value);
        }
        keys.len()
    }

    fn remove_each(&mut self, keys: &[[u8; K]]) -> usize {
        keys.iter()
            .map(|key| usize::from(self.remove(black_box(key))))
            .sum()
    }

    /// Every `write_every`th key (counting from the first) gets `value`; the others are read.
    fn mix_each(
        &mut self,
        keys: &[[u8; K]],
        write_every: usize,
        value: &[u8; V],
        out: &mut [u8; V],
    ) -> usize {
        let mut found = 0;
        for (n, key) in keys.iter().enumerate() {
            if n % write_every == 0 {
                self.insert(black_box(key), value);
            } else {
                found += usize::from(self.get(black_box(key), out));
                black_box(&out);
            }
        }
        found
    }
}

/// The operations a workload shared by several threads needs from a map.
pub trait SharedBenchMap<const K: usize, const V: usize>: Sync {
    const NAME: &'static str;
    fn get(&self, key: &[u8; K], out: &mut [u8; V]) -> bool;
    fn insert(&self, key: &[u8; K], value: &[u8; V]);
}

/// This crate's map over a heap region that it owns.
pub struct Ours {
    /// Declared before `words`, so that it is dropped first.
    map: RawMap<'static>,
    words: Vec<u64>,
}

impl Ours {
    /// A map holding `capacity` entries of up to `key_len` and `value_len` bytes.
    pub fn new(capacity: usize, key_len: usize, value_len: usize) -> Ours {
        let layout = Layout::new(capacity, key_len, value_len).expect("a valid layout");
        let mut words = vec![0u64; layout.region_size().div_ceil(8)];
        let len = words.len() * 8;
        // SAFETY: the region is the `Vec`'s heap buffer: valid, 8-byte aligned, `len` bytes
        // long, never moved (a `Vec` moving does not move its buffer) nor touched except through
        // `map`, which is dropped before it.
        let map = unsafe {
            RawMap::init_raw(
                words.as_mut_ptr().cast(),
                len,
                layout,
                0x5eed,
                &SingleProcess,
            )
        }
        .expect("a fresh region formats");
        Ours { map, words }
    }
}

impl Ours {
    /// The map.
    pub fn raw(&self) -> &RawMap<'static> {
        &self.map
    }
}

impl<const K: usize, const V: usize> SharedBenchMap<K, V> for Ours {
    const NAME: &'static str = "shared-hashmap";
    #[inline]
    fn get(&self, key: &[u8; K], out: &mut [u8; V]) -> bool {
        self.map.get(key, out).expect("get").is_some()
    }
    #[inline]
    fn insert(&self, key: &[u8; K], value: &[u8; V]) {
        self.map.insert(key, value).expect("insert");
    }
}

impl<const K: usize, const V: usize> BenchMap<K, V> for Ours {
    const NAME: &'static str = "shared-hashmap";
    fn with_capacity(capacity: usize) -> Option<Self> {
        Some(Ours::new(capacity, K, V))
    }
    #[inline]
    fn get(&self, key: &[u8; K], out: &mut [u8; V]) -> bool {
        SharedBenchMap::get(self, key, out)
    }
    #[inline]
    fn insert(&mut self, key: &[u8; K], value: &[u8; V]) {
        SharedBenchMap::insert(&*self, key, value);
    }
    #[inline]
    fn remove(&mut self, key: &[u8; K]) -> bool {
        self.map.remove(key).expect("remove")
    }
}

/// Calls `run` with consecutive slices of at most [`CALL`] of `keys`, cycling, until it has
/// passed `iters` keys; the time that took.
fn time_cycling<const K: usize>(
    keys: &[[u8; K]],
    iters: u64,
    mut run: impl FnMut(&[[u8; K]]) -> usize,
) -> Duration {
    let mut left = iters;
    let mut at = 0;
    let start = Instant::now();
    while left > 0 {
        let n = CALL.min(keys.len() - at).min(left as usize);
        black_box(run(&keys[at..at + n]));
        at = if at + n == keys.len() { 0 } else { at + n };
        left -= n as u64;
    }
    start.elapsed()
}

/// Times `timed` over `batch` (in calls of at most [`CALL`] keys), then undoes it with `undo`,
/// untimed, until `iters` keys were timed; the time the timed part took.
fn time_batches<S, const K: usize>(
    state: &mut S,
    batch: &[[u8; K]],
    iters: u64,
    timed: impl Fn(&mut S, &[[u8; K]]) -> usize,
    undo: impl Fn(&mut S, &[[u8; K]]) -> usize,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let keys = &batch[..(iters - done).min(batch.len() as u64) as usize];
        let start = Instant::now();
        for call in keys.chunks(CALL) {
            black_box(timed(state, call));
        }
        total += start.elapsed();
        for call in keys.chunks(CALL) {
            undo(state, call);
        }
        done += keys.len() as u64;
    }
    total
}

/// The time `map` takes for `iters` operations of workload `op` on `keys`.
pub fn time_op<const K: usize, const V: usize, M: BenchMap<K, V>>(
    map: &mut M,
    keys: &Keys<K>,
    op: Op,
    iters: u64,
) -> Duration {
    let mut out = [0u8; V];
    let new_value = value::<V>(u64::MAX);
    match op {
        Op::GetHit => time_cycling(&keys.present, iters, |k| map.get_each(k, &mut out)),
        Op::GetMiss => time_cycling(&keys.absent, iters, |k| map.get_each(k, &mut out)),
        Op::Update => time_cycling(&keys.present, iters, |k| map.insert_each(k, &new_value)),
        Op::Mix90 | Op::Mix50 => {
            let every = op.write_every().expect("a mix");
            time_cycling(&keys.present, iters, |k| {
                map.mix_each(k, every, &new_value, &mut out)
            })
        }
        Op::Insert => time_batches(
            map,
            &keys.fresh,
            iters,
            |map, k| map.insert_each(k, &new_value),
            |map, k| map.remove_each(k),
        ),
        Op::Remove => time_batches(
            map,
            &keys.present[..keys.fresh.len()],
            iters,
            |map, k| map.remove_each(k),
            |map, k| map.insert_each(k, &new_value),
        ),
    }
}

/// The time `threads` threads take for `iters` operations in all of a mix with one write in
/// `write_every` (0: reads only) on `map`, each thread cycling through `keys` from its own
/// starting point.
pub fn time_threads<const K: usize, const V: usize, M: SharedBenchMap<K, V>>(
    map: &M,
    keys: &[[u8; K]],
    threads: usize,
    write_every: usize,
    iters: u64,
) -> Duration {
    let per_thread = iters.div_ceil(threads as u64);
    let new_value = value::<V>(u64::MAX);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let new_value = &new_value;
            scope.spawn(move || {
                let mut out = [0u8; V];
                let mut at = t * keys.len() / threads;
                for n in 0..per_thread {
                    let key = black_box(&keys[at]);
                    if write_every != 0 && n as usize % write_every == 0 {
                        map.insert(key, new_value);
                    } else {
                        black_box(map.get(key, &mut out));
                        // As in `get_each`: a value copied into a local that nothing reads
                        // may be optimized away for maps whose `get` inlines.
                        black_box(&out);
                    }
                    at = if at + 1 == keys.len() { 0 } else { at + 1 };
                }
            });
        }
    });
    start.elapsed()
}

/// `map` filled with `keys.present`.
pub fn filled<const K: usize, const V: usize, M: BenchMap<K, V>>(
    capacity: usize,
    keys: &Keys<K>,
) -> Option<M> {
    let mut map = M::with_capacity(capacity)?;
    for call in keys.present.chunks(CALL) {
        map.insert_each(call, &value(0));
    }
    Some(map)
}

/// Benchmarks each of `ops` on `map`, which holds `keys.present`.
pub fn bench_filled<const K: usize, const V: usize, M: BenchMap<K, V>>(
    group: &mut criterion::BenchmarkGroup<'_, WallTime>,
    map: &mut M,
    keys: &Keys<K>,
    ops: &[Op],
) {
    for &op in ops {
        group.bench_function(BenchmarkId::new(op.name(), M::NAME), |b| {
            b.iter_custom(|iters| time_op(map, keys, op, iters))
        });
    }
}

/// For each of `ops`, `other`'s time over `ours`' on the same keys, measured together (see
/// [`paired`]): ratio benchmarks with ids `OP/OTHER`. Both maps hold `keys.present`.
pub fn bench_ratios<const K: usize, const V: usize, O, T>(
    group: &mut criterion::BenchmarkGroup<'_, Ratio>,
    ours: &mut O,
    other: &mut T,
    keys: &Keys<K>,
    ops: &[Op],
) where
    O: BenchMap<K, V>,
    T: BenchMap<K, V>,
{
    let mut maps = (other, ours);
    for &op in ops {
        let mut balance = Balance::default();
        group.bench_function(BenchmarkId::new(op.name(), T::NAME), |b| {
            b.iter_custom(|iters| {
                paired(
                    iters,
                    &mut maps,
                    &mut balance,
                    |(other, _), n| time_op(&mut **other, keys, op, n),
                    |(_, ours), n| time_op(&mut **ours, keys, op, n),
                )
            })
        });
    }
}

/// The criterion group name of `family` for keys and values of these lengths in `table`:
/// `core-16x64-4k-50` (no characters that criterion rewrites in directory names).
pub fn group_name(family: &str, (key_len, value_len): (usize, usize), table: Table) -> String {
    format!(
        "{family}-{key_len}x{value_len}-{}-{}",
        table.size_label(),
        table.load
    )
}

/// The environment variable that limits the benches to some tables: comma-separated parts of
/// their labels (`KxV-SIZE-LOAD`, as in `64x1024`, `16x64-4k` or `8x8-1m-90`). Criterion's own
/// filter still selects benchmarks, but every table would be filled first; this skips the
/// others.
pub const TABLES_VARIABLE: &str = "BENCH_TABLES";

/// Whether the benches measure `table` with keys and values of `sizes` (see
/// [`TABLES_VARIABLE`]).
pub fn selected(sizes: (usize, usize), table: Table) -> bool {
    let Some(wanted) = std::env::var_os(TABLES_VARIABLE) else {
        return true;
    };
    let label = group_name("", sizes, table);
    wanted
        .to_string_lossy()
        .split(',')
        .any(|part| label.contains(part.trim()))
}

/// The criterion settings of the benches: short warm-ups and measurements (they
/// run hundreds of benchmarks), and no criterion plots, which take longer than the measurements
/// (`benches/report.py` draws the ones that matter).
pub fn criterion_config(warm_up: Duration, measurement: Duration) -> criterion::Criterion {
    criterion::Criterion::default()
        .without_plots()
        .warm_up_time(warm_up)
        .measurement_time(measurement)
        .sample_size(10)
}

/// The folder criterion saves its results in.
pub fn criterion_home() -> PathBuf {
    std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target =
                std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| "target".into(), PathBuf::from);
            target.join("criterion")
        })
}

/// The mean time per iteration criterion saved for `group/id`, in ns.
pub fn estimate(group: &str, id: &str) -> Option<f64> {
    saved_statistic(group, id, "mean")
}

/// The point estimate of `statistic` (`mean`, `median`, ...) criterion saved for `group/id`.
fn saved_statistic(group: &str, id: &str, statistic: &str) -> Option<f64> {
    let path = criterion_home()
        .join(group)
        .join(id)
        .join("new/estimates.json");
    let json = std::fs::read_to_string(path).ok()?;
    let entry = &json[json.find(&format!("\"{statistic}\""))?..];
    let at = entry.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    entry[at..].split([',', '}']).next()?.trim().parse().ok()
}

/// Whether criterion runs the benches for real (not `--test` or `--list`), so that estimates
/// are fresh and ratios worth printing.
pub fn measuring() -> bool {
    !std::env::args().any(|arg| arg == "--test" || arg == "--list")
}

/// The key/value sizes, as `(K, V)`, in the order the benches run them.
pub const SIZES: [(usize, usize); 3] = [(8, 8), (16, 64), (64, 1024)];

/// A criterion measurement whose value is a ratio of two times measured together (see the
/// module docs): a sample of `iters` iterations is worth `iters` times its ratio, so criterion's
/// time per iteration is the ratio itself. Only `iter_custom` can produce it.
pub struct Ratio;

impl Measurement for Ratio {
    type Intermediate = ();
    type Value = f64;
    fn start(&self) {}
    fn end(&self, (): ()) -> f64 {
        panic!("a ratio is measured with iter_custom and `paired`, not timed by criterion")
    }
    fn add(&self, a: &f64, b: &f64) -> f64 {
        a + b
    }
    fn zero(&self) -> f64 {
        0.0
    }
    fn to_f64(&self, value: &f64) -> f64 {
        *value
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &RatioFormatter
    }
}

/// Prints ratios as they are, with an `x`.
struct RatioFormatter;

impl ValueFormatter for RatioFormatter {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "x"
    }
    fn scale_throughputs(
        &self,
        _typical: f64,
        _: &Throughput,
        _values: &mut [f64],
    ) -> &'static str {
        "x"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "x"
    }
}

/// How a ratio benchmark divides a sample between its two sides (see [`paired`]): the last
/// ratio it measured, so that each side runs about as long as the other.
pub struct Balance {
    a_per_b: f64,
}

impl Default for Balance {
    /// Before the first sample: equal operation counts.
    fn default() -> Balance {
        Balance { a_per_b: 1.0 }
    }
}

/// The most operations one side of a sample runs for each of the other's.
const MAX_BALANCE: f64 = 10_000.0;

/// One sample of a ratio benchmark: `a`'s time per operation over `b`'s, times `iters` (see
/// [`Ratio`]). Both get `state`. The slower side (as `balance` last saw them) runs `iters`
/// operations and the faster one as many more as makes their times about equal, so neither
/// side's measurement is dominated by the caches the other one left cold; `a`'s share is
/// timed in two halves, before and after `b`'s, so drift slower than a sample cancels.
pub fn paired<S: ?Sized>(
    iters: u64,
    state: &mut S,
    balance: &mut Balance,
    mut a: impl FnMut(&mut S, u64) -> Duration,
    mut b: impl FnMut(&mut S, u64) -> Duration,
) -> f64 {
    let scale = |by: f64| (iters as f64 * by.clamp(1.0, MAX_BALANCE)).round() as u64;
    let (a_ops, b_ops) = (scale(1.0 / balance.a_per_b), scale(balance.a_per_b));
    let half = a_ops / 2;
    let mut a_time = a(state, half);
    let b_time = b(state, b_ops);
    a_time += a(state, a_ops - half);
    let per_op = |time: Duration, ops: u64| time.as_secs_f64().max(1e-12) / ops.max(1) as f64;
    let a_per_b = per_op(a_time, a_ops) / per_op(b_time, b_ops);
    if a_per_b.is_finite() && a_per_b > 0.0 {
        balance.a_per_b = a_per_b;
    }
    a_per_b * iters as f64
}

/// The criterion settings of ratio benchmarks: as [`criterion_config`], with 20 samples of
/// equal length (criterion's median is then the median of 20 paired ratios).
pub fn ratio_config(warm_up: Duration, measurement: Duration) -> criterion::Criterion<Ratio> {
    criterion::Criterion::default()
        .with_measurement(Ratio)
        .without_plots()
        .warm_up_time(warm_up)
        .measurement_time(measurement)
        .sample_size(20)
}

/// A bench's `main`: runs `benches` with criterion configured from the command line, timings
/// warmed up for `warm_up` and measured for `timing`, ratios measured for `ratio`; prints
/// criterion's summaries; then, when the run measured (see [`measuring`]), calls `report`.
pub fn run(
    warm_up: Duration,
    timing: Duration,
    ratio: Duration,
    benches: impl FnOnce(&mut criterion::Criterion, &mut criterion::Criterion<Ratio>),
    report: impl FnOnce(),
) {
    let mut timings = criterion_config(warm_up, timing).configure_from_args();
    let mut ratios = ratio_config(warm_up, ratio).configure_from_args();
    benches(&mut timings, &mut ratios);
    timings.final_summary();
    ratios.final_summary();
    if measuring() {
        report();
    }
}

/// The median ratio criterion saved for ratio benchmark `group/id`.
pub fn ratio_estimate(group: &str, id: &str) -> Option<f64> {
    saved_statistic(group, id, "median")
}
