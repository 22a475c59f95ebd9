//! Processes SIGKILLed hundreds of times while others keep reading and writing. A victim runs a
//! fixed program of operations, one after another, and reports each operation it has completed
//! on its stdout; the parent kills it at a random instant or, every fourth kill, at a chosen
//! point: inside a write (stopped there by the `test-hooks` `inside_write` hook: lock held,
//! sequence odd, new entry written but not published) or inside `clear()` (waiting for a chunk
//! that another of its threads holds locked). After each kill, with the bystanders paused, the
//! parent checks that the victim died of SIGKILL (not of a panic), that every operation it
//! completed is intact, that the operation in flight left each key it touches with the old or
//! the new value (only the old one when killed inside the write), that every bystander key
//! holds the round its writer last acknowledged, and that `verify_exact` is clean and counts
//! exactly the entries that are there. Bystanders check every value they read and the duration
//! of every operation while victims come and go. Most victims must have completed writes before
//! being killed, and the dead victims' locks must have been taken over.
//!
//! Three programs: rewriting keys round after round (`writers_killed_...`; its odd keys hold
//! one-word values, which each rewrite replaces in place, its even keys 512-byte values, which
//! go through the chunk's spare slot), filling the map and clearing it
//! (`..._inside_clear_...`), and inserting and removing keys whose home chunks are full, so
//! that every insert probes past its home and raises overflow counters
//! (`..._inside_overflowing_inserts_...`). 800 kills in all (`SHM_CRASH_KILLS=N`: N kills in
//! the first test and N / 2 in each of the others, for quick runs).

#[path = "../common/mod.rs"]
mod common;

use common::{Rng, UniqueName, env_u64, role, spawn_child};
use shared_hashmap_posix::{
    Layout, Liveness, Options, ProcessLiveness, RawMap, SharedHashMap, VerifyReport, hash_bytes,
};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::num::NonZeroU32;
use std::os::unix::process::ExitStatusExt;
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Kills in the writers test; the clear and overflow tests get half as many each.
fn kills() -> u32 {
    std::env::var("SHM_CRASH_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400)
}

/// Every `STOPPED_EVERY`th kill lands inside a write or a clear (see [`Stop`]).
const STOPPED_EVERY: u32 = 4;

/// The longest any bystander operation may take. Waits are bounded by the handles' timeout
/// (5 s); this allows for a busy machine on top.
const OPERATION_BOUND: Duration = Duration::from_secs(8);

/// The longest a child may take to start, to reach the hook, to pause or to finish.
const CHILD_BOUND: Duration = Duration::from_secs(30);

const BYSTANDERS: u64 = 2;

/// The signal number of SIGKILL (9 on every POSIX system).
const SIGKILL: i32 = 9;

fn options() -> Options {
    Options::new().timeout(Duration::from_secs(5))
}

fn key(owner: u64, k: u64) -> [u8; 8] {
    (owner << 32 | k).to_le_bytes()
}

/// Bytes of a value: large, so that a writer killed while copying one is likely to be killed
/// in the middle of the copy (a test that kills writers must be able to catch a torn value).
const VALUE: usize = 512;

/// Whether the values of key `k` of `owner` are 8 bytes long: the writer victim's odd keys
/// (owner 1). On 64-bit targets that is one word, so its rewrites of them replace one word in
/// place (the map does that for a value of one word replacing one of the same length) while
/// its even keys' rewrites go through the chunk's spare slot.
fn one_word(owner: u64, k: u64) -> bool {
    owner == 1 && k % 2 == 1
}

/// A value derived from the owner, key and round, so that any mix of two values is detected:
/// 64 words, or for [`one_word`] keys one word of the three packed together.
fn value(owner: u64, k: u64, round: u64) -> Vec<u8> {
    if one_word(owner, k) {
        return (round << 24 | (k & 0xffff) << 8 | owner)
            .to_le_bytes()
            .to_vec();
    }
    let mut value = vec![0u8; VALUE];
    let id = owner << 32 | k;
    value[..8].copy_from_slice(&id.to_le_bytes());
    value[8..16].copy_from_slice(&round.to_le_bytes());
    for (i, word) in value[16..].chunks_exact_mut(8).enumerate() {
        let mixed = (id ^ round.rotate_left(17)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ (i as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        word.copy_from_slice(&mixed.to_le_bytes());
    }
    value
}

/// The round of a value written by `value(owner, k, _)`, after checking that it is whole.
fn round_of(bytes: &[u8], owner: u64, k: u64) -> u64 {
    let one_word = one_word(owner, k);
    assert_eq!(
        bytes.len(),
        if one_word { 8 } else { VALUE },
        "key {owner}/{k}: a value of {} bytes",
        bytes.len()
    );
    let round = if one_word {
        u64::from_le_bytes(bytes.try_into().unwrap()) >> 24
    } else {
        u64::from_le_bytes(bytes[8..16].try_into().unwrap())
    };
    assert!(
        bytes == value(owner, k, round),
        "key {owner}/{k}: a torn or foreign value (round {round})"
    );
    round
}

/// The round stored under `key`, checked whole; `None` if absent.
fn read_round(map: &RawMap<'_>, key: &[u8], owner: u64, k: u64) -> Option<u64> {
    map.get_into::<VALUE>(key)
        .unwrap()
        .map(|bytes| round_of(&bytes, owner, k))
}

/// A victim's program: operation `i` is a pure function of `i`, so a victim started at any `i`
/// carries on where the last one was killed, and the parent knows what each reported `i` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Program {
    /// Rewrites `WRITER_KEYS` keys in order, round after round.
    Writer,
    /// Inserts `CLEAR_KEYS` keys, then clears the map; round after round.
    Clear,
    /// Inserts key `1000 + n % 64` and removes key `1000 + (n + 32) % 64`, for n = 0, 1, ...;
    /// the keys' home chunks are full, so every insert overflows.
    Overflow,
}

/// One operation of a victim's program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// Insert `value(owner, k, round)` under `key`.
    Put {
        key: [u8; 8],
        k: u64,
        round: u64,
    },
    Remove {
        key: [u8; 8],
    },
    Clear,
}

const WRITER_KEYS: u64 = 64;
const CLEAR_KEYS: u64 = 200;
const OVERFLOW_KEYS: u64 = 64;

impl Program {
    fn from_env() -> Self {
        match std::env::var("PROGRAM").unwrap().as_str() {
            "writer" => Program::Writer,
            "clear" => Program::Clear,
            "overflow" => Program::Overflow,
            other => panic!("unknown program {other}"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Program::Writer => "writer",
            Program::Clear => "clear",
            Program::Overflow => "overflow",
        }
    }

    /// The owner number in the victim's values.
    fn owner(self) -> u64 {
        match self {
            Program::Writer => 1,
            Program::Clear => 2,
            Program::Overflow => 3,
        }
    }

    /// Every key the victim writes, with its number.
    fn keys(self) -> Vec<(u64, [u8; 8])> {
        match self {
            Program::Writer => (0..WRITER_KEYS).map(|k| (k, key(1, k))).collect(),
            Program::Clear => (0..CLEAR_KEYS).map(|k| (k, k.to_le_bytes())).collect(),
            Program::Overflow => (1000..1000 + OVERFLOW_KEYS)
                .map(|k| (k, k.to_le_bytes()))
                .collect(),
        }
    }

    /// Keys each bystander writes.
    fn bystander_keys(self) -> u64 {
        match self {
            Program::Writer => 64,
            Program::Clear | Program::Overflow => 16,
        }
    }

    /// Whether bystanders' entries may vanish (the victim clears the whole map).
    fn clears(self) -> bool {
        self == Program::Clear
    }

    fn op(self, i: u64) -> Op {
        match self {
            Program::Writer => {
                let k = i % WRITER_KEYS;
                Op::Put {
                    key: key(1, k),
                    k,
                    round: i / WRITER_KEYS + 1,
                }
            }
            Program::Clear => match i % (CLEAR_KEYS + 1) {
                CLEAR_KEYS => Op::Clear,
                k => Op::Put {
                    key: k.to_le_bytes(),
                    k,
                    round: i / (CLEAR_KEYS + 1),
                },
            },
            Program::Overflow => {
                let n = i / 2;
                if i % 2 == 0 {
                    let k = 1000 + n % OVERFLOW_KEYS;
                    Op::Put {
                        key: k.to_le_bytes(),
                        k,
                        round: n,
                    }
                } else {
                    let k = 1000 + (n + OVERFLOW_KEYS / 2) % OVERFLOW_KEYS;
                    Op::Remove {
                        key: k.to_le_bytes(),
                    }
                }
            }
        }
    }
}

/// The victim's keys as the parent knows them: each key's round, from the completed
/// operations the victims reported.
#[derive(Default)]
struct Model(HashMap<[u8; 8], u64>);

impl Model {
    fn apply(&mut self, op: Op) {
        match op {
            Op::Put { key, round, .. } => {
                self.0.insert(key, round);
            }
            Op::Remove { key } => {
                self.0.remove(&key);
            }
            Op::Clear => self.0.clear(),
        }
    }
}

/// What `op`, if it took effect, left under `key`: `None` if it does not touch `key`.
fn effect(op: Op, key: &[u8; 8]) -> Option<Option<u64>> {
    match op {
        Op::Put { key: k, round, .. } if k == *key => Some(Some(round)),
        Op::Remove { key: k } if k == *key => Some(None),
        Op::Clear => Some(None),
        _ => None,
    }
}

/// The platform's liveness, counting the owners it found dead (lock takeovers) and, in a
/// victim, stopping the process inside the write of operation `stop_at` (never if it is
/// `u64::MAX`) until it is killed.
struct Observed {
    inner: ProcessLiveness,
    dead: AtomicU64,
    current: AtomicU64,
    stop_at: u64,
    /// Whether the victim stops in its first wait in operation `stop_at` (a clear), rather
    /// than inside its write.
    stops_waiting: bool,
}

impl Observed {
    fn new(inner: &ProcessLiveness, stop_at: u64, stops_waiting: bool) -> Self {
        Observed {
            inner: inner.clone(),
            dead: AtomicU64::new(0),
            current: AtomicU64::new(0),
            stop_at,
            stops_waiting,
        }
    }

    fn dead(&self) -> u64 {
        self.dead.load(Ordering::Relaxed)
    }
}

impl Liveness for Observed {
    fn owner_id(&self) -> NonZeroU32 {
        self.inner.owner_id()
    }

    fn is_alive(&self, owner: u32) -> bool {
        let alive = self.inner.is_alive(owner);
        if !alive {
            self.dead.fetch_add(1, Ordering::Relaxed);
        }
        alive
    }

    fn wait(&self, attempt: u32) -> bool {
        if self.stops_waiting && self.current.load(Ordering::Relaxed) == self.stop_at {
            // A victim stopping inside a clear: the clear waits for a locked chunk.
            println!("inside {}", self.stop_at);
            std::thread::sleep(CHILD_BOUND);
            panic!("not killed inside the clear of operation {}", self.stop_at);
        }
        self.inner.wait(attempt)
    }

    fn inside_write(&self) {
        if !self.stops_waiting && self.current.load(Ordering::Relaxed) == self.stop_at {
            println!("inside {}", self.stop_at);
            std::thread::sleep(CHILD_BOUND);
            panic!("not killed inside the write of operation {}", self.stop_at);
        }
    }
}

/// While the parent has set "pause": count this process as paused and wait (so the parent can
/// check a quiet map), and exit if the parent is gone.
fn pause_while_asked(control: &SharedHashMap) {
    if control.get_into::<8>(b"pause").unwrap().is_none() {
        return;
    }
    control.fetch_add(b"paused", 1).unwrap();
    while control.get_into::<8>(b"pause").unwrap().is_some() {
        exit_if_orphaned();
        std::thread::sleep(Duration::from_micros(100));
    }
    control.fetch_add(b"paused", -1).unwrap();
}

/// Children end when their parent does (a failed test must not leave them running).
fn exit_if_orphaned() {
    if std::os::unix::process::parent_id() != env_u64("SHM_PARENT") as u32 {
        std::process::exit(2);
    }
}

fn control_u64(control: &SharedHashMap, key: &[u8]) -> Option<u64> {
    control
        .get_into::<8>(key)
        .unwrap()
        .map(|bytes| u64::from_le_bytes(bytes.into_array().unwrap()))
}

#[test]
fn child() {
    let Some((role, name)) = role() else { return };
    let map = SharedHashMap::open_with(&name, &options()).unwrap();
    // Victims run until killed; bystanders until told to stop; both end if orphaned.
    let _ = std::thread::spawn(|| {
        loop {
            exit_if_orphaned();
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let program = Program::from_env();
    match role.as_str() {
        "victim" => victim(&map, program),
        "bystander" => {
            let control =
                SharedHashMap::open_with(&std::env::var("CONTROL").unwrap(), &options()).unwrap();
            bystander(&map, &control, program, env_u64("BYSTANDER"));
        }
        other => panic!("unknown role {other}"),
    }
}

/// Runs `program` from operation `FIRST_OP` on, printing `ack I` once operation `I` is
/// complete; stops for good inside operation `STOP_AT` (inside the write of an insert, or in a
/// clear, waiting for the chunk of key(7, `BLOCK`)) and prints `inside STOP_AT` there.
fn victim(map: &SharedHashMap, program: Program) {
    let stop_at = env_u64("STOP_AT");
    let stops_waiting = stop_at != u64::MAX && program.op(stop_at) == Op::Clear;
    let observed = Observed::new(map.liveness(), stop_at, stops_waiting);
    let handle = map.handle().with_liveness(&observed);
    println!("ready");
    let owner = program.owner();
    for i in env_u64("FIRST_OP").. {
        if i == stop_at && stops_waiting {
            // Hold the lock of the chunk of key(7, BLOCK) from another thread, inside an
            // update, so that the clear waits there (and `Observed::wait` stops it).
            let (locked, is_locked) = std::sync::mpsc::channel();
            let blocker = key(7, env_u64("BLOCK"));
            let handle = &handle;
            std::thread::scope(|scope| {
                scope.spawn(move || {
                    handle
                        .update::<VALUE, _, _>(&blocker, |_| -> Option<[u8; 0]> {
                            locked.send(()).unwrap();
                            std::thread::sleep(CHILD_BOUND);
                            panic!("not killed while holding a lock");
                        })
                        .unwrap();
                });
                is_locked.recv().unwrap();
                observed.current.store(i, Ordering::Relaxed);
                handle.clear().unwrap();
                panic!("the clear did not wait for the blocked chunk");
            });
        }
        observed.current.store(i, Ordering::Relaxed);
        match program.op(i) {
            Op::Put { key, k, round } => {
                handle.insert(&key, &value(owner, k, round)).unwrap();
            }
            Op::Remove { key } => {
                handle.remove(&key).unwrap();
            }
            Op::Clear => handle.clear().unwrap(),
        }
        println!("ack {i}");
    }
}

/// Rewrites its own keys round after round, reading each back and reading the victim's keys
/// (and, in the overflow test, the fixed keys); after each round, publishes the round in the
/// control map, then pauses if asked.
fn bystander(map: &SharedHashMap, control: &SharedHashMap, program: Program, id: u64) {
    let observed = Observed::new(map.liveness(), u64::MAX, false);
    let map = map.handle().with_liveness(&observed);
    let owner = 10 + id;
    let victim_keys = program.keys();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (id + 1));
    for round in 1.. {
        if control.get_into::<8>(b"stop").unwrap().is_some() {
            break;
        }
        pause_while_asked(control);
        for k in 0..program.bystander_keys() {
            let started = Instant::now();
            map.insert(&key(owner, k), &value(owner, k, round)).unwrap();
            // Read back: the round just written, or nothing where the victim clears the map.
            let read = read_round(&map, &key(owner, k), owner, k);
            assert!(
                read == Some(round) || (read.is_none() && program.clears()),
                "bystander {id} key {k}: wrote round {round}, read {read:?}"
            );
            // The victim's keys share chunks with ours: any value there must be whole.
            let (vk, victim_key) = victim_keys[rng.below(victim_keys.len() as u64) as usize];
            read_round(&map, &victim_key, program.owner(), vk);
            if program == Program::Overflow {
                let n = rng.below(1000);
                if let Some(round) = read_round(&map, &key(5, n), 5, n) {
                    assert_eq!(round, 0, "fixed key {n} changed");
                }
            }
            let elapsed = started.elapsed();
            assert!(
                elapsed < OPERATION_BOUND,
                "a bystander operation took {elapsed:?}"
            );
        }
        control
            .insert(format!("ack-{id}").as_bytes(), &round.to_le_bytes())
            .unwrap();
        control
            .insert(
                format!("dead-{id}").as_bytes(),
                &observed.dead().to_le_bytes(),
            )
            .unwrap();
    }
}

/// A child process that is killed and reaped when dropped, also when the test fails.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `spawn_child`, telling the child who its parent is.
fn child_process(role: &str, name: &str, env: &[(&str, String)], piped: bool) -> Reaped {
    let mut env = env.to_vec();
    env.push(("SHM_PARENT", std::process::id().to_string()));
    Reaped(spawn_child(role, name, &env, piped))
}

/// Receives lines until `wanted`, keeping the others; panics if the victim ends, or does not
/// say it within `CHILD_BOUND`.
fn receive_until(lines: &Receiver<String>, wanted: &str, kept: &mut Vec<String>) {
    let deadline = Instant::now() + CHILD_BOUND;
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line == wanted => return,
            Ok(line) => kept.push(line),
            Err(RecvTimeoutError::Timeout) => panic!("the victim did not say {wanted:?} in time"),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the victim ended before saying {wanted:?}; it said {kept:?}")
            }
        }
    }
}

/// One crash test: a data map, a control map (pause, acknowledged rounds) and the bystanders.
struct Crash {
    program: Program,
    map: SharedHashMap,
    control: SharedHashMap,
    bystanders: Vec<Reaped>,
    /// The parent's liveness, counting the dead owners it took locks over from.
    observed: Observed,
    /// The next operation of the program, and the victim's keys as of the operations before it.
    next_op: u64,
    model: Model,
    /// Kills at a random instant; of those, kills after at least one completed operation.
    random_kills: u32,
    progressed: u32,
    /// Kills of victims stopped inside a write or a clear.
    stopped_kills: u32,
    /// The map's hash seed (to compute home chunks).
    seed: u64,
    // Last, so the names are removed after the children are gone.
    names: (UniqueName, UniqueName),
}

impl Crash {
    fn new(program: Program, layout: Layout) -> Self {
        let names = (
            UniqueName::new(&format!("crash-{}", program.name())),
            UniqueName::new(&format!("crash-{}-control", program.name())),
        );
        let map = SharedHashMap::create_with(names.0.as_str(), layout, &options()).unwrap();
        let control = SharedHashMap::create_with(
            names.1.as_str(),
            Layout::new(16, 16, 8).unwrap(),
            &options(),
        )
        .unwrap();
        let observed = Observed::new(map.liveness(), u64::MAX, false);
        let seed = stored_seed(names.0.as_str());
        Crash {
            program,
            map,
            control,
            bystanders: Vec::new(),
            observed,
            next_op: 0,
            model: Model::default(),
            random_kills: 0,
            progressed: 0,
            stopped_kills: 0,
            seed,
            names,
        }
    }

    /// The parent's handle on the data map.
    fn checker(&self) -> RawMap<'_> {
        self.map.handle().with_liveness(&self.observed)
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PROGRAM", self.program.name().to_string()),
            ("CONTROL", self.names.1.as_str().to_string()),
        ]
    }

    fn start_bystanders(&mut self) {
        for id in 0..BYSTANDERS {
            let mut env = self.env();
            env.push(("BYSTANDER", id.to_string()));
            let child = child_process("bystander", self.names.0.as_str(), &env, false);
            self.bystanders.push(child);
        }
    }

    /// Fails at once if a bystander has exited (a failed check, or a panic).
    fn bystanders_running(&mut self) {
        for (id, child) in self.bystanders.iter_mut().enumerate() {
            if let Some(status) = child.0.try_wait().unwrap() {
                panic!("bystander {id} exited: {status}");
            }
        }
    }

    /// Starts a victim at the next operation and kills it where `stop` says. Returns the
    /// operation in flight when it died.
    fn kill_victim(&mut self, stop: Stop, rng: &mut Rng) -> Op {
        let first = self.next_op;
        // Where a stopped victim stops: an insert or a clear some hundreds of operations on.
        let next = |from: u64, clear: bool| {
            (from..)
                .find(|&i| match self.program.op(i) {
                    Op::Put { .. } => !clear,
                    Op::Clear => clear,
                    Op::Remove { .. } => false,
                })
                .unwrap()
        };
        let (stop_at, block) = match stop {
            Stop::Random => (u64::MAX, u64::MAX),
            Stop::InsideWrite => (next(first + rng.below(300), false), u64::MAX),
            Stop::InsideClear => {
                let at = next(first + 10 + rng.below(300), true);
                (at, self.blocker(first, at, rng))
            }
        };
        let mut env = self.env();
        env.push(("FIRST_OP", first.to_string()));
        env.push(("STOP_AT", stop_at.to_string()));
        env.push(("BLOCK", block.to_string()));
        let mut victim = child_process("victim", self.names.0.as_str(), &env, true);
        let stdout = victim.0.stdout.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut said = Vec::new();
        receive_until(&lines, "ready", &mut said);
        match stop {
            Stop::Random => std::thread::sleep(Duration::from_micros(rng.below(2500))),
            Stop::InsideWrite | Stop::InsideClear => {
                receive_until(&lines, &format!("inside {stop_at}"), &mut said);
            }
        }
        victim.0.kill().unwrap();
        let status = victim.0.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(SIGKILL),
            "the victim did not die of SIGKILL: {status}"
        );
        reader.join().unwrap();
        said.extend(lines.try_iter());
        // Every completed operation, in order from `first`.
        let acked: Vec<u64> = said
            .iter()
            .filter_map(|line| line.strip_prefix("ack "))
            .map(|i| i.parse().unwrap())
            .collect();
        let expected: Vec<u64> = (first..first + acked.len() as u64).collect();
        assert_eq!(acked, expected, "the victim's reports are not in order");
        if stop == Stop::Random {
            self.random_kills += 1;
            self.progressed += u32::from(!acked.is_empty());
        } else {
            assert_eq!(first + acked.len() as u64, stop_at);
            self.stopped_kills += 1;
        }
        for &i in &acked {
            self.model.apply(self.program.op(i));
        }
        self.next_op = first + acked.len() as u64;
        self.program.op(self.next_op)
    }

    /// For a victim that will clear the map at operation `clear` having started at `first`: a
    /// key (`key(7, n)`, returns `n`) whose home chunk holds one of the keys the victim will
    /// have inserted by then, so that the clear will have to lock that chunk.
    fn blocker(&self, first: u64, clear: u64, rng: &mut Rng) -> u64 {
        // The parent empties the map after each kill: only the keys inserted since are there.
        let inserted = (clear - first).min(CLEAR_KEYS);
        let k = CLEAR_KEYS - 1 - rng.below(inserted);
        let target = self.home(&k.to_le_bytes());
        (rng.below(1 << 20)..)
            .find(|&n| self.home(&key(7, n)) == target)
            .unwrap()
    }

    /// The home chunk of `key` (the format's rule, restated here to choose keys by chunk).
    fn home(&self, key: &[u8]) -> usize {
        let chunks = self.map.layout().chunks() as u64;
        (((hash_bytes(self.seed, key) >> 32) * chunks) >> 32) as usize
    }

    /// Asks the bystanders to pause, waits until all have, runs `f`, lets them go on.
    fn paused<T>(&mut self, f: impl FnOnce(&Self) -> T) -> T {
        self.control.insert(b"pause", b"").unwrap();
        let started = Instant::now();
        while control_u64(&self.control, b"paused").unwrap_or(0) != BYSTANDERS {
            self.bystanders_running();
            assert!(started.elapsed() < CHILD_BOUND, "bystanders did not pause");
            std::thread::sleep(Duration::from_micros(100));
        }
        let result = f(self);
        self.control.remove(b"pause").unwrap();
        result
    }

    /// With the bystanders paused: the victim's keys hold what its completed operations
    /// wrote, except those the operation in flight touches, which hold the old value or the
    /// new one (after a kill inside a write, only the old one, or only the new one where that
    /// write replaced a one-word value in place); every bystander's key holds the
    /// round it last acknowledged; the map verifies clean and counts exactly these entries
    /// (and `extra` more). Returns the report.
    fn check(&self, kill: u32, in_flight: Op, stop: Stop, extra: usize) -> VerifyReport {
        let map = self.checker();
        let owner = self.program.owner();
        let mut present = 0;
        for (k, key) in self.program.keys() {
            let found = read_round(&map, &key, owner, k);
            let old = self.model.0.get(&key).copied();
            let new = effect(in_flight, &key);
            // A write stopped inside publishes nothing, except a one-word value replacing one,
            // which it stored in place before it stopped; any other operation may have taken
            // effect.
            let in_place = cfg!(target_pointer_width = "64")
                && one_word(owner, k)
                && old.is_some()
                && new.is_some_and(|n| n.is_some());
            let holds = match stop {
                Stop::InsideWrite if in_place => new == Some(found),
                Stop::InsideWrite => found == old,
                _ => found == old || new == Some(found),
            };
            assert!(
                holds,
                "kill {kill}: key {k} holds round {found:?}; completed writes left {old:?}, \
                 the operation in flight {in_flight:?} (killed {stop:?})"
            );
            present += usize::from(found.is_some());
        }
        for id in 0..BYSTANDERS {
            let owner = 10 + id;
            let acked = control_u64(&self.control, format!("ack-{id}").as_bytes());
            for k in 0..self.program.bystander_keys() {
                let found = read_round(&map, &key(owner, k), owner, k);
                assert!(
                    found == acked || (found.is_none() && self.program.clears()),
                    "kill {kill}: bystander {id} key {k} holds round {found:?}, acknowledged \
                     {acked:?}"
                );
                present += usize::from(found.is_some());
            }
        }
        let report = verify(&map);
        assert_eq!(report.entries, present + extra, "kill {kill}: {report:?}");
        report
    }

    /// Takes what the victim's keys hold now, each of which `check` accepted as the old or the
    /// new value, as the state the next victim starts from. The next victim redoes the
    /// operation that was in flight, and may be stopped inside that very write: it must then
    /// find what the dead victim's write left, which the model of completed operations alone
    /// does not know.
    fn settle(&mut self) {
        let map = self.checker();
        let owner = self.program.owner();
        let held: Vec<_> = self
            .program
            .keys()
            .into_iter()
            .map(|(k, key)| (key, read_round(&map, &key, owner, k)))
            .collect();
        for (key, round) in held {
            match round {
                Some(round) => self.model.0.insert(key, round),
                None => self.model.0.remove(&key),
            };
        }
    }

    /// Of the victim's keys its completed operations left present: how many are gone and how
    /// many are still there.
    fn survivors(&self) -> (usize, usize) {
        let map = self.checker();
        let present = self
            .model
            .0
            .keys()
            .filter(|key| map.contains_key(&key[..]).unwrap());
        let kept = present.count();
        (self.model.0.len() - kept, kept)
    }

    /// Stops the bystanders, within a time bound, checks that they succeeded, and checks the
    /// counts of kills.
    fn finish(mut self) {
        self.control.insert(b"stop", b"").unwrap();
        let started = Instant::now();
        for (id, child) in self.bystanders.iter_mut().enumerate() {
            let status = loop {
                if let Some(status) = child.0.try_wait().unwrap() {
                    break status;
                }
                assert!(
                    started.elapsed() < CHILD_BOUND,
                    "bystander {id} did not stop in {CHILD_BOUND:?}"
                );
                std::thread::sleep(Duration::from_millis(1));
            };
            assert!(status.success(), "bystander {id} failed: {status}");
        }
        let takeovers = self.observed.dead()
            + (0..BYSTANDERS)
                .map(|id| control_u64(&self.control, format!("dead-{id}").as_bytes()).unwrap())
                .sum::<u64>();
        eprintln!(
            "{}: {} kills at random instants ({} after completed writes), {} inside a write or \
             a clear, {} dead lock owners found, {} operations completed",
            self.program.name(),
            self.random_kills,
            self.progressed,
            self.stopped_kills,
            takeovers,
            self.next_op
        );
        // Victims must have been killed while working, not while starting.
        assert!(
            self.progressed * 4 >= self.random_kills * 3,
            "only {} of {} victims completed a write before being killed",
            self.progressed,
            self.random_kills
        );
        // Each stopped victim died holding a lock (inside a write, also with an odd sequence),
        // which someone must have found dead and taken over for the checks to pass.
        assert!(
            takeovers >= u64::from(self.stopped_kills),
            "{takeovers} takeovers after {} kills inside writes or clears",
            self.stopped_kills
        );
        verify(&self.checker());
    }
}

fn verify(map: &RawMap<'_>) -> VerifyReport {
    let mut scratch = vec![0; map.layout().chunks()];
    map.verify_exact(&mut scratch).unwrap()
}

/// Where a victim is killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// At a random instant after it started.
    Random,
    /// Inside the write of an insert, stopped there by the `inside_write` hook.
    InsideWrite,
    /// Inside `clear()`, waiting for the lock of a chunk that another of its threads holds
    /// (inside an `update`), so the chunks before it are cleared and the others are not.
    InsideClear,
}

/// Where kill number `kill` lands: every `STOPPED_EVERY`th inside a write, or in the clear
/// test half of those inside a clear.
fn stop(kill: u32, clears: bool) -> Stop {
    match kill % (2 * STOPPED_EVERY) {
        k if k == STOPPED_EVERY - 1 => Stop::InsideWrite,
        k if k == 2 * STOPPED_EVERY - 1 && clears => Stop::InsideClear,
        k if k == 2 * STOPPED_EVERY - 1 => Stop::InsideWrite,
        _ => Stop::Random,
    }
}

#[test]
fn writers_killed_at_random_instants_leave_old_or_new_values() {
    let program = Program::Writer;
    // Small: victim and bystanders share chunks, so the victim dies holding locks they need.
    let capacity = WRITER_KEYS + BYSTANDERS * program.bystander_keys() + 8;
    let layout = Layout::new(capacity as usize, 8, VALUE).unwrap();
    let mut crash = Crash::new(program, layout);
    crash.start_bystanders();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for kill in 0..kills() {
        let stop = stop(kill, false);
        let in_flight = crash.kill_victim(stop, &mut rng);
        crash.paused(|crash| crash.check(kill, in_flight, stop, 0));
        crash.settle();
    }
    crash.finish();
}

#[test]
fn a_process_killed_inside_clear_leaves_a_usable_map() {
    let program = Program::Clear;
    let capacity = (CLEAR_KEYS + BYSTANDERS * program.bystander_keys()) as usize;
    let layout = Layout::new(capacity, 8, VALUE).unwrap();
    let mut crash = Crash::new(program, layout);
    crash.start_bystanders();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut clears, mut partial_clears) = (0, 0);
    for kill in 0..kills() / 2 {
        let stop = stop(kill, true);
        let in_flight = crash.kill_victim(stop, &mut rng);
        let survived = crash.paused(|crash| {
            // After a partial clear, what survived is whole and what was written.
            crash.check(kill, in_flight, stop, 0);
            let survived = crash.survivors();
            // The map still takes its full capacity after a clear.
            let map = crash.checker();
            map.clear().unwrap();
            for n in 0..capacity as u64 {
                map.insert(&key(4, n), &value(4, n, 0)).unwrap();
            }
            assert_eq!(verify(&map).entries, capacity);
            map.clear().unwrap();
            assert_eq!(verify(&map).entries, 0);
            survived
        });
        if in_flight == Op::Clear {
            clears += 1;
            let (cleared, kept) = survived;
            partial_clears += u32::from(cleared > 0 && kept > 0);
        }
        // The parent emptied the map; the victims carry on from there.
        crash.model = Model::default();
    }
    eprintln!(
        "clear: {clears} victims killed while clearing, {partial_clears} with some of their \
         keys cleared and some not"
    );
    // Half the stopped victims stop inside a clear, after a random number of chunks.
    assert!(
        partial_clears >= kills() / 2 / STOPPED_EVERY / 4,
        "only {partial_clears} partial clears"
    );
    crash.finish();
}

#[test]
fn a_process_killed_inside_overflowing_inserts_loses_no_key() {
    let program = Program::Overflow;
    // 71 chunks of 8 slots: the victim's 64 keys have about 42 homes, which the parent fills
    // with fixed keys (8 each), leaving the other chunks for the victim's and bystanders' keys.
    let layout = Layout::new(71 * 7, 8, VALUE).unwrap();
    let chunks = layout.chunks();
    let mut crash = Crash::new(program, layout);
    let home = |key: &[u8]| crash.home(key);
    let homes: HashSet<usize> = program.keys().iter().map(|(_, key)| home(key)).collect();
    let mut fill = vec![0; chunks];
    let mut fixed = Vec::new();
    {
        let map = crash.checker();
        for n in 0.. {
            if fixed.len() == homes.len() * 8 {
                break;
            }
            let h = home(&key(5, n));
            if homes.contains(&h) && fill[h] < 8 {
                map.insert(&key(5, n), &value(5, n, 0)).unwrap();
                fill[h] += 1;
                fixed.push(n);
            }
        }
        let free = chunks * 8 - fixed.len();
        let needed = (OVERFLOW_KEYS / 2 + 1 + BYSTANDERS * program.bystander_keys()) as usize;
        assert!(free >= 2 * needed, "{free} free slots for {needed} keys");
        assert_eq!(verify(&map).total_probe_distance, 0);
        // Every victim key now lands outside its home chunk.
        for (k, key) in program.keys() {
            let before = verify(&map).total_probe_distance;
            map.insert(&key, &value(3, k, 0)).unwrap();
            assert!(
                verify(&map).total_probe_distance > before,
                "key {k} was stored in its home chunk: the test must make inserts overflow"
            );
        }
        for (_, key) in program.keys() {
            map.remove(&key).unwrap();
        }
        let report = verify(&map);
        assert_eq!(
            (report.total_probe_distance, report.overflow_excess),
            (0, 0)
        );
    }
    eprintln!(
        "overflow: {} fixed keys fill the {} home chunks of the victim's keys",
        fixed.len(),
        homes.len()
    );
    crash.start_bystanders();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for kill in 0..kills() / 2 {
        let stop = stop(kill, false);
        let in_flight = crash.kill_victim(stop, &mut rng);
        crash.paused(|crash| {
            let report = crash.check(kill, in_flight, stop, fixed.len());
            // The victim's keys lie outside their homes.
            assert!(
                crash.model.0.is_empty() || report.max_probe_distance > 0,
                "kill {kill}: {report:?}"
            );
            // The fixed keys are all still there and whole.
            let map = crash.checker();
            for &n in &fixed {
                assert_eq!(read_round(&map, &key(5, n), 5, n), Some(0), "fixed key {n}");
            }
        });
        crash.settle();
    }
    crash.finish();
}

/// The hash seed in the header of the map `name` (words 9 and 10), read from its file under
/// `/dev/shm`, so the test can compute keys' home chunks.
fn stored_seed(name: &str) -> u64 {
    let bytes = std::fs::read(format!("/dev/shm/{name}")).unwrap();
    let word = |i: usize| {
        u64::from(u32::from_ne_bytes(
            bytes[i * 4..i * 4 + 4].try_into().unwrap(),
        ))
    };
    word(9) | word(10) << 32
}
