//! The map's key hash: a seeded, word-at-a-time folded-multiply mix behind [`hash32::Hasher`].
//!
//! Every process that opens a map must compute the same hash for the same key, on every
//! architecture and in every build, so the function is fixed, reads input as little-endian
//! words, and is pinned by test vectors. Each map stores its own seed in its header, so a key
//! set crafted to collide in one map does not collide in another.
//!
//! The mix is in the family of wyhash and foldhash: 16-byte blocks, each folded with one
//! 64×64→128-bit multiply, and a final block zero-padded and finished with the input length.
//! [`MapHasher`] is the streaming form (the `hash32` trait); [`hash_bytes`] is a one-shot form
//! that the map's hot path uses. Both give the same output for the same input however it is
//! split, which the tests check.

use core::hash::Hasher as _;

const K0: u64 = 0x2d35_8dcc_aa6c_78a5;
const K1: u64 = 0x8bb8_4b93_962e_acc9;
const K2: u64 = 0x4b33_a62e_d433_d4a3;
const K3: u64 = 0x4d5a_2da5_1de1_aa47;

/// Multiplies two words into 128 bits and folds the halves together.
#[inline(always)]
fn folded_multiply(x: u64, y: u64) -> u64 {
    let full = u128::from(x) * u128::from(y);
    (full as u64) ^ ((full >> 64) as u64)
}

#[inline(always)]
fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[inline(always)]
fn read_u32(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u64::from(u32::from_le_bytes(word))
}

/// Reads up to 16 bytes as two little-endian words, zero-padded on the right.
#[inline(always)]
fn read_padded(bytes: &[u8]) -> (u64, u64) {
    let len = bytes.len();
    debug_assert!(len <= 16);
    if len >= 8 {
        let high = if len > 8 {
            read_u64(bytes, len - 8) >> ((16 - len) * 8)
        } else {
            0
        };
        (read_u64(bytes, 0), high)
    } else if len >= 4 {
        (
            read_u32(bytes, 0) | (read_u32(bytes, len - 4) << ((len - 4) * 8)),
            0,
        )
    } else if len > 0 {
        let low = u64::from(bytes[0])
            | (u64::from(bytes[len / 2]) << (len / 2 * 8))
            | (u64::from(bytes[len - 1]) << ((len - 1) * 8));
        (low, 0)
    } else {
        (0, 0)
    }
}

#[inline(always)]
fn absorb_block(acc: u64, low: u64, high: u64) -> u64 {
    folded_multiply(low ^ K0 ^ acc, high ^ K1)
}

#[inline(always)]
fn finish_block(seed: u64, acc: u64, low: u64, high: u64, len: u64) -> u64 {
    let mixed = folded_multiply(low ^ K0 ^ acc, high ^ K1 ^ seed.rotate_left(32));
    folded_multiply(mixed ^ K2, len ^ K3)
}

/// Hashes `bytes` with `seed`: the same result as writing `bytes` to [`MapHasher::new`]`(seed)`
/// in any number of pieces and calling `finish`.
#[inline(always)]
pub fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    Seed::new(seed).hash(bytes)
}

/// A map's seed, with the two words that [`hash_bytes`] mixes it into worked out once per map
/// instead of once per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seed {
    seed: u64,
    /// What the first block's low word is mixed with: `K0 ^ seed` (the accumulator starts as
    /// the seed).
    first_low: u64,
    /// What the final block's high word is mixed with: `K1 ^ seed.rotate_left(32)`.
    last_high: u64,
}

impl Seed {
    /// The seed `seed`.
    #[inline]
    pub(crate) const fn new(seed: u64) -> Seed {
        Seed {
            seed,
            first_low: K0 ^ seed,
            last_high: K1 ^ seed.rotate_left(32),
        }
    }

    /// The seed itself.
    #[inline]
    pub(crate) const fn get(self) -> u64 {
        self.seed
    }

    /// [`hash_bytes`] with this seed.
    #[inline(always)]
    pub(crate) fn hash(&self, bytes: &[u8]) -> u64 {
        let len = bytes.len();
        // `K0 ^ acc`, where the accumulator starts as the seed.
        let mut low_mix = self.first_low;
        let mut at = 0;
        // The last 1..=16 bytes always form the final block, as in the streaming form.
        while len - at > 16 {
            let acc = folded_multiply(read_u64(bytes, at) ^ low_mix, read_u64(bytes, at + 8) ^ K1);
            low_mix = K0 ^ acc;
            at += 16;
        }
        let (low, high) = read_padded(&bytes[at..]);
        let mixed = folded_multiply(low ^ low_mix, high ^ self.last_high);
        folded_multiply(mixed ^ K2, len as u64 ^ K3)
    }
}

/// The streaming form of the map's hash, for use through [`hash32::Hasher`] and
/// [`core::hash::Hasher`].
///
/// `finish` gives the 64-bit hash; `finish32` its upper 32 bits, which pick a key's home chunk.
///
/// ```
/// use core::hash::Hasher as _;
/// use shared_hashmap::MapHasher;
///
/// let mut hasher = MapHasher::new(7);
/// hasher.write(b"hello, ");
/// hasher.write(b"world");
/// assert_eq!(hasher.finish(), shared_hashmap::hash_bytes(7, b"hello, world"));
/// ```
#[derive(Clone, Debug)]
pub struct MapHasher {
    seed: u64,
    acc: u64,
    pending: [u8; 16],
    pending_len: u8,
    total_len: u64,
}

impl MapHasher {
    /// A hasher keyed by `seed` (each map stores its seed in its header).
    pub const fn new(seed: u64) -> Self {
        MapHasher {
            seed,
            acc: seed,
            pending: [0; 16],
            pending_len: 0,
            total_len: 0,
        }
    }
}

impl core::hash::Hasher for MapHasher {
    fn write(&mut self, mut bytes: &[u8]) {
        self.total_len = self.total_len.wrapping_add(bytes.len() as u64);
        while !bytes.is_empty() {
            if self.pending_len == 16 {
                // More input follows a full block, so that block is not the final one.
                let block = &self.pending;
                self.acc = absorb_block(self.acc, read_u64(block, 0), read_u64(block, 8));
                self.pending_len = 0;
            }
            let start = usize::from(self.pending_len);
            let take = bytes.len().min(16 - start);
            self.pending[start..start + take].copy_from_slice(&bytes[..take]);
            self.pending_len += take as u8;
            bytes = &bytes[take..];
        }
    }

    fn finish(&self) -> u64 {
        let (low, high) = read_padded(&self.pending[..usize::from(self.pending_len)]);
        finish_block(self.seed, self.acc, low, high, self.total_len)
    }
}

impl hash32::Hasher for MapHasher {
    fn finish32(&self) -> u32 {
        (self.finish() >> 32) as u32
    }
}

/// Hashes a key given in two pieces (a short encoded prefix and a borrowed body).
#[inline]
pub(crate) fn hash_parts(seed: &Seed, head: &[u8], body: &[u8]) -> u64 {
    if head.is_empty() {
        seed.hash(body)
    } else {
        let mut hasher = MapHasher::new(seed.get());
        hasher.write(head);
        hasher.write(body);
        hasher.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hash32::Hasher as _;

    fn streamed(seed: u64, pieces: &[&[u8]]) -> u64 {
        let mut hasher = MapHasher::new(seed);
        for piece in pieces {
            hasher.write(piece);
        }
        hasher.finish()
    }

    /// These values are part of the map format: a map written by one build must be readable
    /// by every other. If this test fails, the format version must change.
    #[test]
    fn pinned_vectors() {
        let input: [u8; 40] = core::array::from_fn(|i| i as u8);
        let cases: [(u64, usize, u64); 10] = [
            (0, 0, 0x3419_60db_6678_ebb1),
            (0, 1, 0xb646_0285_11c0_37ca),
            (0, 3, 0xc1e2_1af0_25e1_07e6),
            (0, 4, 0xfb09_542b_5c29_98bc),
            (0, 7, 0xb128_2acd_82d3_921a),
            (0, 8, 0x343c_5735_d383_8c39),
            (0, 15, 0xe342_951b_6a2f_4c77),
            (0, 16, 0xd008_8255_35f1_729e),
            (0, 17, 0x28a0_15a6_88bb_e27e),
            (0x0123_4567_89ab_cdef, 40, 0x8601_1904_ef92_63ac),
        ];
        for (seed, len, expected) in cases {
            assert_eq!(
                hash_bytes(seed, &input[..len]),
                expected,
                "seed {seed:#x} len {len}"
            );
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "pure arithmetic, too slow to interpret")]
    fn streaming_matches_one_shot_for_every_split() {
        let input: [u8; 70] = core::array::from_fn(|i| (i as u8).wrapping_mul(31).wrapping_add(7));
        for len in 0..input.len() {
            let whole = hash_bytes(99, &input[..len]);
            for cut in 0..=len {
                let (a, b) = input[..len].split_at(cut);
                assert_eq!(streamed(99, &[a, b]), whole, "len {len} cut {cut}");
                assert_eq!(
                    hash_parts(&Seed::new(99), a, b),
                    whole,
                    "len {len} cut {cut}"
                );
            }
            let bytewise: [&[u8]; 70] = core::array::from_fn(|i| &input[i..i + 1]);
            assert_eq!(streamed(99, &bytewise[..len]), whole, "len {len} bytewise");
        }
    }

    #[test]
    fn finish32_is_the_upper_half() {
        let mut hasher = MapHasher::new(5);
        hasher.write(b"key");
        assert_eq!(hasher.finish32(), (hash_bytes(5, b"key") >> 32) as u32);
    }

    #[test]
    fn zero_padding_and_length_are_both_significant() {
        assert_ne!(hash_bytes(1, b"a"), hash_bytes(1, b"a\0"));
        assert_ne!(hash_bytes(1, b""), hash_bytes(1, b"\0"));
        assert_ne!(hash_bytes(1, &[0; 16]), hash_bytes(1, &[0; 17]));
    }

    #[test]
    fn seed_changes_every_hash() {
        for len in 0..20 {
            let key = [0xabu8; 20];
            assert_ne!(hash_bytes(1, &key[..len]), hash_bytes(2, &key[..len]));
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "pure arithmetic, too slow to interpret")]
    fn bits_are_spread_for_sequential_keys() {
        // Each of the low 7 bits (the tag) and the upper 32 bits (the home chunk) must vary
        // across a run of sequential integer keys.
        let mut ones = [0u32; 64];
        for i in 0u64..4096 {
            let hash = hash_bytes(42, &i.to_le_bytes());
            for (bit, count) in ones.iter_mut().enumerate() {
                *count += ((hash >> bit) & 1) as u32;
            }
        }
        for (bit, count) in ones.iter().enumerate() {
            assert!(
                (1700..2400).contains(count),
                "bit {bit} set {count} times in 4096"
            );
        }
    }
}
