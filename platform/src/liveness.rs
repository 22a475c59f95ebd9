//! [`ProcessLiveness`]: the core's `Liveness` for processes on one machine.
//!
//! An owner id is the process id (22 bits: Linux never gives out larger ones) and, above it, the
//! low 10 bits of the process's start time (field 22 of `/proc/<pid>/stat`, in clock ticks since
//! boot). An owner is dead when `kill(pid, 0)` finds no such process, or when the process now
//! using that id started at another time: its pid was reused. A reused pid is missed only when
//! the two start times agree in their low 10 bits, one chance in 1024, and then the cost is a
//! wait that times out, not a second writer in a chunk.
//!
//! All processes that share a map must be in the same PID namespace.

use shared_hashmap::Liveness;
use std::cell::Cell;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

const PID_BITS: u32 = 22;
const PID_MASK: u32 = (1 << PID_BITS) - 1;

/// The liveness of processes on one machine: owner ids from process ids and start times, dead
/// owners detected with `kill(pid, 0)`, and waits bounded by a timeout.
#[derive(Debug, Clone)]
pub struct ProcessLiveness {
    owner: NonZeroU32,
    timeout: Duration,
}

impl ProcessLiveness {
    /// The liveness of the calling process, whose waits give up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
        ProcessLiveness {
            owner: owner_id(pid, start_ticks(pid).ok().flatten()),
            timeout,
        }
    }

    /// How long a wait may last before the operation gives up.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// The owner id of process `pid` that started at `start` ticks after boot (when known).
fn owner_id(pid: u32, start: Option<u64>) -> NonZeroU32 {
    let start_bits = start.map_or(0, |ticks| (ticks & 0x3ff) as u32);
    // A pid is never 0, so the id is not either.
    NonZeroU32::new((pid & PID_MASK) | (start_bits << PID_BITS)).unwrap_or(NonZeroU32::MIN)
}

/// When process `pid` started, in clock ticks after boot: `Ok(None)` where `/proc` cannot
/// tell (another system, or `/proc` not mounted), `Err` if the process does not exist or has
/// already exited (a zombie whose parent has not yet reaped it still has a `/proc` entry and
/// answers `kill(pid, 0)`, but holds nothing any more).
#[cfg(target_os = "linux")]
fn start_ticks(pid: u32) -> Result<Option<u64>, ()> {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The fields after the command name, which is in parentheses and may contain anything:
        // state, then 18 others, then the start time.
        Ok(stat) => {
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return Ok(None);
            };
            let mut fields = rest.split_whitespace();
            match fields.next() {
                Some("Z" | "X" | "x") => Err(()),
                _ => Ok(fields.nth(18).and_then(|ticks| ticks.parse().ok())),
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(()),
        Err(_) => Ok(None),
    }
}

#[cfg(not(target_os = "linux"))]
fn start_ticks(_pid: u32) -> Result<Option<u64>, ()> {
    Ok(None)
}

thread_local! {
    /// When the current wait of this thread began (a thread runs one map operation at a time).
    static WAIT_STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
}

impl Liveness for ProcessLiveness {
    fn owner_id(&self) -> NonZeroU32 {
        self.owner
    }

    fn is_alive(&self, owner: u32) -> bool {
        let pid = owner & PID_MASK;
        let Some(raw) = rustix::process::Pid::from_raw(pid as i32) else {
            return false;
        };
        // `kill(pid, 0)`: no such process means dead; a process we may not signal still lives.
        if rustix::process::test_kill_process(raw) == Err(rustix::io::Errno::SRCH) {
            return false;
        }
        match start_ticks(pid) {
            Err(()) => false,
            Ok(Some(ticks)) => owner_id(pid, Some(ticks)).get() == owner,
            // Cannot tell a reused pid from the owner: assume alive (waits stay bounded).
            Ok(None) => true,
        }
    }

    fn wait(&self, attempt: u32) -> bool {
        let now = Instant::now();
        let started = WAIT_STARTED.with(|started| match started.get() {
            Some(at) if attempt > 0 => at,
            _ => {
                started.set(Some(now));
                now
            }
        });
        if now.duration_since(started) > self.timeout {
            return false;
        }
        match attempt {
            0..64 => std::hint::spin_loop(),
            64..128 => std::thread::yield_now(),
            // Sleeps that grow from 1 µs to 1 ms: a holder that is not running (descheduled,
            // stopped) is waited for without burning a processor.
            _ => std::thread::sleep(Duration::from_micros(1 << ((attempt - 128) / 8).min(10))),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_its_id_has_its_pid() {
        let liveness = ProcessLiveness::new(Duration::from_secs(1));
        let owner = liveness.owner_id().get();
        assert_eq!(owner & PID_MASK, std::process::id());
        assert!(liveness.is_alive(owner));
        #[cfg(target_os = "linux")]
        assert!(
            start_ticks(std::process::id()).unwrap().is_some(),
            "start time not parsed"
        );
    }

    #[test]
    fn a_reused_pid_is_dead() {
        let liveness = ProcessLiveness::new(Duration::from_secs(1));
        let owner = liveness.owner_id().get();
        // The same pid with other start-time bits: a process that had this pid before.
        assert!(!liveness.is_alive(owner ^ (1 << PID_BITS)));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_zombie_is_dead() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not reaped yet: a zombie once it has exited.
        while !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap()
            .contains(") Z")
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let liveness = ProcessLiveness::new(Duration::from_secs(1));
        assert!(!liveness.is_alive(pid));
        drop(child);
    }

    #[test]
    fn an_exited_process_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let liveness = ProcessLiveness::new(Duration::from_secs(1));
        assert!(!liveness.is_alive(pid));
        assert!(!liveness.is_alive(0));
    }

    #[test]
    fn waits_end_after_the_timeout() {
        let liveness = ProcessLiveness::new(Duration::from_millis(50));
        let started = Instant::now();
        let mut attempt = 0;
        while liveness.wait(attempt) {
            attempt += 1;
        }
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
