//! [`ProcessLiveness`]: the core's `Liveness` for processes on one machine.
//!
//! An owner id is the process id (22 bits: Linux never gives out larger ones) and, above it, the
//! low 10 bits of the process's start time (field 22 of `/proc/<pid>/stat`, in clock ticks since
//! boot). Start bits 0 mean "start time unknown" (a process that could not read its own
//! `/proc/self/stat`, or whose start time happens to end in ten zero bits).
//!
//! Declaring a live owner dead would let two writers into one chunk, so an owner is dead only on
//! definite evidence:
//! - `kill(pid, 0)` fails with `ESRCH`: no such process;
//! - `/proc/<pid>/stat` is readable and says the process has exited (state `Z`, `X`): a zombie
//!   its parent has not reaped yet still answers `kill(pid, 0)`, but holds nothing any more;
//! - `/proc/<pid>/stat` is readable, both start times are known, and they differ: the pid was
//!   reused.
//!
//! Anything else is answered "alive": `kill(pid, 0)` failing with `EPERM` (the process exists
//! and belongs to another user), or `/proc/<pid>/stat` missing, unreadable or unparsable (no
//! `/proc`, `/proc` mounted with `hidepid=`, another system). Then a lock held by a dead owner
//! is only waited for until the timeout, never taken over wrongly. A reused pid is missed when
//! the two start times agree in their low 10 bits (one chance in 1024) or either is unknown,
//! at the same cost: a wait that times out, not a second writer in a chunk.
//!
//! All processes that share a map must be in the same PID namespace, and a handle (with its
//! `ProcessLiveness`) must not be used in a child made by `fork`: the child would write its
//! parent's owner id into the locks it takes. Open the map again in the child.

use shared_hashmap::Liveness;
use std::cell::Cell;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

const PID_BITS: u32 = 22;
const PID_MASK: u32 = (1 << PID_BITS) - 1;
/// Start bits of an owner id whose start time is unknown.
const START_UNKNOWN: u32 = 0;

/// The liveness of processes on one machine: owner ids from process ids and start times, dead
/// owners detected with `kill(pid, 0)` and `/proc`, and waits bounded by a timeout.
///
/// It belongs to the process that made it: a child made by `fork` must not use it (or a map
/// handle holding it), since it would take locks under its parent's id.
#[derive(Debug, Clone)]
pub struct ProcessLiveness {
    owner: NonZeroU32,
    timeout: Duration,
}

impl ProcessLiveness {
    /// The liveness of the calling process, whose waits give up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
        let start = match stat(pid) {
            Stat::Started(ticks) => Some(ticks),
            Stat::Exited | Stat::Unknown => None,
        };
        ProcessLiveness {
            owner: owner_id(pid, start),
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
    let start_bits = start.map_or(START_UNKNOWN, start_bits);
    // A pid is never 0, so the id is not either.
    NonZeroU32::new((pid & PID_MASK) | (start_bits << PID_BITS)).unwrap_or(NonZeroU32::MIN)
}

/// The bits of a start time that an owner id keeps.
fn start_bits(ticks: u64) -> u32 {
    (ticks & 0x3ff) as u32
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stat {
    /// The process has not exited; it started this many clock ticks after boot.
    Started(u64),
    /// The process has exited (a zombie not yet reaped, or one being reaped).
    Exited,
    /// `/proc` cannot tell: the file is missing (the process is gone, or `/proc` is not
    /// mounted, or hides other users' processes), unreadable, or not in the expected format.
    Unknown,
}

/// Reads what `/proc/<pid>/stat` says about process `pid`.
#[cfg(target_os = "linux")]
fn stat(pid: u32) -> Stat {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_or(Stat::Unknown, |text| parse_stat(&text))
}

#[cfg(not(target_os = "linux"))]
fn stat(_pid: u32) -> Stat {
    Stat::Unknown
}

/// Parses the contents of a `/proc/<pid>/stat` file. The fields after the command name, which
/// is in parentheses and may contain anything (so the last `)` ends it), are: state, then 18
/// others, then the start time.
fn parse_stat(text: &str) -> Stat {
    let Some((_, rest)) = text.rsplit_once(')') else {
        return Stat::Unknown;
    };
    let mut fields = rest.split_whitespace();
    match fields.next() {
        Some("Z" | "X" | "x") => Stat::Exited,
        Some(_) => fields
            .nth(18)
            .and_then(|ticks| ticks.parse().ok())
            .map_or(Stat::Unknown, Stat::Started),
        None => Stat::Unknown,
    }
}

/// Whether `kill(pid, 0)` says that process `pid` may exist: only `ESRCH` says it does not
/// (`EPERM` means it exists but belongs to another user).
fn may_exist(pid: u32) -> bool {
    match rustix::process::Pid::from_raw(pid as i32) {
        Some(pid) => rustix::process::test_kill_process(pid) != Err(rustix::io::Errno::SRCH),
        // Pid 0 names no process (and is in no owner id this type makes).
        None => false,
    }
}

/// Whether `owner` may be alive, from what `may_exist` (`kill(pid, 0)`) and `stat`
/// (`/proc/<pid>/stat`) say about its pid: `false` only on definite evidence of death.
fn judge(owner: u32, may_exist: impl Fn(u32) -> bool, stat: impl Fn(u32) -> Stat) -> bool {
    let pid = owner & PID_MASK;
    if !may_exist(pid) {
        return false;
    }
    match stat(pid) {
        Stat::Exited => false,
        Stat::Started(ticks) => {
            let bits = owner >> PID_BITS;
            bits == START_UNKNOWN || bits == start_bits(ticks)
        }
        // Hidden, unreadable, or gone between the two looks: only `kill` can still tell.
        Stat::Unknown => may_exist(pid),
    }
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
        judge(owner, may_exist, stat)
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
    use std::os::unix::process::CommandExt;

    const PID: u32 = 4242;

    /// The start ticks of process `pid`, read from `/proc` whatever its state (a zombie's stat
    /// still has its start time).
    fn start_ticks_of(pid: u32) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let (_, rest) = text.rsplit_once(')').unwrap();
        rest.split_whitespace().nth(19).unwrap().parse().unwrap()
    }

    /// Start ticks whose low 10 bits are neither `ticks`'s nor "unknown".
    fn other_ticks(ticks: u64) -> u64 {
        if start_bits(ticks) == 1 { 2 } else { 1 }
    }

    /// A child that has exited but is not reaped: a zombie, for as long as the handle lives.
    fn zombie() -> std::process::Child {
        let child = std::process::Command::new("true").spawn().unwrap();
        let started = Instant::now();
        while stat(child.id()) != Stat::Exited {
            assert!(started.elapsed() < Duration::from_secs(10), "no zombie");
            std::thread::sleep(Duration::from_millis(1));
        }
        child
    }

    #[test]
    fn this_process_is_alive_and_its_id_has_its_pid() {
        let liveness = ProcessLiveness::new(Duration::from_secs(1));
        let owner = liveness.owner_id().get();
        assert_eq!(owner & PID_MASK, std::process::id());
        assert!(liveness.is_alive(owner));
        #[cfg(target_os = "linux")]
        assert_eq!(
            stat(std::process::id()),
            Stat::Started(start_ticks_of(std::process::id())),
            "start time not parsed"
        );
        assert_eq!(
            owner >> PID_BITS,
            start_bits(start_ticks_of(std::process::id()))
        );
    }

    #[test]
    fn a_reused_pid_is_dead() {
        let liveness = ProcessLiveness::new(Duration::from_secs(1));
        let pid = std::process::id();
        // This pid with another start time: a process that had this pid before.
        let earlier = owner_id(pid, Some(other_ticks(start_ticks_of(pid))));
        assert!(!liveness.is_alive(earlier.get()));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_zombie_is_dead() {
        let child = zombie();
        let pid = child.id();
        // Its real start time: only the zombie check can tell it is dead (it answers
        // `kill(pid, 0)`, and its start time matches).
        let owner = owner_id(pid, Some(start_ticks_of(pid)));
        assert!(may_exist(pid), "a zombie answers kill(pid, 0)");
        let liveness = ProcessLiveness::new(Duration::from_secs(1));
        assert!(!liveness.is_alive(owner.get()));
        drop(child);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn an_exited_process_is_dead() {
        let mut child = zombie();
        let pid = child.id();
        // Its real start time, read before it is reaped: only `kill(pid, 0)` can tell.
        let owner = owner_id(pid, Some(start_ticks_of(pid)));
        child.wait().unwrap();
        let liveness = ProcessLiveness::new(Duration::from_secs(1));
        assert!(!liveness.is_alive(owner.get()));
        assert!(!liveness.is_alive(0));
    }

    #[test]
    fn only_definite_evidence_means_dead() {
        let started_at = 5000;
        let owner = owner_id(PID, Some(started_at)).get();
        let unknown_start = owner_id(PID, None).get();
        let exists = |_| true;
        let gone = |_| false;
        // Definite: no such process, an exited one, a reused pid.
        assert!(!judge(owner, gone, |_| Stat::Started(started_at)));
        assert!(!judge(owner, exists, |_| Stat::Exited));
        assert!(!judge(unknown_start, exists, |_| Stat::Exited));
        assert!(!judge(owner, exists, |_| Stat::Started(other_ticks(
            started_at
        ))));
        // Not definite: alive.
        assert!(judge(owner, exists, |_| Stat::Started(started_at)));
        assert!(judge(owner, exists, |_| Stat::Started(started_at + 1024)));
        // `EPERM` from `kill` (exists) and no `/proc` entry (hidepid=2, or no `/proc`).
        assert!(judge(owner, exists, |_| Stat::Unknown));
        // The owner could not read its own start time: its start bits are unknown, never a
        // mismatch.
        assert_eq!(unknown_start >> PID_BITS, START_UNKNOWN);
        assert!(judge(unknown_start, exists, |_| Stat::Started(started_at)));
        assert!(judge(unknown_start, exists, |_| Stat::Unknown));
        // Gone between `kill` and the `/proc` read: the second `kill` says so.
        let calls = Cell::new(0);
        let exits_after_first_look = |_| {
            calls.set(calls.get() + 1);
            calls.get() == 1
        };
        assert!(!judge(owner, exits_after_first_look, |_| Stat::Unknown));
        // Pid 0 is no process's.
        assert!(!judge(0, may_exist, stat));
    }

    #[test]
    fn stat_files_parse_and_garbage_is_unknown() {
        let line = |state: &str, start: &str| {
            format!("77 (a) b) c) {state} 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 {start} 9 9")
        };
        assert_eq!(parse_stat(&line("S", "12345")), Stat::Started(12345));
        assert_eq!(parse_stat(&line("R", "0")), Stat::Started(0));
        assert_eq!(parse_stat(&line("Z", "12345")), Stat::Exited);
        assert_eq!(parse_stat(&line("X", "12345")), Stat::Exited);
        assert_eq!(parse_stat(&line("S", "soon")), Stat::Unknown);
        assert_eq!(parse_stat("77 (no closing paren S 1 2"), Stat::Unknown);
        assert_eq!(parse_stat("77 (short) S 1 2"), Stat::Unknown);
        assert_eq!(parse_stat("77 (empty)"), Stat::Unknown);
        assert_eq!(parse_stat(""), Stat::Unknown);
    }

    /// The environment variable that makes `a_process_of_another_user_is_alive` the child.
    const OTHER_USER_CHILD: &str = "SHM_LIVENESS_OTHER_USER_PID";

    /// `kill(pid, 0)` fails with `EPERM` for another user's process: it is alive, and with
    /// another start time it is a reused pid.
    fn check_another_users_process(pid: u32) {
        let pid_raw = rustix::process::Pid::from_raw(pid as i32).unwrap();
        assert_eq!(
            rustix::process::test_kill_process(pid_raw),
            Err(rustix::io::Errno::PERM),
            "process {pid} is not another user's"
        );
        let liveness = ProcessLiveness::new(Duration::from_secs(1));
        let ticks = start_ticks_of(pid);
        assert!(liveness.is_alive(owner_id(pid, Some(ticks)).get()));
        assert!(liveness.is_alive(owner_id(pid, None).get()));
        assert!(!liveness.is_alive(owner_id(pid, Some(other_ticks(ticks))).get()));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_process_of_another_user_is_alive() {
        if let Ok(pid) = std::env::var(OTHER_USER_CHILD) {
            check_another_users_process(pid.parse().unwrap());
            return;
        }
        if rustix::process::geteuid().is_root() {
            // Check this (root's) process from a child that runs as `nobody`.
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "liveness::tests::a_process_of_another_user_is_alive",
                ])
                .args(["--nocapture", "--quiet"])
                .env(OTHER_USER_CHILD, std::process::id().to_string())
                .stdout(std::process::Stdio::null())
                .uid(65534)
                .gid(65534)
                .status()
                .unwrap();
            assert!(
                status.success(),
                "the child running as nobody failed: {status}"
            );
        } else if rustix::process::test_kill_process(rustix::process::Pid::INIT)
            == Err(rustix::io::Errno::PERM)
        {
            check_another_users_process(1);
        } else {
            eprintln!(
                "a_process_of_another_user_is_alive: NOT EXERCISED (not root, and process 1 is \
                 this user's); only the simulated cases in only_definite_evidence_means_dead ran"
            );
        }
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
