//! The probe sequence of a key: which chunks a lookup or an insert visits, in what order.
//!
//! A key starts at its home chunk and moves on by a step of its own (double hashing, as folly's
//! F14 does), both taken from its hash: the home from the upper 32 bits, the step from the lower
//! 32. The multiply-shift reduction is ruled by the top bits of each half (bits 56..64 and
//! 24..32), so home and step are independent of each other and of the tag (bits 0..7). Keys
//! that share a home chunk therefore part ways at once, and entries displaced from one crowded
//! chunk do not pile up on its neighbours. With linear probing they do: under churn at high
//! load, runs of chunks with non-zero overflow counters grow long and every lookup of an absent
//! key has to walk a whole run.
//!
//! A key's overflow class (bits 7 and 8 of its hash) says which of a chunk's four overflow
//! counters it counts in (see `chunk.rs`).
//!
//! The chunk count is 1 or a prime (see `layout.rs`), so every step from 1 to `chunks - 1` is
//! coprime with it and the sequence visits every chunk exactly once in `chunks` steps: an insert
//! finds a free slot wherever one is, and no walk can loop forever.

/// Maps `value` uniformly onto `0..range` with a multiply and a shift (Lemire's reduction).
#[inline(always)]
fn reduce(value: u32, range: usize) -> usize {
    ((u64::from(value) * range as u64) >> 32) as usize
}

/// A key's probe sequence in a map of `chunks` chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Probe {
    /// The first chunk of the sequence.
    pub(crate) home: usize,
    /// The overflow counter (0..4) the key counts in.
    pub(crate) class: u32,
    step: usize,
    chunks: usize,
}

/// The home chunk of a key with `hash` in a map of `chunks` chunks: [`Probe::home`] alone.
#[inline(always)]
pub(crate) fn home(hash: u64, chunks: usize) -> usize {
    reduce((hash >> 32) as u32, chunks)
}

/// The overflow class of a key with `hash`: [`Probe::class`] alone.
#[inline(always)]
pub(crate) fn class(hash: u64) -> u32 {
    (hash >> 7) as u32 & 3
}

impl Probe {
    /// The probe sequence for a key with `hash` in a map of `chunks` (at least 1) chunks.
    #[inline(always)]
    pub(crate) fn new(hash: u64, chunks: usize) -> Probe {
        let home = home(hash, chunks);
        let step = if chunks > 1 {
            1 + reduce(hash as u32, chunks - 1)
        } else {
            0
        };
        Probe {
            home,
            class: class(hash),
            step,
            chunks,
        }
    }

    /// The chunk after `chunk` in the sequence.
    #[inline(always)]
    pub(crate) fn next(&self, chunk: usize) -> usize {
        let next = chunk + self.step;
        if next >= self.chunks {
            next - self.chunks
        } else {
            next
        }
    }

    /// The whole sequence: every chunk once, home first.
    pub(crate) fn chunks(self) -> impl Iterator<Item = usize> {
        let mut chunk = self.home;
        (0..self.chunks).map(move |index| {
            if index > 0 {
                chunk = self.next(chunk);
            }
            chunk
        })
    }

    /// The chunks the sequence visits before it reaches `target` (all of them, if it never
    /// does, which only a corrupt region can cause).
    pub(crate) fn before(self, target: usize) -> impl Iterator<Item = usize> {
        self.chunks().take_while(move |&chunk| chunk != target)
    }

    /// How many steps the sequence takes from home to `target`.
    pub(crate) fn distance(self, target: usize) -> usize {
        self.before(target).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sequence_visits_every_chunk_once() {
        for chunks in [1usize, 2, 3, 5, 7, 11, 13, 101] {
            for hash in (0..200u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) {
                let probe = Probe::new(hash, chunks);
                let mut seen = std::vec![false; chunks];
                for chunk in probe.chunks() {
                    assert!(!seen[chunk], "chunk {chunk} of {chunks} visited twice");
                    seen[chunk] = true;
                }
                assert!(seen.iter().all(|&s| s));
            }
        }
    }

    #[test]
    fn distance_counts_steps() {
        let probe = Probe::new(0x1234_5678_9abc_def0, 13);
        for (steps, chunk) in probe.chunks().enumerate() {
            assert_eq!(probe.distance(chunk), steps);
            assert_eq!(probe.before(chunk).count(), steps);
        }
    }

    #[test]
    fn keys_with_one_home_take_different_steps() {
        let steps: std::collections::BTreeSet<usize> = (0..64u64)
            .map(|i| {
                Probe::new(
                    0x1234_5678_0000_0000 | u64::from((i as u32).wrapping_mul(0x9e37_79b9)),
                    101,
                )
            })
            .map(|p| {
                assert_eq!(p.home, Probe::new(0x1234_5678_0000_0000, 101).home);
                (p.next(p.home) + 101 - p.home) % 101
            })
            .collect();
        assert!(steps.len() > 40, "only {} distinct steps", steps.len());
    }
}
