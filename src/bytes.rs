//! Keys and values as the map's write and compare paths consume them: a byte string, given
//! either as one slice or as a short encoded head followed by a borrowed body (what the typed
//! layer's codecs produce), read as native-endian words of the zero-padded bytes.

use crate::hash::{Seed, hash_parts};
use crate::sync::{AtomicUsize, Ordering};

/// Bytes in a word: the unit of every slot access.
pub(crate) const WORD: usize = core::mem::size_of::<usize>();

/// A byte string the map can hash, compare against a slot and copy into one.
///
/// Slot words are read and written with Relaxed atomics: the callers order them (a lock, or
/// the seqlock's fences and sequence check; see `slot.rs`).
pub(crate) trait Bytes {
    /// Its length in bytes.
    fn len(&self) -> usize;
    /// Word `index` of the bytes, zero-padded past the end, in native byte order.
    fn word(&self, index: usize) -> usize;
    /// The map hash of the bytes.
    fn hash(&self, seed: &Seed) -> u64;

    /// Whether `words` (exactly `len().div_ceil(WORD)` of them) hold the bytes, zero-padded.
    #[inline]
    fn matches(&self, words: &[AtomicUsize]) -> bool {
        matches_word_by_word(self, words)
    }

    /// Stores the bytes, zero-padded, into `words` (exactly `len().div_ceil(WORD)` of them).
    #[inline]
    fn store(&self, words: &[AtomicUsize]) {
        store_word_by_word(self, words);
    }
}

/// [`Bytes::matches`] through [`Bytes::word`], for any byte string.
#[inline]
fn matches_word_by_word<B: Bytes + ?Sized>(bytes: &B, words: &[AtomicUsize]) -> bool {
    // Relaxed: see the trait docs.
    words
        .iter()
        .enumerate()
        .all(|(index, word)| word.load(Ordering::Relaxed) == bytes.word(index))
}

/// [`Bytes::store`] through [`Bytes::word`], for any byte string.
#[inline]
fn store_word_by_word<B: Bytes + ?Sized>(bytes: &B, words: &[AtomicUsize]) {
    for (index, word) in words.iter().enumerate() {
        // Relaxed: see the trait docs.
        word.store(bytes.word(index), Ordering::Relaxed);
    }
}

#[inline(always)]
fn word_of(bytes: &[u8], index: usize) -> usize {
    let start = index * WORD;
    match bytes
        .get(start..start + WORD)
        .and_then(|full| <[u8; WORD]>::try_from(full).ok())
    {
        // A whole word: one load.
        Some(full) => usize::from_ne_bytes(full),
        None => tail_word(bytes.get(start..).unwrap_or(&[])),
    }
}

/// At most `WORD` bytes as one word, zero-padded: one load when there are exactly `WORD`.
#[inline(always)]
pub(crate) fn short_word(bytes: &[u8]) -> usize {
    match <[u8; WORD]>::try_from(bytes) {
        Ok(full) => usize::from_ne_bytes(full),
        Err(_) => tail_word(bytes),
    }
}

/// The last, partial word: fewer than `WORD` bytes, zero-padded. A byte loop, not a
/// variable-length `memcpy` call.
#[inline]
pub(crate) fn tail_word(tail: &[u8]) -> usize {
    let mut word = [0u8; WORD];
    for (to, from) in word.iter_mut().zip(tail) {
        *to = *from;
    }
    usize::from_ne_bytes(word)
}

impl Bytes for [u8] {
    #[inline(always)]
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    #[inline(always)]
    fn word(&self, index: usize) -> usize {
        word_of(self, index)
    }

    #[inline(always)]
    fn hash(&self, seed: &Seed) -> u64 {
        seed.hash(self)
    }

    #[inline(always)]
    fn matches(&self, words: &[AtomicUsize]) -> bool {
        // One word (short keys): no loop.
        if self.len() <= WORD {
            // Relaxed: see the trait docs.
            return words
                .first()
                .is_none_or(|word| word.load(Ordering::Relaxed) == short_word(self));
        }
        let whole = self.chunks_exact(WORD);
        let tail = whole.remainder();
        let (full_words, tail_words) = words.split_at(words.len().min(self.len() / WORD));
        // Relaxed: see the trait docs.
        whole
            .zip(full_words)
            .all(|(bytes, word)| word.load(Ordering::Relaxed) == word_of_exact(bytes))
            && tail_words
                .first()
                .is_none_or(|word| word.load(Ordering::Relaxed) == tail_word(tail))
    }

    #[inline(always)]
    fn store(&self, words: &[AtomicUsize]) {
        crate::wide::store(self, words);
    }
}

/// A whole word from exactly `WORD` bytes.
#[inline(always)]
pub(crate) fn word_of_exact(bytes: &[u8]) -> usize {
    usize::from_ne_bytes(<[u8; WORD]>::try_from(bytes).unwrap_or([0; WORD]))
}

impl<T: Bytes + ?Sized> Bytes for &T {
    #[inline(always)]
    fn len(&self) -> usize {
        (**self).len()
    }

    #[inline(always)]
    fn word(&self, index: usize) -> usize {
        (**self).word(index)
    }

    #[inline(always)]
    fn hash(&self, seed: &Seed) -> u64 {
        (**self).hash(seed)
    }

    #[inline(always)]
    fn matches(&self, words: &[AtomicUsize]) -> bool {
        (**self).matches(words)
    }

    #[inline(always)]
    fn store(&self, words: &[AtomicUsize]) {
        (**self).store(words)
    }
}

/// A head (at most [`Joined::HEAD`] bytes, copied) followed by a borrowed body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Joined<'a> {
    head: [u8; Joined::HEAD],
    head_len: u8,
    body: &'a [u8],
}

impl<'a> Joined<'a> {
    /// The longest head.
    pub(crate) const HEAD: usize = 16;

    /// `head` followed by `body`.
    ///
    /// # Panics
    /// If `head` is longer than [`Joined::HEAD`]; heads come from this crate's codecs.
    pub(crate) fn new(head: &[u8], body: &'a [u8]) -> Self {
        let mut buffer = [0u8; Joined::HEAD];
        buffer[..head.len()].copy_from_slice(head);
        Joined {
            head: buffer,
            head_len: head.len() as u8,
            body,
        }
    }

    /// The head bytes.
    pub(crate) fn head(&self) -> &[u8] {
        &self.head[..usize::from(self.head_len)]
    }

    /// The body bytes.
    pub(crate) fn body(&self) -> &'a [u8] {
        self.body
    }
}

impl Bytes for Joined<'_> {
    #[inline]
    fn matches(&self, words: &[AtomicUsize]) -> bool {
        if self.head_len == 0 {
            self.body.matches(words)
        } else {
            matches_word_by_word(self, words)
        }
    }

    #[inline]
    fn store(&self, words: &[AtomicUsize]) {
        if self.head_len == 0 {
            self.body.store(words)
        } else {
            store_word_by_word(self, words)
        }
    }

    #[inline]
    fn len(&self) -> usize {
        usize::from(self.head_len) + self.body.len()
    }

    #[inline]
    fn word(&self, index: usize) -> usize {
        let head = self.head();
        if head.is_empty() {
            return word_of(self.body, index);
        }
        let start = index * WORD;
        let mut word = [0u8; WORD];
        for (offset, byte) in word.iter_mut().enumerate() {
            let at = start + offset;
            *byte = match at.checked_sub(head.len()) {
                None => head[at],
                Some(in_body) => self.body.get(in_body).copied().unwrap_or(0),
            };
        }
        usize::from_ne_bytes(word)
    }

    #[inline]
    fn hash(&self, seed: &Seed) -> u64 {
        hash_parts(seed, self.head(), self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words_of(bytes: &dyn Fn(usize) -> usize, count: usize) -> [u8; 64] {
        let mut out = [0u8; 64];
        for index in 0..count {
            out[index * WORD..(index + 1) * WORD].copy_from_slice(&bytes(index).to_ne_bytes());
        }
        out
    }

    #[test]
    fn words_are_the_zero_padded_bytes() {
        let data: [u8; 21] = core::array::from_fn(|i| i as u8 + 1);
        let words = words_of(&|i| data[..].word(i), 40 / WORD);
        assert_eq!(&words[..21], &data);
        assert!(words[21..40].iter().all(|&b| b == 0));
    }

    #[test]
    fn slices_match_exactly_the_words_that_hold_them() {
        let data: [u8; 40] = core::array::from_fn(|i| i as u8 + 1);
        for len in 0..=data.len() {
            let bytes = &data[..len];
            let words: [AtomicUsize; 40 / WORD] =
                core::array::from_fn(|i| AtomicUsize::new(bytes.word(i)));
            let held = &words[..len.div_ceil(WORD)];
            assert!(bytes.matches(held), "len {len}");
            // Any one bit changed, in the bytes or in the padding, is a mismatch.
            for bit in 0..held.len() * WORD * 8 {
                let word = &held[bit / (WORD * 8)];
                word.fetch_xor(1 << (bit % (WORD * 8)), Ordering::Relaxed);
                assert!(!bytes.matches(held), "len {len} bit {bit}");
                word.fetch_xor(1 << (bit % (WORD * 8)), Ordering::Relaxed);
            }
        }
    }

    #[test]
    fn joined_reads_like_the_concatenation() {
        let data: [u8; 30] = core::array::from_fn(|i| i as u8 + 1);
        for cut in 0..=Joined::HEAD.min(data.len()) {
            let joined = Joined::new(&data[..cut], &data[cut..]);
            assert_eq!(Bytes::len(&joined), 30);
            assert_eq!(joined.hash(&Seed::new(3)), data[..].hash(&Seed::new(3)));
            let a = words_of(&|i| joined.word(i), 40 / WORD);
            let b = words_of(&|i| data[..].word(i), 40 / WORD);
            assert_eq!(a, b, "cut {cut}");
        }
    }
}
