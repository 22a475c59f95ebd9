//! Writes: every operation that changes an entry, built on one locked read-decide-apply step.
//!
//! A writer locks the key's home chunk first. Every writer of a key takes that same lock, which
//! is what makes duplicate keys impossible. Holding it, the writer finds the key, or the first
//! chunk with a free slot, and locks that chunk too if it is another one. Holding one lock, it
//! waits for another only if that comes later in chunk order; an earlier one it try-locks, and
//! on failure releases everything, waits for the busy chunk and starts again. Then the
//! operation decides what to do from the current entry, and the change is applied:
//!
//! - insert of a new key: raise the overflow counters of the chunks it probes past, write the
//!   slot, publish it by setting its tag (a writer that dies before the tag leaves nothing;
//!   one that dies after leaves the complete entry, and at most an over-count);
//! - replace: write the chunk's spare physical slot, publish it with one store of the slot map;
//!   or, for a value of one word replacing one of the same length, store that word in place;
//! - remove: clear the tag (no sequence bump: no slot is written), then lower the overflow
//!   counters (a death between the two leaves an over-count: a slightly longer probe, never a
//!   lost key).
//!
//! `clear` locks one chunk at a time, so writers that find their key in a chunk other than its
//! home check it again once they hold that chunk's lock.

use super::RawMap;
use super::read::{InChunk, Locate};
use crate::bytes::{Bytes, WORD};
use crate::chunk::{self, Tags, tag_of};
use crate::error::{Corruption, Error, ValueProblem};
use crate::header;
use crate::layout::Layout;
use crate::lock::{self, ChunkGuard, Waiter};
use crate::probe::{self, Probe};
use crate::region::SlotRef;
use crate::slot::Entry;
use crate::sync::Ordering;

/// What an operation does once it holds the locks for its key.
pub(crate) enum Action<P> {
    /// Change nothing.
    Keep,
    /// Insert the key with this value, or replace its value.
    Put(P),
    /// Remove the key.
    Remove,
}

/// The key's entry as an operation sees it while holding the key's locks: nothing can change it.
#[derive(Clone, Copy)]
pub(crate) struct Current<'a> {
    slot: SlotRef<'a>,
    value_len: usize,
}

impl Current<'_> {
    /// The length of the stored value.
    pub(crate) fn value_len(&self) -> usize {
        self.value_len
    }

    /// Copies the stored value into `out` and returns its length.
    pub(crate) fn copy_value(&self, out: &mut [u8]) -> Result<usize, Error> {
        let Some(out) = out.get_mut(..self.value_len) else {
            return Err(Error::BufferTooSmall {
                needed: self.value_len,
                got: out.len(),
            });
        };
        self.slot.copy_value(out);
        Ok(self.value_len)
    }

    /// Whether the stored value equals `value`.
    pub(crate) fn value_equals<V: Bytes + ?Sized>(&self, value: &V) -> bool {
        self.slot.value_equals(value)
    }
}

/// Where a write acts: a logical slot of a chunk whose lock it holds, and whether the key is in
/// it (else the slot is free for the key). Holding the lock, nothing here can change.
#[derive(Clone, Copy)]
struct Spot<'r> {
    chunk: usize,
    slot: usize,
    /// The chunk's slot map.
    map: u32,
    /// The physical slot behind `slot` under `map`.
    entry: SlotRef<'r>,
    present: bool,
}

/// What the home chunk alone says about a write (see `spot_at_home`).
enum AtHome<'r> {
    /// Decided: the key's spot, or `None` (absent, and nothing to insert or no need to).
    Decided(Option<Spot<'r>>),
    /// The home chunk does not decide: the general path must look further.
    Beyond,
    /// The key is absent, and must be inserted, but the home chunk is full: the first chunk
    /// with room along its probe takes it.
    Full,
}

/// What a writer's probe found (see `probe_for_write`).
enum Probed {
    /// The key is in this chunk and logical slot.
    Found(usize, usize),
    /// The key is absent. `room`: the first chunk the probe saw with an empty slot, if any
    /// (a hint, as [`RawMap::first_with_room`]); `visited`: how many chunks it looked at.
    Absent { room: Option<usize>, visited: usize },
    /// This chunk is being written; read it under its lock.
    Busy(usize),
}

/// The locks a write holds past the home chunk's fast path, and where it acts.
struct Locked<'r> {
    home: ChunkGuard<'r>,
    /// The lock of the spot's chunk when that is not the home chunk (`lock_key_beyond_home`
    /// and `lock_room_past_home`, the only places that make a `Locked`, keep it exactly then).
    other: Option<ChunkGuard<'r>>,
    spot: Option<Spot<'r>>,
}

impl<'r> Locked<'r> {
    /// The guard of the spot's chunk.
    fn spot_guard(&mut self) -> &mut ChunkGuard<'r> {
        match &mut self.other {
            Some(other) => other,
            None => &mut self.home,
        }
    }
}

/// A byte string the map owns for the length of a write (what `update` closures return).
pub(crate) struct Owned<T>(pub(crate) T);

impl<T: AsRef<[u8]>> Bytes for Owned<T> {
    fn len(&self) -> usize {
        self.0.as_ref().len()
    }
    fn word(&self, index: usize) -> usize {
        self.0.as_ref().word(index)
    }
    fn hash(&self, seed: &crate::hash::Seed) -> u64 {
        self.0.as_ref().hash(seed)
    }
}

/// Region size above which writes prefetch the slots they will likely touch before they take
/// the home lock (see `prefetch_for_write`): a smaller region stays in the caches, where a
/// prefetch only costs the instructions that compute its address.
const PREFETCH_ABOVE: usize = 4 << 20;

/// Whether writes to a map with `layout` prefetch (see [`PREFETCH_ABOVE`]).
pub(super) fn prefetches(layout: &Layout) -> bool {
    layout.region_size() > PREFETCH_ABOVE
}

/// The shortest value area, in bytes, whose lines a write prefetches all at once (four cache
/// lines) when it will fill a slot: from there on, waiting for each line as the copy reaches it
/// costs more than the prefetch instructions. (Reads do not: see `read::CopyInto`.)
const PREFETCHED_VALUE: usize = 256;

/// Whether writes to a map with `layout` prefetch every line of a value they will fill: where
/// values are long and the region outgrows the caches (see [`prefetches`]).
pub(super) fn prefetches_values(layout: &Layout) -> bool {
    layout.max_value_len() >= PREFETCHED_VALUE && prefetches(layout)
}

/// A write's key, with what the write derives from it once. The probe sequence past the home
/// chunk is derived only where a write needs it ([`Write::probe`]): the common path touches
/// the home chunk alone, and every value it keeps live is one the lock's compare-and-swap may
/// have to wait for (see `write_op`).
struct Write<'k, K: ?Sized> {
    key: &'k K,
    key_len: usize,
    hash: u64,
    home: usize,
}

impl<K: ?Sized> Write<'_, K> {
    /// The key's probe sequence in a map of `chunks` chunks.
    fn probe(&self, chunks: usize) -> Probe {
        Probe::new(self.hash, chunks)
    }
}

impl<K: ?Sized> Clone for Write<'_, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: ?Sized> Copy for Write<'_, K> {}

impl<'r> RawMap<'r> {
    /// Locks `key`'s home chunk (and the chunk it is in, or a chunk with room for it when
    /// `may_insert`), lets `decide` choose from the current entry, and applies the choice.
    /// `decide` runs exactly once unless an error comes first, and nothing changes if it fails.
    #[inline(always)]
    pub(crate) fn write_op<K, P, R>(
        &self,
        key: &K,
        may_insert: bool,
        decide: impl FnOnce(Option<Current<'r>>) -> Result<(Action<P>, R), Error>,
    ) -> Result<R, Error>
    where
        K: Bytes + ?Sized,
        P: Bytes,
    {
        let key_len = key.len();
        self.check_key(key_len)?;
        let hash = key.hash(&self.seed);
        let home = probe::home(hash, self.region.chunks());
        if self.prefetch_writes {
            self.prefetch_for_write(home, tag_of(hash), may_insert);
        }
        // The waiter, and copies of `write` for the out-of-line paths, are made only on those
        // paths: a value whose address escapes lives in memory, and every store the common path
        // makes delays the next lock's compare-and-swap, which waits for all of them.
        let control = self.region.control(home);
        let (mut home_guard, waiter) = match lock::try_lock_as(control, self.owner) {
            Some(guard) => (guard, None),
            None => {
                let waiter = self.waiter();
                (lock::lock_contended(control, &waiter)?, Some(waiter))
            }
        };
        let write = Write {
            key,
            key_len,
            hash,
            home,
        };
        let (result, removed_from) = match self.spot_at_home(&write, may_insert) {
            AtHome::Decided(spot) => {
                let outcome = self.apply(&mut home_guard, &write, spot, decide);
                drop(home_guard);
                outcome?
            }
            at_home => {
                let waiter = waiter.unwrap_or_else(|| self.waiter());
                let beyond = write;
                let past_full_home = match at_home {
                    AtHome::Full => self.lock_room_past_home(&beyond, home_guard, &waiter)?,
                    _ => Err(home_guard),
                };
                let mut locked = match past_full_home {
                    Ok(locked) => locked,
                    Err(home_guard) => {
                        self.lock_key_beyond_home(&beyond, may_insert, home_guard, &waiter)?
                    }
                };
                let spot = locked.spot;
                let outcome = self.apply(locked.spot_guard(), &write, spot, decide);
                drop(locked);
                outcome?
            }
        };
        // With the locks released, lower the counters of the chunks a removed entry had passed.
        if let Some(chunk) = removed_from {
            self.lower_overflow(write.probe(self.region.chunks()), chunk);
        }
        Ok(result)
    }

    /// Starts loading the slots a write to a key with `tag` in home chunk `chunk` will likely
    /// touch, before it waits for the chunk's lock: the slot of the first matching tag, and the
    /// spare when `may_insert` (an operation that may insert usually replaces if the key is
    /// there, reading the one and writing the other), or else the first empty slot (an
    /// insert), with every line of a long value in a slot it will write. When the table is
    /// larger than the caches, these loads then overlap with the lock's own, instead of
    /// following it one after another. Read without the lock, so only a guess: a wrong one
    /// costs a wasted load.
    #[inline(always)]
    fn prefetch_for_write(&self, chunk: usize, tag: u8, may_insert: bool) {
        let control = self.region.control(chunk);
        let tags = Tags::load(control);
        // Relaxed: a hint; nothing read here is trusted.
        let map = control.map.load(Ordering::Relaxed);
        // `written`: the write will fill the slot, so all of a long value's lines too.
        let prefetch = |phys: Option<crate::region::Phys>, written: bool| {
            if let Some(phys) = phys {
                let slot = self.region.slot(chunk, phys);
                slot.prefetch();
                if written && self.prefetch_values {
                    slot.prefetch_value();
                }
            }
        };
        // A replace of a one-word value usually stores it in place (`replace_word`).
        let (slot, spare) = match tags.matching(tag).first() {
            Some(slot) => (Some(slot), may_insert && self.layout.max_value_len() > WORD),
            None if may_insert => (tags.empty().first(), false),
            None => (None, false),
        };
        if let Some(slot) = slot {
            // A matching slot is only read (its key); an empty one is written.
            let written = !spare && may_insert;
            prefetch(chunk::physical(map, slot, chunk).ok(), written);
        }
        if spare {
            prefetch(chunk::spare_unchecked(map), true);
        }
    }

    /// Lets `decide` choose from the entry at `spot` and applies the choice, holding the lock
    /// of the key's home chunk and `guard`, the lock of `spot`'s chunk. Returns `decide`'s
    /// result and, after a removal, the chunk removed from (whose overflow counters the caller
    /// lowers once it has released the locks).
    #[inline(always)]
    fn apply<K, P, R>(
        &self,
        guard: &mut ChunkGuard<'_>,
        write: &Write<'_, K>,
        spot: Option<Spot<'r>>,
        decide: impl FnOnce(Option<Current<'r>>) -> Result<(Action<P>, R), Error>,
    ) -> Result<(R, Option<usize>), Error>
    where
        K: Bytes + ?Sized,
        P: Bytes,
    {
        let current = match spot {
            Some(spot) if spot.present => {
                let entry = spot.entry;
                let value_len = entry.value_len();
                if value_len > self.layout.max_value_len() {
                    let (chunk, slot) = (spot.chunk as u32, spot.slot as u8);
                    return Err(Error::Corrupt(Corruption::SlotLength { chunk, slot }));
                }
                Some(Current {
                    slot: entry,
                    value_len,
                })
            }
            _ => None,
        };
        let (action, result) = decide(current)?;
        let mut removed_from = None;
        match action {
            Action::Keep => {}
            Action::Put(value) => {
                // The length is read once: a value whose length changes between reads (a
                // caller's `AsRef` with interior mutability) cannot slip an unchecked one in.
                let value_len = value.len();
                self.check_value(value_len)?;
                let spot = spot.ok_or(Error::TableFull)?;
                let entry = Entry {
                    key: write.key,
                    key_len: write.key_len,
                    value: &value,
                    value_len,
                    hash: write.hash,
                    stamp: 0,
                };
                if spot.present {
                    self.replace(guard, spot, entry)?;
                } else {
                    self.place(guard, write, spot, entry);
                }
            }
            Action::Remove => {
                if let Some(spot) = spot.filter(|spot| spot.present) {
                    // No sequence bump: a removal writes no slot, it only clears a tag. A reader
                    // that saw the tag set reads an entry that is still whole; the slot is only
                    // rewritten by a later insert or update, which bumps the sequence and so
                    // fails any read that overlapped it.
                    chunk::store_tag(self.region.control(spot.chunk), spot.slot, 0);
                    removed_from = Some(spot.chunk);
                }
            }
        }
        Ok((result, removed_from))
    }

    /// The slot holding logical slot `slot` of a chunk this thread has locked.
    #[inline]
    fn locked_slot(&self, chunk: usize, slot: usize) -> Result<SlotRef<'r>, Error> {
        Ok(self.locked_spot(chunk, slot, true)?.entry)
    }

    /// The spot at logical slot `slot` of a chunk this thread has locked.
    #[inline(always)]
    fn locked_spot(&self, chunk: usize, slot: usize, present: bool) -> Result<Spot<'r>, Error> {
        // Relaxed: the chunk lock's Acquire ordered this load after the last holder's stores.
        let map = self.region.control(chunk).map.load(Ordering::Relaxed);
        let entry = self.region.slot(chunk, chunk::physical(map, slot, chunk)?);
        Ok(Spot {
            chunk,
            slot,
            map,
            entry,
            present,
        })
    }

    /// The common cases of a write, decided from the home chunk alone while holding its lock
    /// (so it cannot change): the key is there; or it is absent (the home chunk's overflow
    /// counter for its class is zero) and either need not be inserted or has room at home.
    #[inline(always)]
    fn spot_at_home<K: Bytes + ?Sized>(
        &self,
        write: &Write<'_, K>,
        may_insert: bool,
    ) -> AtHome<'r> {
        let chunk = write.home;
        let control = self.region.control(chunk);
        let tags = Tags::load(control);
        let matching = tags.matching(tag_of(write.hash));
        if !matching.is_empty() {
            // Relaxed: we hold the chunk lock.
            let map = control.map.load(Ordering::Relaxed);
            for slot in matching {
                let Ok(phys) = chunk::physical(map, slot, chunk) else {
                    return AtHome::Beyond;
                };
                let entry = self.region.slot(chunk, phys);
                if entry.holds_key(write.key) {
                    return AtHome::Decided(Some(Spot {
                        chunk,
                        slot,
                        map,
                        entry,
                        present: true,
                    }));
                }
            }
        }
        // Acquire: as in `scan_chunk`. Overflow counters are raised before an entry past them is
        // published, and every writer of this key holds the lock we hold.
        if chunk::overflow_count(
            control.overflow.load(Ordering::Acquire),
            probe::class(write.hash),
        ) != 0
        {
            return AtHome::Beyond;
        }
        match (may_insert, tags.empty().first()) {
            (false, _) => AtHome::Decided(None),
            (true, Some(slot)) => match self.locked_spot(chunk, slot, false) {
                Ok(spot) => AtHome::Decided(Some(spot)),
                Err(_) => AtHome::Beyond,
            },
            (true, None) => AtHome::Full,
        }
    }

    /// Takes the locks for an insert of a key that is absent and whose home chunk, locked in
    /// `home_guard`, is full: the lock of the first chunk along its probe with room for it
    /// (waited for if it comes after the home chunk, else only tried). Hands the home lock
    /// back where that chunk cannot be had at once or has no room once locked, for the general
    /// path.
    #[inline(never)]
    fn lock_room_past_home<K: Bytes + ?Sized>(
        &self,
        write: &Write<'_, K>,
        home_guard: ChunkGuard<'r>,
        waiter: &Waiter<'_>,
    ) -> Result<Result<Locked<'r>, ChunkGuard<'r>>, Error> {
        let probe = write.probe(self.region.chunks());
        let Some(chunk) = self.first_with_room(probe, 1) else {
            return Ok(Err(home_guard));
        };
        let Some(guard) = self.lock_past_home(chunk, probe.home, waiter)? else {
            return Ok(Err(home_guard));
        };
        let control = self.region.control(chunk);
        // Holding its lock, the chunk's tags cannot change.
        let Some(slot) = Tags::load(control).empty().first() else {
            return Ok(Err(home_guard));
        };
        Ok(Ok(Locked {
            home: home_guard,
            other: Some(guard),
            spot: Some(self.locked_spot(chunk, slot, false)?),
        }))
    }

    /// Takes the locks for a write of `key` when its home chunk alone does not decide: the home
    /// chunk's (`home_guard`, taken by the caller), then, if the key is in another chunk (or,
    /// when `may_insert`, the first chunk with room for it is another), that one's.
    ///
    /// Locks are only ever waited for in increasing chunk order, so writers cannot deadlock:
    /// holding the home lock, a writer waits for a higher chunk directly; a lower one it only
    /// tries to take, and if that fails it releases the home lock and starts again, taking both
    /// in order (and checking again what it found, since it let go of the home lock).
    #[inline(never)]
    fn lock_key_beyond_home<K: Bytes + ?Sized>(
        &self,
        write: &Write<'_, K>,
        may_insert: bool,
        home_guard: ChunkGuard<'r>,
        waiter: &Waiter<'_>,
    ) -> Result<Locked<'r>, Error> {
        let (key, hash, probe) = (write.key, write.hash, write.probe(self.region.chunks()));
        let home = probe.home;
        // A second chunk to lock together with the home chunk, learned on an earlier round.
        let mut also = None;
        let mut given = Some(home_guard);
        loop {
            let (home_guard, mut other) = match given.take() {
                Some(home_guard) => (home_guard, None),
                None => self.lock_in_order(home, also, waiter)?,
            };
            // Holding the home lock, no other writer can add or remove this key, so where it is
            // now is where it stays (only `clear` may still remove it; checked below).
            let (found, wanted) = match self.probe_for_write(write, also, waiter)? {
                Probed::Found(chunk, slot) => (Some(slot), Some(chunk)),
                Probed::Absent { room, visited } if may_insert => {
                    (None, room.or_else(|| self.first_with_room(probe, visited)))
                }
                Probed::Absent { .. } => (None, None),
                Probed::Busy(chunk) => {
                    // Read it under its lock instead, and keep that lock for the write.
                    also = Some(chunk);
                    drop((home_guard, other));
                    continue;
                }
            };
            let Some(chunk) = wanted else {
                return Ok(Locked {
                    home: home_guard,
                    other: None,
                    spot: None,
                });
            };
            let guard = if chunk == home {
                None
            } else {
                let taken = match other.take() {
                    Some((held, guard)) if held == chunk => Some(guard),
                    // We hold only the home lock.
                    None => self.lock_past_home(chunk, home, waiter)?,
                    Some(_) => None,
                };
                if taken.is_none() {
                    also = Some(chunk);
                    drop(home_guard);
                    waiter.wait()?;
                    continue;
                }
                taken
            };
            drop(other);
            let control = self.region.control(chunk);
            let spot = match found {
                // `clear` may have emptied the slot (and another key taken it) before we
                // locked its chunk; it cannot touch the home chunk, whose lock we held.
                Some(slot) => {
                    let spot = self.locked_spot(chunk, slot, true)?;
                    (chunk == home
                        || (Tags::load(control).get(slot) == tag_of(hash)
                            && spot.entry.holds_key(key)))
                    .then_some(spot)
                }
                // Another writer may have filled the chunk between our look and our lock.
                None => match Tags::load(control).empty().first() {
                    Some(slot) => Some(self.locked_spot(chunk, slot, false)?),
                    None => None,
                },
            };
            if spot.is_some() {
                return Ok(Locked {
                    home: home_guard,
                    other: guard,
                    spot,
                });
            }
            drop(home_guard);
            waiter.wait()?;
        }
    }

    /// Looks for the key along its probe sequence on a writer's behalf, holding the locks of
    /// its home chunk and of `also` (whose reads are therefore stable). A chunk that a first
    /// optimistic read finds busy, and whose lock the writer could take in order, is reported
    /// as [`Probed::Busy`] instead of waited on: the writer then takes its lock and keeps it
    /// (a reader that waits for a chunk under steady writes, then locks it for the write,
    /// pays for the contention twice).
    fn probe_for_write<K: Bytes + ?Sized>(
        &self,
        write: &Write<'_, K>,
        also: Option<usize>,
        waiter: &Waiter<'_>,
    ) -> Result<Probed, Error> {
        let probe = write.probe(self.region.chunks());
        let (home, tag, class) = (probe.home, tag_of(write.hash), probe.class);
        let highest_held = also.map_or(home, |also| also.max(home));
        let mut room = None;
        for (visited, chunk) in probe.chunks().enumerate() {
            let held = chunk == home || Some(chunk) == also;
            let outcome = if held {
                self.scan_chunk(chunk, write.key, tag, class, &mut Locate)?
            } else {
                match self.try_read_chunk(chunk, write.key, tag, class, &mut Locate) {
                    Some(outcome) => outcome?,
                    None if also.is_none() && chunk > highest_held => {
                        return Ok(Probed::Busy(chunk));
                    }
                    None => {
                        waiter.set_highest_held(Some(highest_held));
                        let outcome =
                            self.read_chunk(chunk, write.key, tag, class, &mut Locate, waiter);
                        waiter.set_highest_held(None);
                        outcome?
                    }
                }
            };
            match outcome {
                InChunk::Found { slot, .. } => return Ok(Probed::Found(chunk, slot)),
                InChunk::Absent { overflow, has_room } => {
                    if has_room && room.is_none() {
                        room = Some(chunk);
                    }
                    if overflow == 0 {
                        let visited = visited + 1;
                        return Ok(Probed::Absent { room, visited });
                    }
                }
            }
        }
        let visited = self.region.chunks();
        Ok(Probed::Absent { room, visited })
    }

    /// Takes `chunk`'s lock for a writer that holds only `home`'s: waits for it if it comes
    /// after `home` in lock order, else only tries (`None` if it is taken).
    #[inline]
    fn lock_past_home(
        &self,
        chunk: usize,
        home: usize,
        waiter: &Waiter<'_>,
    ) -> Result<Option<ChunkGuard<'r>>, Error> {
        let control = self.region.control(chunk);
        if chunk > home {
            lock::lock(control, waiter).map(Some)
        } else {
            Ok(lock::try_lock(control, waiter))
        }
    }

    /// Locks `home`, and `also` if given, in increasing chunk order.
    #[allow(clippy::type_complexity)]
    #[inline]
    fn lock_in_order(
        &self,
        home: usize,
        also: Option<usize>,
        waiter: &Waiter<'_>,
    ) -> Result<(ChunkGuard<'r>, Option<(usize, ChunkGuard<'r>)>), Error> {
        let lock = |chunk: usize| lock::lock(self.region.control(chunk), waiter);
        Ok(match also {
            Some(other) if other < home => {
                let other_guard = lock(other)?;
                (lock(home)?, Some((other, other_guard)))
            }
            Some(other) if other > home => {
                let home_guard = lock(home)?;
                (home_guard, Some((other, lock(other)?)))
            }
            _ => (lock(home)?, None),
        })
    }

    /// The first chunk in `probe`, after its first `skip`, with an empty slot (a hint, except
    /// for the home chunk, which the caller has locked).
    #[inline]
    fn first_with_room(&self, probe: Probe, skip: usize) -> Option<usize> {
        probe
            .chunks()
            .skip(skip)
            .find(|&chunk| !Tags::load(self.region.control(chunk)).empty().is_empty())
    }

    /// Writes a new entry into `spot`, an empty slot of a locked chunk.
    #[inline(always)]
    fn place<K: Bytes + ?Sized, V: Bytes + ?Sized>(
        &self,
        guard: &mut ChunkGuard<'_>,
        write: &Write<'_, K>,
        spot: Spot<'r>,
        entry: Entry<'_, K, V>,
    ) {
        // Relaxed: if an iterator saw this key before it was removed, its increment of the
        // epoch happens before this load (through chunk locks and the removal's Release stores;
        // see `raw/iter.rs`), so this load sees it.
        let stamp = header::epoch(self.region.header()).load(Ordering::Relaxed);
        // Raise the counters before the entry is published: a reader that finds a counter at
        // zero may conclude that no entry lies past it.
        if spot.chunk != write.home {
            let probe = write.probe(self.region.chunks());
            for passed in probe.before(spot.chunk) {
                chunk::raise_overflow(self.region.control(passed), probe.class);
            }
        }
        guard.begin_write();
        spot.entry.write(&Entry { stamp, ..entry });
        #[cfg(feature = "test-hooks")]
        self.liveness.inside_write();
        chunk::store_tag(
            self.region.control(spot.chunk),
            spot.slot,
            tag_of(entry.hash),
        );
        guard.end_write();
    }

    /// Replaces the entry at `spot`, in a locked chunk: in place when the new value fits in
    /// one word and has the old one's length (see [`replace_word`](Self::replace_word)), else
    /// through the chunk's spare slot.
    #[inline(always)]
    fn replace<K: Bytes + ?Sized, V: Bytes + ?Sized>(
        &self,
        guard: &mut ChunkGuard<'_>,
        spot: Spot<'r>,
        entry: Entry<'_, K, V>,
    ) -> Result<(), Error> {
        if entry.value_len <= WORD && spot.entry.value_len() == entry.value_len {
            self.replace_word(guard, spot.entry, entry.value);
            return Ok(());
        }
        let spare = chunk::writable_spare(spot.map, spot.chunk)?;
        let stamp = spot.entry.stamp();
        guard.begin_write();
        self.region
            .slot(spot.chunk, spare)
            .write(&Entry { stamp, ..entry });
        #[cfg(feature = "test-hooks")]
        self.liveness.inside_write();
        // Release: as for tags in `chunk::store_tag`; this store alone publishes the new entry.
        self.region.control(spot.chunk).map.store(
            chunk::remapped(spot.map, spot.slot, spare),
            Ordering::Release,
        );
        guard.end_write();
        Ok(())
    }

    /// Replaces the value of `slot`, in a locked chunk, with `value`, which fits in one word
    /// and has the stored value's length, by storing that word in place: nothing else in the
    /// slot changes. One aligned atomic store is crash-atomic: a writer killed at any instant
    /// leaves the old value or the new one, never a mix, as the spare slot guarantees for
    /// longer values. Readers that overlap the store fail their sequence check, as for any
    /// write.
    #[inline(always)]
    fn replace_word<V: Bytes + ?Sized>(
        &self,
        guard: &mut ChunkGuard<'_>,
        slot: SlotRef<'r>,
        value: &V,
    ) {
        guard.begin_write();
        if let Some(word) = slot.value.first() {
            // Relaxed: `begin_write`'s Release fence orders it after the odd sequence, and
            // `end_write`'s Release store publishes it, as for every slot store.
            word.store(value.word(0), Ordering::Relaxed);
        }
        #[cfg(feature = "test-hooks")]
        self.liveness.inside_write();
        guard.end_write();
    }

    /// Lowers the overflow counters of the chunks an entry with `probe` in `chunk` probed past.
    pub(super) fn lower_overflow(&self, probe: Probe, chunk: usize) {
        if chunk == probe.home {
            return;
        }
        for passed in probe.before(chunk) {
            chunk::lower_overflow(self.region.control(passed), probe.class);
        }
    }

    /// Inserts `key` with `value`, replacing any value it had. Returns whether it replaced one.
    ///
    /// # Errors
    /// [`Error::KeyTooLong`], [`Error::ValueTooLong`], [`Error::TableFull`],
    /// [`Error::TimedOut`], [`Error::Corrupt`]; the map is unchanged after any of them.
    #[inline]
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<bool, Error> {
        self.insert_bytes(key, value)
    }

    #[inline(always)]
    pub(crate) fn insert_bytes<K: Bytes + ?Sized, V: Bytes + ?Sized>(
        &self,
        key: &K,
        value: &V,
    ) -> Result<bool, Error> {
        self.check_key(key.len())?;
        self.check_value(value.len())?;
        self.write_op(key, true, |current| {
            Ok((Action::Put(value), current.is_some()))
        })
    }

    /// Removes `key`. Returns whether it was there.
    ///
    /// # Errors
    /// [`Error::KeyTooLong`], [`Error::TimedOut`], [`Error::Corrupt`].
    #[inline]
    pub fn remove(&self, key: &[u8]) -> Result<bool, Error> {
        self.remove_bytes(key)
    }

    #[inline(always)]
    pub(crate) fn remove_bytes<K: Bytes + ?Sized>(&self, key: &K) -> Result<bool, Error> {
        self.write_op(key, false, |current| match current {
            Some(_) => Ok((Action::<&[u8]>::Remove, true)),
            None => Ok((Action::Keep, false)),
        })
    }

    /// Stores `new` as the value of `key` if its current value is `current` (`None`: if the
    /// key is absent). Returns whether it stored `new`; the check and the store are one atomic
    /// step with respect to every other operation on the key.
    ///
    /// # Errors
    /// As for [`insert`](Self::insert).
    pub fn compare_exchange(
        &self,
        key: &[u8],
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, Error> {
        self.compare_exchange_bytes(key, current, new)
    }

    pub(crate) fn compare_exchange_bytes<K, C, V>(
        &self,
        key: &K,
        current: Option<&C>,
        new: &V,
    ) -> Result<bool, Error>
    where
        K: Bytes + ?Sized,
        C: Bytes + ?Sized,
        V: Bytes + ?Sized,
    {
        self.check_key(key.len())?;
        self.check_value(new.len())?;
        self.write_op(key, current.is_none(), |stored| {
            let matches = match (stored, current) {
                (None, None) => true,
                (Some(stored), Some(expected)) => stored.value_equals(expected),
                _ => false,
            };
            Ok((
                if matches {
                    Action::Put(new)
                } else {
                    Action::Keep
                },
                matches,
            ))
        })
    }

    /// Adds `delta` (wrapping) to the 8-byte little-endian integer stored under `key`, which
    /// counts as 0 when absent, and returns the previous value. Atomic with respect to every
    /// other operation on the key: concurrent `fetch_add`s from any number of processes never
    /// lose a count.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if the stored value is not 8 bytes long; [`Error::ValueTooLong`]
    /// if the map's values cannot hold 8 bytes; as for [`insert`](Self::insert).
    pub fn fetch_add(&self, key: &[u8], delta: i64) -> Result<i64, Error> {
        self.fetch_add_bytes(key, delta)
    }

    pub(crate) fn fetch_add_bytes<K: Bytes + ?Sized>(
        &self,
        key: &K,
        delta: i64,
    ) -> Result<i64, Error> {
        self.check_key(key.len())?;
        self.check_value(8)?;
        self.write_op(key, true, |current| {
            let old = match current {
                None => 0,
                Some(current) if current.value_len() == 8 => {
                    let mut bytes = [0u8; 8];
                    current.copy_value(&mut bytes)?;
                    i64::from_le_bytes(bytes)
                }
                Some(current) => {
                    return Err(ValueProblem::WrongLength {
                        expected: 8,
                        found: current.value_len(),
                    }
                    .into());
                }
            };
            Ok((
                Action::Put(Owned(old.wrapping_add(delta).to_le_bytes())),
                old,
            ))
        })
    }

    /// Reads, modifies and writes the value of one key as one atomic step with respect to every
    /// other writer of that key.
    ///
    /// `f` receives the current value (`None` if the key is absent; at most `N` bytes are
    /// supported, a longer value gives [`Error::BufferTooSmall`] and `f` is not called) and
    /// returns the new value, or `None` to remove the key. `f` runs once, while the key's
    /// locks are held: it must be short and must not use this map.
    ///
    /// ```
    /// # use shared_hashmap::{Layout, RawMap, region_bytes};
    /// # let layout = Layout::new(10, 8, 8)?;
    /// # let mut words = vec![0u64; layout.region_size().div_ceil(8)];
    /// # let map = RawMap::init(region_bytes(&mut words), layout)?;
    /// map.update::<8, _, _>(b"greeting", |old| match old {
    ///     None => Some(*b"hi"),
    ///     Some(_) => None,
    /// })?;
    /// assert_eq!(map.get_into::<8>(b"greeting")?.as_deref(), Some(&b"hi"[..]));
    /// # Ok::<(), shared_hashmap::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`insert`](Self::insert), and [`Error::BufferTooSmall`] as above.
    pub fn update<const N: usize, T, F>(&self, key: &[u8], f: F) -> Result<(), Error>
    where
        T: AsRef<[u8]>,
        F: FnOnce(Option<&[u8]>) -> Option<T>,
    {
        let mut scratch = [0u8; N];
        self.update_bytes(key, &mut scratch, |old| Ok(f(old).map(Owned)))
    }

    pub(crate) fn update_bytes<K, P, F>(
        &self,
        key: &K,
        scratch: &mut [u8],
        f: F,
    ) -> Result<(), Error>
    where
        K: Bytes + ?Sized,
        P: Bytes,
        F: FnOnce(Option<&[u8]>) -> Result<Option<P>, Error>,
    {
        self.write_op(key, true, |current| {
            let present = current.is_some();
            let new = match current {
                Some(current) => {
                    let len = current.copy_value(scratch)?;
                    f(Some(&scratch[..len]))?
                }
                None => f(None)?,
            };
            let action = match new {
                Some(value) => Action::Put(value),
                None if present => Action::Remove,
                None => Action::Keep,
            };
            Ok((action, ()))
        })
    }

    /// Removes every entry.
    ///
    /// Chunks are cleared one at a time, each atomically: entries inserted while `clear` runs
    /// may survive it. If an error stops it, the chunks before the failing one are cleared.
    ///
    /// # Errors
    /// [`Error::TimedOut`], [`Error::Corrupt`].
    pub fn clear(&self) -> Result<(), Error> {
        for chunk in 0..self.region.chunks() {
            let control = self.region.control(chunk);
            if Tags::load(control).full().is_empty() {
                continue;
            }
            let guard = lock::lock(control, &self.waiter())?;
            let mut probes = [None; crate::layout::SLOTS_PER_CHUNK];
            for (removed, slot) in Tags::load(control).full().enumerate() {
                let entry = self.locked_slot(chunk, slot)?;
                let key_len = entry.key_len();
                if key_len > self.layout.max_key_len() {
                    return Err(Error::Corrupt(Corruption::SlotLength {
                        chunk: chunk as u32,
                        slot: slot as u8,
                    }));
                }
                probes[removed] = Some(self.probe(entry.hash_key(key_len, self.seed.get())));
            }
            // No sequence bump, as for `remove`: only tags change.
            chunk::clear_tags(control);
            drop(guard);
            for probe in probes.into_iter().flatten() {
                self.lower_overflow(probe, chunk);
            }
        }
        Ok(())
    }

    /// Where `key`, with `hash`, is now, read without locks (for `verify`).
    pub(super) fn locate<K: Bytes + ?Sized>(
        &self,
        key: &K,
        hash: u64,
    ) -> Result<Option<(usize, usize)>, Error> {
        Ok(self
            .find(key, hash, &mut Locate, &self.waiter())?
            .map(|(chunk, slot, _)| (chunk, slot)))
    }
}
