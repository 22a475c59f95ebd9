//! Many processes, one map: every acknowledged write is there afterwards, no key appears twice,
//! `len()` is the number of live keys, `verify()` is clean; `open_or_create` has one creator
//! however many race; a process SIGKILLed while holding a lock does not stop the others.

#[path = "../common/mod.rs"]
mod common;

use common::{UniqueName, env_u64, join_all, role, spawn_child};
use shared_hashmap_posix::{Layout, SharedHashMap};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const WORKERS: u64 = 5;
const KEYS_PER_WORKER: u64 = 2000;
const SHARED_KEYS: u64 = 64;

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
        other => panic!("unknown role {other}"),
    }
}

/// Writes its own keys (insert, update some, remove some), counts into shared counters,
/// overwrites shared keys, and reads everybody's keys, checking each value it sees.
fn worker(name: &str, id: u64) {
    let map = SharedHashMap::open(name).unwrap();
    for i in 0..KEYS_PER_WORKER {
        assert!(!map.insert(&own_key(id, i), &value(id, i, 0)).unwrap());
        map.fetch_add(&own_key(1000, i % SHARED_KEYS), 1).unwrap();
        map.insert(&own_key(2000, i % SHARED_KEYS), &value(id, i, 0))
            .unwrap();
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
    join_all(children);

    // Every acknowledged write is there, with its last value.
    let mut expected = 0;
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
                    expected += 1;
                }
            }
        }
    }
    // Shared counters are exact; shared keys hold one whole value each.
    for k in 0..SHARED_KEYS {
        let count = map.get_into::<8>(&own_key(1000, k)).unwrap().unwrap();
        // Each worker counted once for every i in 0..KEYS_PER_WORKER with i % SHARED_KEYS == k.
        let per_worker = (0..KEYS_PER_WORKER)
            .filter(|i| i % SHARED_KEYS == k)
            .count() as u64;
        assert_eq!(
            i64::from_le_bytes(count.into_array().unwrap()),
            (WORKERS * per_worker) as i64
        );
        check(&map.get_into::<16>(&own_key(2000, k)).unwrap().unwrap());
    }
    expected += 2 * SHARED_KEYS as usize;
    // No key twice; the count is exact; the structure is sound.
    let keys: Vec<_> = map.iter::<16, 16>().map(|entry| entry.unwrap().0).collect();
    assert_eq!(keys.len(), expected);
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), expected);
    assert_eq!(map.len(), expected);
    let mut scratch = vec![0; map.layout().chunks()];
    assert_eq!(map.verify_exact(&mut scratch).unwrap().entries, expected);
}

/// Waits for the parent's go, then inserts keys 0..1000, which every other worker inserts too.
fn same_keys(name: &str, id: u64) {
    let map = SharedHashMap::open(name).unwrap();
    map.fetch_add(b"ready", 1).unwrap();
    let started = Instant::now();
    while map.get_into::<8>(b"go").unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "no go");
        std::hint::spin_loop();
    }
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
    let started = Instant::now();
    while map
        .get_into::<8>(b"ready")
        .unwrap()
        .is_none_or(|n| n.into_array() != Ok((WORKERS as i64).to_le_bytes()))
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "children not ready"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    map.insert(b"go", b"").unwrap();
    join_all(children);
    // Exactly one insert of each key found it absent.
    assert_eq!(
        map.get_into::<8>(b"new").unwrap().unwrap(),
        1000i64.to_le_bytes()
    );
    for k in 0..1000u64 {
        check(&map.get_into::<16>(&k.to_le_bytes()).unwrap().unwrap());
    }
    let keys: Vec<_> = map.iter::<8, 16>().map(|entry| entry.unwrap().0).collect();
    assert_eq!(keys.len(), 1003); // 1000 keys, "ready", "go", "new"
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 1003);
    let mut scratch = vec![0; map.layout().chunks()];
    map.verify_exact(&mut scratch).unwrap();
}

/// At the agreed instant, opens or creates the map; exits 10 if it created it, 11 if not.
fn race(name: &str) {
    let start = Duration::from_millis(env_u64("START_MS"));
    while SystemTime::now().duration_since(UNIX_EPOCH).unwrap() < start {
        std::hint::spin_loop();
    }
    let map = SharedHashMap::open_or_create(name, Layout::new(100, 8, 8).unwrap()).unwrap();
    map.fetch_add(b"attached", 1).unwrap();
    std::process::exit(if map.created() { 10 } else { 11 });
}

#[test]
fn open_or_create_raced_by_eight_processes_has_one_creator() {
    let name = UniqueName::new("race");
    let start = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_millis(300);
    let start = ("START_MS", start.as_millis().to_string());
    let children: Vec<_> = (0..8)
        .map(|_| spawn_child("race", name.as_str(), std::slice::from_ref(&start), false))
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|mut child| child.wait().unwrap().code().unwrap_or(-1))
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
    assert_eq!(
        map.get_into::<8>(b"attached").unwrap().unwrap(),
        8i64.to_le_bytes()
    );
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
