//! Many processes, one map: every acknowledged write is there afterwards, no key appears twice,
//! `len()` is the number of live keys, `verify()` is clean; `open_or_create` has one creator
//! however many race; a process SIGKILLed while holding a lock, or in the middle of a write,
//! does not stop the others, and its unpublished write never appears.

#[path = "../common/mod.rs"]
mod common;

use common::{Gated, UniqueName, env_u64, join_all, role, spawn_child, wait_at_start_line};
use shared_hashmap_posix::{Layout, Liveness, Options, ProcessLiveness, SharedHashMap};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::num::NonZeroU32;
use std::process::Child;
use std::time::{Duration, Instant};

const WORKERS: u64 = 5;
const KEYS_PER_WORKER: u64 = 2000;
const SHARED_KEYS: u64 = 64;
/// The keys the workers coordinate and count with.
const BOOKKEEPING: [&[u8]; 5] = [b"ready", b"go", b"phase-1", b"created", b"removed"];
/// The version of the shared keys' last writes.
const FINAL: u64 = 1 << 20;

fn layout() -> Layout {
    Layout::new(
        (WORKERS * KEYS_PER_WORKER + SHARED_KEYS * 2 + 16) as usize,
        16,
        16,
    )
    .unwrap()
}

fn own_key(worker: u64, i: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&worker.to_le_bytes());
    key[8..].copy_from_slice(&i.to_le_bytes());
    key
}

/// A value that names its writer and version and checks itself.
fn value(worker: u64, i: u64, version: u64) -> [u8; 16] {
    let mut value = [0u8; 16];
    value[..4].copy_from_slice(&(worker as u32).to_le_bytes());
    value[4..8].copy_from_slice(&(i as u32).to_le_bytes());
    value[8..12].copy_from_slice(&(version as u32).to_le_bytes());
    let sum = (worker as u32).wrapping_mul(31)
        ^ (i as u32).wrapping_mul(17)
        ^ (version as u32).wrapping_mul(7);
    value[12..].copy_from_slice(&sum.to_le_bytes());
    value
}

fn check(bytes: &[u8]) -> (u64, u64, u64) {
    assert_eq!(bytes.len(), 16, "a value of the wrong length");
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let (worker, i, version) = (word(0), word(4), word(8));
    let sum = worker.wrapping_mul(31) ^ i.wrapping_mul(17) ^ version.wrapping_mul(7);
    assert_eq!(word(12), sum, "a torn or foreign value");
    (u64::from(worker), u64::from(i), u64::from(version))
}

/// The final state of a worker's own key `i`: removed (`None`) or its last version.
fn own_final(i: u64) -> Option<u64> {
    if i % 5 == 0 {
        None
    } else if i % 3 == 0 {
        Some(1)
    } else {
        Some(0)
    }
}

/// The entry point of every child process: does nothing in a normal test run.
#[test]
fn child() {
    let Some((role, name)) = role() else { return };
    match role.as_str() {
        "worker" => worker(&name, env_u64("WORKER")),
        "same-keys" => same_keys(&name, env_u64("WORKER")),
        "race" => race(&name),
        "victim" => victim(&name),
        "writer-victim" => writer_victim(&name),
        "survivor" => survivor(&name, env_u64("SURVIVOR")),
        other => panic!("unknown role {other}"),
    }
}

/// The counter `key` of `map` (0 when absent).
fn counter(map: &SharedHashMap, key: &[u8]) -> i64 {
    map.get_into::<8>(key)
        .unwrap()
        .map_or(0, |bytes| i64::from_le_bytes(bytes.into_array().unwrap()))
}

/// Waits (up to a minute) until the counter `key` reaches `n`.
fn wait_for_count(map: &SharedHashMap, key: &[u8], n: u64) {
    let started = Instant::now();
    while counter(map, key) != n as i64 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} stuck at {}",
            String::from_utf8_lossy(key),
            counter(map, key)
        );
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Waits (up to a minute) until `key` is present.
fn wait_for_key(map: &SharedHashMap, key: &[u8]) {
    let started = Instant::now();
    while !map.contains_key(key).unwrap() {
        assert!(started.elapsed() < Duration::from_secs(60), "no go");
        std::hint::spin_loop();
    }
}

/// After the parent's go (all workers start together): writes its own keys (insert, update
/// some, remove some), counts into shared counters, inserts, reads and removes the shared keys
/// (racing every other worker), and reads everybody's keys, checking each value it sees. Then,
/// once every worker is past that phase, writes its share of the shared keys a last time.
/// It adds the inserts that found a shared key absent to "created", and the removes that
/// found one present to "removed".
fn worker(name: &str, id: u64) {
    let map = SharedHashMap::open(name).unwrap();
    map.fetch_add(b"ready", 1).unwrap();
    wait_for_key(&map, b"go");
    let (mut created, mut removed) = (0, 0);
    for i in 0..KEYS_PER_WORKER {
        assert!(!map.insert(&own_key(id, i), &value(id, i, 0)).unwrap());
        map.fetch_add(&own_key(1000, i % SHARED_KEYS), 1).unwrap();
        let k = i % SHARED_KEYS;
        let shared = own_key(2000, k);
        match (i / SHARED_KEYS + id) % 3 {
            0 => created += i64::from(!map.insert(&shared, &value(id, k, i)).unwrap()),
            1 => removed += i64::from(map.remove(&shared).unwrap()),
            _ => {
                if let Some(bytes) = map.get_into::<16>(&shared).unwrap() {
                    let (writer, index, _) = check(&bytes);
                    assert!(writer < WORKERS && index == k, "shared key {k}: {bytes:?}");
                }
            }
        }
        let other = (id + i) % WORKERS;
        if let Some(bytes) = map.get_into::<16>(&own_key(other, i / 2)).unwrap() {
            let (worker, index, _) = check(&bytes);
            assert_eq!((worker, index), (other, i / 2));
        }
    }
    for i in 0..KEYS_PER_WORKER {
        match own_final(i) {
            None => assert!(map.remove(&own_key(id, i)).unwrap()),
            Some(1) => assert!(map.insert(&own_key(id, i), &value(id, i, 1)).unwrap()),
            Some(_) => {}
        }
    }
    map.fetch_add(b"phase-1", 1).unwrap();
    wait_for_count(&map, b"phase-1", WORKERS);
    for k in (id..SHARED_KEYS).step_by(WORKERS as usize) {
        created += i64::from(!map.insert(&own_key(2000, k), &value(id, k, FINAL)).unwrap());
    }
    map.fetch_add(b"created", created).unwrap();
    map.fetch_add(b"removed", removed).unwrap();
}

#[test]
fn many_processes_write_and_read_one_map() {
    let name = UniqueName::new("many");
    let map = SharedHashMap::create(name.as_str(), layout()).unwrap();
    let children = (0..WORKERS)
        .map(|id| {
            spawn_child(
                "worker",
                name.as_str(),
                &[("WORKER", id.to_string())],
                false,
            )
        })
        .collect();
    // A start barrier, so that the workers truly overlap.
    wait_for_count(&map, b"ready", WORKERS);
    map.insert(b"go", b"").unwrap();
    join_all(children);

    // Every acknowledged write is there, with its last value.
    let mut live: HashSet<Vec<u8>> = BOOKKEEPING.iter().map(|key| key.to_vec()).collect();
    for id in 0..WORKERS {
        for i in 0..KEYS_PER_WORKER {
            let got = map.get_into::<16>(&own_key(id, i)).unwrap();
            match own_final(i) {
                None => assert!(got.is_none(), "worker {id} key {i} was removed"),
                Some(version) => {
                    assert_eq!(
                        check(&got.expect("an acknowledged write is missing")),
                        (id, i, version)
                    );
                    live.insert(own_key(id, i).to_vec());
                }
            }
        }
    }
    // Shared counters are exact; each shared key holds its last write (made after every
    // worker's inserts and removes of it).
    for k in 0..SHARED_KEYS {
        // Each worker counted once for every i in 0..KEYS_PER_WORKER with i % SHARED_KEYS == k.
        let per_worker = (0..KEYS_PER_WORKER)
            .filter(|i| i % SHARED_KEYS == k)
            .count() as u64;
        assert_eq!(
            counter(&map, &own_key(1000, k)),
            (WORKERS * per_worker) as i64
        );
        assert_eq!(
            check(&map.get_into::<16>(&own_key(2000, k)).unwrap().unwrap()),
            (k % WORKERS, k, FINAL)
        );
        live.insert(own_key(1000, k).to_vec());
        live.insert(own_key(2000, k).to_vec());
    }
    // Inserts that found a shared key absent, less removes that found it present, leave
    // every shared key present once: none lost, none made twice.
    assert_eq!(
        counter(&map, b"created") - counter(&map, b"removed"),
        SHARED_KEYS as i64
    );
    // No key twice, no key that should not be there; the count is exact; the structure is
    // sound.
    let keys: Vec<Vec<u8>> = map
        .iter::<16, 16>()
        .map(|entry| entry.unwrap().0.to_vec())
        .collect();
    assert_eq!(
        keys.len(),
        live.len(),
        "a key yielded twice, or one too many"
    );
    assert_eq!(keys.into_iter().collect::<HashSet<_>>(), live);
    assert_eq!(map.len(), live.len());
    let mut scratch = vec![0; map.layout().chunks()];
    let report = map.verify_exact(&mut scratch).unwrap();
    assert_eq!(
        (report.entries, report.locks_held, report.writes_in_progress),
        (live.len(), 0, 0)
    );
}

/// Waits for the parent's go, then inserts keys 0..1000, which every other worker inserts too.
fn same_keys(name: &str, id: u64) {
    let map = SharedHashMap::open(name).unwrap();
    map.fetch_add(b"ready", 1).unwrap();
    wait_for_key(&map, b"go");
    let mut new = 0;
    for k in 0..1000u64 {
        if !map.insert(&k.to_le_bytes(), &value(id, k, 0)).unwrap() {
            new += 1;
        }
    }
    map.fetch_add(b"new", new).unwrap();
}

#[test]
fn processes_inserting_the_same_keys_at_once_make_each_key_once() {
    let name = UniqueName::new("same");
    let map = SharedHashMap::create(name.as_str(), Layout::new(1100, 8, 16).unwrap()).unwrap();
    let children = (0..WORKERS)
        .map(|id| {
            spawn_child(
                "same-keys",
                name.as_str(),
                &[("WORKER", id.to_string())],
                false,
            )
        })
        .collect();
    wait_for_count(&map, b"ready", WORKERS);
    map.insert(b"go", b"").unwrap();
    join_all(children);
    // Exactly one insert of each key found it absent.
    assert_eq!(counter(&map, b"new"), 1000);
    for k in 0..1000u64 {
        check(&map.get_into::<16>(&k.to_le_bytes()).unwrap().unwrap());
    }
    const KEYS: usize = 1003; // 1000 keys, "ready", "go", "new"
    let keys: Vec<_> = map.iter::<8, 16>().map(|entry| entry.unwrap().0).collect();
    assert_eq!(keys.len(), KEYS);
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), KEYS);
    assert_eq!(map.len(), KEYS);
    let mut scratch = vec![0; map.layout().chunks()];
    let report = map.verify_exact(&mut scratch).unwrap();
    assert_eq!(
        (report.entries, report.locks_held, report.writes_in_progress),
        (KEYS, 0, 0)
    );
}

/// Released with the others at once, opens or creates the map; exits 10 if it created it, 11
/// if not.
fn race(name: &str) {
    wait_at_start_line();
    let map = SharedHashMap::open_or_create(name, Layout::new(100, 8, 8).unwrap()).unwrap();
    map.fetch_add(b"attached", 1).unwrap();
    std::process::exit(if map.created() { 10 } else { 11 });
}

#[test]
fn open_or_create_raced_by_eight_processes_has_one_creator() {
    let name = UniqueName::new("race");
    let mut racers = Gated::new();
    for _ in 0..8 {
        racers.spawn("race", name.as_str(), &[]);
    }
    // Every racer is blocked on its stdin, right before `open_or_create`; then all go at once.
    racers.go();
    let codes: Vec<i32> = racers
        .join(Duration::from_secs(60))
        .into_iter()
        .map(|status| status.code().unwrap_or(-1))
        .collect();
    assert_eq!(
        codes.iter().filter(|&&code| code == 10).count(),
        1,
        "exit codes {codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|&&code| code == 11).count(),
        7,
        "exit codes {codes:?}"
    );
    let map = SharedHashMap::open(name.as_str()).unwrap();
    assert_eq!(counter(&map, b"attached"), 8);
}

/// Takes the lock of key "hot"'s chunk (inside `update`, before changing anything), says so
/// on stdout, and waits to be killed.
fn victim(name: &str) {
    let map = SharedHashMap::open(name).unwrap();
    map.update::<16, [u8; 16], _>(b"hot", |_| {
        println!("holding");
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })
    .unwrap();
}

#[test]
fn a_process_killed_holding_a_lock_does_not_stop_the_others() {
    let name = UniqueName::new("kill");
    let map = SharedHashMap::create(name.as_str(), Layout::new(50, 8, 16).unwrap()).unwrap();
    for k in 0..40u64 {
        map.insert(&k.to_le_bytes(), &value(0, k, 0)).unwrap();
    }
    map.insert(b"hot", &value(0, 99, 0)).unwrap();
    let mut victim = spawn_child("victim", name.as_str(), &[], true);
    let stdout = victim.stdout.take().unwrap();
    let holding = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line == "holding");
    assert!(holding, "the victim never took the lock");
    // While it lives, readers are not blocked by the lock it holds.
    check(&map.get_into::<16>(b"hot").unwrap().unwrap());
    victim.kill().unwrap();
    victim.wait().unwrap();

    // The survivor's writes to the dead holder's chunk finish within a bounded time.
    let started = Instant::now();
    assert!(map.insert(b"hot", &value(1, 99, 1)).unwrap());
    for k in 0..40u64 {
        map.insert(&k.to_le_bytes(), &value(1, k, 1)).unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        check(&map.get_into::<16>(b"hot").unwrap().unwrap()),
        (1, 99, 1)
    );
    let mut scratch = vec![0; map.layout().chunks()];
    let report = map.verify_exact(&mut scratch).unwrap();
    assert_eq!(
        (report.entries, report.locks_held, report.writes_in_progress),
        (41, 0, 0)
    );
}

/// Survivors of a writer killed inside a write, and their rounds each.
const SURVIVORS: u64 = 4;
const ROUNDS: u64 = 20_000;
/// The longest any survivor operation may take: waits are bounded by the handles' timeout
/// (5 s); this allows for a busy machine on top.
const OPERATION_BOUND: Duration = Duration::from_secs(8);

/// What "hot", the key a victim is killed writing, holds before that write, and so which
/// write it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hot {
    /// Nothing: the victim inserts it.
    Absent,
    /// A 16-byte value: the victim replaces it with another through the chunk's spare slot,
    /// and is killed before publishing it.
    Long,
    /// An 8-byte value: the victim replaces it with another of the same length, which is
    /// stored in place, and is killed after that store, before the write ends.
    Word,
}

impl Hot {
    const ALL: [Hot; 3] = [Hot::Absent, Hot::Long, Hot::Word];

    fn from_env() -> Self {
        let name = std::env::var("HOT").unwrap();
        Self::ALL
            .into_iter()
            .find(|hot| format!("{hot:?}") == name)
            .unwrap()
    }

    /// What "hot" holds before the victim writes.
    fn old(self) -> Option<Vec<u8>> {
        match self {
            Hot::Absent => None,
            Hot::Long => Some(value(0, 99, 0).to_vec()),
            Hot::Word => Some(0x0123_4567_89ab_cdef_u64.to_le_bytes().to_vec()),
        }
    }

    /// What the victim writes: values nobody else writes.
    fn written(self) -> Vec<u8> {
        match self {
            Hot::Absent | Hot::Long => value(9, 99, 1).to_vec(),
            Hot::Word => 0xfedc_ba98_7654_3210_u64.to_le_bytes().to_vec(),
        }
    }

    /// What "hot" holds once the victim is dead: the old value, unless the victim's write was
    /// one store (8 bytes are one word on 64-bit targets), which it had made.
    fn after_kill(self) -> Option<Vec<u8>> {
        match self {
            Hot::Word if cfg!(target_pointer_width = "64") => Some(self.written()),
            _ => self.old(),
        }
    }
}

fn kill_options() -> Options {
    Options::new().timeout(Duration::from_secs(5))
}

/// A one-chunk map: every key shares the victim's chunk (so its lock, its sequence, its
/// slots).
fn one_chunk() -> Layout {
    let layout = Layout::new(7, 8, 16).unwrap();
    assert_eq!(layout.chunks(), 1, "the test needs a one-chunk map");
    layout
}

/// The process's liveness, except that in the middle of a write (chunk locked, sequence odd,
/// the new entry written but not published, or a one-word value stored in place) it says so
/// on stdout and stops there for good.
struct StopInsideWrite(ProcessLiveness);

impl Liveness for StopInsideWrite {
    fn owner_id(&self) -> NonZeroU32 {
        self.0.owner_id()
    }

    fn is_alive(&self, owner: u32) -> bool {
        self.0.is_alive(owner)
    }

    fn wait(&self, attempt: u32) -> bool {
        self.0.wait(attempt)
    }

    fn inside_write(&self) {
        let parent = std::os::unix::process::parent_id();
        let mut stdout = std::io::stdout();
        writeln!(stdout, "inside-write").unwrap();
        stdout.flush().unwrap();
        loop {
            // A failed test must not leave it running.
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(2);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Writes [`Hot::written`] into "hot" (replacing it, or inserting it: whichever the map needs) and
/// stops inside that write, to be killed there.
fn writer_victim(name: &str) {
    let map = SharedHashMap::open_with(name, &kill_options()).unwrap();
    let stop = StopInsideWrite(map.liveness().clone());
    map.handle()
        .with_liveness(&stop)
        .insert(b"hot", &Hot::from_env().written())
        .unwrap();
    panic!("the write finished: inside_write was never called");
}

/// Once let go: round after round, writes, reads and removes its own key, adds to "count",
/// and reads "hot", all in the chunk whose lock a killed writer held. "hot" must hold what that
/// writer left ([`Hot::after_kill`]), and every operation must finish within `OPERATION_BOUND`.
fn survivor(name: &str, id: u64) {
    let map = SharedHashMap::open_with(name, &kill_options()).unwrap();
    let left = Hot::from_env().after_kill();
    wait_at_start_line();
    let own = [b's', id as u8];
    let timed = |what: &str, started: Instant| {
        assert!(
            started.elapsed() < OPERATION_BOUND,
            "survivor {id}: {what} took {:?}",
            started.elapsed()
        );
    };
    for round in 0..ROUNDS {
        let started = Instant::now();
        // Removed every fourth round (never the last), so the next insert makes it anew.
        let existed = round % 4 != 0;
        assert_eq!(
            map.insert(&own, &value(id, 0, round)).unwrap(),
            existed && round > 0
        );
        timed("insert", started);
        let started = Instant::now();
        assert_eq!(
            check(&map.get_into::<16>(&own).unwrap().unwrap()),
            (id, 0, round)
        );
        timed("get", started);
        let started = Instant::now();
        let hot = map.get_into::<16>(b"hot").unwrap();
        timed("get of the killed writer's key", started);
        assert_eq!(hot.as_deref(), left.as_deref(), "hot changed");
        let started = Instant::now();
        map.fetch_add(b"count", 1).unwrap();
        timed("fetch_add", started);
        if round % 4 == 3 && round + 1 < ROUNDS {
            let started = Instant::now();
            assert!(map.remove(&own).unwrap());
            timed("remove", started);
        }
    }
}

/// A child that is SIGKILLed and reaped when dropped (if the test has not done so), so a
/// failed test leaves no victim behind.
struct Victim(Child);

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The state letter of process `pid` in `/proc/<pid>/stat` (`Z` for a zombie).
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// A writer stopped inside its write of "hot" (which `hot` says) is SIGKILLed there; then four
/// processes hammer the chunk it held: every operation finishes within a bound, "hot" holds a
/// whole value (the old one where the write was never published, the new one where it was one
/// store), and the map verifies clean. With `reap` false, the victim stays a zombie (killed,
/// not yet reaped by this process, its parent) until the survivors are done.
fn killed_inside_a_write(test: &str, hot: Hot, reap: bool) {
    let name = UniqueName::new(test);
    let map = SharedHashMap::create_with(name.as_str(), one_chunk(), &kill_options()).unwrap();
    if let Some(old) = hot.old() {
        map.insert(b"hot", &old).unwrap();
    }
    let mut survivors = Gated::new();
    for id in 0..SURVIVORS {
        survivors.spawn(
            "survivor",
            name.as_str(),
            &[("SURVIVOR", id.to_string()), ("HOT", format!("{hot:?}"))],
        );
    }
    let mut victim = Victim(spawn_child(
        "writer-victim",
        name.as_str(),
        &[("HOT", format!("{hot:?}"))],
        true,
    ));
    let stdout = victim.0.stdout.take().unwrap();
    let inside = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line == "inside-write");
    assert!(inside, "the victim never got inside its write");
    let pid = victim.0.id();
    victim.0.kill().unwrap();
    if reap {
        victim.0.wait().unwrap();
    } else {
        let started = Instant::now();
        while process_state(pid) != Some('Z') {
            assert!(started.elapsed() < Duration::from_secs(10), "no zombie");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    let started = Instant::now();
    survivors.go();
    for (id, status) in survivors
        .join(Duration::from_secs(120))
        .into_iter()
        .enumerate()
    {
        assert!(status.success(), "survivor {id} failed: {status}");
    }
    eprintln!(
        "{test}: {SURVIVORS} survivors, {ROUNDS} rounds each, in {:?}",
        started.elapsed()
    );
    if !reap {
        assert_eq!(
            process_state(pid),
            Some('Z'),
            "the victim was not a zombie throughout"
        );
        victim.0.wait().unwrap();
    }

    // The write the victim was killed in left a whole value; everything else is exact.
    let left = map.get_into::<16>(b"hot").unwrap();
    assert_eq!(left.as_deref(), hot.after_kill().as_deref());
    assert_eq!(counter(&map, b"count"), (SURVIVORS * ROUNDS) as i64);
    for id in 0..SURVIVORS {
        assert_eq!(
            check(&map.get_into::<16>(&[b's', id as u8]).unwrap().unwrap()),
            (id, 0, ROUNDS - 1)
        );
    }
    let entries = SURVIVORS as usize + 1 + usize::from(left.is_some());
    assert_eq!(map.len(), entries);
    assert_eq!(map.iter::<8, 16>().count(), entries);
    let mut scratch = vec![0; map.layout().chunks()];
    let report = map.verify_exact(&mut scratch).unwrap();
    assert_eq!(
        (report.entries, report.locks_held, report.writes_in_progress),
        (entries, 0, 0)
    );
}

#[test]
fn a_writer_killed_inside_a_replace_leaves_the_old_value_and_stops_nobody() {
    killed_inside_a_write("kill-replace", Hot::Long, true);
}

#[test]
fn a_writer_killed_inside_an_insert_leaves_no_entry_and_stops_nobody() {
    killed_inside_a_write("kill-insert", Hot::Absent, true);
}

#[test]
fn a_killed_writer_not_yet_reaped_is_taken_over_too() {
    killed_inside_a_write("kill-zombie", Hot::Long, false);
}

#[test]
fn a_killed_inserter_not_yet_reaped_is_taken_over_too() {
    killed_inside_a_write("kill-zombie-insert", Hot::Absent, false);
}

#[test]
fn a_writer_killed_inside_a_one_word_replace_leaves_the_new_value_and_stops_nobody() {
    killed_inside_a_write("kill-replace-word", Hot::Word, true);
}
