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
    /// The longest distance, in probe steps, from an entry's home chunk to the chunk that
    /// holds it.
    pub max_probe_distance: usize,
    /// The sum of every entry's probe distance; divided by `entries`, the mean number of extra
    /// chunks a lookup of a present key reads.
    pub total_probe_distance: u64,
    /// How far the overflow counters exceed the number of entries that probed past their chunks,
    /// summed. Harmless (lookups of absent keys probe further than they need to); left behind by
    /// writers that died between removing an entry and lowering the counters. Zero when some
    /// counter is saturated (at 255 it no longer knows by how much it exceeds).
    pub overflow_excess: u64,
    /// Chunk locks held while `verify` read them.
    pub locks_held: usize,
    /// Chunks with a write in progress while `verify` read them.
    pub writes_in_progress: usize,
}

impl RawMap<'_> {
    /// Walks the whole region and checks its structure: the header, every chunk's slot map,
    /// every entry's lengths, tag and hash, that every key is reachable by a lookup and stored
    /// once, and that the overflow counters together cover every entry that probed past its
    /// home. [`verify_exact`](Self::verify_exact) also checks each counter on its own.
    ///
    /// Run it while no writer is active: a concurrent write can make it report damage that is
    /// not there. It changes no entry and takes no lock, except as any reader does: to repair a
    /// chunk a dead writer left mid-write.
    ///
    /// # Errors
    /// [`Error::Corrupt`] with the first damage found, or any error from reading the header
    /// (as for [`attach`](Self::attach)).
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        self.verify_with(None)
    }

    /// [`verify`](Self::verify), and also checks that each chunk's overflow counter is at
    /// least the number of entries that probed past that chunk (a lower counter has not lost a
    /// key yet, but will once it drops to zero). `scratch` needs one word per chunk
    /// ([`Layout::chunks`](crate::Layout::chunks)); its contents are overwritten.
    ///
    /// # Errors
    /// As for [`verify`](Self::verify); [`Error::BufferTooSmall`] if `scratch` is too short.
    pub fn verify_exact(&self, scratch: &mut [u32]) -> Result<VerifyReport, Error> {
        let chunks = self.region.chunks();
        let Some(scratch) = scratch.get_mut(..chunks) else {
            return Err(Error::BufferTooSmall {
                needed: chunks,
                got: scratch.len(),
            });
        };
        scratch.fill(0);
        self.verify_with(Some(scratch))
    }

    fn verify_with(&self, mut expected: Option<&mut [u32]>) -> Result<VerifyReport, Error> {
        let stored = header::read(self.region.header(), self.liveness)?;
        if stored.layout != self.layout || stored.seed != self.seed.get() {
            return Err(Error::Corrupt(Corruption::HeaderLayout));
        }
        let mut report = VerifyReport::default();
        let mut passes = 0u64;
        for chunk in 0..self.region.chunks() {
            self.verify_chunk(chunk, &mut report, &mut passes, expected.as_deref_mut())?;
        }
        let mut total = 0u64;
        let mut saturated = false;
        for (chunk, control) in self.region.controls().iter().enumerate() {
            // Relaxed: a snapshot; see the docs above.
            let word = control.overflow.load(Ordering::Relaxed);
            for class in 0..4 {
                let count = chunk::overflow_count(word, class);
                if count == chunk::OVERFLOW_SATURATED {
                    // At least 255: covers any true count.
                    saturated = true;
                    continue;
                }
                if let Some(expected) = expected.as_deref() {
                    if count < chunk::overflow_count(expected[chunk], class) {
                        return Err(Error::Corrupt(Corruption::OverflowUndercount {
                            chunk: chunk as u32,
                        }));
                    }
                }
                total += u64::from(count);
            }
        }
        report.total_probe_distance = passes;
        if !saturated {
            if total < passes {
                return Err(Error::Corrupt(Corruption::OverflowTotalUndercount));
            }
            report.overflow_excess = total - passes;
        }
        Ok(report)
    }

    /// Checks one chunk's entries; adds to `passes` (and to `expected`, per chunk) the chunks
    /// each entry probed past.
    fn verify_chunk(
        &self,
        chunk: usize,
        report: &mut VerifyReport,
        passes: &mut u64,
        mut expected: Option<&mut [u32]>,
    ) -> Result<(), Error> {
        let control = self.region.control(chunk);
        // Relaxed: a snapshot; see `verify`'s docs.
        report.locks_held += usize::from(control.lock.load(Ordering::Relaxed) != 0);
        report.writes_in_progress += usize::from(control.seq.load(Ordering::Relaxed) & 1 != 0);
        let map = control.map.load(Ordering::Relaxed);
        chunk::spare(map, chunk)?;
        let tags = Tags::load(control);
        for slot in tags.full() {
            let (at_chunk, at_slot) = (chunk as u32, slot as u8);
            let entry = self.region.slot(chunk, chunk::physical(map, slot, chunk)?);
            let key_len = entry.key_len();
            if key_len > self.layout.max_key_len()
                || entry.value_len() > self.layout.max_value_len()
            {
                return Err(Error::Corrupt(Corruption::SlotLength {
                    chunk: at_chunk,
                    slot: at_slot,
                }));
            }
            let hash = entry.hash_key(key_len, self.seed.get());
            if tags.get(slot) != tag_of(hash) || entry.stored_hash() != (hash >> 32) as u32 {
                return Err(Error::Corrupt(Corruption::SlotHash {
                    chunk: at_chunk,
                    slot: at_slot,
                }));
            }
            match self.locate(
                &StoredKey {
                    slot: entry,
                    len: key_len,
                },
                hash,
            )? {
                Some(found) if found == (chunk, slot) => {}
                Some(_) => {
                    return Err(Error::Corrupt(Corruption::DuplicateKey {
                        chunk: at_chunk,
                        slot: at_slot,
                    }));
                }
                None => {
                    return Err(Error::Corrupt(Corruption::Unreachable {
                        chunk: at_chunk,
                        slot: at_slot,
                    }));
                }
            }
            let probe = self.probe(hash);
            let distance = probe.distance(chunk);
            report.max_probe_distance = report.max_probe_distance.max(distance);
            *passes += distance as u64;
            if let Some(expected) = expected.as_deref_mut() {
                for passed in probe.before(chunk) {
                    if chunk::overflow_count(expected[passed], probe.class)
                        < chunk::OVERFLOW_SATURATED
                    {
                        expected[passed] += 1 << (probe.class * 8);
                    }
                }
            }
            report.entries += 1;
        }
        Ok(())
    }
}
