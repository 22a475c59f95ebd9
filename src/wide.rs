//! Copies between a slot's word area and a caller's bytes, in blocks wider than a word where
//! the target allows it.
//!
//! Slot words are shared with other threads and processes, so they are only ever read and
//! written as Relaxed atomic words (see `slot.rs`). A long value copied one word at a time costs
//! about twice a `memcpy`: the compiler may not merge atomic accesses into vector ones. On
//! x86-64 this module copies whole 32-byte blocks with SSE2 loads and stores in inline assembly
//! (SSE2 is part of the x86-64 baseline), or, for copies of 256 bytes or more on processors
//! with AVX (detected at run time), one 32-byte AVX load and store per block; the remaining
//! words one at a time.
//!
//! Why that is sound: the block copies act only on 8-byte-aligned words (slot areas are 8-aligned
//! and padded to whole words, `layout.rs`), and x86-64 processors read or write each aligned
//! 8-byte part of a 16-byte SSE or 32-byte AVX access indivisibly. That last point is how every
//! x86-64 processor behaves, not a documented rule: the manuals guarantee aligned 8-byte accesses,
//! and say only that wider SSE and AVX accesses "may be implemented using multiple memory
//! accesses". Given it, each block copy acts as a sequence of Relaxed 8-byte atomic loads (or
//! stores) of the same words, of the same size as every other access to them: what the
//! word-at-a-time copy does, in an order within the block that no caller relies on (readers
//! validate a whole copy with the seqlock afterwards; writers publish with a Release store that
//! follows the whole copy). The copies use ordinary loads and stores, never non-temporal ones,
//! which x86 does not order with later stores: the Release store that publishes a value must not
//! pass the copy of it. And a processor that did split a part would only ever give a reader a
//! mixed word while a writer was changing it, a copy the seqlock check then throws away, as it
//! does any copy that overlapped a write. Under Miri (which cannot run inline assembly) and loom
//! (whose atomics are not plain memory), and on every other target, x86-64 ones without SSE2
//! (`x86_64-unknown-none`) or with 32-bit pointers (x32) included, the word-at-a-time copy runs
//! instead.

use crate::bytes::{WORD, short_word, tail_word, word_of_exact};
use crate::sync::{AtomicUsize, Ordering};

/// Copies the first `out.len()` bytes of `words` into `out` (at most all of `words`; the copy
/// stops there): whole blocks, then whole words, then the tail.
#[inline(always)]
pub(crate) fn load(words: &[AtomicUsize], out: &mut [u8]) {
    // One whole word (a short value into a buffer of its size): no loop.
    if let (Ok(piece), Some(word)) = (<&mut [u8; WORD]>::try_from(&mut *out), words.first()) {
        // Relaxed: see the module docs.
        *piece = word.load(Ordering::Relaxed).to_ne_bytes();
        return;
    }
    let done = blocks::load(words, out);
    let (words, out) = (&words[done..], &mut out[done * WORD..]);
    let whole = (out.len() / WORD).min(words.len());
    let (head, tail) = out.split_at_mut(whole * WORD);
    // Both sides cut to the same length and zipped directly: one counted loop.
    for (piece, word) in head.chunks_exact_mut(WORD).zip(&words[..whole]) {
        // Relaxed: see the module docs.
        piece.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
    }
    if let (false, Some(word)) = (tail.is_empty(), words.get(whole)) {
        let take = tail.len().min(WORD);
        // Relaxed: see the module docs.
        tail[..take].copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes()[..take]);
    }
}

/// Stores `bytes` into `words`, zero-padding the last word, as far as `words` reaches: whole
/// blocks, then whole words, then the tail.
#[inline(always)]
pub(crate) fn store(bytes: &[u8], words: &[AtomicUsize]) {
    // One word (short keys and values): no loop.
    if bytes.len() <= WORD {
        if let (false, Some(word)) = (bytes.is_empty(), words.first()) {
            // Relaxed: see the module docs.
            word.store(short_word(bytes), Ordering::Relaxed);
        }
        return;
    }
    let done = blocks::store(bytes, words);
    let (bytes, words) = (&bytes[done * WORD..], &words[done..]);
    let whole = bytes.chunks_exact(WORD);
    let tail = whole.remainder();
    let (full_words, tail_words) = words.split_at(words.len().min(bytes.len() / WORD));
    for (piece, word) in whole.zip(full_words) {
        // Relaxed: see the module docs.
        word.store(word_of_exact(piece), Ordering::Relaxed);
    }
    if let (false, Some(word)) = (tail.is_empty(), tail_words.first()) {
        // Relaxed: see the module docs.
        word.store(tail_word(tail), Ordering::Relaxed);
    }
}

/// Block copies with SSE2, where the target has it and the module docs' argument holds.
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "sse2",
    target_pointer_width = "64",
    not(miri),
    not(loom)
))]
#[allow(unsafe_code)]
mod blocks {
    use super::{WORD, avx};
    use crate::sync::AtomicUsize;

    /// Bytes one block copy moves; shorter copies are done in words.
    const BLOCK: usize = 32;

    /// Copies as many whole blocks of `words` into `out` as fit in both; returns the words
    /// copied.
    #[inline(always)]
    pub(super) fn load(words: &[AtomicUsize], out: &mut [u8]) -> usize {
        let blocks = (words.len() * WORD).min(out.len()) / BLOCK;
        if blocks == 0 {
            return 0;
        }
        let (words, out) = (&words[..blocks * BLOCK / WORD], &mut out[..blocks * BLOCK]);
        // SAFETY: both slices are exactly `blocks * BLOCK` bytes long. `out` is an exclusive
        // borrow, so nothing else accesses it; `words` is only ever accessed as aligned atomic
        // words, and these loads act as Relaxed loads of those words (module docs).
        unsafe { copy(words.as_ptr().cast(), out.as_mut_ptr(), blocks) };
        words.len()
    }

    /// Stores as many whole blocks of `bytes` into `words` as fit in both; returns the words
    /// stored.
    #[inline(always)]
    pub(super) fn store(bytes: &[u8], words: &[AtomicUsize]) -> usize {
        let blocks = bytes.len().min(words.len() * WORD) / BLOCK;
        if blocks == 0 {
            return 0;
        }
        let (bytes, words) = (&bytes[..blocks * BLOCK], &words[..blocks * BLOCK / WORD]);
        // SAFETY: both slices are exactly `blocks * BLOCK` bytes long. `bytes` is a shared
        // borrow of memory that nobody writes meanwhile; `words` is only ever accessed as
        // aligned atomic words, through `&AtomicUsize`, whose `UnsafeCell` permits writes
        // through a shared reference, and these stores act as Relaxed stores of those words
        // (module docs).
        unsafe { copy(bytes.as_ptr(), words.as_ptr().cast_mut().cast(), blocks) };
        words.len()
    }

    /// The fewest blocks that are copied with AVX where the processor has it (256 bytes):
    /// below that, the call into a function compiled for AVX, and the `vzeroupper` after it,
    /// cost more than the wider copies save.
    const AVX_BLOCKS: usize = 8;

    /// Copies `blocks` blocks from `src` to `dst`: 32 bytes per AVX load and store for long
    /// copies where the processor and operating system support AVX (1 KiB from the last-level
    /// cache: about 57 ns, against 67 to 80 ns with SSE2 and 52 ns for `memcpy`, on an Intel
    /// Xeon), else 16 bytes per SSE2 load and store.
    ///
    /// # Safety
    ///
    /// Behavior is undefined if any of the following conditions are violated:
    /// - `blocks` is at least one;
    /// - `src` is valid for reads and `dst` for writes of `blocks * BLOCK` bytes, and the two
    ///   ranges do not overlap;
    /// - the side that is shared (slot words) is 8-aligned, and every access to it that may
    ///   race these is an aligned atomic word access (module docs).
    #[inline(always)]
    unsafe fn copy(src: *const u8, dst: *mut u8, blocks: usize) {
        if blocks >= AVX_BLOCKS && avx::available() {
            // SAFETY: the caller's contract, with `blocks >= AVX_BLOCKS >= 1`, and
            // `avx::available` said the processor and the operating system support AVX.
            unsafe { avx::copy(src, dst, blocks) };
        } else {
            // SAFETY: the caller's contract.
            unsafe { copy_sse2(src, dst, blocks) };
        }
    }

    /// [`copy`] in 16-byte SSE2 loads and stores.
    ///
    /// # Safety
    ///
    /// As for [`copy`]: `blocks` at least one (the loop runs once before it tests the count),
    /// both ranges valid for `blocks * BLOCK` bytes and disjoint, the shared side 8-aligned and
    /// otherwise accessed only as aligned atomic words.
    #[inline(always)]
    unsafe fn copy_sse2(src: *const u8, dst: *mut u8, blocks: usize) {
        // SAFETY: the caller's contract covers every byte read and written. The assembly
        // touches no stack and no other memory, and clobbers only the registers declared and
        // the flags, which `dec` writes (so no `preserves_flags`).
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
                src = inout(reg) src => _,
                dst = inout(reg) dst => _,
                a = out(xmm_reg) _,
                b = out(xmm_reg) _,
                options(nostack),
            );
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::vec::Vec;

        /// One way to copy blocks, named for failure messages.
        type Copier = (&'static str, unsafe fn(*const u8, *mut u8, usize));

        /// The copies the processor can run: SSE2 always, AVX where detected, and the
        /// dispatching [`copy`].
        fn copiers() -> Vec<Copier> {
            let mut copiers: Vec<Copier> = std::vec![("sse2", copy_sse2), ("dispatch", copy)];
            if avx::available() {
                copiers.push(("avx", avx::copy));
            }
            copiers
        }

        #[test]
        fn every_block_copy_moves_exactly_its_blocks() {
            const GUARD: u8 = 0xee;
            for (name, copier) in copiers() {
                for blocks in 1..=32 {
                    let len = blocks * BLOCK;
                    // Source from the second word of a `Vec<u64>` (8-aligned, and not 16-aligned
                    // where the allocator returns 16-aligned memory, as glibc's does), into a
                    // destination at an odd offset, guard bytes around it.
                    let words: Vec<u64> = (0..len / 8 + 1)
                        .map(|i| (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
                        .collect();
                    let mut out = std::vec![GUARD; len + 2 * BLOCK];
                    // SAFETY: the source is `len` bytes from the second word of `words`, the
                    // destination `len` bytes of `out` from offset `BLOCK + 1`; they do not
                    // overlap, `blocks >= 1`, no other thread sees either, and the AVX copy is
                    // among `copiers` only where `avx::available` found AVX.
                    unsafe {
                        copier(
                            words[1..].as_ptr().cast(),
                            out.as_mut_ptr().add(BLOCK + 1),
                            blocks,
                        )
                    };
                    let expected: Vec<u8> =
                        words[1..].iter().flat_map(|w| w.to_ne_bytes()).collect();
                    let at = std::format!("{name}, {blocks} blocks");
                    assert_eq!(out[BLOCK + 1..BLOCK + 1 + len], expected[..len], "{at}");
                    assert!(out[..BLOCK + 1].iter().all(|&b| b == GUARD), "{at}: before");
                    assert!(
                        out[BLOCK + 1 + len..].iter().all(|&b| b == GUARD),
                        "{at}: after"
                    );
                }
            }
        }
    }
}

/// Copies in 32-byte AVX accesses, and whether the processor may make them.
///
/// AVX is not part of the x86-64 baseline, so it is detected at run time: with `cpuid` (the
/// processor has AVX and the `xgetbv` instruction, `OSXSAVE`) and `xgetbv` (the operating
/// system saves the SSE and AVX register state). The module docs' argument holds for AVX
/// accesses as for SSE2 ones: each aligned 8-byte part of a 32-byte access lies within one
/// cache line and is read or written indivisibly.
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "sse2",
    target_pointer_width = "64",
    not(miri),
    not(loom)
))]
#[allow(unsafe_code)]
mod avx {
    use crate::sync::{AtomicU32, Ordering};

    /// What detection found: [`UNKNOWN`] until it first runs, then [`ABSENT`] or [`PRESENT`].
    static STATE: AtomicU32 = AtomicU32::new(UNKNOWN);
    const UNKNOWN: u32 = 0;
    const ABSENT: u32 = 1;
    const PRESENT: u32 = 2;

    /// Whether this processor and its operating system support AVX. Never inside an SGX
    /// enclave, where `cpuid` faults.
    #[inline(always)]
    pub(super) fn available() -> bool {
        if cfg!(target_env = "sgx") {
            return false;
        }
        // Relaxed: the state is a pure function of the machine; a thread that sees UNKNOWN
        // works it out again and stores the same answer, and nothing else is published here.
        match STATE.load(Ordering::Relaxed) {
            UNKNOWN => detect(),
            state => state == PRESENT,
        }
    }

    #[cold]
    #[inline(never)]
    fn detect() -> bool {
        // CPUID.1:ECX bit 27 is OSXSAVE (`xgetbv` may run), bit 28 is AVX.
        // SAFETY: every x86-64 processor has `cpuid`, and outside an SGX enclave (excluded by
        // `available`) it may run. (`__cpuid` may be a safe function in newer Rust; it is an
        // `unsafe fn` in the versions the crate supports.)
        #[allow(unused_unsafe)]
        let features = unsafe { core::arch::x86_64::__cpuid(1) }.ecx;
        let present = features & (1 << 27) != 0
            && features & (1 << 28) != 0
            // XCR0 bits 1 and 2: the operating system saves the SSE and AVX state.
            // SAFETY: OSXSAVE (bit 27) was checked just above.
            && unsafe { xcr0() } & 0b110 == 0b110;
        // Relaxed: see `available`.
        STATE.store(if present { PRESENT } else { ABSENT }, Ordering::Relaxed);
        present
    }

    /// The extended control register XCR0.
    ///
    /// # Safety
    ///
    /// CPUID must report OSXSAVE (leaf 1, ECX bit 27): elsewhere `xgetbv` faults.
    unsafe fn xcr0() -> u64 {
        let (low, high): (u32, u32);
        // SAFETY: `xgetbv` with ECX = 0 reads XCR0; it is defined wherever CPUID reports
        // OSXSAVE, which the caller promises. It touches no memory and no flags.
        unsafe {
            core::arch::asm!(
                "xgetbv",
                in("ecx") 0,
                out("eax") low,
                out("edx") high,
                options(nomem, nostack, preserves_flags),
            );
        }
        u64::from(high) << 32 | u64::from(low)
    }

    /// Copies `blocks` 32-byte blocks from `src` to `dst`, one AVX load and store each.
    ///
    /// # Safety
    ///
    /// Behavior is undefined if any of the following conditions are violated:
    /// - the processor and the operating system support AVX ([`available`]);
    /// - `blocks` is at least one (the loop runs once before it tests the count);
    /// - `src` is valid for reads and `dst` for writes of `blocks * 32` bytes, and the two
    ///   ranges do not overlap;
    /// - the shared side (slot words) is 8-aligned, and every access to it that may race
    ///   these is an aligned atomic word access (the module docs of `wide.rs`).
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn copy(src: *const u8, dst: *mut u8, blocks: usize) {
        // SAFETY: the caller's contract covers every byte read and written and the
        // instructions used. The assembly touches no stack and no other memory, and clobbers
        // only the registers declared and the flags, which `dec` writes. `vzeroupper` clears
        // the upper halves of ymm0 to ymm15 (and of zmm0 to zmm15 where AVX-512 exists; all
        // declared through the C ABI's clobbers), so that SSE code after it pays no
        // transition penalty.
        unsafe {
            core::arch::asm!(
                "2:",
                "vmovdqu ymm0, ymmword ptr [rsi]",
                "vmovdqu ymmword ptr [rdi], ymm0",
                "add rsi, 32",
                "add rdi, 32",
                "dec rcx",
                "jnz 2b",
                "vzeroupper",
                inout("rcx") blocks => _,
                inout("rsi") src => _,
                inout("rdi") dst => _,
                out("ymm0") _,
                clobber_abi("C"),
                options(nostack),
            );
        }
    }
}

/// Elsewhere, every word is copied on its own.
#[cfg(not(all(
    target_arch = "x86_64",
    target_feature = "sse2",
    target_pointer_width = "64",
    not(miri),
    not(loom)
)))]
mod blocks {
    use crate::sync::AtomicUsize;

    /// Copies no block: the caller copies every word.
    #[inline(always)]
    pub(super) fn load(_: &[AtomicUsize], _: &mut [u8]) -> usize {
        0
    }

    /// Stores no block: the caller stores every word.
    #[inline(always)]
    pub(super) fn store(_: &[u8], _: &[AtomicUsize]) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// Slot areas, in words, around every block and word boundary, and around the length
    /// from which copies use AVX (fewer under Miri, which checks only the word-at-a-time path,
    /// slowly).
    const AREAS: &[usize] = if cfg!(miri) {
        &[0, 1, 5]
    } else {
        &[0, 1, 3, 4, 5, 8, 9, 16, 17, 28, 32, 33, 36, 129]
    };

    /// Offsets of the caller's bytes from a 16-byte boundary (slot words are 8-aligned, never
    /// more, in a real region: the area starts one word past the guard below).
    const OFFSETS: &[usize] = if cfg!(miri) { &[1] } else { &[0, 1, 8, 15] };

    /// A sentinel for memory a copy must not touch.
    const GUARD: u8 = 0xee;
    /// Guard words on each side of an area, and guard bytes on each side of a buffer.
    const PAD: usize = 4;

    fn pattern(len: usize, salt: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
            .collect()
    }

    /// `PAD` guard words, `area` words holding `bytes` zero-padded, `PAD` guard words; the
    /// area starts at an odd word, so it is 8- but not 16-aligned when the vector is.
    fn guarded_words(bytes: &[u8], area: usize) -> Vec<AtomicUsize> {
        let guard = usize::from_ne_bytes([GUARD; WORD]);
        let mut padded = bytes.to_vec();
        padded.resize(area * WORD, 0);
        let mut words: Vec<AtomicUsize> = (0..PAD - 1).map(|_| AtomicUsize::new(guard)).collect();
        words.extend(
            padded
                .chunks_exact(WORD)
                .map(|w| AtomicUsize::new(word_of_exact(w))),
        );
        words.extend((0..PAD).map(|_| AtomicUsize::new(guard)));
        words
    }

    fn bytes_of(words: &[AtomicUsize]) -> Vec<u8> {
        words
            .iter()
            .flat_map(|w| w.load(Ordering::Relaxed).to_ne_bytes())
            .collect()
    }

    fn all_guard(bytes: &[u8]) -> bool {
        bytes.iter().all(|&b| b == GUARD)
    }

    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "sse2",
        target_pointer_width = "64",
        not(miri),
        not(loom)
    ))]
    #[test]
    fn avx_is_detected_as_the_standard_library_detects_it() {
        assert_eq!(avx::available(), std::is_x86_feature_detected!("avx"));
        // Again, from the cached answer.
        assert_eq!(avx::available(), std::is_x86_feature_detected!("avx"));
    }

    #[test]
    fn loads_copy_exactly_the_requested_prefix() {
        // Every length up to past the area: buffers shorter and longer than it.
        for &area in AREAS {
            let source = pattern(area * WORD, 7);
            let guarded = guarded_words(&source, area);
            let words = &guarded[PAD - 1..PAD - 1 + area];
            for len in 0..=area * WORD + 12 {
                for &offset in OFFSETS {
                    let mut buffer = std::vec![GUARD; offset + len + PAD];
                    load(words, &mut buffer[offset..offset + len]);
                    let copied = len.min(area * WORD);
                    let (before, rest) = buffer.split_at(offset);
                    let at = std::format!("area {area}, len {len}, offset {offset}");
                    assert_eq!(rest[..copied], source[..copied], "{at}");
                    assert!(all_guard(before), "{at}: wrote before the buffer");
                    assert!(all_guard(&rest[copied..]), "{at}: wrote past the copy");
                }
            }
        }
    }

    #[test]
    fn stores_write_the_bytes_zero_padded_and_nothing_past_them() {
        for &area in AREAS {
            for len in 0..=area * WORD + 12 {
                for &offset in OFFSETS {
                    let mut buffer = std::vec![0u8; offset];
                    buffer.extend(pattern(len, 91));
                    let source = &buffer[offset..];
                    let guarded = guarded_words(&std::vec![GUARD; area * WORD], area);
                    store(source, &guarded[PAD - 1..PAD - 1 + area]);
                    let stored = bytes_of(&guarded);
                    let (before, rest) = stored.split_at((PAD - 1) * WORD);
                    let fits = len.min(area * WORD);
                    let padded_end = fits.div_ceil(WORD) * WORD;
                    let at = std::format!("area {area}, len {len}, offset {offset}");
                    assert_eq!(rest[..fits], source[..fits], "{at}");
                    assert!(rest[fits..padded_end].iter().all(|&b| b == 0), "{at}");
                    assert!(all_guard(before), "{at}: stored before the area");
                    assert!(
                        all_guard(&rest[padded_end..]),
                        "{at}: stored past the value"
                    );
                }
            }
        }
    }
}
