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
use crate::probe::Probe;
use crate::sync::{Ordering, fence};

/// What one chunk says about a key.
#[derive(Clone, Copy, Debug)]
pub(super) enum InChunk {
    /// The key is in logical slot `slot`, with a value of `value_len` bytes.
    Found { slot: usize, value_len: usize },
    /// The key is not here; `overflow` entries of its overflow class probed past this chunk.
    Absent { overflow: u32 },
}

/// Where a read puts the value it finds.
pub(super) enum Sink<'o> {
    /// Nowhere: the caller only wants to know whether the key is there.
    Discard,
    /// Copied into this buffer.
    Copy(&'o mut [u8]),
}

impl<'r> RawMap<'r> {
    /// Looks `key` up in `chunk` as one validated seqlock read.
    #[inline]
    pub(super) fn read_chunk<K: Bytes + ?Sized>(
        &self,
        chunk: usize,
        key: &K,
        tag: u8,
        class: u32,
        sink: &mut Sink<'_>,
        waiter: &Waiter<'_>,
    ) -> Result<InChunk, Error> {
        let control = self.region.control(chunk);
        loop {
            // Acquire: pairs with the Release store in `ChunkGuard::end_write`.
            let seq = control.seq.load(Ordering::Acquire);
            if seq & 1 == 0 {
                let outcome = self.scan_chunk(chunk, key, tag, class, sink);
                // Acquire fence, then a Relaxed load: pairs with the Release fence in
                // `ChunkGuard::begin_write`, so if any load above saw a write of a newer
                // window, this load sees that window's odd (or a later) sequence.
                fence(Ordering::Acquire);
                if control.seq.load(Ordering::Relaxed) == seq {
                    return outcome;
                }
            }
            lock::reader_wait(control, waiter)?;
        }
    }

    /// One unvalidated pass over a chunk: the result means nothing until the sequence check.
    #[inline]
    fn scan_chunk<K: Bytes + ?Sized>(
        &self,
        chunk: usize,
        key: &K,
        tag: u8,
        class: u32,
        sink: &mut Sink<'_>,
    ) -> Result<InChunk, Error> {
        let control = self.region.control(chunk);
        let tags = Tags::load(control);
        let mut map = None;
        for slot in tags.matching(tag) {
            // Acquire (the tags too, in `Tags::load`): pairs with the Release store that published
            // the slot map (or tag), so the slot it names is read complete. The sequence check
            // already gives that between live writers; this also covers a writer that died after
            // publishing, whose sequence was repaired by a process that never read its stores.
            let map = *map.get_or_insert_with(|| control.map.load(Ordering::Acquire));
            let entry = self.region.slot(chunk, chunk::physical(map, slot, chunk)?);
            if !entry.holds_key(key) {
                continue;
            }
            let value_len = entry.value_len();
            if let Sink::Copy(out) = sink {
                if value_len > self.layout.max_value_len() {
                    return Err(Error::Corrupt(Corruption::SlotLength {
                        chunk: chunk as u32,
                        slot: slot as u8,
                    }));
                }
                let Some(out) = out.get_mut(..value_len) else {
                    return Err(Error::BufferTooSmall {
                        needed: value_len,
                        got: out.len(),
                    });
                };
                entry.copy_value(out);
            }
            return Ok(InChunk::Found { slot, value_len });
        }
        // Relaxed: overflow counters are not covered by the sequence; a reader that sees zero
        // here linearizes at this load, before any insert that would raise it (inserts raise it
        // before they publish the entry).
        Ok(InChunk::Absent {
            overflow: chunk::overflow_count(control.overflow.load(Ordering::Relaxed), class),
        })
    }

    /// Finds `key`: its chunk, slot and value length; copies the value into `sink`.
    #[inline]
    pub(super) fn find<K: Bytes + ?Sized>(
        &self,
        key: &K,
        hash: u64,
        sink: &mut Sink<'_>,
        waiter: &Waiter<'_>,
    ) -> Result<Option<(usize, usize, usize)>, Error> {
        let tag = tag_of(hash);
        let probe = self.probe(hash);
        match self.read_chunk(probe.home, key, tag, probe.class, sink, waiter)? {
            InChunk::Found { slot, value_len } => Ok(Some((probe.home, slot, value_len))),
            InChunk::Absent { overflow: 0 } => Ok(None),
            InChunk::Absent { .. } => self.find_past_home(probe, key, tag, sink, waiter),
        }
    }

    #[inline(never)]
    fn find_past_home<K: Bytes + ?Sized>(
        &self,
        probe: Probe,
        key: &K,
        tag: u8,
        sink: &mut Sink<'_>,
        waiter: &Waiter<'_>,
    ) -> Result<Option<(usize, usize, usize)>, Error> {
        // Each chunk at most once: a corrupt region with every overflow counter set cannot
        // make this loop endless.
        for chunk in probe.chunks().skip(1) {
            match self.read_chunk(chunk, key, tag, probe.class, sink, waiter)? {
                InChunk::Found { slot, value_len } => return Ok(Some((chunk, slot, value_len))),
                InChunk::Absent { overflow: 0 } => return Ok(None),
                InChunk::Absent { .. } => {}
            }
        }
        Ok(None)
    }

    pub(crate) fn get_bytes<K: Bytes + ?Sized>(
        &self,
        key: &K,
        out: &mut [u8],
    ) -> Result<Option<usize>, Error> {
        self.check_key(key.len())?;
        let found = self.find(
            key,
            key.hash(self.seed),
            &mut Sink::Copy(out),
            &self.waiter(),
        )?;
        Ok(found.map(|(_, _, value_len)| value_len))
    }

    pub(crate) fn contains_bytes<K: Bytes + ?Sized>(&self, key: &K) -> Result<bool, Error> {
        self.check_key(key.len())?;
        Ok(self
            .find(key, key.hash(self.seed), &mut Sink::Discard, &self.waiter())?
            .is_some())
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
