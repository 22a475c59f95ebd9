//! Lookups: lock-free seqlock reads along a key's probe sequence.
//!
//! A reader loads the chunk's sequence (Acquire; odd means a write is in progress), loads the
//! tags and slot map (Acquire), compares keys and copies the value out with Relaxed word loads,
//! issues an Acquire fence and checks that the sequence has not moved (crossbeam's `SeqLock`
//! protocol). Anything read in a
//! window that fails the check is thrown away, errors included. If the key is not in a chunk and
//! the chunk's overflow counter is zero, no entry with that home lies further on, so the key is
//! absent. The home chunk is read inline; the rest of the probe is out of line.

use super::RawMap;
use crate::bytes::Bytes;
use crate::chunk::{self, Tags, tag_of};
use crate::error::{Corruption, Error};
use crate::lock::{self, Waiter};
use crate::probe::{self, Probe};
use crate::region::SlotRef;
use crate::sync::{Ordering, fence};

/// What one chunk says about a key.
#[derive(Clone, Copy, Debug)]
pub(super) enum InChunk {
    /// The key is in logical slot `slot`, with a value of `value_len` bytes.
    Found { slot: usize, value_len: usize },
    /// The key is not here; `overflow` entries of its overflow class probed past this chunk,
    /// and the chunk has an empty slot if `has_room`.
    Absent { overflow: u32, has_room: bool },
}

/// What a read does with the entry it finds, inside the seqlock window (so it may see a torn
/// entry, and must only copy, never act on what it copies).
pub(super) trait Sink {
    /// Takes the value of `entry` (`value_len` bytes, at most the layout's maximum).
    fn take(&mut self, entry: &SlotRef<'_>, value_len: usize) -> Result<(), Error>;
}

/// Takes nothing: the caller only wants to know where the key is.
pub(super) struct Locate;

impl Sink for Locate {
    #[inline(always)]
    fn take(&mut self, _: &SlotRef<'_>, _: usize) -> Result<(), Error> {
        Ok(())
    }
}

/// Copies the value into a buffer. It does not prefetch a long value's lines first (writes do,
/// see `write::prefetches_values`): against the same gets of 1 KiB values with that prefetch,
/// in and out of cache, gets without it ran 5 to 15% faster (not measured, a likely cause: the
/// explicit prefetch takes every line-fill buffer at once, while the processor's own prefetch
/// follows the copy into its L2 cache).
pub(super) struct CopyInto<'o>(pub(super) &'o mut [u8]);

impl Sink for CopyInto<'_> {
    #[inline(always)]
    fn take(&mut self, entry: &SlotRef<'_>, value_len: usize) -> Result<(), Error> {
        let got = self.0.len();
        if value_len > got {
            return Err(Error::BufferTooSmall {
                needed: value_len,
                got,
            });
        }
        // Bytes of the buffer past the value are the caller's to ignore (see `RawMap::get`), so
        // where the slot's value area covers the whole buffer, fill all of it: a copy of the
        // buffer's length, which the caller often knows at compile time, instead of one of the
        // value's, which is known only from the slot.
        if entry.value_area() >= got {
            entry.copy_value(self.0);
        } else {
            entry.copy_value(&mut self.0[..value_len]);
        }
        Ok(())
    }
}

/// Optimistic (lock-free) attempts a reader makes at a chunk before it reads under the lock.
const OPTIMISTIC_READS: u32 = 4;

impl<'r> RawMap<'r> {
    /// Looks `key` up in `chunk` as one validated seqlock read: one attempt inline, the
    /// retries (a writer was active) out of line.
    #[inline(always)]
    pub(super) fn read_chunk<K: Bytes + ?Sized, S: Sink>(
        &self,
        chunk: usize,
        key: &K,
        tag: u8,
        class: u32,
        sink: &mut S,
        waiter: &Waiter<'_>,
    ) -> Result<InChunk, Error> {
        match self.try_read_chunk(chunk, key, tag, class, sink) {
            Some(outcome) => outcome,
            None => self.read_chunk_contended(chunk, key, tag, class, sink, waiter),
        }
    }

    /// Retries a chunk read that a writer disturbed. Under steady writes to the chunk a
    /// seqlock reader might never see it stable, so after [`OPTIMISTIC_READS`] failed attempts
    /// the reader takes the chunk's lock and reads under it (waiting for it only where the
    /// operation's lock order allows; see [`Waiter::may_wait_for`], else trying).
    #[cold]
    #[inline(never)]
    fn read_chunk_contended<K: Bytes + ?Sized, S: Sink>(
        &self,
        chunk: usize,
        key: &K,
        tag: u8,
        class: u32,
        sink: &mut S,
        waiter: &Waiter<'_>,
    ) -> Result<InChunk, Error> {
        let control = self.region.control(chunk);
        let mut failed = 1;
        loop {
            if failed >= OPTIMISTIC_READS {
                let guard = if waiter.may_wait_for(chunk) {
                    Some(lock::lock(control, waiter)?)
                } else {
                    lock::try_lock(control, waiter)
                };
                if let Some(_guard) = guard {
                    // Holding the lock, no writer can change the chunk: one pass is valid.
                    return self.scan_chunk(chunk, key, tag, class, sink);
                }
            }
            lock::reader_wait(control, waiter)?;
            if let Some(outcome) = self.try_read_chunk(chunk, key, tag, class, sink) {
                return outcome;
            }
            failed += 1;
        }
    }

    /// One attempt: `None` if a writer changed the chunk meanwhile.
    #[inline(always)]
    pub(super) fn try_read_chunk<K: Bytes + ?Sized, S: Sink>(
        &self,
        chunk: usize,
        key: &K,
        tag: u8,
        class: u32,
        sink: &mut S,
    ) -> Option<Result<InChunk, Error>> {
        let control = self.region.control(chunk);
        // Acquire: pairs with the Release store in `ChunkGuard::end_write`.
        let seq = control.seq.load(Ordering::Acquire);
        if seq & 1 != 0 {
            return None;
        }
        let outcome = self.scan_chunk(chunk, key, tag, class, sink);
        // Acquire fence, then a Relaxed load: pairs with the Release fence in
        // `ChunkGuard::begin_write`, so if any load above saw a write of a newer window, this
        // load sees that window's odd (or a later) sequence.
        fence(Ordering::Acquire);
        (control.seq.load(Ordering::Relaxed) == seq).then_some(outcome)
    }

    /// One unvalidated pass over a chunk: the result means nothing until the sequence check.
    #[inline(always)]
    pub(super) fn scan_chunk<K: Bytes + ?Sized, S: Sink>(
        &self,
        chunk: usize,
        key: &K,
        tag: u8,
        class: u32,
        sink: &mut S,
    ) -> Result<InChunk, Error> {
        let control = self.region.control(chunk);
        let tags = Tags::load(control);
        let matching = tags.matching(tag);
        if !matching.is_empty() {
            // Acquire (the tags too, in `Tags::load`): pairs with the Release store that
            // published the slot map (or tag), so the slot it names is read complete. The
            // sequence check already gives that between live writers; this also covers a writer
            // that died after publishing, whose sequence was repaired by a process that never
            // read its stores.
            let map = control.map.load(Ordering::Acquire);
            for slot in matching {
                let entry = self.region.slot(chunk, chunk::physical(map, slot, chunk)?);
                if entry.holds_key(key) {
                    let value_len = entry.value_len();
                    if value_len > self.layout.max_value_len() {
                        return Err(Error::Corrupt(Corruption::SlotLength {
                            chunk: chunk as u32,
                            slot: slot as u8,
                        }));
                    }
                    sink.take(&entry, value_len)?;
                    return Ok(InChunk::Found { slot, value_len });
                }
            }
        }
        // Acquire: pairs with the Release of `chunk::lower_overflow`, so a writer that concludes
        // from a lowered counter that its key is absent also sees the removal behind it (which
        // `raw/iter.rs` relies on after `clear`). Overflow counters are not covered by the
        // sequence; a reader that sees zero here linearizes at this load, before any insert that
        // would raise it (inserts raise it before they publish the entry).
        Ok(InChunk::Absent {
            overflow: chunk::overflow_count(control.overflow.load(Ordering::Acquire), class),
            has_room: !tags.empty().is_empty(),
        })
    }

    /// The common case of a lookup in one straight pass: the key's home chunk, read once with
    /// no writer in the way, and the key in the first slot whose tag matches (or no tag
    /// matching and no entry of its class past the chunk). `None` when that pass is not
    /// conclusive (a writer was active, another key shares the tag, the key may lie past its
    /// home chunk, or anything that needs an error), for the caller to take the general path,
    /// which repeats the work with every check and retry.
    #[inline(always)]
    fn find_at_home<K: Bytes + ?Sized, S: Sink>(
        &self,
        key: &K,
        hash: u64,
        sink: &mut S,
    ) -> Option<Option<usize>> {
        let home = probe::home(hash, self.region.chunks());
        let control = self.region.control(home);
        // Acquire: as in `try_read_chunk`.
        let seq = control.seq.load(Ordering::Acquire);
        let found = match Tags::load(control).first_matching(tag_of(hash)) {
            // Relaxed: a reader needs no more (see `scan_chunk` for why writers load it
            // Acquire).
            None if chunk::overflow_count(
                control.overflow.load(Ordering::Relaxed),
                probe::class(hash),
            ) != 0 =>
            {
                return None;
            }
            None => None,
            Some(slot) => {
                // Acquire: as in `scan_chunk`.
                let map = control.map.load(Ordering::Acquire);
                let entry = self
                    .region
                    .slot(home, chunk::physical(map, slot, home).ok()?);
                if !entry.holds_key(key) {
                    return None;
                }
                let value_len = entry.value_len();
                if value_len > self.layout.max_value_len() {
                    return None;
                }
                sink.take(&entry, value_len).ok()?;
                Some(value_len)
            }
        };
        // As in `try_read_chunk`.
        fence(Ordering::Acquire);
        (seq & 1 == 0 && control.seq.load(Ordering::Relaxed) == seq).then_some(found)
    }

    /// Finds `key`: its chunk, slot and value length; gives the value to `sink`.
    #[inline(always)]
    pub(super) fn find<K: Bytes + ?Sized, S: Sink>(
        &self,
        key: &K,
        hash: u64,
        sink: &mut S,
        waiter: &Waiter<'_>,
    ) -> Result<Option<(usize, usize, usize)>, Error> {
        let tag = tag_of(hash);
        let probe = self.probe(hash);
        match self.read_chunk(probe.home, key, tag, probe.class, sink, waiter)? {
            InChunk::Found { slot, value_len } => Ok(Some((probe.home, slot, value_len))),
            InChunk::Absent { overflow: 0, .. } => Ok(None),
            InChunk::Absent { .. } => self.find_past_home(probe, key, tag, sink, waiter),
        }
    }

    #[inline(never)]
    fn find_past_home<K: Bytes + ?Sized, S: Sink>(
        &self,
        probe: Probe,
        key: &K,
        tag: u8,
        sink: &mut S,
        waiter: &Waiter<'_>,
    ) -> Result<Option<(usize, usize, usize)>, Error> {
        // Each chunk at most once: a corrupt region with every overflow counter set cannot
        // make this loop endless.
        for chunk in probe.chunks().skip(1) {
            match self.read_chunk(chunk, key, tag, probe.class, sink, waiter)? {
                InChunk::Found { slot, value_len } => return Ok(Some((chunk, slot, value_len))),
                InChunk::Absent { overflow: 0, .. } => return Ok(None),
                InChunk::Absent { .. } => {}
            }
        }
        Ok(None)
    }

    #[inline(always)]
    pub(crate) fn get_bytes<K: Bytes + ?Sized>(
        &self,
        key: &K,
        out: &mut [u8],
    ) -> Result<Option<usize>, Error> {
        self.check_key(key.len())?;
        let hash = key.hash(&self.seed);
        match self.find_at_home(key, hash, &mut CopyInto(out)) {
            Some(found) => Ok(found),
            None => self.get_slow(key, hash, out),
        }
    }

    #[inline(never)]
    fn get_slow<K: Bytes + ?Sized>(
        &self,
        key: &K,
        hash: u64,
        out: &mut [u8],
    ) -> Result<Option<usize>, Error> {
        let found = self.find(key, hash, &mut CopyInto(out), &self.waiter())?;
        Ok(found.map(|(_, _, value_len)| value_len))
    }

    #[inline]
    pub(crate) fn contains_bytes<K: Bytes + ?Sized>(&self, key: &K) -> Result<bool, Error> {
        self.check_key(key.len())?;
        let hash = key.hash(&self.seed);
        match self.find_at_home(key, hash, &mut Locate) {
            Some(found) => Ok(found.is_some()),
            None => Ok(self.find(key, hash, &mut Locate, &self.waiter())?.is_some()),
        }
    }

    /// Copies the value of `key` into `out` and returns its length, or `None` if the key is absent.
    ///
    /// Takes no lock: the copy is checked against concurrent writers and retried, so the value
    /// returned is one that some writer wrote in full. Bytes of `out` past the returned length,
    /// and all of `out` when the result is `None` or an error, are unspecified (a read that
    /// raced a writer may have copied into them before retrying).
    ///
    /// # Errors
    /// [`Error::KeyTooLong`]; [`Error::BufferTooSmall`] (with the value's length) if `out` is
    /// shorter than the value; [`Error::TimedOut`] if writers kept the key's chunks changing
    /// longer than the map's [`Liveness`](crate::Liveness) waits; [`Error::Corrupt`].
    #[inline]
    pub fn get(&self, key: &[u8], out: &mut [u8]) -> Result<Option<usize>, Error> {
        self.get_bytes(key, out)
    }

    /// The value of `key` as a `heapless::Vec` of capacity `N`, or `None` if the key is absent.
    ///
    /// # Errors
    /// As for [`get`](Self::get); [`Error::BufferTooSmall`] if the value is longer than `N`.
    pub fn get_into<const N: usize>(
        &self,
        key: &[u8],
    ) -> Result<Option<heapless::Vec<u8, N>>, Error> {
        let mut value = heapless::Vec::<u8, N>::new();
        // Cannot fail: the length is the capacity.
        let _ = value.resize(N, 0);
        match self.get_bytes(key, &mut value)? {
            Some(len) => {
                value.truncate(len);
                Ok(Some(value))
            }
            None => Ok(None),
        }
    }

    /// Whether the map holds `key`.
    ///
    /// # Errors
    /// As for [`get`](Self::get), without [`Error::BufferTooSmall`].
    #[inline]
    pub fn contains_key(&self, key: &[u8]) -> Result<bool, Error> {
        self.contains_bytes(key)
    }
}
