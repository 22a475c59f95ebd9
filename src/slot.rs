//! Reading and writing one physical slot: its fixed fields, key words and value words.
//!
//! Every access is a Relaxed atomic load or store of a whole word, on both sides (the
//! `atomic-memcpy` approach; long keys and values are copied by `wide.rs` in blocks that act
//! as such word accesses): a reader racing a writer gets some mix of old and new words, never
//! undefined behaviour, and the chunk's sequence check (in `raw/read.rs`) throws such a mix away
//! before anything is decoded or trusted. Lengths read from a slot are checked against the
//! slot's size before they bound a copy.

use crate::bytes::{Bytes, WORD};
use crate::hash::{MapHasher, Seed};
use crate::region::SlotRef;
use crate::sync::{AtomicUsize, Ordering};
use core::hash::Hasher as _;

/// What one entry is, for writing it into a slot: its bytes, and their lengths as the writer
/// read and checked them once (the slot stores these, whatever `len` would say now).
pub(crate) struct Entry<'a, K: Bytes + ?Sized, V: Bytes + ?Sized> {
    pub(crate) key: &'a K,
    pub(crate) key_len: usize,
    pub(crate) value: &'a V,
    pub(crate) value_len: usize,
    pub(crate) hash: u64,
    pub(crate) stamp: u32,
}

impl<K: Bytes + ?Sized, V: Bytes + ?Sized> Clone for Entry<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: Bytes + ?Sized, V: Bytes + ?Sized> Copy for Entry<'_, K, V> {}

impl<'a> SlotRef<'a> {
    /// The stored key length. Relaxed: see the module docs.
    #[inline]
    pub(crate) fn key_len(&self) -> usize {
        self.header.key_len.load(Ordering::Relaxed) as usize
    }

    /// The stored value length. Relaxed: see the module docs.
    #[inline]
    pub(crate) fn value_len(&self) -> usize {
        self.header.value_len.load(Ordering::Relaxed) as usize
    }

    /// The stored insertion stamp. Relaxed: see the module docs.
    #[inline]
    pub(crate) fn stamp(&self) -> u32 {
        self.header.stamp.load(Ordering::Relaxed)
    }

    /// The stored upper half of the key's hash. Relaxed: see the module docs.
    #[inline]
    pub(crate) fn stored_hash(&self) -> u32 {
        self.header.hash.load(Ordering::Relaxed)
    }

    /// Whether the slot holds `key`.
    #[inline]
    pub(crate) fn holds_key<K: Bytes + ?Sized>(&self, key: &K) -> bool {
        let len = key.len();
        self.key_len() == len && words_equal(self.key, key, len)
    }

    /// Whether the stored value equals `value`. The caller holds the chunk lock, or validates.
    pub(crate) fn value_equals<V: Bytes + ?Sized>(&self, value: &V) -> bool {
        let len = value.len();
        self.value_len() == len && words_equal(self.value, value, len)
    }

    /// The bytes of the value area: the longest value, padded to whole words.
    #[inline]
    pub(crate) fn value_area(&self) -> usize {
        self.value.len() * WORD
    }

    /// Copies the first `out.len()` value bytes into `out` (at most the value area; the copy
    /// stops there).
    #[inline]
    pub(crate) fn copy_value(&self, out: &mut [u8]) {
        crate::wide::load(self.value, out);
    }

    /// Copies the first `out.len()` key bytes into `out`, as [`copy_value`](Self::copy_value).
    pub(crate) fn copy_key(&self, out: &mut [u8]) {
        crate::wide::load(self.key, out);
    }

    /// Hashes the stored key (of `len` bytes, at most the key area) without copying it out.
    pub(crate) fn hash_key(&self, len: usize, seed: u64) -> u64 {
        let mut hasher = MapHasher::new(seed);
        let mut left = len;
        for word in self.key.iter() {
            if left == 0 {
                break;
            }
            let take = left.min(WORD);
            // Relaxed: see the module docs.
            hasher.write(&word.load(Ordering::Relaxed).to_ne_bytes()[..take]);
            left -= take;
        }
        hasher.finish()
    }

    /// Writes a whole entry. The caller holds the chunk lock, has begun a write, and checked
    /// that the entry's lengths fit the slot (the copies stop at the slot's end regardless).
    #[inline(always)]
    pub(crate) fn write<K: Bytes + ?Sized, V: Bytes + ?Sized>(&self, entry: &Entry<'_, K, V>) {
        let (key_len, value_len) = (entry.key_len, entry.value_len);
        // Relaxed: the writer's Release fence (`ChunkGuard::begin_write`) precedes these stores
        // and the Release store of a tag or slot map publishes them.
        self.header.key_len.store(key_len as u32, Ordering::Relaxed);
        self.header
            .value_len
            .store(value_len as u32, Ordering::Relaxed);
        self.header.stamp.store(entry.stamp, Ordering::Relaxed);
        self.header
            .hash
            .store((entry.hash >> 32) as u32, Ordering::Relaxed);
        if let Some(words) = self.key.get(..key_len.div_ceil(WORD)) {
            entry.key.store(words);
        }
        if let Some(words) = self.value.get(..value_len.div_ceil(WORD)) {
            entry.value.store(words);
        }
    }
}

/// Whether the first `len` bytes of `words` (zero-padded to whole words, as writers store them)
/// equal `bytes`, which pads the same way.
#[inline(always)]
fn words_equal<B: Bytes + ?Sized>(words: &[AtomicUsize], bytes: &B, len: usize) -> bool {
    words
        .get(..len.div_ceil(WORD))
        .is_some_and(|words| bytes.matches(words))
}

/// A key as stored in a slot, usable wherever the map takes a key (to look it up again).
pub(crate) struct StoredKey<'a> {
    pub(crate) slot: SlotRef<'a>,
    pub(crate) len: usize,
}

impl Bytes for StoredKey<'_> {
    fn len(&self) -> usize {
        self.len
    }

    fn word(&self, index: usize) -> usize {
        // Relaxed: see the module docs. Past the key area, zero like any padding.
        self.slot
            .key
            .get(index)
            .map_or(0, |word| word.load(Ordering::Relaxed))
    }

    fn hash(&self, seed: &Seed) -> u64 {
        self.slot.hash_key(self.len, seed.get())
    }
}
