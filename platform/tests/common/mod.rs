//! Helpers for the multi-process tests: unique map names that are removed whatever happens,
//! and child processes that are this test binary run again in a role.

#![allow(dead_code, unreachable_pub)]

use shared_hashmap_posix::SharedHashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The environment variable that selects a child's role.
pub const ROLE: &str = "SHM_TEST_ROLE";
/// The environment variable that passes a child the map's name.
pub const NAME: &str = "SHM_TEST_NAME";

/// A map name unique to this process and call, removed from the system when dropped (also when
/// the test fails), so no test leaves anything in `/dev/shm`.
pub struct UniqueName(pub String);

impl UniqueName {
    pub fn new(test: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        UniqueName(format!(
            "shm-hashmap-test-{}-{n}-{test}",
            std::process::id()
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Drop for UniqueName {
    fn drop(&mut self) {
        let _ = SharedHashMap::unlink(&self.0);
    }
}

/// Starts this test binary again, running only the test `child`, in role `role` with the
/// environment `env`. Its stdout (the test harness's report) is discarded unless `piped`.
pub fn spawn_child(role: &str, name: &str, env: &[(&str, String)], piped: bool) -> Child {
    let mut command = Command::new(std::env::current_exe().expect("the test binary's path"));
    command
        .args([
            "--exact",
            "child",
            "--nocapture",
            "--test-threads=1",
            "--quiet",
        ])
        .env(ROLE, role)
        .env(NAME, name)
        .stdout(if piped { Stdio::piped() } else { Stdio::null() });
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().expect("spawn a child test process")
}

/// Waits for every child and asserts that each succeeded.
pub fn join_all(children: Vec<Child>) {
    for mut child in children {
        let status = child.wait().expect("wait for a child");
        assert!(status.success(), "a child process failed: {status}");
    }
}

/// The role this process was started in, if it is a child.
pub fn role() -> Option<(String, String)> {
    Some((std::env::var(ROLE).ok()?, std::env::var(NAME).ok()?))
}

/// An environment variable of a child, parsed.
pub fn env_u64(key: &str) -> u64 {
    std::env::var(key)
        .unwrap_or_else(|_| panic!("{key} is not set"))
        .parse()
        .expect("a number")
}

/// A small deterministic generator (xorshift), for kill instants and operation mixes.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
