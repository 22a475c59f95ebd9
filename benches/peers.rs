//! This crate's map against the maps a user would pick instead of it, on the workloads and
//! tables of `benches/core.rs`, in the same run:
//!
//! - `heapless::FnvIndexMap` (the no_std, fixed-capacity peer) at its largest practical size,
//!   2^12 entries, boxed;
//! - `dashmap` (the concurrent in-process peer) with foldhash at a fixed seed, from one thread,
//!   and from two threads on reads, 90/10 and 50/50 read/update mixes (`threads2-*` groups,
//!   against this crate's map shared by two threads);
//! - LMDB through `heed` (the cross-process peer people use): `lmdb` opens one transaction per
//!   operation (a read transaction per get, a committed write transaction per put or delete);
//!   `lmdb-batched` one per call of up to 60 operations. Its files live in `/dev/shm` (tmpfs,
//!   where this crate's maps live too), so commits cost no disk flushes: this measures LMDB's
//!   own work, the most favourable case for it.
//!
//! Each table's timings are followed by ratio benchmarks, `ratio-peers-*` and `ratio-threads2-*`
//! (a peer's time over this crate's, both timed in every sample; see `support/mod.rs`). After a
//! full run those ratios, and the targets of the benchmarks issue, are printed. One family:
//! `cargo bench --bench peers -- peers-16x64-4k` (which also matches its ratio group).

mod support;

use criterion::{BenchmarkId, Criterion, SamplingMode};
use foldhash::fast::FixedState;
use heed::types::Bytes;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::{
    Balance, BenchMap, Keys, Op, Ours, Ratio, SIZES, SharedBenchMap, Table, bench_filled,
    bench_ratios, estimate, filled, group_name, paired, ratio_estimate, selected, time_threads,
};

/// The capacity of the heapless map: the largest the benches use that it comes in practically
/// (it is one inline array; at 2^20 entries of 1 KiB it would be a gigabyte on the stack).
const HEAPLESS_CAPACITY: usize = 1 << 12;

struct Heapless<const K: usize, const V: usize>(
    Box<heapless::index_map::FnvIndexMap<[u8; K], [u8; V], HEAPLESS_CAPACITY>>,
);

impl<const K: usize, const V: usize> BenchMap<K, V> for Heapless<K, V> {
    const NAME: &'static str = "heapless";
    fn with_capacity(capacity: usize) -> Option<Self> {
        (capacity <= HEAPLESS_CAPACITY).then(|| Heapless(Box::default()))
    }
    #[inline]
    fn get(&self, key: &[u8; K], out: &mut [u8; V]) -> bool {
        self.0.get(key).map(|v| *out = *v).is_some()
    }
    #[inline]
    fn insert(&mut self, key: &[u8; K], value: &[u8; V]) {
        self.0.insert(*key, *value).expect("the table has room");
    }
    #[inline]
    fn remove(&mut self, key: &[u8; K]) -> bool {
        self.0.swap_remove(key).is_some()
    }
}

struct Dash<const K: usize, const V: usize>(dashmap::DashMap<[u8; K], [u8; V], FixedState>);

impl<const K: usize, const V: usize> SharedBenchMap<K, V> for Dash<K, V> {
    const NAME: &'static str = "dashmap";
    #[inline]
    fn get(&self, key: &[u8; K], out: &mut [u8; V]) -> bool {
        self.0.get(key).map(|v| *out = *v).is_some()
    }
    #[inline]
    fn insert(&self, key: &[u8; K], value: &[u8; V]) {
        self.0.insert(*key, *value);
    }
}

impl<const K: usize, const V: usize> BenchMap<K, V> for Dash<K, V> {
    const NAME: &'static str = "dashmap";
    fn with_capacity(capacity: usize) -> Option<Self> {
        Some(Dash(dashmap::DashMap::with_capacity_and_hasher(
            capacity,
            FixedState::with_seed(0),
        )))
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
        self.0.remove(key).is_some()
    }
}

/// An LMDB environment in a folder of its own, removed on drop. `BATCHED`: one transaction per
/// call of the `*_each` methods instead of one per operation.
struct Lmdb<const BATCHED: bool> {
    /// Declared before `dir`: closed before the folder is removed.
    env: heed::Env,
    db: heed::Database<Bytes, Bytes>,
    dir: PathBuf,
}

impl<const BATCHED: bool> Lmdb<BATCHED> {
    fn new(capacity: usize, key_len: usize, value_len: usize) -> heed::Result<Self> {
        static OPENED: AtomicUsize = AtomicUsize::new(0);
        let base = ["/dev/shm".into(), std::env::temp_dir()]
            .into_iter()
            .find(|dir: &PathBuf| dir.is_dir())
            .expect("a temporary folder");
        let dir = base.join(format!(
            "shared-hashmap-bench-lmdb-{}-{}",
            std::process::id(),
            OPENED.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        // Room for every entry twice over (pages are never full, and copy-on-write keeps old
        // ones until a commit), in whole mebibytes (a multiple of any page size).
        let map_size = (((capacity * (key_len + value_len + 64) * 2) >> 20) + 16) << 20;
        // SAFETY: the folder is new and this process's own: no other environment maps it.
        let env = unsafe {
            heed::EnvOpenOptions::new()
                .map_size(map_size)
                .max_dbs(1)
                .open(&dir)?
        };
        let mut txn = env.write_txn()?;
        let db = env.create_database(&mut txn, None)?;
        txn.commit()?;
        Ok(Lmdb { env, db, dir })
    }

    fn get_in(&self, txn: &heed::RoTxn<'_>, key: &[u8], out: &mut [u8]) -> bool {
        match self.db.get(txn, key).expect("get") {
            Some(value) => {
                out.copy_from_slice(value);
                true
            }
            None => false,
        }
    }

    /// Runs `body` in one write transaction and commits it.
    fn write<R>(&self, body: impl FnOnce(&mut heed::RwTxn<'_>) -> R) -> R {
        let mut txn = self.env.write_txn().expect("a write transaction");
        let result = body(&mut txn);
        txn.commit().expect("commit");
        result
    }
}

impl<const BATCHED: bool> Drop for Lmdb<BATCHED> {
    fn drop(&mut self) {
        // The environment closes when its last handle goes; ours is the only one.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl<const K: usize, const V: usize, const BATCHED: bool> BenchMap<K, V> for Lmdb<BATCHED> {
    const NAME: &'static str = if BATCHED { "lmdb-batched" } else { "lmdb" };
    fn with_capacity(capacity: usize) -> Option<Self> {
        Some(Lmdb::new(capacity, K, V).expect("an LMDB environment"))
    }
    fn get(&self, key: &[u8; K], out: &mut [u8; V]) -> bool {
        let txn = self.env.read_txn().expect("a read transaction");
        self.get_in(&txn, key, out)
    }
    fn insert(&mut self, key: &[u8; K], value: &[u8; V]) {
        self.write(|txn| self.db.put(txn, key, value).expect("put"));
    }
    fn remove(&mut self, key: &[u8; K]) -> bool {
        self.write(|txn| self.db.delete(txn, key).expect("delete"))
    }
    fn get_each(&mut self, keys: &[[u8; K]], out: &mut [u8; V]) -> usize {
        let txn = BATCHED.then(|| self.env.read_txn().expect("a read transaction"));
        let mut found = 0;
        for key in keys {
            found += usize::from(match &txn {
                Some(txn) => self.get_in(txn, key, out),
                None => BenchMap::get(self, key, out),
            });
        }
        found
    }
    fn insert_each(&mut self, keys: &[[u8; K]], value: &[u8; V]) -> usize {
        if !BATCHED {
            keys.iter()
                .for_each(|key| BenchMap::insert(self, key, value));
            return keys.len();
        }
        self.write(|txn| {
            for key in keys {
                self.db.put(txn, key, value).expect("put");
            }
        });
        keys.len()
    }
    fn remove_each(&mut self, keys: &[[u8; K]]) -> usize {
        if !BATCHED {
            return keys
                .iter()
                .map(|key| usize::from(BenchMap::<K, V>::remove(self, key)))
                .sum();
        }
        self.write(|txn| {
            keys.iter()
                .map(|key| usize::from(self.db.delete(txn, key).expect("delete")))
                .sum()
        })
    }
    fn mix_each(
        &mut self,
        keys: &[[u8; K]],
        write_every: usize,
        value: &[u8; V],
        out: &mut [u8; V],
    ) -> usize {
        if !BATCHED {
            let mut found = 0;
            for (n, key) in keys.iter().enumerate() {
                if n % write_every == 0 {
                    BenchMap::insert(self, key, value);
                } else {
                    found += usize::from(BenchMap::get(self, key, out));
                }
            }
            return found;
        }
        self.write(|txn| {
            let mut found = 0;
            for (n, key) in keys.iter().enumerate() {
                if n % write_every == 0 {
                    self.db.put(txn, key, value).expect("put");
                } else {
                    found += usize::from(self.get_in(txn, key, out));
                }
            }
            found
        })
    }
}

/// The two-thread workloads: reads only, and the two mixes.
const THREADED: [Op; 3] = [Op::GetHit, Op::Mix90, Op::Mix50];

/// Every workload on every table of one key/value size, for every peer; then the two-thread
/// workloads for the maps that can be shared; then the peers' times over this crate's,
/// measured together.
fn peers_size<const K: usize, const V: usize>(c: &mut Criterion, ratios: &mut Criterion<Ratio>) {
    for table in Table::all().filter(|&table| selected((K, V), table)) {
        let keys = Keys::<K>::new(table);
        let mut ours: Ours = filled::<K, V, _>(table.capacity, &keys).expect("a table");
        let mut heapless: Option<Heapless<K, V>> = filled(table.capacity, &keys);
        let mut dash: Dash<K, V> = filled(table.capacity, &keys).expect("a table");
        let mut lmdb: Lmdb<false> = filled::<K, V, _>(table.capacity, &keys).expect("a table");
        let mut batched: Lmdb<true> = filled::<K, V, _>(table.capacity, &keys).expect("a table");

        let mut group = c.benchmark_group(group_name("peers", (K, V), table));
        bench_filled::<K, V, _>(&mut group, &mut ours, &keys, &Op::ALL);
        if let Some(heapless) = &mut heapless {
            bench_filled::<K, V, _>(&mut group, heapless, &keys, &Op::ALL);
        }
        bench_filled::<K, V, _>(&mut group, &mut dash, &keys, &Op::ALL);
        bench_filled::<K, V, _>(&mut group, &mut lmdb, &keys, &Op::ALL);
        bench_filled::<K, V, _>(&mut group, &mut batched, &keys, &Op::ALL);
        group.finish();

        let mut group = c.benchmark_group(group_name("threads2", (K, V), table));
        bench_threads::<K, V, _>(&mut group, &ours, &keys);
        bench_threads::<K, V, _>(&mut group, &dash, &keys);
        group.finish();

        let mut group = ratios.benchmark_group(group_name("ratio-peers", (K, V), table));
        group.sampling_mode(SamplingMode::Flat);
        if let Some(heapless) = &mut heapless {
            bench_ratios::<K, V, _, _>(&mut group, &mut ours, heapless, &keys, &Op::ALL);
        }
        bench_ratios::<K, V, _, _>(&mut group, &mut ours, &mut dash, &keys, &Op::ALL);
        bench_ratios::<K, V, _, _>(&mut group, &mut ours, &mut lmdb, &keys, &Op::ALL);
        bench_ratios::<K, V, _, _>(&mut group, &mut ours, &mut batched, &keys, &Op::ALL);
        group.finish();

        let mut group = ratios.benchmark_group(group_name("ratio-threads2", (K, V), table));
        group.sampling_mode(SamplingMode::Flat);
        for op in THREADED {
            let every = op.write_every().unwrap_or(0);
            let mut balance = Balance::default();
            group.bench_function(BenchmarkId::new(op.name(), "dashmap"), |b| {
                b.iter_custom(|iters| {
                    paired(
                        iters,
                        &mut (),
                        &mut balance,
                        |(), n| time_threads::<K, V, _>(&dash, &keys.present, 2, every, n),
                        |(), n| time_threads::<K, V, _>(&ours, &keys.present, 2, every, n),
                    )
                })
            });
        }
        group.finish();
    }
}

/// The two-thread workloads on `map`, which holds `keys.present`.
fn bench_threads<const K: usize, const V: usize, M: SharedBenchMap<K, V>>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    map: &M,
    keys: &Keys<K>,
) {
    for op in THREADED {
        let every = op.write_every().unwrap_or(0);
        group.bench_function(BenchmarkId::new(op.name(), M::NAME), |b| {
            b.iter_custom(|iters| time_threads(map, &keys.present, 2, every, iters))
        });
    }
}

fn peers(c: &mut Criterion, ratios: &mut Criterion<Ratio>) {
    peers_size::<8, 8>(c, ratios);
    peers_size::<16, 64>(c, ratios);
    peers_size::<64, 1024>(c, ratios);
}

/// The benchmarks issue's target for `peer time / our time` on `op`, where it sets one.
fn target(peer: &str, op: Op) -> Option<f64> {
    match (peer, op) {
        ("heapless", _) => Some(1.0),
        ("lmdb", Op::GetHit | Op::GetMiss) => Some(5.0),
        ("lmdb", Op::Insert | Op::Update) => Some(100.0),
        _ => None,
    }
}

/// Prints ns/op of every peer and how many times this crate's time it takes (above 1.00: this
/// crate is faster; from the ratio benchmarks, which measure both together), marking with `!`
/// each ratio under its target.
fn print_ratios() {
    const PEERS: [&str; 4] = ["heapless", "dashmap", "lmdb", "lmdb-batched"];
    println!("\npeer's time / shared-hashmap's time, measured together (above 1.00:");
    println!("shared-hashmap is faster; `!`: under the benchmarks issue's target)");
    print!("{:<24} {:<10} {:>8}", "table", "workload", "ours ns");
    for peer in PEERS {
        print!(" {:>14}", format!("{peer} ns / x"));
    }
    println!();
    let mut missed = 0;
    let mut judge = |ratio: f64, target: Option<f64>| {
        let under = target.is_some_and(|t| ratio < t);
        missed += usize::from(under);
        format!("{ratio:.2}{}", if under { "!" } else { "" })
    };
    for (k, v) in SIZES {
        for table in Table::all() {
            let group = group_name("peers", (k, v), table);
            let ratio_group = group_name("ratio-peers", (k, v), table);
            for op in Op::ALL {
                let id = |map: &str| format!("{}/{map}", op.name());
                let Some(ours) = estimate(&group, &id("shared-hashmap")) else {
                    continue;
                };
                print!("{group:<24} {:<10} {ours:>8.1}", op.name());
                for peer in PEERS {
                    let cell = match (
                        estimate(&group, &id(peer)),
                        ratio_estimate(&ratio_group, &id(peer)),
                    ) {
                        (Some(theirs), Some(ratio)) => {
                            format!("{theirs:.0} / {}", judge(ratio, target(peer, op)))
                        }
                        _ => "-".into(),
                    };
                    print!(" {cell:>14}");
                }
                println!();
            }
            let group = group_name("threads2", (k, v), table);
            let ratio_group = group_name("ratio-threads2", (k, v), table);
            for op in THREADED {
                let id = |map: &str| format!("{}/{map}", op.name());
                let (Some(ours), Some(dash), Some(ratio)) = (
                    estimate(&group, &id("shared-hashmap")),
                    estimate(&group, &id("dashmap")),
                    ratio_estimate(&ratio_group, &id("dashmap")),
                ) else {
                    continue;
                };
                // Target: with two threads on the 90/10 mix, at least as fast as dashmap.
                let target = (op == Op::Mix90).then_some(1.0);
                println!(
                    "{group:<24} {:<10} {ours:>8.1} two threads; dashmap {dash:.1} ns: {}",
                    op.name(),
                    judge(ratio, target)
                );
            }
        }
    }
    println!("{missed} ratios under target");
}

fn main() {
    support::run(
        Duration::from_millis(200),
        Duration::from_millis(600),
        Duration::from_millis(800),
        peers,
        print_ratios,
    );
}
