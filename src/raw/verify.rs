//! `verify`: an fsck for a map, walking the whole region and checking every invariant the
//! map's correctness rests on.

use super::RawMap;
use crate::chunk::{self, Tags, tag_of};
use crate::error::{Corruption, Error};
use crate::header;
use crate::slot::StoredKey;
use crate::sync::Ordering;

/// What [`RawMap::verify`] found in a map that has no structural damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct VerifyReport {
    /// The number of entries.
    pub entries: usize,
    /// The longest distance, in chunks, from an entry's home chunk to the chunk that holds it.
    pub max_probe_distance: usize,
    /// How far the overflow counters exceed the number of entries that probed past their chunks,
    /// summed. Harmless (lookups of absent keys probe further than they need to); left behind by
    /// writers that died between removing an entry and lowering the counters.
    pub overflow_excess: u64,
    /// Chunk locks held while `verify` read them.
    pub locks_held: usize,
    /// Chunks with a write in progress while `verify` read them.
    pub writes_in_progress: usize,
}

impl RawMap<'_> {
    /// Walks the whole region and checks its structure: the header, every chunk's slot map,
    /// every entry's lengths, tag and hash, that every key is reachable by a lookup and stored
    /// once, and that every overflow counter covers the entries that probed past its chunk.
    ///
    /// Run it while no writer is active: a concurrent write can make it report damage that is
    /// not there. It takes no lock and changes nothing.
    ///
    /// # Errors
    /// [`Error::Corrupt`] with the first damage found, or any error from reading the header
    /// (as for [`attach`](Self::attach)).
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        let stored = header::read(self.region.header(), self.liveness)?;
        if stored.layout != self.layout || stored.seed != self.seed {
            return Err(Error::Corrupt(Corruption::HeaderLayout));
        }
        let mut report = VerifyReport::default();
        for chunk in 0..self.region.chunks() {
            self.verify_chunk(chunk, &mut report)?;
        }
        for chunk in 0..self.region.chunks() {
            let expected = self.entries_probing_past(chunk, report.max_probe_distance);
            // Relaxed: a snapshot; see the docs above.
            let stored = u64::from(self.region.control(chunk).overflow.load(Ordering::Relaxed));
            if stored < expected {
                return Err(Error::Corrupt(Corruption::OverflowUndercount { chunk: chunk as u32 }));
            }
            report.overflow_excess += stored - expected;
        }
        Ok(report)
    }

    fn verify_chunk(&self, chunk: usize, report: &mut super::VerifyReport) -> Result<(), Error> {
        let control = self.region.control(chunk);
        // Relaxed: a snapshot; see `verify`'s docs.
        report.locks_held += usize::from(control.lock.load(Ordering::Relaxed) != 0);
        report.writes_in_progress += usize::from(control.seq.load(Ordering::Relaxed) & 1 != 0);
        let map = control.map.load(Ordering::Relaxed);
        chunk::spare(map, chunk)?;
        let tags = Tags::load(control);
        for slot in tags.full() {
            let position = (chunk as u32, slot as u8);
            let entry = self.region.slot(chunk, chunk::physical(map, slot, chunk)?);
            let key_len = entry.key_len();
            if key_len > self.layout.max_key_len() || entry.value_len() > self.layout.max_value_len() {
                return Err(Error::Corrupt(Corruption::SlotLength { chunk: position.0, slot: position.1 }));
            }
            let hash = entry.hash_key(key_len, self.seed);
            if tags.get(slot) != tag_of(hash) || entry.stored_hash() != (hash >> 32) as u32 {
                return Err(Error::Corrupt(Corruption::SlotHash { chunk: position.0, slot: position.1 }));
            }
            let distance = self.distance(self.home(hash), chunk);
            report.max_probe_distance = report.max_probe_distance.max(distance);
            match self.locate(&StoredKey { slot: entry, len: key_len }, hash)? {
                Some(found) if found == (chunk, slot) => {}
                Some(_) => return Err(Error::Corrupt(Corruption::DuplicateKey { chunk: position.0, slot: position.1 })),
                None => return Err(Error::Corrupt(Corruption::Unreachable { chunk: position.0, slot: position.1 })),
            }
            report.entries += 1;
        }
        Ok(())
    }

    /// How many entries lie past `chunk` in their own probe sequence, counting only chunks up
    /// to `max_distance` further on (no entry lies further from its home). Uses the stored
    /// hashes, which `verify_chunk` has checked.
    fn entries_probing_past(&self, chunk: usize, max_distance: usize) -> u64 {
        let mut count = 0;
        let mut later = chunk;
        for step in 1..=max_distance.min(self.region.chunks() - 1) {
            later = self.next_chunk(later);
            let control = self.region.control(later);
            // Relaxed: a snapshot; see `verify`'s docs.
            let map = control.map.load(Ordering::Relaxed);
            for slot in Tags::load(control).full() {
                let Ok(phys) = chunk::physical(map, slot, later) else { continue };
                let home = self.home(u64::from(self.region.slot(later, phys).stored_hash()) << 32);
                count += u64::from(self.distance(home, later) >= step);
            }
        }
        count
    }
}
