//! Copies between a slot's word area and a caller's bytes, in blocks wider than a word where
//! the target allows it.
//!
//! Slot words are shared with other threads and processes, so they are only ever read and
//! written as Relaxed atomic words (see `slot.rs`). A long value copied one word at a time costs
//! about twice a `memcpy`: the compiler may not merge atomic accesses into vector ones. On
//! x86-64 this module copies whole 32-byte blocks with SSE2 loads and stores in inline assembly
//! (SSE2 is part of the x86-64 baseline), and the remaining words one at a time.
//!
//! Why that is sound: the block copies act only on 8-byte-aligned words (slot areas are
//! 8-aligned and padded to whole words, `layout.rs`), and an x86-64 processor reads or writes
//! each aligned 8-byte part of a 16-byte SSE access indivisibly (a quadword access that does
//! not cross a cache line is atomic, and an SSE access is at worst split at a line boundary,
//! which is 8-aligned). So each block copy behaves as a sequence of Relaxed 8-byte atomic
//! loads (or stores) of the same words, of the same size as every other access to them:
//! exactly what the word-at-a-time copy does, in an unspecified order within the block, which
//! no caller relies on (readers validate a whole copy with the seqlock afterwards; writers
//! publish with a Release store that follows the whole copy). Under Miri (which cannot run
//! inline assembly) and loom (whose atomics are not plain memory), and on every other target,
//! the word-at-a-time copy runs instead.

use crate::sync::{AtomicUsize, Ordering};

const WORD: usize = core::mem::size_of::<usize>();

/// Bytes one block copy moves; shorter copies are done in words.
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
const BLOCK: usize = 32;

/// Copies the first `out.len()` bytes of `words` into `out` (at most all of `words`; the copy
/// stops there).
#[inline(always)]
pub(crate) fn load(words: &[AtomicUsize], out: &mut [u8]) {
    let whole = (out.len() / WORD).min(words.len());
    let done = load_blocks(&words[..whole], out);
    let (_, rest) = out.split_at_mut(done * WORD);
    let words = &words[done..];
    let (head, tail) = rest.split_at_mut((whole - done) * WORD);
    // Both sides cut to the same length and zipped directly: one counted loop.
    for (piece, word) in head.chunks_exact_mut(WORD).zip(&words[..whole - done]) {
        // Relaxed: see the module docs.
        piece.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
    }
    if let (false, Some(word)) = (tail.is_empty(), words.get(whole - done)) {
        let take = tail.len().min(WORD);
        // Relaxed: see the module docs.
        tail[..take].copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes()[..take]);
    }
}

/// Stores `bytes` into `words`, zero-padding the last word, as far as `words` reaches.
#[inline(always)]
pub(crate) fn store(bytes: &[u8], words: &[AtomicUsize]) {
    let whole = (bytes.len() / WORD).min(words.len());
    let done = store_blocks(&bytes[..whole * WORD], &words[..whole]);
    let (full, tail) = bytes[done * WORD..].split_at((whole - done) * WORD);
    let words = &words[done..];
    for (piece, word) in full.chunks_exact(WORD).zip(&words[..whole - done]) {
        // Relaxed: see the module docs.
        word.store(word_of_exact(piece), Ordering::Relaxed);
    }
    if let (false, Some(word)) = (tail.is_empty(), words.get(whole - done)) {
        let mut last = [0u8; WORD];
        let take = tail.len().min(WORD);
        last[..take].copy_from_slice(&tail[..take]);
        // Relaxed: see the module docs.
        word.store(usize::from_ne_bytes(last), Ordering::Relaxed);
    }
}

/// A whole word from exactly `WORD` bytes.
#[inline(always)]
fn word_of_exact(bytes: &[u8]) -> usize {
    usize::from_ne_bytes(<[u8; WORD]>::try_from(bytes).unwrap_or([0; WORD]))
}

/// Copies as many whole blocks of `words` into `out` (at least as long) as fit; returns the
/// words copied.
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
#[inline(always)]
#[allow(unsafe_code)]
fn load_blocks(words: &[AtomicUsize], out: &mut [u8]) -> usize {
    let blocks = words.len() * WORD / BLOCK;
    if blocks == 0 {
        return 0;
    }
    debug_assert!(out.len() >= blocks * BLOCK);
    // SAFETY: the loop reads `blocks * BLOCK` bytes from `words` (that many lie in the slice)
    // and writes as many to `out` (its length is at least `words.len() * WORD`). `out` is an
    // exclusive borrow, so nothing else accesses it; `words` is only ever accessed as aligned
    // atomic words, and these loads behave as Relaxed loads of those words (module docs). The
    // assembly touches no stack and no other memory, and restores no register it clobbers
    // other than those declared.
    unsafe {
        core::arch::asm!(
            "2:",
            "movdqu {a}, xmmword ptr [{src}]",
            "movdqu {b}, xmmword ptr [{src} + 16]",
            "movdqu xmmword ptr [{dst}], {a}",
            "movdqu xmmword ptr [{dst} + 16], {b}",
            "add {src}, 32",
            "add {dst}, 32",
            "dec {blocks}",
            "jnz 2b",
            blocks = inout(reg) blocks => _,
            src = inout(reg) words.as_ptr() => _,
            dst = inout(reg) out.as_mut_ptr() => _,
            a = out(xmm_reg) _,
            b = out(xmm_reg) _,
            options(nostack),
        );
    }
    blocks * BLOCK / WORD
}

/// Stores as many whole blocks of `bytes` into `words` (at least as long) as fit; returns the
/// words stored.
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
#[inline(always)]
#[allow(unsafe_code)]
fn store_blocks(bytes: &[u8], words: &[AtomicUsize]) -> usize {
    let blocks = bytes.len() / BLOCK;
    if blocks == 0 {
        return 0;
    }
    debug_assert!(words.len() * WORD >= blocks * BLOCK);
    // SAFETY: the loop reads `blocks * BLOCK` bytes of `bytes` (that many lie in the slice) and
    // writes as many to `words` (at least as long). `bytes` is a shared borrow of plain memory
    // that nobody writes meanwhile; `words` is only ever accessed as aligned atomic words
    // (through `&AtomicUsize`, which permits writes through a shared reference), and these
    // stores behave as Relaxed stores of those words (module docs). No stack or other memory
    // is touched.
    unsafe {
        core::arch::asm!(
            "2:",
            "movdqu {a}, xmmword ptr [{src}]",
            "movdqu {b}, xmmword ptr [{src} + 16]",
            "movdqu xmmword ptr [{dst}], {a}",
            "movdqu xmmword ptr [{dst} + 16], {b}",
            "add {src}, 32",
            "add {dst}, 32",
            "dec {blocks}",
            "jnz 2b",
            blocks = inout(reg) blocks => _,
            src = inout(reg) bytes.as_ptr() => _,
            dst = inout(reg) words.as_ptr() => _,
            a = out(xmm_reg) _,
            b = out(xmm_reg) _,
            options(nostack),
        );
    }
    blocks * BLOCK / WORD
}

/// Elsewhere, every word is copied on its own.
#[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
#[inline(always)]
fn load_blocks(_: &[AtomicUsize], _: &mut [u8]) -> usize {
    0
}

/// Elsewhere, every word is stored on its own.
#[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
#[inline(always)]
fn store_blocks(_: &[u8], _: &[AtomicUsize]) -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn pattern(len: usize, salt: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
            .collect()
    }

    fn words_of(bytes: &[u8], count: usize) -> Vec<AtomicUsize> {
        let mut padded = bytes.to_vec();
        padded.resize(count * WORD, 0);
        padded
            .chunks_exact(WORD)
            .map(|w| AtomicUsize::new(word_of_exact(w)))
            .collect()
    }

    /// Slot areas, in words, around every block and word boundary (fewer under Miri, which
    /// checks only the word-at-a-time path, slowly).
    const AREAS: &[usize] = if cfg!(miri) {
        &[0, 1, 5]
    } else {
        &[0, 1, 3, 4, 5, 8, 9, 16, 17, 33]
    };

    fn bytes_of(words: &[AtomicUsize]) -> Vec<u8> {
        words
            .iter()
            .flat_map(|w| w.load(Ordering::Relaxed).to_ne_bytes())
            .collect()
    }

    #[test]
    fn loads_copy_exactly_the_requested_prefix() {
        // Every length up to past the area: buffers shorter and longer than it.
        for &area_words in AREAS {
            let source = pattern(area_words * WORD, 7);
            let words = words_of(&source, area_words);
            for len in 0..=area_words * WORD + 12 {
                let mut out = std::vec![0xeeu8; len + 3];
                load(&words, &mut out[..len]);
                let copied = len.min(area_words * WORD);
                assert_eq!(
                    out[..copied],
                    source[..copied],
                    "area {area_words}, len {len}"
                );
                assert!(
                    out[copied..].iter().all(|&b| b == 0xee),
                    "area {area_words}, len {len}: wrote past the copy"
                );
            }
        }
    }

    #[test]
    fn stores_write_the_bytes_zero_padded_and_nothing_past_them() {
        for &area_words in AREAS {
            for len in 0..=area_words * WORD + 12 {
                let source = pattern(len, 91);
                let words = words_of(&std::vec![0xeeu8; area_words * WORD], area_words);
                store(&source, &words);
                let stored = bytes_of(&words);
                let fits = len.min(area_words * WORD);
                assert_eq!(
                    stored[..fits],
                    source[..fits],
                    "area {area_words}, len {len}"
                );
                let padded_end = fits.div_ceil(WORD) * WORD;
                assert!(stored[fits..padded_end].iter().all(|&b| b == 0));
                assert!(
                    stored[padded_end..].iter().all(|&b| b == 0xee),
                    "area {area_words}, len {len}: stored past the padded value"
                );
            }
        }
    }
}
