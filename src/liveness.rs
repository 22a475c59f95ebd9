//! What the map needs from its environment to wait for locks and to recover them from a
//! process that died holding one: the [`Liveness`] trait.
//!
//! Each chunk lock word holds the owner id of its holder. A waiter that has waited a while asks
//! [`Liveness::is_alive`] about that id; if the owner is dead, the waiter takes the lock over
//! with a compare-and-swap, repairs the chunk and goes on. Every wait in the map (for a lock,
//! for a stable chunk, for a map to finish initializing) goes through [`Liveness::wait`], which
//! bounds it.
//!
//! The platform crate implements this with process ids; [`SingleProcess`] is the
//! implementation for one address space (threads, firmware), where no owner can die alone.

use core::num::NonZeroU32;

/// The environment a map waits and recovers in.
///
/// Implementations must be cheap to call: [`owner_id`](Liveness::owner_id) is read once when a
/// map handle is made, [`is_alive`](Liveness::is_alive) and [`wait`](Liveness::wait) only on
/// contended paths.
pub trait Liveness: Sync {
    /// The id this process writes into the lock words it holds. Every process that shares a
    /// map must use a different id, and a map handle must not be used from a process other
    /// than the one that made it (for example after `fork`): make a new handle there.
    fn owner_id(&self) -> NonZeroU32;

    /// Whether the process that wrote `owner` into a lock word may still be running.
    ///
    /// Answering `true` for a dead owner only delays recovery until [`wait`](Liveness::wait)
    /// gives up; answering `false` for a live one lets two processes into one chunk, so an
    /// implementation must be sure before it says `false`. `false` also promises that every
    /// store the owner made to the region is visible to the caller, as it is for a process
    /// that has exited (the kernel's own synchronization orders its death before the answer).
    /// `owner` may be any value, including garbage from a corrupt region.
    fn is_alive(&self, owner: u32) -> bool;

    /// Called between attempts while waiting; `attempt` counts from 0 for each operation,
    /// across all the waits it makes (for several locks, for chunks that keep changing, for
    /// retries). Returns `false` to give up, which makes the operation return
    /// [`Error::TimedOut`](crate::Error::TimedOut) without having changed anything.
    ///
    /// The default spins with exponential backoff and gives up after about 2^28 spin hints
    /// (a few seconds on current processors).
    fn wait(&self, attempt: u32) -> bool {
        spin_wait(attempt)
    }

    /// A test hook (feature `test-hooks`, for crash tests only): called by a writer in the
    /// middle of a write, holding the chunk lock, with the chunk's sequence odd and the new
    /// entry written but not yet published (or, for a one-word value replaced in place, already
    /// stored). A crash test makes it stop the process there and kills it. The default does
    /// nothing.
    #[cfg(feature = "test-hooks")]
    fn inside_write(&self) {}
}

/// Attempts after which the default [`Liveness::wait`] gives up.
#[cfg(not(loom))]
const SPIN_WAIT_ATTEMPTS: u32 = 1 << 18;
#[cfg(loom)]
const SPIN_WAIT_ATTEMPTS: u32 = 1 << 12;

/// Spins `2^attempt` hints for the first attempts, then 1024 per attempt; `false` once
/// `attempt` reaches the default limit.
pub fn spin_wait(attempt: u32) -> bool {
    if attempt >= SPIN_WAIT_ATTEMPTS {
        return false;
    }
    for _ in 0..(1u32 << attempt.min(10)) {
        crate::sync::spin_hint();
    }
    true
}

/// The [`Liveness`] of a map used from one address space only (threads, or firmware and its
/// interrupt handlers): every holder is this process, which cannot die without taking every
/// waiter with it.
///
/// Its owner id is 1; a lock held under any other id is waited on until
/// [`wait`](Liveness::wait) gives up.
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SingleProcess;

impl Liveness for SingleProcess {
    fn owner_id(&self) -> NonZeroU32 {
        NonZeroU32::MIN
    }

    fn is_alive(&self, _owner: u32) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_wait_gives_up_at_the_limit() {
        assert!(spin_wait(0));
        assert!(spin_wait(3));
        assert!(!spin_wait(SPIN_WAIT_ATTEMPTS));
        assert!(!spin_wait(u32::MAX));
    }

    #[test]
    fn single_process_is_always_alive() {
        assert_eq!(SingleProcess.owner_id().get(), 1);
        assert!(SingleProcess.is_alive(1));
        assert!(SingleProcess.is_alive(0xdead_beef));
    }
}
