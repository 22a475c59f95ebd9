//! One map in POSIX shared memory (through `shared-hashmap-posix`) used by 1, 2, ... N
//! processes at once: the aggregate throughput of all of them, and how it scales.
//!
//! Dimensions:
//! - processes: 1 to N, where N is `std::thread::available_parallelism()` or the
//!   `SHARED_HASHMAP_BENCH_PROCESSES` environment variable;
//! - workload: 100% reads (`get_*`), 90/10 (`mix_90_10_*`) and 50/50 (`mix_50_50_*`)
//!   read/update mixes, each on keys of its own per process (`*_distinct`, 256 keys each) and
//!   with every process on the same 64 hot keys (`*_hot`); `get_private`, the distinct reads
//!   from a private copy of the map in each process's own heap (the ceiling that the machine's
//!   caches and memory set, with nothing shared); `fetch_add` of one counter by every process
//!   (the worst contention); `len` called by every process.
//!
//! The map has 16-byte keys and 64-byte values (every get copies the value out), 2^16 entries
//! (more for N > 7), filled to 50% load before any process starts. A process's own keys are
//! few so that what it reads fits in one core's private caches: with more, reads measure how
//! the machine shares its last-level cache and memory between cores, the same for a private
//! map as for the shared one (on the 2-processor machines these benches were written on, two
//! processes reading 1024 keys each scaled between 1.2x and 2.0x from run to run, private or
//! shared alike). Each process is pinned to a processor of its own, so that it keeps its caches.
//!
//! Criterion ids are `processes/WORKLOAD/PROCESSES`; an iteration is one operation of any
//! process, so criterion's time per iteration is the inverse of the aggregate throughput
//! (`Throughput::Elements(1)`: it also prints operations per second). How many times one
//! process's throughput k processes reach is measured, not divided: in the ratio benchmarks
//! `processes-scaling/WORKLOAD/K`, rounds of one process and of k alternate within each sample
//! (see `support::paired`), since one process's speed drifts by tens of percent between
//! benchmarks seconds apart. After a full run, the aggregate operations per second per process
//! count, those ratios and the scaling efficiency (the ratio over k) are printed, with the
//! benchmarks issue's target: 2 processes read distinct keys at least 1.8x as fast as one.
//! `python3 benches/report.py` turns the same estimates into `benches/README.md` and
//! `benches/processes.svg`. One workload: `cargo bench --bench processes -- processes/get_distinct`.
//!
//! How a round is run: the bench re-executes its own binary N times (selected by the
//! `SHARED_HASHMAP_BENCH_CHILD` environment variable, stdout to null) once, when the first
//! benchmark starts; the children live until the bench ends. The parent coordinates them through
//! control keys in the measured map itself: it publishes a round (generation, workload, number
//! of active processes k, total operations) as one value under `ctl/go`; the children with an
//! id below k share the operations, each stores when it started and ended under `ctl/span/ID`
//! and adds 1 to `ctl/done`. A round's time is the span in which the children ran, from the
//! first start to the last end, read from `SystemTime` (the realtime clock, one for the whole
//! system, unlike `Instant`'s values, which cannot be compared across processes), bounded by
//! the parent's own time from publishing the round to seeing it done. The parent sleeps for half
//! the round so far between looks, and waiting children sleep (after a few milliseconds of short
//! sleeps, longer ones), so that neither takes the CPU that measuring ones need. A guard kills
//! and reaps the children and unlinks the segment when the bench ends or panics; a child whose
//! parent dies unlinks the segment and exits.

mod support;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use shared_hashmap_posix::{Layout, Options, RawMap, SharedHashMap};
use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{Balance, Ours, Ratio, estimate, key, paired, ratio_estimate, value};

/// Selects a child process; its value is `NAME ID` (the map's name, the child's index).
const CHILD_ENV: &str = "SHARED_HASHMAP_BENCH_CHILD";

/// Overrides the largest number of processes (default: the number of processors).
const PROCESSES_ENV: &str = "SHARED_HASHMAP_BENCH_PROCESSES";

/// Key length in bytes.
const K: usize = 16;

/// Value length in bytes.
const V: usize = 64;

/// Keys of its own each process works on in the `*_distinct` workloads.
const KEYS_PER_PROCESS: usize = 256;

/// Keys every process works on in the `*_hot` workloads.
const HOT_KEYS: usize = 64;

/// The smallest table: its control blocks are what `len` reads.
const MIN_CAPACITY: usize = 1 << 16;

/// The round a child runs (or [`QUIT`]): `[generation, workload, active processes, operations]`.
const GO: &[u8] = b"ctl/go";

/// How many children finished a round, in all rounds so far.
const DONE: &[u8] = b"ctl/done";

/// The counter of the `fetch_add` workload.
const COUNTER: &[u8] = b"counter";

/// The generation under [`GO`] that tells children to exit.
const QUIT: u64 = u64::MAX;

/// One thing every active process does, over and over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    /// Gets of the process's own keys.
    GetDistinct,
    /// The same gets from a private copy of the map in the process's own heap: the ceiling
    /// that the machine's caches and memory set for `GetDistinct`.
    GetPrivate,
    /// Gets of the hot keys every process uses.
    GetHot,
    /// Nine gets to one update, of the process's own keys.
    Mix90Distinct,
    /// Nine gets to one update, of the hot keys.
    Mix90Hot,
    /// One get to one update, of the process's own keys.
    Mix50Distinct,
    /// One get to one update, of the hot keys.
    Mix50Hot,
    /// `fetch_add(1)` of one counter every process adds to.
    FetchAdd,
    /// `len()`.
    Len,
}

impl Workload {
    /// Every workload, in report order (its index is its code in [`GO`]).
    const ALL: [Workload; 9] = [
        Workload::GetDistinct,
        Workload::GetPrivate,
        Workload::GetHot,
        Workload::Mix90Distinct,
        Workload::Mix90Hot,
        Workload::Mix50Distinct,
        Workload::Mix50Hot,
        Workload::FetchAdd,
        Workload::Len,
    ];

    /// The name in criterion ids and reports.
    fn name(self) -> &'static str {
        match self {
            Workload::GetDistinct => "get_distinct",
            Workload::GetPrivate => "get_private",
            Workload::GetHot => "get_hot",
            Workload::Mix90Distinct => "mix_90_10_distinct",
            Workload::Mix90Hot => "mix_90_10_hot",
            Workload::Mix50Distinct => "mix_50_50_distinct",
            Workload::Mix50Hot => "mix_50_50_hot",
            Workload::FetchAdd => "fetch_add",
            Workload::Len => "len",
        }
    }

    /// Its code in [`GO`].
    fn code(self) -> u64 {
        Workload::ALL
            .iter()
            .position(|&w| w == self)
            .expect("listed") as u64
    }

    /// The workload with code `code`.
    fn from_code(code: u64) -> Option<Workload> {
        Workload::ALL.get(usize::try_from(code).ok()?).copied()
    }
}

/// The `id`th of process `process`'s own keys.
fn own_key(process: usize, id: usize) -> [u8; K] {
    key((process * KEYS_PER_PROCESS + id) as u64)
}

/// The `id`th hot key.
fn hot_key(id: usize) -> [u8; K] {
    key((1 << 40) + id as u64)
}

/// The `id`th key that fills the table to half its capacity and is never used.
fn filler_key(id: usize) -> [u8; K] {
    key((1 << 41) + id as u64)
}

/// The key under which child `id` reports its round: `[generation, start ns, end ns, ops]`.
fn span_key(id: usize) -> Vec<u8> {
    format!("ctl/span/{id}").into_bytes()
}

/// `words` as little-endian bytes, for a value.
fn pack(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// The little-endian words of the value of `key` (empty if it is absent).
fn unpack(map: &RawMap<'_>, key: &[u8]) -> Vec<u64> {
    let mut out = [0u8; V];
    let len = map.get(key, &mut out).expect("a control key").unwrap_or(0);
    out[..len]
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
        .collect()
}

/// Nanoseconds since the Unix epoch on the realtime clock, which every process shares.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The largest number of processes to measure.
fn max_processes() -> usize {
    std::env::var(PROCESSES_ENV)
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .filter(|&n: &usize| n >= 1)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// The table's capacity for up to `processes` processes: [`MIN_CAPACITY`], or twice the keys.
fn capacity(processes: usize) -> usize {
    MIN_CAPACITY.max((2 * (processes * KEYS_PER_PROCESS + HOT_KEYS + 64)).next_power_of_two())
}

/// The map the benchmarks measure and the children that use it. Dropping it (also while a
/// panic unwinds) stops, kills and reaps the children, then unlinks the map's name.
struct Pool {
    /// Children in index order; their index is their id.
    children: Vec<Child>,
    /// Created with `unlink_on_drop`: dropped after `Drop::drop` has reaped the children.
    map: SharedHashMap,
    /// The last round's generation.
    generation: u64,
    /// Rounds' children that should have reported under [`DONE`] so far.
    done: u64,
}

impl Pool {
    /// A filled map shared with `processes` new children.
    fn new(processes: usize) -> Pool {
        let name = format!("shared-hashmap-bench-processes-{}", std::process::id());
        let layout = Layout::new(capacity(processes), K, V).expect("a valid layout");
        let map = SharedHashMap::create_with(&name, layout, &options())
            .expect("a new shared map")
            .unlink_on_drop();
        let mut pool = Pool {
            children: Vec::with_capacity(processes),
            map,
            generation: 0,
            done: 0,
        };
        pool.fill(processes);
        let exe = std::env::current_exe().expect("the bench's own path");
        for id in 0..processes {
            let child = Command::new(&exe)
                .env(CHILD_ENV, format!("{name} {id}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("a child process");
            pool.children.push(child);
        }
        pool
    }

    /// Inserts every process's keys, the hot keys, the counter and the control keys, then
    /// filler keys up to half the capacity.
    fn fill(&self, processes: usize) {
        let map = &self.map;
        let mut n = 0;
        let mut put = |k: &[u8], v: &[u8]| {
            map.insert(k, v).expect("room in the table");
            n += 1;
        };
        for p in 0..processes {
            for i in 0..KEYS_PER_PROCESS {
                put(
                    &own_key(p, i),
                    &value::<V>((p * KEYS_PER_PROCESS + i) as u64),
                );
            }
        }
        for i in 0..HOT_KEYS {
            put(&hot_key(i), &value::<V>(i as u64));
        }
        put(COUNTER, &0u64.to_le_bytes());
        put(DONE, &0u64.to_le_bytes());
        put(GO, &pack(&[0, 0, 0, 0]));
        for id in 0..processes {
            put(&span_key(id), &pack(&[0, 0, 0, 0]));
        }
        let target = self.map.capacity() / 2;
        for i in 0..target.saturating_sub(n) {
            map.insert(&filler_key(i), &value::<V>(i as u64))
                .expect("room in the table");
        }
    }

    /// Runs `ops` operations of `workload` shared by the first `active` children; the span in
    /// which they ran.
    fn round(&mut self, workload: Workload, active: usize, ops: u64) -> Duration {
        assert!(active >= 1 && active <= self.children.len());
        self.generation += 1;
        self.done += active as u64;
        let generation = self.generation;
        let published = Instant::now();
        self.map
            .insert(
                GO,
                &pack(&[generation, workload.code(), active as u64, ops]),
            )
            .expect("publishing a round");
        loop {
            if unpack(&self.map, DONE).first() >= Some(&self.done) {
                break;
            }
            self.check_children(published);
            // Sleep for half the round so far: the parent wakes a dozen times a round, so it
            // hardly takes a processor from the children (on a machine with as many processors
            // as children, it shares one with a child, and the round lasts until the slowest
            // child ends). Seeing the end late costs only wall time: the round's time is the
            // children's own span.
            std::thread::sleep(
                (published.elapsed() / 2)
                    .clamp(Duration::from_micros(50), Duration::from_millis(20)),
            );
        }
        let wall = published.elapsed();
        let (mut first, mut last) = (u64::MAX, 0);
        for id in 0..active {
            let span = unpack(&self.map, &span_key(id));
            assert_eq!(span.len(), 4, "child {id}'s report");
            assert_eq!(span[0], generation, "child {id} reported another round");
            if span[3] > 0 {
                first = first.min(span[1]);
                last = last.max(span[2]);
            }
        }
        // The children ran inside the parent's window; a span outside it means the realtime
        // clock was stepped during the round, and the parent's time is the better measure.
        match Duration::from_nanos(last.saturating_sub(first)) {
            span if span > Duration::ZERO && span <= wall => span,
            _ => wall,
        }
    }

    /// Panics if a child has exited, or if a round has lasted ten minutes.
    fn check_children(&mut self, published: Instant) {
        for (id, child) in self.children.iter_mut().enumerate() {
            if let Some(status) = child.try_wait().expect("a child's status") {
                panic!("child {id} exited during a round: {status}");
            }
        }
        assert!(
            published.elapsed() < Duration::from_secs(600),
            "a round did not finish in ten minutes"
        );
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Ask the children to exit, give them a moment, then kill whichever has not.
        let _ = self.map.insert(GO, &pack(&[QUIT, 0, 0, 0]));
        let deadline = Instant::now() + Duration::from_secs(1);
        for child in &mut self.children {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The options the parent and the children open the map with: waits for locks of up to a
/// minute, since with more processes than processors a lock holder may be descheduled.
fn options() -> Options {
    Options::new().timeout(Duration::from_secs(60))
}

/// A child process: runs the rounds published under [`GO`] until told to quit, or until its
/// parent is gone (then it unlinks the map's name, which the parent can no longer do).
fn child(spec: &str) {
    let (name, id) = spec.split_once(' ').expect("`NAME ID`");
    let id: usize = id.parse().expect("a child id");
    let parent = std::os::unix::process::parent_id();
    pin_to_own_processor(id);
    let map = SharedHashMap::open_with(name, &options()).expect("the parent's map");
    let mut state = ChildState {
        own: (0..KEYS_PER_PROCESS).map(|i| own_key(id, i)).collect(),
        private: private_copy(&map, id),
        hot: (0..HOT_KEYS).map(hot_key).collect(),
        own_at: 0,
        hot_at: id * 13 % HOT_KEYS,
        n: 0,
    };
    let mut seen = 0;
    let mut idle_since = Instant::now();
    loop {
        let go = unpack(&map, GO);
        let [generation, code, active, ops] = go[..] else {
            panic!("a malformed round: {go:?}");
        };
        if generation == QUIT {
            return;
        }
        if generation != seen {
            seen = generation;
            if id < active as usize {
                let workload = Workload::from_code(code).expect("a known workload");
                let share = ops / active + u64::from((id as u64) < ops % active);
                let start = now_ns();
                state.run(&map, workload, share);
                let end = now_ns();
                map.insert(&span_key(id), &pack(&[generation, start, end, share]))
                    .expect("a report");
                map.fetch_add(DONE, 1).expect("the done counter");
                idle_since = Instant::now();
            }
            continue;
        }
        if std::os::unix::process::parent_id() != parent {
            let _ = SharedHashMap::unlink(name);
            return;
        }
        // Short sleeps while rounds follow each other closely (criterion's samples), longer
        // ones while the parent analyses: neither takes a measuring process's CPU for long.
        let nap = if idle_since.elapsed() < Duration::from_millis(5) {
            Duration::from_micros(20)
        } else {
            Duration::from_micros(500)
        };
        std::thread::sleep(nap);
    }
}

/// Pins the calling process to one of the processors it may run on, child `id` to the
/// `id`th (modulo their number), so that each measuring process keeps one processor and its
/// caches: unpinned, the scheduler moves a lone process between processors, which on the
/// machines measured so far cost it up to half its throughput and made the one-process
/// baseline of the scaling ratios vary by as much between runs.
fn pin_to_own_processor(id: usize) {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
    let allowed = sched_getaffinity(None).expect("the processors this process may use");
    let processors: Vec<usize> = (0..CpuSet::MAX_CPU)
        .filter(|&cpu| allowed.is_set(cpu))
        .collect();
    let mut own = CpuSet::new();
    own.set(processors[id % processors.len()]);
    sched_setaffinity(None, &own).expect("pinning a child to a processor");
}

/// A map in this process's heap like `shared`: its layout, process `id`'s own keys with their
/// values, and filler keys to the same load.
fn private_copy(shared: &RawMap<'_>, id: usize) -> Ours {
    let layout = shared.layout();
    let private = Ours::new(
        layout.capacity(),
        layout.max_key_len(),
        layout.max_value_len(),
    );
    let map = private.raw();
    for i in 0..KEYS_PER_PROCESS {
        let mut out = [0u8; V];
        let len = shared
            .get(&own_key(id, i), &mut out)
            .expect("a get")
            .expect("the parent inserted every own key");
        map.insert(&own_key(id, i), &out[..len]).expect("room");
    }
    for i in 0..shared.len().saturating_sub(KEYS_PER_PROCESS) {
        map.insert(&filler_key(i), &value::<V>(i as u64))
            .expect("room");
    }
    private
}

/// What a child keeps between rounds: its keys, where it is in them, how many mix operations
/// it has done (so that every round continues the mix where the last one stopped).
struct ChildState {
    /// The process's own keys, in the order it visits them.
    own: Vec<[u8; K]>,
    /// A map in this process's heap with the shared map's layout and load and the same own
    /// keys (see [`Workload::GetPrivate`]).
    private: Ours,
    /// The hot keys, the same in every process.
    hot: Vec<[u8; K]>,
    /// The next of `own` to use.
    own_at: usize,
    /// The next of `hot` to use (each process starts at a different one).
    hot_at: usize,
    /// Mix operations done so far: every `n % write_every == 0`th is an update.
    n: u64,
}

impl ChildState {
    /// Runs `ops` operations of `workload` on `map`.
    fn run(&mut self, map: &RawMap<'_>, workload: Workload, ops: u64) {
        let mut out = [0u8; V];
        let new_value = value::<V>(u64::MAX);
        let (keys, at) = match workload {
            Workload::GetHot | Workload::Mix90Hot | Workload::Mix50Hot => {
                (&self.hot, &mut self.hot_at)
            }
            _ => (&self.own, &mut self.own_at),
        };
        let mut next = || {
            let key = &keys[*at];
            *at = if *at + 1 == keys.len() { 0 } else { *at + 1 };
            black_box(key)
        };
        match workload {
            Workload::GetDistinct | Workload::GetHot => {
                for _ in 0..ops {
                    black_box(map.get(next(), &mut out).expect("get"));
                }
            }
            Workload::GetPrivate => {
                let private = self.private.raw();
                for _ in 0..ops {
                    black_box(private.get(next(), &mut out).expect("get"));
                }
            }
            Workload::Mix90Distinct
            | Workload::Mix90Hot
            | Workload::Mix50Distinct
            | Workload::Mix50Hot => {
                let every = match workload {
                    Workload::Mix90Distinct | Workload::Mix90Hot => 10,
                    _ => 2,
                };
                for _ in 0..ops {
                    if self.n % every == 0 {
                        map.insert(next(), &new_value).expect("insert");
                    } else {
                        black_box(map.get(next(), &mut out).expect("get"));
                    }
                    self.n += 1;
                }
            }
            Workload::FetchAdd => {
                for _ in 0..ops {
                    black_box(map.fetch_add(COUNTER, 1).expect("fetch_add"));
                }
            }
            Workload::Len => {
                for _ in 0..ops {
                    black_box(map.len());
                }
            }
        }
    }
}

/// Every workload with 1 to N processes, on one map and one set of children.
fn processes(c: &mut Criterion, ratios: &mut Criterion<Ratio>) {
    let max = max_processes();
    let mut pool: Option<Pool> = None;
    let mut group = c.benchmark_group("processes");
    group.throughput(Throughput::Elements(1));
    for workload in Workload::ALL {
        for active in 1..=max {
            group.bench_function(BenchmarkId::new(workload.name(), active), |b| {
                b.iter_custom(|ops| {
                    pool.get_or_insert_with(|| Pool::new(max))
                        .round(workload, active, ops)
                })
            });
        }
    }
    group.finish();
    // How many times one process's throughput k processes reach: rounds of one process and of
    // k alternate within each sample (see `support::paired`), so the machine's drift cancels.
    let mut group = ratios.benchmark_group(SCALING);
    group.sampling_mode(SamplingMode::Flat);
    for workload in Workload::ALL {
        for active in 2..=max {
            let mut balance = Balance::default();
            group.bench_function(BenchmarkId::new(workload.name(), active), |b| {
                b.iter_custom(|ops| {
                    // Operations by one process and by `active`: one's time per operation
                    // over theirs is their throughput as a multiple of one's.
                    paired(
                        ops,
                        pool.get_or_insert_with(|| Pool::new(max)),
                        &mut balance,
                        |pool, ops| pool.round(workload, 1, ops),
                        |pool, ops| pool.round(workload, active, ops),
                    )
                })
            });
        }
    }
    group.finish();
}

/// The group of the scaling ratios: `processes-scaling/WORKLOAD/PROCESSES`.
const SCALING: &str = "processes-scaling";

/// Prints, per workload and process count, the aggregate operations per second, the multiple
/// of one process's, and the scaling efficiency; then the target on distinct reads.
fn print_scaling() {
    let max = max_processes();
    let processors = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\naggregate throughput of 1 to {max} processes on one map ({K}-byte keys, {V}-byte \
         values, {processors} processors)"
    );
    println!(
        "{:<20} {:>5} {:>12} {:>10} {:>11}",
        "workload", "procs", "M ops/s", "x 1 proc", "efficiency"
    );
    let rate = |workload: Workload, k: usize| {
        estimate("processes", &format!("{}/{k}", workload.name())).map(|ns| 1e9 / ns)
    };
    let scaling = |workload: Workload, k: usize| match k {
        1 => Some(1.0),
        _ => ratio_estimate(SCALING, &format!("{}/{k}", workload.name())),
    };
    for workload in Workload::ALL {
        for k in 1..=max {
            let Some(ops) = rate(workload, k) else {
                continue;
            };
            let (times, efficiency) = match scaling(workload, k) {
                Some(times) => (
                    format!("{times:.2}"),
                    format!("{:.0}%", 100.0 * times / k as f64),
                ),
                None => ("-".into(), "-".into()),
            };
            println!(
                "{:<20} {k:>5} {:>12.2} {times:>10} {efficiency:>11}",
                workload.name(),
                ops / 1e6
            );
        }
    }
    match scaling(Workload::GetDistinct, 2) {
        Some(times) => println!(
            "target: 2 processes read distinct keys {times:.2}x as fast as one (target 1.80){}",
            if times < 1.8 { ": missed" } else { ": met" }
        ),
        None => println!("target: 2 processes on get_distinct not measured (N = {max})"),
    }
}

/// A child if [`CHILD_ENV`] says so; else the benchmarks, then the scaling table.
fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
        return;
    }
    support::run(
        Duration::from_millis(300),
        Duration::from_secs(1),
        Duration::from_secs(2),
        processes,
        print_scaling,
    );
}
