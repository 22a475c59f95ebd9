//! Chunk locks that name their owner, their takeover from dead owners, and the sequence word
//! that writers bump so readers can read without locking.
//!
//! A lock word is 0 when free and holds the holder's owner id otherwise, from the instant it is
//! taken: there is never a held lock without a recorded owner. A waiter that has waited
//! [`CHECK_EVERY`] attempts asks the map's [`Liveness`] whether the owner is alive; if not, it
//! swaps the dead owner's id for its own with a compare-and-swap (only one waiter can win) and
//! repairs the chunk. Repair is only "make the sequence even": by construction (see
//! `chunk.rs`), every state a writer can die in is a consistent chunk.
//!
//! The sequence word is even while the chunk is stable. A writer holding the lock makes it odd,
//! changes the chunk, and makes it even again; readers retry when it moved (see `raw/read.rs`).
//! It is 32 bits, like Linux's seqcount: a reader stopped in the middle of a read for exactly
//! 2^31 writes to one chunk (a debugger, `SIGSTOP`) could take a torn value for a whole one.
//! Lengths are checked regardless, so even then nothing is read out of bounds.

use crate::Error;
use crate::chunk::Tags;
use crate::liveness::Liveness;
use crate::region::ControlBlock;
use crate::sync::{Ordering, fence};
use core::cell::Cell;

/// A waiter checks the holder's liveness once every this many attempts (every other attempt
/// under loom, which explores every interleaving of each attempt).
#[cfg(not(loom))]
pub(crate) const CHECK_EVERY: u32 = 64;
#[cfg(loom)]
pub(crate) const CHECK_EVERY: u32 = 2;

/// Who is acting on a map, how it waits, and how long it has waited: one per operation, so
/// every wait inside one operation (for several locks, for chunks that keep changing, for
/// retries) counts against the single bound that [`Liveness::wait`] sets.
pub(crate) struct Waiter<'a> {
    owner: u32,
    liveness: &'a dyn Liveness,
    attempts: Cell<u32>,
    /// The highest chunk whose lock this operation holds, if any: it may wait for another lock
    /// only above it, so that operations never wait for each other in a cycle.
    highest_held: Cell<Option<usize>>,
}

impl<'a> Waiter<'a> {
    /// A waiter for one operation by `owner`.
    pub(crate) fn new(owner: u32, liveness: &'a dyn Liveness) -> Self {
        Waiter {
            owner,
            liveness,
            attempts: Cell::new(0),
            highest_held: Cell::new(None),
        }
    }

    /// Records the highest chunk whose lock the operation now holds (`None`: holds none).
    pub(crate) fn set_highest_held(&self, chunk: Option<usize>) {
        self.highest_held.set(chunk);
    }

    /// Whether the operation may wait for `chunk`'s lock: it holds none at or above it.
    pub(crate) fn may_wait_for(&self, chunk: usize) -> bool {
        self.highest_held.get().is_none_or(|held| chunk > held)
    }

    /// Waits once more; [`Error::TimedOut`] once the liveness policy gives up.
    pub(crate) fn wait(&self) -> Result<(), Error> {
        let attempt = self.attempts.get();
        self.attempts.set(attempt.saturating_add(1));
        if self.liveness.wait(attempt) {
            Ok(())
        } else {
            Err(Error::TimedOut)
        }
    }

    /// Whether this wait is one on which to ask about the holder's liveness.
    fn due_for_liveness_check(&self) -> bool {
        self.attempts.get() % CHECK_EVERY == CHECK_EVERY - 1
    }
}

/// A held chunk lock. Dropping it ends any write in progress and releases the lock.
pub(crate) struct ChunkGuard<'a> {
    control: &'a ControlBlock,
    /// The chunk's (even) sequence when no write is in progress.
    seq: u32,
    writing: bool,
}

impl<'a> ChunkGuard<'a> {
    #[inline]
    fn acquired(control: &'a ControlBlock) -> Self {
        // Relaxed: we hold the lock, whose Acquire made the last holder's stores visible.
        let mut seq = control.seq.load(Ordering::Relaxed);
        if seq & 1 != 0 {
            // A holder died (or panicked) inside a write; what it left is consistent.
            repair(control, seq);
            seq = seq.wrapping_add(1);
        }
        ChunkGuard {
            control,
            seq,
            writing: false,
        }
    }

    /// Makes the sequence odd: readers that overlap what follows will retry.
    #[inline]
    pub(crate) fn begin_write(&mut self) {
        debug_assert!(!self.writing);
        self.writing = true;
        // Relaxed store, then a Release fence: a reader whose (Relaxed) loads observe any of
        // the stores that follow, and which then issues its Acquire fence, also observes this
        // odd value (or a later one) when it re-checks the sequence. As in crossbeam's SeqLock.
        self.control
            .seq
            .store(self.seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
    }

    /// Makes the sequence even again.
    #[inline]
    pub(crate) fn end_write(&mut self) {
        debug_assert!(self.writing);
        self.writing = false;
        self.seq = self.seq.wrapping_add(2);
        // Release: pairs with a reader's Acquire load of the sequence, so a reader that starts
        // after this store sees the complete change.
        self.control.seq.store(self.seq, Ordering::Release);
    }
}

impl Drop for ChunkGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.writing {
            self.end_write();
        }
        // Release: pairs with the Acquire of the next holder's compare-and-swap.
        self.control.lock.store(0, Ordering::Release);
    }
}

/// Makes an odd sequence even after its writer died. The caller holds the lock.
fn repair(control: &ControlBlock, seq: u32) {
    // Relaxed loads then an Acquire fence: pairs with the Release stores of tags and slot maps
    // (`chunk.rs`), so every slot the dead writer published is visible complete to us, and to
    // readers through the Release store of the sequence below.
    let _ = Tags::load(control);
    let _ = control.map.load(Ordering::Relaxed);
    fence(Ordering::Acquire);
    // Release: readers that load the new sequence with Acquire see the state read above.
    control.seq.store(seq.wrapping_add(1), Ordering::Release);
}

/// Takes `control`'s lock if it is free, without waiting.
#[inline]
pub(crate) fn try_lock<'a>(
    control: &'a ControlBlock,
    waiter: &Waiter<'_>,
) -> Option<ChunkGuard<'a>> {
    try_lock_as(control, waiter.owner)
}

/// Takes `control`'s lock for `owner` if it is free, without waiting: the uncontended path,
/// which needs no [`Waiter`] (an operation makes one when it first has to wait, and so keeps
/// it out of memory otherwise).
#[inline]
pub(crate) fn try_lock_as(control: &ControlBlock, owner: u32) -> Option<ChunkGuard<'_>> {
    // Acquire on success: pairs with the Release in `ChunkGuard::drop` of the previous holder.
    // Relaxed on failure: nothing is read on that path.
    match control
        .lock
        .compare_exchange(0, owner, Ordering::Acquire, Ordering::Relaxed)
    {
        Ok(_) => Some(ChunkGuard::acquired(control)),
        Err(_) => None,
    }
}

/// Takes `control`'s lock, waiting (bounded by the waiter's liveness) and taking it over from a
/// dead holder.
#[inline]
pub(crate) fn lock<'a>(
    control: &'a ControlBlock,
    waiter: &Waiter<'_>,
) -> Result<ChunkGuard<'a>, Error> {
    match try_lock(control, waiter) {
        Some(guard) => Ok(guard),
        None => lock_contended(control, waiter),
    }
}

/// [`lock`]'s path for a lock that was not free at the first try.
#[cold]
#[inline(never)]
pub(crate) fn lock_contended<'a>(
    control: &'a ControlBlock,
    waiter: &Waiter<'_>,
) -> Result<ChunkGuard<'a>, Error> {
    loop {
        // Relaxed: only a hint for whether to try; the compare-and-swap decides.
        let holder = control.lock.load(Ordering::Relaxed);
        if holder == 0 {
            if let Some(guard) = try_lock(control, waiter) {
                return Ok(guard);
            }
        } else if let Some(guard) = take_over_if_dead(control, holder, waiter) {
            return Ok(guard);
        }
        waiter.wait()?;
    }
}

/// Every [`CHECK_EVERY`] attempts, takes the lock from `holder` if it is dead.
fn take_over_if_dead<'a>(
    control: &'a ControlBlock,
    holder: u32,
    waiter: &Waiter<'_>,
) -> Option<ChunkGuard<'a>> {
    if !waiter.due_for_liveness_check() || waiter.liveness.is_alive(holder) {
        return None;
    }
    // Acquire on success: the dead holder released nothing, so this orders our reads after the
    // swap; `ChunkGuard::acquired` then repairs with its own Acquire fence.
    control
        .lock
        .compare_exchange(holder, waiter.owner, Ordering::Acquire, Ordering::Relaxed)
        .ok()
        .map(|_| ChunkGuard::acquired(control))
}

/// Called by a reader that has seen `control`'s sequence odd or moving: waits, and every
/// [`CHECK_EVERY`] attempts repairs the chunk if no live writer is behind an odd sequence (its
/// holder died, or the region was left with an odd sequence and no holder).
pub(crate) fn reader_wait(control: &ControlBlock, waiter: &Waiter<'_>) -> Result<(), Error> {
    if waiter.due_for_liveness_check() {
        // Relaxed: a hint; the guard's compare-and-swap decides.
        let holder = control.lock.load(Ordering::Relaxed);
        if holder == 0 {
            // Taking the lock repairs an odd sequence; dropping it releases the lock.
            drop(try_lock(control, waiter));
        } else {
            drop(take_over_if_dead(control, holder, waiter));
        }
    }
    waiter.wait()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use core::num::NonZeroU32;

    fn block() -> ControlBlock {
        ControlBlock::zeroed()
    }

    /// Owner 7 is dead; waits give up after 1000 attempts.
    struct SevenIsDead;
    impl Liveness for SevenIsDead {
        fn owner_id(&self) -> NonZeroU32 {
            NonZeroU32::new(2).unwrap()
        }
        fn is_alive(&self, owner: u32) -> bool {
            owner != 7
        }
        fn wait(&self, attempt: u32) -> bool {
            attempt < 1000
        }
    }

    fn waiter() -> Waiter<'static> {
        Waiter::new(2, &SevenIsDead)
    }

    #[test]
    fn lock_records_owner_and_drop_releases() {
        let control = block();
        let guard = lock(&control, &waiter()).unwrap();
        assert_eq!(control.lock.load(Ordering::Relaxed), 2);
        assert!(try_lock(&control, &waiter()).is_none());
        drop(guard);
        assert_eq!(control.lock.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn writes_move_the_sequence_by_two() {
        let control = block();
        let mut guard = lock(&control, &waiter()).unwrap();
        guard.begin_write();
        assert_eq!(control.seq.load(Ordering::Relaxed), 1);
        guard.end_write();
        assert_eq!(control.seq.load(Ordering::Relaxed), 2);
        guard.begin_write();
        drop(guard); // dropping inside a write ends it
        assert_eq!(control.seq.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn a_dead_holder_is_taken_over_and_its_chunk_repaired() {
        let control = block();
        control.lock.store(7, Ordering::Relaxed);
        control.seq.store(11, Ordering::Relaxed);
        let guard = lock(&control, &waiter()).unwrap();
        assert_eq!(control.lock.load(Ordering::Relaxed), 2);
        assert_eq!(control.seq.load(Ordering::Relaxed), 12);
        drop(guard);
        assert_eq!(control.lock.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_live_holder_makes_lock_time_out_without_change() {
        let control = block();
        control.lock.store(5, Ordering::Relaxed);
        control.seq.store(3, Ordering::Relaxed);
        assert_eq!(lock(&control, &waiter()).err(), Some(Error::TimedOut));
        let waiter = waiter();
        for _ in 0..1000 {
            reader_wait(&control, &waiter).unwrap();
        }
        assert_eq!(reader_wait(&control, &waiter), Err(Error::TimedOut));
        assert_eq!(control.lock.load(Ordering::Relaxed), 5);
        assert_eq!(control.seq.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn readers_repair_an_odd_sequence_left_without_holder() {
        let control = block();
        control.seq.store(5, Ordering::Relaxed);
        let waiter = waiter();
        for _ in 0..CHECK_EVERY {
            reader_wait(&control, &waiter).unwrap();
        }
        assert_eq!(control.seq.load(Ordering::Relaxed), 6);
        assert_eq!(control.lock.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn readers_take_over_from_a_dead_holder() {
        let control = block();
        control.lock.store(7, Ordering::Relaxed);
        control.seq.store(9, Ordering::Relaxed);
        let waiter = waiter();
        for _ in 0..CHECK_EVERY {
            reader_wait(&control, &waiter).unwrap();
        }
        assert_eq!(control.seq.load(Ordering::Relaxed), 10);
        assert_eq!(control.lock.load(Ordering::Relaxed), 0);
    }
}
