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

/// This test binary, set to run only the test `child`, in role `role` on map `name` with the
/// environment `env`.
fn child_command(role: &str, name: &str, env: &[(&str, String)]) -> Command {
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
        .env(NAME, name);
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// Starts this test binary again, running only the test `child`, in role `role` with the
/// environment `env`. Its stdout (the test harness's report) is discarded unless `piped`.
pub fn spawn_child(role: &str, name: &str, env: &[(&str, String)], piped: bool) -> Child {
    child_command(role, name, env)
        .stdout(if piped { Stdio::piped() } else { Stdio::null() })
        .spawn()
        .expect("spawn a child test process")
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

/// What a child at the start line prints on stdout (see [`wait_at_start_line`]).
pub const AT_START_LINE: &str = "at-start-line";

/// In a child started by [`Gated::spawn`]: says it is at the start line, then blocks until the
/// parent lets every child go at once ([`Gated::go`] closes the child's stdin).
pub fn wait_at_start_line() {
    use std::io::{Read, Write};
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{AT_START_LINE}").expect("tell the parent");
    stdout.flush().expect("tell the parent");
    let mut rest = Vec::new();
    std::io::stdin()
        .read_to_end(&mut rest)
        .expect("wait for the parent's go");
}

/// Children that start together: each blocks in [`wait_at_start_line`] until all of them are
/// there and the parent calls [`go`](Gated::go). Children still running when this is dropped
/// (a failed test) are killed and reaped.
#[derive(Default)]
pub struct Gated {
    children: Vec<Child>,
    stdouts: Vec<std::io::BufReader<std::process::ChildStdout>>,
    stdins: Vec<std::process::ChildStdin>,
}

impl Gated {
    pub fn new() -> Self {
        Gated::default()
    }

    /// Starts this test binary again in `role` (as [`spawn_child`] does), its stdin and stdout
    /// pipes to this process.
    pub fn spawn(&mut self, role: &str, name: &str, env: &[(&str, String)]) {
        let mut child = child_command(role, name, env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn a child test process");
        self.stdins.push(child.stdin.take().expect("a piped stdin"));
        self.stdouts.push(std::io::BufReader::new(
            child.stdout.take().expect("a piped stdout"),
        ));
        self.children.push(child);
    }

    /// Waits until every child is at the start line, then lets them all go at once.
    pub fn go(&mut self) {
        use std::io::BufRead;
        for (i, stdout) in self.stdouts.iter_mut().enumerate() {
            let mut line = String::new();
            while line.trim_end() != AT_START_LINE {
                line.clear();
                let read = stdout.read_line(&mut line).expect("read a child's stdout");
                assert!(read > 0, "child {i} ended before the start line");
            }
        }
        // Closing a child's stdin ends its wait; closed one after another, microseconds apart.
        self.stdins.clear();
    }

    /// Waits for every child, up to `bound` in all; kills them all and panics past it.
    pub fn join(&mut self, bound: std::time::Duration) -> Vec<std::process::ExitStatus> {
        let started = std::time::Instant::now();
        let mut statuses = vec![None; self.children.len()];
        while statuses.iter().any(Option::is_none) {
            for (status, child) in statuses.iter_mut().zip(&mut self.children) {
                if status.is_none() {
                    *status = child.try_wait().expect("wait for a child");
                }
            }
            assert!(
                started.elapsed() < bound,
                "children still running after {bound:?}: {statuses:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.children.clear();
        statuses.into_iter().flatten().collect()
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
