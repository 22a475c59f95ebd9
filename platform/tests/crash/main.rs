//! Processes SIGKILLed at random instants, hundreds of times, while others keep reading and
//! writing: every other process finishes each operation within a bounded time, `verify` stays
//! clean, every write the victim completed is intact, and the key it was writing holds its old
//! or its new value, never a mix. The same for a victim killed inside `clear()` and inside
//! inserts that overflow their home chunk.

#[path = "../common/mod.rs"]
mod common;

use common::{Rng, UniqueName, env_u64, role, spawn_child};
use shared_hashmap_posix::{Layout, MapError, Options, SharedHashMap};
use std::time::{Duration, Instant};

/// Kills per test (fewer with `SHM_CRASH_KILLS` set, for quick runs).
fn kills() -> u32 {
    std::env::var("SHM_CRASH_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

/// The longest any bystander operation may take. Waits are bounded by the handles' timeout
/// (5 s); this allows for a busy machine on top.
const OPERATION_BOUND: Duration = Duration::from_secs(8);

const VICTIM_KEYS: u64 = 64;
const BYSTANDER_KEYS: u64 = 64;

fn options() -> Options {
    Options::new().timeout(Duration::from_secs(5))
}

fn key(owner: u64, k: u64) -> [u8; 8] {
    (owner << 32 | k).to_le_bytes()
}

/// Bytes of a value: large, so that a writer killed while copying one is likely to be killed
/// in the middle of the copy (a test that kills writers must be able to catch a torn value).
const VALUE: usize = 512;

/// A value: 64 words, each derived from the owner, key and round, so that any mix of two
/// values' words is detected.
fn value(owner: u64, k: u64, round: u64) -> [u8; VALUE] {
    let mut value = [0u8; VALUE];
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
    assert_eq!(
        bytes.len(),
        VALUE,
        "key {k}: a value of {} bytes",
        bytes.len()
    );
    let round = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    assert!(
        bytes == value(owner, k, round),
        "key {k}: a torn or foreign value (round {round})"
    );
    round
}

/// While the parent has set "pause": count this process as paused and wait (so the parent can
/// verify a quiet map), and exit if the parent is gone.
fn pause_while_asked(map: &SharedHashMap) {
    if map.get_into::<8>(b"pause").unwrap().is_none() {
        return;
    }
    map.fetch_add(b"paused", 1).unwrap();
    while map.get_into::<8>(b"pause").unwrap().is_some() {
        exit_if_orphaned();
        std::thread::sleep(Duration::from_micros(100));
    }
    map.fetch_add(b"paused", -1).unwrap();
}

/// Children end when their parent does (a failed test must not leave them running).
fn exit_if_orphaned() {
    if std::os::unix::process::parent_id() != env_u64("SHM_PARENT") as u32 {
        std::process::exit(2);
    }
}

#[test]
fn child() {
    let Some((role, name)) = role() else { return };
    let map = SharedHashMap::open_with(&name, &options()).unwrap();
    // Victims run until killed; a bystander checks on its parent between rounds.
    let _ = std::thread::spawn(|| {
        loop {
            exit_if_orphaned();
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    match role.as_str() {
        "victim" => {
            // Round after round, rewrite every key in order, carrying on where the previous
            // victim was killed; killed at some instant itself.
            let mut first_key = env_u64("FIRST_KEY");
            for round in env_u64("FIRST_ROUND").. {
                for k in first_key..VICTIM_KEYS {
                    map.insert(&key(1, k), &value(1, k, round)).unwrap();
                }
                first_key = 0;
            }
        }
        "bystander" => {
            let id = env_u64("BYSTANDER");
            let mut round = 0u64;
            while map.get_into::<8>(b"stop").unwrap().is_none() {
                pause_while_asked(&map);
                for k in 0..BYSTANDER_KEYS {
                    let started = Instant::now();
                    map.insert(&key(10 + id, k), &value(10 + id, k, round))
                        .unwrap();
                    // The victim's keys share chunks with ours: read them too.
                    if let Some(bytes) = map.get_into::<VALUE>(&key(1, k)).unwrap() {
                        round_of(&bytes, 1, k);
                    }
                    let elapsed = started.elapsed();
                    assert!(
                        elapsed < OPERATION_BOUND,
                        "a bystander operation took {elapsed:?}"
                    );
                }
                round += 1;
            }
        }
        "clear-victim" => loop {
            for k in 0..200u64 {
                let _ = map.insert(&k.to_le_bytes(), &value(2, k, 0));
            }
            map.clear().unwrap();
        },
        "overflow-victim" => {
            // The map is nearly full: most of these inserts probe past their home chunk.
            let mut n = 0u64;
            loop {
                let k = 1000 + n % 64;
                match map.insert(&k.to_le_bytes(), &value(3, k, n)) {
                    Ok(_) | Err(MapError::TableFull) => {}
                    Err(error) => panic!("{error}"),
                }
                map.remove(&(1000 + (n + 32) % 64).to_le_bytes()).unwrap();
                n += 1;
            }
        }
        other => panic!("unknown role {other}"),
    }
}

/// Starts `role` in a child, lets it run for a random time, kills it with SIGKILL, reaps it.
fn run_and_kill(role: &str, name: &str, env: &[(&str, String)], rng: &mut Rng) {
    let mut victim = child_process(role, name, env);
    std::thread::sleep(Duration::from_micros(500 + rng.below(4000)));
    victim.kill().unwrap();
    victim.wait().unwrap();
}

/// `spawn_child`, telling the child who its parent is.
fn child_process(role: &str, name: &str, env: &[(&str, String)]) -> std::process::Child {
    let mut env = env.to_vec();
    env.push(("SHM_PARENT", std::process::id().to_string()));
    spawn_child(role, name, &env, false)
}

/// Asks the bystanders to pause, waits until all `count` have, runs `f`, lets them go on.
fn paused<T>(map: &SharedHashMap, count: i64, f: impl FnOnce() -> T) -> T {
    map.insert(b"pause", b"").unwrap();
    let started = Instant::now();
    while map
        .get_into::<8>(b"paused")
        .unwrap()
        .map_or(0, |n| i64::from_le_bytes(n.into_array().unwrap()))
        != count
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "bystanders did not pause"
        );
        std::thread::sleep(Duration::from_micros(100));
    }
    let result = f();
    map.remove(b"pause").unwrap();
    result
}

fn verify(map: &SharedHashMap) -> shared_hashmap_posix::VerifyReport {
    let mut scratch = vec![0; map.layout().chunks()];
    map.verify_exact(&mut scratch).unwrap()
}

#[test]
fn writers_killed_at_random_instants_leave_old_or_new_values() {
    let name = UniqueName::new("crash-writers");
    // Small: victim and bystanders share chunks, so the victim dies holding locks they need.
    let map = SharedHashMap::create_with(
        name.as_str(),
        Layout::new(
            VICTIM_KEYS as usize + 2 * BYSTANDER_KEYS as usize + 8,
            8,
            VALUE,
        )
        .unwrap(),
        &options(),
    )
    .unwrap();
    let bystanders: Vec<_> = (0..2)
        .map(|id| child_process("bystander", name.as_str(), &[("BYSTANDER", id.to_string())]))
        .collect();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    // Where the next victim carries on: the round and key the last one was killed at.
    let (mut next_round, mut next_key) = (1u64, 0u64);
    for kill in 0..kills() {
        let env = [
            ("FIRST_ROUND", next_round.to_string()),
            ("FIRST_KEY", next_key.to_string()),
        ];
        run_and_kill("victim", name.as_str(), &env, &mut rng);
        // With the bystanders paused: a writer that rewrites the keys in order, round after
        // round, and dies at any instant leaves [r, ..., r, r - 1, ..., r - 1] (the key it was
        // writing holding r or r - 1), or, in its first round, [1, ..., 1, absent, ...].
        let (rounds, report) = paused(&map, 2, || {
            let rounds: Vec<Option<u64>> = (0..VICTIM_KEYS)
                .map(|k| {
                    map.get_into::<VALUE>(&key(1, k))
                        .unwrap()
                        .map(|bytes| round_of(&bytes, 1, k))
                })
                .collect();
            (rounds, verify(&map))
        });
        let done = rounds
            .iter()
            .take_while(|round| **round == rounds[0])
            .count();
        let rest = &rounds[done..];
        let consistent = match rounds[0] {
            Some(top) => rest
                .iter()
                .all(|round| *round == top.checked_sub(1).filter(|r| *r > 0)),
            None => rest.iter().all(Option::is_none),
        };
        assert!(consistent, "kill {kill}: rounds {rounds:?}");
        (next_round, next_key) = match (rounds[0], done as u64) {
            (None, _) => (1, 0),
            (Some(top), done) if done == VICTIM_KEYS => (top + 1, 0),
            (Some(top), done) => (top, done),
        };
        let present = rounds.iter().flatten().count();
        assert!(report.entries >= present, "kill {kill}: {report:?}");
    }
    map.insert(b"stop", b"").unwrap();
    common::join_all(bystanders);
    // Every bystander's last writes are whole too; the map verifies clean.
    for id in 0..2 {
        for k in 0..BYSTANDER_KEYS {
            round_of(
                &map.get_into::<VALUE>(&key(10 + id, k)).unwrap().unwrap(),
                10 + id,
                k,
            );
        }
    }
    verify(&map);
}

#[test]
fn a_process_killed_inside_clear_leaves_a_usable_map() {
    let name = UniqueName::new("crash-clear");
    let layout = Layout::new(200, 8, VALUE).unwrap();
    let map = SharedHashMap::create_with(name.as_str(), layout, &options()).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..kills() / 4 {
        run_and_kill("clear-victim", name.as_str(), &[], &mut rng);
        // No under-count, no duplicate, every entry reachable: over-counts are allowed.
        verify(&map);
        // The map still takes its full capacity after a clear.
        map.clear().unwrap();
        for k in 0..200u64 {
            map.insert(&k.to_le_bytes(), &value(4, k, 0)).unwrap();
        }
        assert_eq!(verify(&map).entries, 200);
    }
}

#[test]
fn a_process_killed_inside_overflowing_inserts_loses_no_key() {
    let name = UniqueName::new("crash-overflow");
    let layout = Layout::new(140, 8, VALUE).unwrap();
    let map = SharedHashMap::create_with(name.as_str(), layout, &options()).unwrap();
    // Fill to near the slot count, so the victim's inserts overflow their home chunks.
    let slots = layout.chunks() as u64 * 8;
    for k in 0..slots - 40 {
        map.insert(&k.to_le_bytes(), &value(5, k, 0)).unwrap();
    }
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..kills() / 4 {
        run_and_kill("overflow-victim", name.as_str(), &[], &mut rng);
        let report = verify(&map);
        assert!(
            report.max_probe_distance > 0,
            "the test must make entries overflow"
        );
        // The fixed keys are all still there and whole.
        for k in 0..slots - 40 {
            assert_eq!(
                round_of(
                    &map.get_into::<VALUE>(&k.to_le_bytes()).unwrap().unwrap(),
                    5,
                    k
                ),
                0
            );
        }
    }
}
