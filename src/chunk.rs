//! A chunk's control block: tag bytes, the slot map, and how they are read and changed.
//!
//! A chunk has 8 logical slots. Tag byte `i` says whether logical slot `i` is full (high bit
//! set, low 7 bits from the key's hash) or empty (0). A lookup loads the 8 tag bytes as one
//! 64-bit value and finds candidate slots with a few word operations (SWAR), as Swiss tables do.
//!
//! The slot map is a permutation: nibble `i` names the physical slot (0..=8) that holds logical
//! slot `i`, and the one physical slot no nibble names is the spare. Replacing an entry writes
//! the new entry into the spare and then stores the map with logical slot `i` pointing at it:
//! one atomic store publishes the whole entry, so a writer that dies at any instant leaves the
//! old entry or the new one, never a mix. The old physical slot becomes the new spare.
//!
//! The overflow word holds four 8-bit counters, one per overflow class (2 bits of the key's
//! hash): counter `c` is how many entries of class `c` probed past this chunk. A lookup of an
//! absent key goes on past a chunk only while its own class's counter is non-zero, so a chunk
//! that one displaced entry passed stops three quarters of the lookups that reach it. A counter
//! that reaches 255 stays there (it no longer knows its true value): it can over-count, which
//! costs longer probes, but never under-count, which would lose keys.

use crate::error::{Corruption, Error};
use crate::region::{ControlBlock, Phys};
use crate::sync::Ordering;

/// The slot map of a freshly formatted chunk: logical slot `i` in physical slot `i`, spare 8.
pub(crate) const IDENTITY_MAP: u32 = 0x7654_3210;

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
const LOW_SEVEN: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The 8 tag bytes of a chunk, byte `i` for logical slot `i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tags(u64);

impl Tags {
    /// Loads the tags.
    ///
    /// Acquire: pairs with the Release store in [`store_tag`], so a reader that sees a tag set
    /// also sees the slot written before it, even when its writer died after setting it and
    /// the chunk was repaired by a process that never read the tag (see `raw/read.rs`). Free
    /// on x86; callers holding the chunk lock would need only Relaxed.
    #[inline]
    pub(crate) fn load(control: &ControlBlock) -> Tags {
        #[cfg(all(target_has_atomic = "64", target_endian = "little"))]
        {
            Tags(control.tags.load(Ordering::Acquire))
        }
        #[cfg(not(all(target_has_atomic = "64", target_endian = "little")))]
        {
            let low = u64::from(control.tags[0].load(Ordering::Acquire));
            let high = u64::from(control.tags[1].load(Ordering::Acquire));
            Tags(low | (high << 32))
        }
    }

    /// Slots whose tag equals `tag` (which has its high bit set).
    #[inline]
    pub(crate) fn matching(self, tag: u8) -> SlotSet {
        let diff = self.0 ^ (LOW_BITS * u64::from(tag));
        // Exact zero-byte test: a byte of `diff` is zero iff adding 0x7f to its low 7 bits
        // leaves its high bit clear and its own high bit is clear.
        let nonzero = ((diff & LOW_SEVEN).wrapping_add(LOW_SEVEN) | diff) & HIGH_BITS;
        SlotSet(!nonzero & HIGH_BITS)
    }

    /// The lowest slot whose tag equals `tag` (which has its high bit set), if any.
    ///
    /// Cheaper than [`matching`](Self::matching)`(tag).first()`: the classic "has a zero byte"
    /// test, `(x - 0x01..) & !x & 0x80..`, flags every zero byte of `x` and may also flag a
    /// byte above one (a borrow from the zero byte below it), but never a byte below the lowest
    /// zero byte, so its lowest flag is exact.
    #[inline]
    pub(crate) fn first_matching(self, tag: u8) -> Option<usize> {
        let diff = self.0 ^ (LOW_BITS * u64::from(tag));
        SlotSet(diff.wrapping_sub(LOW_BITS) & !diff & HIGH_BITS).first()
    }

    /// Slots that are full.
    #[inline]
    pub(crate) fn full(self) -> SlotSet {
        SlotSet(self.0 & HIGH_BITS)
    }

    /// Slots that are empty.
    #[inline]
    pub(crate) fn empty(self) -> SlotSet {
        SlotSet(!self.0 & HIGH_BITS)
    }

    /// The tag byte of logical slot `slot`.
    #[inline]
    pub(crate) fn get(self, slot: usize) -> u8 {
        (self.0 >> (slot * 8)) as u8
    }
}

/// A set of logical slots of one chunk, iterated from slot 0 up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotSet(u64);

impl SlotSet {
    /// Whether the set is empty.
    #[inline]
    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The number of slots in the set.
    #[inline]
    pub(crate) fn count(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The lowest slot in the set.
    #[inline]
    pub(crate) fn first(self) -> Option<usize> {
        if self.0 == 0 {
            None
        } else {
            Some(self.0.trailing_zeros() as usize / 8)
        }
    }
}

impl Iterator for SlotSet {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        let slot = self.first()?;
        self.0 &= self.0 - 1;
        Some(slot)
    }
}

/// The tag a key with hash `hash` gets: the high bit marks the slot full.
#[inline]
pub(crate) fn tag_of(hash: u64) -> u8 {
    0x80 | (hash as u8 & 0x7f)
}

/// Sets logical slot `slot`'s tag to `tag` (0 empties it). The caller holds the chunk lock.
///
/// Release: pairs with the Acquire in [`Tags::load`] (and `lock::repair`'s fence), so whoever
/// sees the tag set sees the complete slot written before it.
#[inline]
pub(crate) fn store_tag(control: &ControlBlock, slot: usize, tag: u8) {
    #[cfg(all(target_has_atomic = "64", target_endian = "little"))]
    let (word, shift, tag) = (&control.tags, slot % 8 * 8, u64::from(tag));
    #[cfg(not(all(target_has_atomic = "64", target_endian = "little")))]
    let (word, shift, tag) = (&control.tags[slot / 4 % 2], slot % 4 * 8, u32::from(tag));
    // Relaxed: only the lock holder writes tags, and its lock Acquire ordered this load.
    let old = word.load(Ordering::Relaxed);
    let new = (old & !(0xff << shift)) | (tag << shift);
    word.store(new, Ordering::Release);
}

/// Empties every slot of a chunk. The caller holds the chunk lock, or formats the region.
pub(crate) fn clear_tags(control: &ControlBlock) {
    // Release: as in `store_tag`.
    #[cfg(all(target_has_atomic = "64", target_endian = "little"))]
    control.tags.store(0, Ordering::Release);
    #[cfg(not(all(target_has_atomic = "64", target_endian = "little")))]
    for word in &control.tags {
        word.store(0, Ordering::Release);
    }
}

/// A saturated overflow counter: its true value is 255 or more, and it never goes down.
pub(crate) const OVERFLOW_SATURATED: u32 = 0xff;

/// Class `class`'s counter in overflow word `word`.
#[inline]
pub(crate) fn overflow_count(word: u32, class: u32) -> u32 {
    (word >> (class * 8)) & 0xff
}

/// Counts one more entry of `class` past this chunk (unless the counter is saturated).
pub(crate) fn raise_overflow(control: &ControlBlock, class: u32) {
    // Relaxed: counters are not covered by the chunk lock or sequence; inserters order this
    // before the entry's publication through the Release store of its tag.
    let _ = control
        .overflow
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
            (overflow_count(word, class) < OVERFLOW_SATURATED).then(|| word + (1 << (class * 8)))
        });
}

/// Counts one entry of `class` fewer past this chunk (unless the counter is saturated, or
/// already zero in a corrupt region).
pub(crate) fn lower_overflow(control: &ControlBlock, class: u32) {
    // Release: pairs with the Acquire loads of writers' probes (`RawMap::scan_chunk`), so a
    // writer that stops at the lowered counter sees the removal of the entry it counted (the
    // iterator's no-duplicates argument after `clear` needs that). Relaxed on failure: nothing
    // changed. Otherwise a stale higher count only lengthens probes.
    let _ = control
        .overflow
        .fetch_update(Ordering::Release, Ordering::Relaxed, |word| {
            let count = overflow_count(word, class);
            (count != 0 && count < OVERFLOW_SATURATED).then(|| word - (1 << (class * 8)))
        });
}

/// The physical slot that holds logical slot `slot` under `map`.
#[inline]
pub(crate) fn physical(map: u32, slot: usize, chunk: usize) -> Result<Phys, Error> {
    Phys::new((map >> (slot * 4)) & 0xf).ok_or(Error::Corrupt(Corruption::SlotMap {
        chunk: chunk as u32,
    }))
}

/// The spare physical slot of `map`: the one no nibble names. Nibbles 0..=8 sum to 36, so the
/// spare is 36 minus their sum; a map whose nibbles are out of range, or that names the slot
/// this gives, is corrupt. (A map with a duplicate that happens to pass, which only a foreign
/// write can make, misdirects writes within the chunk's own slots; `verify` checks each map is a
/// permutation.)
#[inline]
pub(crate) fn spare(map: u32, chunk: usize) -> Result<Phys, Error> {
    let corrupt = Error::Corrupt(Corruption::SlotMap {
        chunk: chunk as u32,
    });
    // Every nibble at most 8: none has bit 3 set together with any of bits 0..=2.
    if map
        & 0x8888_8888
        & ((map & 0x7777_7777) << 1 | (map & 0x7777_7777) << 2 | (map & 0x7777_7777) << 3)
        != 0
    {
        return Err(corrupt);
    }
    writable_spare(map, chunk)
}

/// The physical slot a writer may fill before publishing it under `map`: [`spare`] for a valid
/// map, and for any map a slot that no nibble names, so that writing it cannot touch an entry
/// the map publishes; otherwise the map is corrupt. Cheaper than [`spare`] by the range check
/// of every nibble, which a writer does not need: a nibble out of range stays as it was, and
/// is reported by [`physical`] to whoever reads that slot, and by `verify`.
#[inline]
pub(crate) fn writable_spare(map: u32, chunk: usize) -> Result<Phys, Error> {
    let corrupt = Error::Corrupt(Corruption::SlotMap {
        chunk: chunk as u32,
    });
    let spare = spare_unchecked(map).ok_or(corrupt)?;
    // No nibble may name the spare: a zero nibble in `map ^ spare * 0x1111_1111` marks one.
    let diff = map ^ (spare.get() as u32 * 0x1111_1111);
    let nonzero_nibbles = ((diff & 0x7777_7777).wrapping_add(0x7777_7777) | diff) & 0x8888_8888;
    if nonzero_nibbles != 0x8888_8888 {
        return Err(corrupt);
    }
    Ok(spare)
}

/// What [`spare`] gives for a valid `map`, without checking that `map` is valid (for a guess;
/// `None` only where it is not even a slot index).
#[inline]
pub(crate) fn spare_unchecked(map: u32) -> Option<Phys> {
    // Each byte of `pairs` is the sum of two nibbles (at most 30), so the multiply's top byte
    // is the sum of all eight without carries.
    let pairs = (map & 0x0f0f_0f0f) + ((map >> 4) & 0x0f0f_0f0f);
    let sum = pairs.wrapping_mul(0x0101_0101) >> 24;
    36u32.checked_sub(sum).and_then(Phys::new)
}

/// `map` with logical slot `slot` moved to physical slot `phys`.
#[inline]
pub(crate) fn remapped(map: u32, slot: usize, phys: Phys) -> u32 {
    let shift = slot * 4;
    (map & !(0xf << shift)) | ((phys.get() as u32) << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(bytes: [u8; 8]) -> Tags {
        Tags(u64::from_le_bytes(bytes))
    }

    #[test]
    fn matching_finds_exactly_the_equal_bytes() {
        let t = tags([0x81, 0, 0x81, 0x82, 0x01, 0x81, 0xff, 0x80]);
        assert_eq!(
            t.matching(0x81).collect::<heapless::Vec<usize, 8>>(),
            [0, 2, 5]
        );
        assert_eq!(t.matching(0x80).collect::<heapless::Vec<usize, 8>>(), [7]);
        assert_eq!(t.first_matching(0x81), Some(0));
        assert_eq!(t.first_matching(0x82), Some(3));
        assert_eq!(t.first_matching(0x83), None);
        assert!(t.matching(0x83).is_empty());
        // Every byte value against every other, to catch SWAR carry mistakes.
        for a in (0..=255u8).filter(|a| !cfg!(miri) || a % 17 == 0) {
            for b in [0u8, 1, 0x7f, 0x80, 0x81, 0xfe, 0xff, a.wrapping_add(1)] {
                let t = tags([a, b, a, b, b, a, b, a]);
                let expected: heapless::Vec<usize, 8> = [a, b, a, b, b, a, b, a]
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| **x == (a | 0x80))
                    .map(|(i, _)| i)
                    .collect();
                assert_eq!(
                    t.matching(a | 0x80).collect::<heapless::Vec<usize, 8>>(),
                    expected,
                    "a={a:#x} b={b:#x}"
                );
                assert_eq!(
                    t.first_matching(a | 0x80),
                    expected.first().copied(),
                    "a={a:#x} b={b:#x}"
                );
            }
        }
    }

    #[test]
    fn first_matching_is_the_first_of_matching() {
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..if cfg!(miri) { 500 } else { 100_000 } {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Tags from a small alphabet, so that equal and off-by-one bytes are common.
            let t = Tags(x & 0x8383_8383_8383_8383);
            for tag in [0x80u8, 0x81, 0x82, 0x83] {
                assert_eq!(
                    t.first_matching(tag),
                    t.matching(tag).first(),
                    "{t:?} {tag:#x}"
                );
            }
        }
    }

    #[test]
    fn full_and_empty_split_on_the_high_bit() {
        let t = tags([0x81, 0, 0x90, 0, 0, 0xff, 0, 0x80]);
        assert_eq!(t.full().collect::<heapless::Vec<usize, 8>>(), [0, 2, 5, 7]);
        assert_eq!(t.empty().collect::<heapless::Vec<usize, 8>>(), [1, 3, 4, 6]);
        assert_eq!(t.full().count(), 4);
        assert_eq!(t.empty().first(), Some(1));
        assert_eq!(t.get(2), 0x90);
    }

    #[test]
    fn tags_always_have_the_high_bit() {
        for hash in [0u64, 1, 0x7f, 0x80, 0xff, u64::MAX] {
            assert!(tag_of(hash) & 0x80 != 0);
        }
    }

    #[test]
    fn identity_map_has_spare_eight() {
        assert_eq!(spare(IDENTITY_MAP, 0), Ok(Phys::new(8).unwrap()));
        for slot in 0..8 {
            assert_eq!(physical(IDENTITY_MAP, slot, 0).unwrap().get(), slot);
        }
    }

    #[test]
    fn remapping_keeps_a_permutation() {
        let mut map = IDENTITY_MAP;
        for step in 0..100usize {
            let slot = step * 5 % 8;
            let old = physical(map, slot, 0).unwrap();
            let new_spare = spare(map, 0).unwrap();
            map = remapped(map, slot, new_spare);
            assert_eq!(spare(map, 0).unwrap(), old);
        }
    }

    #[test]
    fn overflow_counters_are_per_class_and_saturate() {
        let control = ControlBlock::zeroed();
        control.map.store(IDENTITY_MAP, Ordering::Relaxed);
        let count = |class| overflow_count(control.overflow.load(Ordering::Relaxed), class);
        raise_overflow(&control, 2);
        raise_overflow(&control, 2);
        raise_overflow(&control, 0);
        assert_eq!([count(0), count(1), count(2), count(3)], [1, 0, 2, 0]);
        lower_overflow(&control, 2);
        lower_overflow(&control, 1); // already zero: stays zero, does not borrow from class 2
        assert_eq!([count(0), count(1), count(2), count(3)], [1, 0, 1, 0]);
        for _ in 0..300 {
            raise_overflow(&control, 3);
        }
        assert_eq!(count(3), OVERFLOW_SATURATED);
        lower_overflow(&control, 3);
        assert_eq!(
            count(3),
            OVERFLOW_SATURATED,
            "a saturated counter never goes down"
        );
        assert_eq!([count(0), count(1), count(2)], [1, 0, 1]);
    }

    #[test]
    fn invalid_maps_are_corrupt() {
        let corrupt = Err(Error::Corrupt(Corruption::SlotMap { chunk: 3 }));
        assert_eq!(spare(0x7654_3211, 3), corrupt); // duplicate 1, sum 37: no spare
        assert_eq!(spare(0xf654_3210, 3), corrupt); // nibble 15 is out of range
        assert_eq!(spare(0x9654_3210, 3), corrupt); // nibble 9 is out of range
        assert_eq!(physical(0xf654_3210, 7, 3), corrupt);
        // Every map with one nibble changed is corrupt (or, rarely, another permutation).
        for nibble in 0..8 {
            for value in 0..16u32 {
                let map = (IDENTITY_MAP & !(0xf << (nibble * 4))) | (value << (nibble * 4));
                let is_permutation = {
                    let mut seen = 0u32;
                    for slot in 0..8 {
                        seen |= 1 << ((map >> (slot * 4)) & 0xf);
                    }
                    seen & !0x1ff == 0 && seen.count_ones() == 8
                };
                assert_eq!(spare(map, 3).is_ok(), is_permutation, "map {map:#010x}");
            }
        }
    }

    #[test]
    fn a_writable_spare_is_never_named_by_the_map() {
        // Every map of nibbles 0..=15 in the low 12 bits, and a spread of whole words (fewer
        // of each under Miri).
        let step = if cfg!(miri) { 61 } else { 1 };
        let maps = (0..1u32 << 12)
            .step_by(step)
            .map(|low| (IDENTITY_MAP & !0xfff) | low)
            .chain(
                (0..1u32 << 16)
                    .step_by(step)
                    .map(|i| i.wrapping_mul(0x9e37_79b9)),
            );
        for map in maps {
            match writable_spare(map, 3) {
                Ok(phys) => {
                    for slot in 0..8 {
                        assert_ne!((map >> (slot * 4)) & 0xf, phys.get() as u32, "{map:#010x}");
                    }
                    if let Ok(valid) = spare(map, 3) {
                        assert_eq!(phys, valid);
                    }
                }
                Err(error) => {
                    assert_eq!(error, Error::Corrupt(Corruption::SlotMap { chunk: 3 }));
                    assert!(spare(map, 3).is_err(), "{map:#010x}");
                }
            }
        }
    }
}
