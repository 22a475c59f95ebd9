//! Iteration: owned copies of every entry, without duplicates.
//!
//! Entries never move, so walking the chunks in order and reading each full slot yields every
//! entry that is present for the whole iteration exactly once. The one way to meet a key twice
//! would be to yield it, see it removed and inserted again further on, and yield it again. To
//! exclude that, the header keeps an iteration epoch: `iter` increments it, and every insert of
//! a new key stamps its slot with the epoch it reads (a replaced value keeps its stamp). An
//! iterator started at epoch `E` skips entries stamped in `(E, now]`, which were inserted after
//! it began; an entry present from the start was stamped `E` or earlier.
//!
//! That a re-inserted entry's stamp is really past `E` rests on the chunk locks: the iterator
//! reads each entry it yields holding that entry's chunk lock (one short critical section per
//! entry, never held between calls to `next`). The removal, which clears the tag holding the
//! same lock, therefore comes after that critical section, and the increment happens before
//! the removal. The re-insert happens after the removal: after a removal by key, through the
//! key's home lock, which both take; after `clear`, which takes no home locks, because the
//! re-insert finds the key absent only by reading the tag that `clear` cleared or an overflow
//! counter it lowered (Release stores its probe loads with Acquire), or later values of them.
//! Either way the re-insert's load of the epoch sees the increment. The loom model
//! `an_iteration_during_remove_and_reinsert...` fails without the lock.
//!
//! The stamp is 32 bits. An entry untouched across 2^32 iterations would carry the same stamp
//! as a new one and could be skipped by an iterator running at exactly that moment; in a map
//! that starts an iterator every microsecond, an entry meets that window once in 136 years.

use super::RawMap;
use crate::chunk::{self, Tags};
use crate::error::{Corruption, Error};
use crate::header;
use crate::lock;
use crate::region::ControlBlock;
use crate::sync::Ordering;

/// An iterator over a [`RawMap`]'s entries as owned copies, made by [`RawMap::iter`].
///
/// Each item is a key (at most `K` bytes) and its value (at most `V` bytes), or an error for
/// an entry that could not be read (for example [`Error::BufferTooSmall`] when it is longer
/// than `K` or `V`) or a chunk whose writers kept it busy past the map's wait bound
/// ([`Error::TimedOut`]); iteration goes on after an error, past that entry or chunk.
pub struct Iter<'m, 'r, const K: usize, const V: usize> {
    cursor: Cursor<'m, 'r>,
}

impl<const K: usize, const V: usize> Iterator for Iter<'_, '_, K, V> {
    type Item = Result<(heapless::Vec<u8, K>, heapless::Vec<u8, V>), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut key = heapless::Vec::<u8, K>::new();
        let mut value = heapless::Vec::<u8, V>::new();
        // Cannot fail: the lengths are the capacities.
        let _ = key.resize(K, 0);
        let _ = value.resize(V, 0);
        Some(
            self.cursor
                .next_into(&mut key, &mut value)?
                .map(|(key_len, value_len)| {
                    key.truncate(key_len);
                    value.truncate(value_len);
                    (key, value)
                }),
        )
    }
}

/// A position in a map's slots, and the epoch its walk started at.
pub(crate) struct Cursor<'m, 'r> {
    map: &'m RawMap<'r>,
    chunk: usize,
    slot: usize,
    epoch: u32,
}

impl<'r> RawMap<'r> {
    /// An iterator over owned copies of every entry: keys of up to `K` bytes and values of up
    /// to `V` bytes.
    ///
    /// It copies each entry out holding that entry's chunk lock for the copy only (never
    /// between calls to `next`), so it waits briefly for writers of that chunk, and writers for
    /// it; chunks with nothing to yield are passed without locking. Every entry present for the
    /// whole iteration is yielded exactly once
    /// (an update of its value does not make it absent); entries inserted or removed meanwhile
    /// may or may not be yielded, and no key is yielded twice, even if it is removed and
    /// inserted again while the iteration runs.
    ///
    /// ```
    /// # use shared_hashmap::{Layout, RawMap, region_bytes};
    /// # let layout = Layout::new(10, 8, 8)?;
    /// # let mut words = vec![0u64; layout.region_size().div_ceil(8)];
    /// # let map = RawMap::init(region_bytes(&mut words), layout)?;
    /// map.insert(b"a", b"1")?;
    /// map.insert(b"b", b"2")?;
    /// let mut keys = map.iter::<8, 8>().map(|entry| entry.map(|(key, _)| key)).collect::<Result<Vec<_>, _>>()?;
    /// keys.sort();
    /// assert_eq!(keys, [&b"a"[..], &b"b"[..]]);
    /// # Ok::<(), shared_hashmap::Error>(())
    /// ```
    pub fn iter<const K: usize, const V: usize>(&self) -> Iter<'_, 'r, K, V> {
        Iter {
            cursor: self.cursor(),
        }
    }

    pub(crate) fn cursor(&self) -> Cursor<'_, 'r> {
        // Relaxed: the increment reaches a later insert through the Release of the chunk locks
        // this iterator takes afterwards (see the module docs).
        let epoch = header::epoch(self.region.header()).fetch_add(1, Ordering::Relaxed);
        Cursor {
            map: self,
            chunk: 0,
            slot: 0,
            epoch,
        }
    }
}

impl Cursor<'_, '_> {
    /// Copies the next entry into `key` and `value` and returns their lengths; `None` at the end.
    pub(crate) fn next_into(
        &mut self,
        key: &mut [u8],
        value: &mut [u8],
    ) -> Option<Result<(usize, usize), Error>> {
        let map = self.map;
        while self.chunk < map.region.chunks() {
            let read = match self.read_next_in_chunk(key, value) {
                Ok(read) => read,
                Err(error) => {
                    // Only waiting can fail here: skip the chunk rather than wait on it forever.
                    self.chunk += 1;
                    self.slot = 0;
                    return Some(Err(error));
                }
            };
            let Some(Read { slot, entry }) = read else {
                self.chunk += 1;
                self.slot = 0;
                continue;
            };
            self.slot = slot + 1;
            let (stamp, key_len, value_len) = match entry {
                Ok(entry) => entry,
                Err(error) => return Some(Err(error)),
            };
            // Acquire: the stamp we read came from an epoch value; this load sees it or a later
            // one (the stamp's writer read it before publishing the slot).
            let now = header::epoch(map.region.header()).load(Ordering::Acquire);
            let inserted_since_start =
                stamp.wrapping_sub(self.epoch).wrapping_sub(1) < now.wrapping_sub(self.epoch);
            if !inserted_since_start {
                return Some(Ok((key_len, value_len)));
            }
        }
        None
    }

    /// Reads the first full slot at or after the cursor in its chunk, holding the chunk's lock
    /// (see the module docs for why); `None` if there is none.
    fn read_next_in_chunk(&self, key: &mut [u8], value: &mut [u8]) -> Result<Option<Read>, Error> {
        let map = self.map;
        let control = map.region.control(self.chunk);
        // Unlocked, a chunk whose tags show no full slot from the cursor on holds no entry that
        // was present throughout (its tag would have been set throughout): skip it unlocked.
        if !Tags::load(control).full().any(|slot| slot >= self.slot) {
            return Ok(None);
        }
        let _guard = lock::lock(control, &map.waiter())?;
        let Some(slot) = Tags::load(control).full().find(|&slot| slot >= self.slot) else {
            return Ok(None);
        };
        Ok(Some(Read {
            slot,
            entry: self.read_slot(control, slot, key, value),
        }))
    }

    fn read_slot(
        &self,
        control: &ControlBlock,
        slot: usize,
        key: &mut [u8],
        value: &mut [u8],
    ) -> Result<(u32, usize, usize), Error> {
        let (map, chunk) = (self.map, self.chunk);
        // Relaxed: we hold the chunk lock, whose Acquire ordered this after the last writer.
        let entry = map.region.slot(
            chunk,
            chunk::physical(control.map.load(Ordering::Relaxed), slot, chunk)?,
        );
        let key_len = entry.key_len();
        let value_len = entry.value_len();
        if key_len > map.layout.max_key_len() || value_len > map.layout.max_value_len() {
            return Err(Error::Corrupt(Corruption::SlotLength {
                chunk: chunk as u32,
                slot: slot as u8,
            }));
        }
        let Some(key) = key.get_mut(..key_len) else {
            return Err(Error::BufferTooSmall {
                needed: key_len,
                got: key.len(),
            });
        };
        let Some(value) = value.get_mut(..value_len) else {
            return Err(Error::BufferTooSmall {
                needed: value_len,
                got: value.len(),
            });
        };
        entry.copy_key(key);
        entry.copy_value(value);
        Ok((entry.stamp(), key_len, value_len))
    }
}

/// The full slot `scan` found, and what reading it gave: stamp, key and value lengths.
struct Read {
    slot: usize,
    entry: Result<(u32, usize, usize), Error>,
}
