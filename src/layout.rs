//! Where everything lives in a region: the [`Layout`] of a map and the sizes it derives.
//!
//! ```text
//! offset 0                 header (64 bytes): magic, version, layout, seed, checksum
//! offset 64                control blocks, one per chunk (32 bytes each, 2 per cache line)
//! offset 64 + ctl (padded) slots: 9 physical slots per chunk, each
//!                          [key_len u32, value_len u32, stamp u32, hash u32, key words, value words]
//! ```
//!
//! A chunk has 8 logical slots backed by 9 physical ones; the spare lets an update write the
//! new entry beside the old and publish it with one store (see `chunk.rs`). The map holds
//! `capacity` entries in at least `ceil(capacity / 7)` chunks, so a full map uses at most 7/8
//! of its slots and probe sequences stay short. The chunk count is rounded up to a prime (or is
//! 1), which the double-hashing probe sequence needs (see `probe.rs`); primes are dense, so
//! this adds less than 0.1% to any layout of more than a few thousand entries.

use crate::error::{Error, LayoutProblem};

/// Logical slots per chunk: one tag byte each in the control block.
pub(crate) const SLOTS_PER_CHUNK: usize = 8;
/// Physical slots per chunk: the logical ones and one spare.
pub(crate) const PHYSICAL_SLOTS_PER_CHUNK: usize = SLOTS_PER_CHUNK + 1;
/// Entries the layout promises per chunk; the eighth slot is headroom that keeps probing short.
pub(crate) const ENTRIES_PER_CHUNK: usize = 7;
/// Bytes of the header at the start of the region.
pub(crate) const HEADER_SIZE: usize = 64;
/// Bytes of one chunk's control block.
pub(crate) const CONTROL_SIZE: usize = 32;
/// Bytes of the fixed fields at the start of each slot.
pub(crate) const SLOT_HEADER_SIZE: usize = 16;
/// Key and value areas are padded to a multiple of this, so they can be copied in whole words
/// on 32- and 64-bit targets alike (the byte layout is the same on both).
pub(crate) const WORD_PAD: usize = 8;
const CACHE_LINE: usize = 64;

/// The alignment, in bytes, that a region's start address must have.
pub const REGION_ALIGN: usize = 8;

/// The shape of a map: how many entries it holds and how long its keys and values may be.
///
/// A layout fixes the size of the region ([`region_size`](Layout::region_size)) and is stored in
/// the region's header, so processes that attach to a map read it from there.
///
/// ```
/// use shared_hashmap::Layout;
///
/// let layout = Layout::new(1000, 32, 128)?;
/// assert_eq!(layout.capacity(), 1000);
/// assert!(layout.region_size() > 1000 * (32 + 128));
/// # Ok::<(), shared_hashmap::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Layout {
    capacity: u64,
    max_key_len: u32,
    max_value_len: u32,
    chunks: u32,
}

const fn round_up(value: usize, to: usize) -> Option<usize> {
    match value.checked_add(to - 1) {
        Some(sum) => Some(sum / to * to),
        None => None,
    }
}

const TOO_LARGE: Error = Error::InvalidLayout(LayoutProblem::TooLarge);

/// The smallest valid chunk count of at least `least`: 1, or a prime. `None` past `u32::MAX`.
const fn chunk_count(least: u32) -> Option<u32> {
    if least <= 2 {
        return Some(least);
    }
    let mut candidate = least | 1;
    loop {
        if is_prime(candidate) {
            return Some(candidate);
        }
        candidate = match candidate.checked_add(2) {
            Some(next) => next,
            None => return None,
        };
    }
}

const fn mul_mod(a: u64, b: u64, modulus: u64) -> u64 {
    a * b % modulus
}

const fn pow_mod(mut base: u64, mut exponent: u64, modulus: u64) -> u64 {
    let mut result = 1;
    base %= modulus;
    while exponent > 0 {
        if exponent & 1 == 1 {
            result = mul_mod(result, base, modulus);
        }
        base = mul_mod(base, base, modulus);
        exponent >>= 1;
    }
    result
}

/// Deterministic Miller-Rabin: the bases 2, 7 and 61 decide every `n` below 4,759,123,141.
const fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    let small = [2u32, 3, 5, 7, 11, 13, 61];
    let mut i = 0;
    while i < small.len() {
        if n == small[i] {
            return true;
        }
        if n % small[i] == 0 {
            return false;
        }
        i += 1;
    }
    let n = n as u64;
    let mut odd = n - 1;
    let mut twos = 0;
    while odd % 2 == 0 {
        odd /= 2;
        twos += 1;
    }
    let bases = [2u64, 7, 61];
    let mut b = 0;
    while b < bases.len() {
        let mut x = pow_mod(bases[b], odd, n);
        if x != 1 && x != n - 1 {
            let mut round = 1;
            let mut witness = true;
            while round < twos {
                x = mul_mod(x, x, n);
                if x == n - 1 {
                    witness = false;
                    break;
                }
                round += 1;
            }
            if witness {
                return false;
            }
        }
        b += 1;
    }
    true
}

impl Layout {
    /// A layout for `capacity` entries with keys of at most `max_key_len` bytes and values of
    /// at most `max_value_len` bytes.
    ///
    /// The map is guaranteed to hold `capacity` entries whatever their keys; it allocates 8/7 as
    /// many slots (rounded up to whole chunks of 8) so probe sequences stay short when full.
    ///
    /// # Errors
    /// [`Error::InvalidLayout`] if `capacity` is zero, or if the region would not fit in this
    /// target's address space.
    pub const fn new(
        capacity: usize,
        max_key_len: usize,
        max_value_len: usize,
    ) -> Result<Layout, Error> {
        if capacity == 0 {
            return Err(Error::InvalidLayout(LayoutProblem::ZeroCapacity));
        }
        let least = capacity.div_ceil(ENTRIES_PER_CHUNK);
        if least > u32::MAX as usize
            || max_key_len > u32::MAX as usize
            || max_value_len > u32::MAX as usize
        {
            return Err(TOO_LARGE);
        }
        let Some(chunks) = chunk_count(least as u32) else {
            return Err(TOO_LARGE);
        };
        let layout = Layout {
            capacity: capacity as u64,
            max_key_len: max_key_len as u32,
            max_value_len: max_value_len as u32,
            chunks,
        };
        match layout.checked_region_size() {
            Some(_) => Ok(layout),
            None => Err(TOO_LARGE),
        }
    }

    /// Rebuilds a layout from the fields stored in a header; `None` if they are inconsistent.
    pub(crate) const fn from_stored(
        capacity: u64,
        max_key_len: u32,
        max_value_len: u32,
        chunks: u32,
    ) -> Option<Layout> {
        if capacity > usize::MAX as u64 {
            return None;
        }
        match Layout::new(
            capacity as usize,
            max_key_len as usize,
            max_value_len as usize,
        ) {
            Ok(layout) if layout.chunks == chunks => Some(layout),
            _ => None,
        }
    }

    /// The number of entries the map is guaranteed to hold.
    pub const fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// The longest key, in bytes.
    pub const fn max_key_len(&self) -> usize {
        self.max_key_len as usize
    }

    /// The longest value, in bytes.
    pub const fn max_value_len(&self) -> usize {
        self.max_value_len as usize
    }

    /// The number of chunks (groups of 8 slots) the map has: 1, or a prime.
    pub const fn chunks(&self) -> usize {
        self.chunks as usize
    }

    /// The number of bytes the region for this layout needs.
    pub const fn region_size(&self) -> usize {
        match self.checked_region_size() {
            Some(size) => size,
            // `new` checked that this does not overflow.
            None => usize::MAX,
        }
    }

    /// Bytes of one physical slot.
    pub(crate) const fn slot_size(&self) -> usize {
        SLOT_HEADER_SIZE + self.key_area() + self.value_area()
    }

    /// Bytes of a slot's key area (the maximum key length, padded to whole words).
    pub(crate) const fn key_area(&self) -> usize {
        (self.max_key_len as usize).div_ceil(WORD_PAD) * WORD_PAD
    }

    /// Bytes of a slot's value area (the maximum value length, padded to whole words).
    pub(crate) const fn value_area(&self) -> usize {
        (self.max_value_len as usize).div_ceil(WORD_PAD) * WORD_PAD
    }

    /// Offset of the first control block.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) const fn controls_offset(&self) -> usize {
        HEADER_SIZE
    }

    /// Offset of the first slot.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) const fn slots_offset(&self) -> usize {
        // Cannot overflow: `new` checked the whole region size.
        HEADER_SIZE + (self.chunks as usize * CONTROL_SIZE).div_ceil(CACHE_LINE) * CACHE_LINE
    }

    const fn checked_region_size(&self) -> Option<usize> {
        let Some(key_area) = round_up(self.max_key_len as usize, WORD_PAD) else {
            return None;
        };
        let Some(value_area) = round_up(self.max_value_len as usize, WORD_PAD) else {
            return None;
        };
        let Some(slot) = key_area.checked_add(value_area) else {
            return None;
        };
        let Some(slot) = slot.checked_add(SLOT_HEADER_SIZE) else {
            return None;
        };
        let Some(controls) = (self.chunks as usize).checked_mul(CONTROL_SIZE) else {
            return None;
        };
        let Some(controls) = round_up(controls, CACHE_LINE) else {
            return None;
        };
        let Some(slot_count) = (self.chunks as usize).checked_mul(PHYSICAL_SLOTS_PER_CHUNK) else {
            return None;
        };
        let Some(slots) = slot_count.checked_mul(slot) else {
            return None;
        };
        let Some(size) = HEADER_SIZE.checked_add(controls) else {
            return None;
        };
        let Some(size) = size.checked_add(slots) else {
            return None;
        };
        // Offsets are computed with `usize` arithmetic everywhere else; keep one byte of headroom
        // below `isize::MAX`, the largest object Rust allows.
        if size > isize::MAX as usize {
            return None;
        }
        Some(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_for_a_small_layout() {
        let layout = Layout::new(7, 10, 3).unwrap();
        assert_eq!(layout.chunks(), 1);
        assert_eq!(layout.key_area(), 16);
        assert_eq!(layout.value_area(), 8);
        assert_eq!(layout.slot_size(), 16 + 16 + 8);
        assert_eq!(layout.slots_offset(), 128);
        assert_eq!(layout.region_size(), 128 + 9 * 40);
        assert_eq!(
            Layout::new(8, 10, 3).unwrap().region_size(),
            128 + 2 * 9 * 40
        );
    }

    #[test]
    fn capacity_rounds_up_to_a_prime_number_of_chunks() {
        assert_eq!(Layout::new(7, 1, 1).unwrap().chunks(), 1);
        assert_eq!(Layout::new(8, 1, 1).unwrap().chunks(), 2);
        assert_eq!(Layout::new(14, 1, 1).unwrap().chunks(), 2);
        assert_eq!(Layout::new(15, 1, 1).unwrap().chunks(), 3);
        assert_eq!(Layout::new(22, 1, 1).unwrap().chunks(), 5);
        assert_eq!(Layout::new(7 * 24, 1, 1).unwrap().chunks(), 29);
        assert_eq!(Layout::new(1 << 20, 1, 1).unwrap().chunks(), 149_803);
    }

    #[test]
    #[cfg_attr(miri, ignore = "pure arithmetic, too slow to interpret")]
    fn primality_agrees_with_trial_division() {
        let trial = |n: u32| {
            n >= 2
                && (2u64..)
                    .take_while(|d| d * d <= u64::from(n))
                    .all(|d| u64::from(n) % d != 0)
        };
        for n in (0..20_000).chain(4_294_900_000..4_294_967_295) {
            assert_eq!(is_prime(n), trial(n), "{n}");
        }
        // Strong pseudoprimes to some of the bases.
        for n in [2_047, 1_373_653, 25_326_001, 3_215_031_751] {
            assert!(!is_prime(n), "{n}");
        }
        assert_eq!(chunk_count(u32::MAX), None);
        assert_eq!(chunk_count(4_294_967_291), Some(4_294_967_291));
    }

    #[test]
    fn zero_capacity_is_an_error() {
        assert_eq!(
            Layout::new(0, 8, 8),
            Err(Error::InvalidLayout(LayoutProblem::ZeroCapacity))
        );
    }

    #[test]
    fn overflowing_layouts_are_errors() {
        assert_eq!(Layout::new(usize::MAX, 8, 8), Err(TOO_LARGE));
        #[cfg(target_pointer_width = "64")]
        {
            assert_eq!(Layout::new(1, u32::MAX as usize + 1, 8), Err(TOO_LARGE));
            assert_eq!(
                Layout::new(7 * u32::MAX as usize, u32::MAX as usize, u32::MAX as usize),
                Err(TOO_LARGE)
            );
        }
    }

    #[test]
    fn zero_lengths_are_allowed() {
        let layout = Layout::new(3, 0, 0).unwrap();
        assert_eq!(layout.slot_size(), SLOT_HEADER_SIZE);
    }

    #[test]
    fn stored_fields_round_trip() {
        let layout = Layout::new(1000, 16, 64).unwrap();
        let again = Layout::from_stored(1000, 16, 64, layout.chunks);
        assert_eq!(again, Some(layout));
        assert_eq!(Layout::from_stored(1000, 16, 64, 7), None);
        assert_eq!(Layout::from_stored(0, 16, 64, 0), None);
    }

    #[test]
    fn layout_is_const() {
        const REGION: usize = match Layout::new(100, 8, 8) {
            Ok(layout) => layout.region_size(),
            Err(_) => 0,
        };
        const { assert!(REGION > 0) };
    }
}
