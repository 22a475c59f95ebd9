//! The unsafe island: turning a byte region into the atomics the map is made of.
//!
//! Everything the map stores lives in a region that other threads, and other processes, read
//! and write at the same time. Rust allows such shared memory to be touched only through
//! atomics, so this module hands out `&AtomicU32` / `&AtomicUsize` views of the region (the
//! header, the control blocks, the slots) and nothing else: no `&[u8]` or `&mut` into memory
//! another party may write. Every index it accepts is checked, so no value read from the region
//! can steer an access out of bounds.
//!
//! Under `cfg(loom)` the same views are backed by owned loom atomics instead of the region's
//! bytes, so the loom tests model the crate's real protocol code.

use crate::error::Error;
use crate::layout::{HEADER_SIZE, Layout, PHYSICAL_SLOTS_PER_CHUNK, REGION_ALIGN};
use crate::sync::{AtomicU32, AtomicUsize};
use core::marker::PhantomData;

/// The header's words (see `header.rs` for what each one holds).
#[repr(C)]
pub(crate) struct Header {
    pub(crate) words: [AtomicU32; HEADER_SIZE / 4],
}

/// One chunk's control block (see `chunk.rs`).
#[repr(C)]
pub(crate) struct ControlBlock {
    /// 0 when free, else the owner id of the holder.
    pub(crate) lock: AtomicU32,
    /// Even when the chunk is stable; odd while a writer changes it.
    pub(crate) seq: AtomicU32,
    /// One tag byte per logical slot, little-endian: 0 = empty, else 0x80 | 7 hash bits.
    pub(crate) tags: TagWord,
    /// For each logical slot, a nibble naming the physical slot that holds it.
    pub(crate) map: AtomicU32,
    /// How many entries probed past this chunk to a later one.
    pub(crate) overflow: AtomicU32,
    /// Zero; room for later format versions.
    pub(crate) reserved: [AtomicU32; 2],
}

/// A chunk's 8 tag bytes, slot `i` in bits `8 * i..8 * i + 8`: one 64-bit atomic where the
/// target has native 64-bit atomics and is little-endian, so that a lookup loads them at once;
/// elsewhere two 32-bit atomics, slots 0 to 3 first. The bytes in memory are the same either
/// way (little-endian), and every access to them goes through `chunk.rs` at one width.
#[cfg(all(target_has_atomic = "64", target_endian = "little"))]
pub(crate) type TagWord = crate::sync::AtomicU64;

/// See the 64-bit form.
#[cfg(not(all(target_has_atomic = "64", target_endian = "little")))]
pub(crate) type TagWord = [AtomicU32; 2];

/// A zeroed tag word (for control blocks built outside a region: loom and unit tests).
#[cfg(any(loom, test))]
fn new_tag_word() -> TagWord {
    #[cfg(all(target_has_atomic = "64", target_endian = "little"))]
    {
        crate::sync::AtomicU64::new(0)
    }
    #[cfg(not(all(target_has_atomic = "64", target_endian = "little")))]
    {
        [AtomicU32::new(0), AtomicU32::new(0)]
    }
}

#[cfg(any(loom, test))]
impl ControlBlock {
    /// A control block of zeros, outside any region.
    pub(crate) fn zeroed() -> ControlBlock {
        ControlBlock {
            lock: AtomicU32::new(0),
            seq: AtomicU32::new(0),
            tags: new_tag_word(),
            map: AtomicU32::new(0),
            overflow: AtomicU32::new(0),
            reserved: [AtomicU32::new(0), AtomicU32::new(0)],
        }
    }
}

/// The fixed fields at the start of each physical slot.
#[repr(C)]
pub(crate) struct SlotHeader {
    pub(crate) key_len: AtomicU32,
    pub(crate) value_len: AtomicU32,
    /// The iteration epoch when the entry was inserted (see `raw/iter.rs`).
    pub(crate) stamp: AtomicU32,
    /// The upper 32 bits of the key's hash (checked by `verify`).
    pub(crate) hash: AtomicU32,
}

#[cfg(not(loom))]
const _: () = {
    assert!(core::mem::size_of::<Header>() == HEADER_SIZE);
    assert!(core::mem::size_of::<ControlBlock>() == crate::layout::CONTROL_SIZE);
    assert!(core::mem::align_of::<ControlBlock>() <= REGION_ALIGN);
    assert!(core::mem::offset_of!(ControlBlock, tags) == 8);
    assert!(core::mem::size_of::<SlotHeader>() == crate::layout::SLOT_HEADER_SIZE);
    assert!(core::mem::align_of::<AtomicUsize>() <= REGION_ALIGN);
    assert!(crate::layout::WORD_PAD % core::mem::size_of::<AtomicUsize>() == 0);
};

/// A physical slot index within a chunk, known to be below 9.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Phys(u8);

impl Phys {
    /// `None` unless `index` names one of a chunk's 9 physical slots.
    #[inline]
    pub(crate) fn new(index: u32) -> Option<Phys> {
        if (index as usize) < PHYSICAL_SLOTS_PER_CHUNK {
            Some(Phys(index as u8))
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn get(self) -> usize {
        usize::from(self.0)
    }
}

/// A view of one physical slot: its fixed fields, key words and value words.
#[derive(Clone, Copy)]
pub(crate) struct SlotRef<'a> {
    pub(crate) header: &'a SlotHeader,
    pub(crate) key: &'a [AtomicUsize],
    pub(crate) value: &'a [AtomicUsize],
}

impl SlotRef<'_> {
    /// Asks the processor to start loading the lines of the slot's first 128 bytes (its fixed
    /// fields, then its key and the start of its value), so that a write that will touch it
    /// does not wait for them later. A hint only: nothing is read, and no-op where not
    /// implemented.
    #[inline(always)]
    pub(crate) fn prefetch(&self) {
        prefetch_lines(core::ptr::from_ref(self.header).cast(), 2 * CACHE_LINE);
    }

    /// Asks the processor to start loading every cache line of the slot's value area, so that
    /// a long value's lines arrive together instead of one after another as a copy reaches
    /// them. A hint only, as [`prefetch`](Self::prefetch).
    #[inline(always)]
    pub(crate) fn prefetch_value(&self) {
        prefetch_lines(
            self.value.as_ptr().cast(),
            core::mem::size_of_val(self.value),
        );
    }
}

/// Bytes of a cache line, the stride of [`prefetch_lines`].
const CACHE_LINE: usize = 64;

/// Asks the processor to start loading the cache lines that hold `len` bytes from `start`.
/// Computes addresses only (never dereferenced), so any `start` is fine.
#[inline(always)]
#[cfg_attr(any(not(target_arch = "x86_64"), loom, miri), allow(unused_variables))]
fn prefetch_lines(start: *const i8, len: usize) {
    #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // From the start of the first line, so that the last line is reached too.
        let misalignment = start.addr() % CACHE_LINE;
        let first = start.wrapping_sub(misalignment);
        for offset in (0..len + misalignment).step_by(CACHE_LINE) {
            // SAFETY:
            // - a prefetch reads and writes nothing and never faults, whatever the address;
            // - the `sse` target feature it needs is part of the x86_64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(first.wrapping_add(offset)) };
        }
    }
}

/// A region whose start is checked and whose header can be read, before its layout is known.
pub(crate) struct Unformatted<'r> {
    #[cfg(not(loom))]
    base: core::ptr::NonNull<u8>,
    len: usize,
    #[cfg(loom)]
    header: std::boxed::Box<Header>,
    _region: PhantomData<&'r [AtomicU32]>,
}

/// A region with a known layout: header, control blocks and slots. Copies are further views
/// of the same region.
#[derive(Clone, Copy)]
pub(crate) struct Region<'r> {
    header: &'r Header,
    controls: &'r [ControlBlock],
    #[cfg(not(loom))]
    slots: core::ptr::NonNull<u8>,
    #[cfg(loom)]
    slot_headers: &'r [SlotHeader],
    #[cfg(loom)]
    slot_words: &'r [AtomicUsize],
    slot_size: usize,
    key_words: usize,
    value_words: usize,
    _region: PhantomData<&'r [AtomicU32]>,
}

// SAFETY:
// - A `Region` only hands out shared references to atomics, which are `Sync`.
// - It owns no thread-bound state; the raw pointer is to memory valid for `'r`.
unsafe impl Send for Region<'_> {}
// SAFETY: as for `Send`: every access through a `Region` is an atomic operation.
unsafe impl Sync for Region<'_> {}
// SAFETY: an `Unformatted` region is only used by the thread that builds the map.
unsafe impl Send for Unformatted<'_> {}

impl<'r> Unformatted<'r> {
    /// Checks that `region` is aligned and holds at least a header.
    pub(crate) fn from_slice(region: &'r mut [u8]) -> Result<Self, Error> {
        let len = region.len();
        let base = region.as_mut_ptr();
        check_start(base as usize, len)?;
        #[cfg(not(loom))]
        {
            Ok(Unformatted {
                // A slice pointer is never null.
                base: core::ptr::NonNull::from(region).cast(),
                len,
                _region: PhantomData,
            })
        }
        #[cfg(loom)]
        {
            Ok(Unformatted {
                header: std::boxed::Box::new(new_header()),
                len,
                _region: PhantomData,
            })
        }
    }

    /// Checks that `base` is non-null and aligned and `len` holds at least a header.
    ///
    /// # Safety
    ///
    /// Behavior is undefined if any of the following conditions are violated:
    /// - `base` is valid for reads and writes of `len` bytes for the lifetime `'r`;
    /// - for that lifetime, every access to those bytes by this or another process is an
    ///   atomic operation made through this crate (no plain reads or writes, no `&`/`&mut`
    ///   references to them elsewhere).
    #[cfg(not(loom))]
    pub(crate) unsafe fn from_raw(base: *mut u8, len: usize) -> Result<Self, Error> {
        let Some(base) = core::ptr::NonNull::new(base) else {
            return Err(Error::Misaligned {
                required: REGION_ALIGN,
            });
        };
        check_start(base.as_ptr() as usize, len)?;
        Ok(Unformatted {
            base,
            len,
            _region: PhantomData,
        })
    }

    /// The header, which every region checked by the constructors holds.
    pub(crate) fn header(&self) -> &Header {
        #[cfg(not(loom))]
        {
            // SAFETY:
            // - `base` is aligned to `REGION_ALIGN`, a multiple of `Header`'s alignment (4);
            // - the constructors checked `len >= HEADER_SIZE == size_of::<Header>()`;
            // - every bit pattern is a valid `Header` (it is made of `AtomicU32`s);
            // - other parties access these bytes only atomically (the constructors' contract),
            //   and `AtomicU32` permits shared mutation through `&`.
            unsafe { self.base.cast::<Header>().as_ref() }
        }
        #[cfg(loom)]
        {
            &self.header
        }
    }

    /// Views the region through `layout`.
    ///
    /// # Errors
    /// [`Error::RegionTooSmall`] if the region is shorter than the layout needs.
    pub(crate) fn with_layout(self, layout: &Layout) -> Result<Region<'r>, Error> {
        let needed = layout.region_size();
        if self.len < needed {
            return Err(Error::RegionTooSmall {
                needed,
                got: self.len,
            });
        }
        let chunks = layout.chunks();
        let slot_size = layout.slot_size();
        let word = core::mem::size_of::<AtomicUsize>();
        let key_words = layout.key_area() / word;
        let value_words = layout.value_area() / word;
        #[cfg(not(loom))]
        {
            // SAFETY:
            // - `needed <= len`, and `controls_offset + chunks * CONTROL_SIZE <= slots_offset`
            //   and `slots_offset + chunks * 9 * slot_size == needed` by `Layout`'s arithmetic,
            //   which `Layout::new` checked for overflow;
            // - both offsets are multiples of 64, so with `base` aligned to 8 the pointers are
            //   aligned for `ControlBlock` (at most 8) and for the slots' `AtomicU32` and
            //   `AtomicUsize`;
            // - every bit pattern is a valid `ControlBlock`; all accesses are atomic (the
            //   constructors' contract).
            let controls = unsafe {
                let first = self
                    .base
                    .add(layout.controls_offset())
                    .cast::<ControlBlock>();
                core::slice::from_raw_parts(first.as_ptr(), chunks)
            };
            // SAFETY: see above; `slots_offset <= needed <= len`.
            let slots = unsafe { self.base.add(layout.slots_offset()) };
            Ok(Region {
                header: self.header_for_lifetime(),
                controls,
                slots,
                slot_size,
                key_words,
                value_words,
                _region: PhantomData,
            })
        }
        #[cfg(loom)]
        {
            use std::boxed::Box;
            let physical = chunks * PHYSICAL_SLOTS_PER_CHUNK;
            let controls: Box<[ControlBlock]> = (0..chunks).map(|_| new_control()).collect();
            let slot_headers: Box<[SlotHeader]> =
                (0..physical).map(|_| new_slot_header()).collect();
            let slot_words: Box<[AtomicUsize]> = (0..physical * (key_words + value_words))
                .map(|_| AtomicUsize::new(0))
                .collect();
            // Loom models are short-lived tests; leaking keeps the views' lifetimes simple.
            Ok(Region {
                header: Box::leak(self.header),
                controls: Box::leak(controls),
                slot_headers: Box::leak(slot_headers),
                slot_words: Box::leak(slot_words),
                slot_size,
                key_words,
                value_words,
                _region: PhantomData,
            })
        }
    }

    #[cfg(not(loom))]
    fn header_for_lifetime(&self) -> &'r Header {
        // SAFETY: as in `header`; the bytes stay valid for `'r`, the constructors' lifetime.
        unsafe { self.base.cast::<Header>().as_ref() }
    }
}

fn check_start(address: usize, len: usize) -> Result<(), Error> {
    if address % REGION_ALIGN != 0 {
        return Err(Error::Misaligned {
            required: REGION_ALIGN,
        });
    }
    if len < HEADER_SIZE {
        return Err(Error::RegionTooSmall {
            needed: HEADER_SIZE,
            got: len,
        });
    }
    Ok(())
}

impl<'r> Region<'r> {
    /// The header.
    #[inline]
    pub(crate) fn header(&self) -> &'r Header {
        self.header
    }

    /// All control blocks, one per chunk.
    #[inline]
    pub(crate) fn controls(&self) -> &'r [ControlBlock] {
        self.controls
    }

    /// The number of chunks.
    #[inline]
    pub(crate) fn chunks(&self) -> usize {
        self.controls.len()
    }

    /// The control block of `chunk`.
    ///
    /// # Panics
    /// If `chunk` is not below [`chunks`](Self::chunks); chunk indices come from the map's own
    /// arithmetic, never from the region.
    #[inline]
    pub(crate) fn control(&self, chunk: usize) -> &'r ControlBlock {
        &self.controls[chunk]
    }

    /// A view of physical slot `phys` of `chunk`.
    ///
    /// # Panics
    /// If `chunk` is not below [`chunks`](Self::chunks), as for [`control`](Self::control).
    #[inline]
    pub(crate) fn slot(&self, chunk: usize, phys: Phys) -> SlotRef<'r> {
        assert!(chunk < self.controls.len());
        let index = chunk * PHYSICAL_SLOTS_PER_CHUNK + phys.get();
        #[cfg(not(loom))]
        {
            // SAFETY:
            // - `chunk < chunks` and `phys < 9`, so `index < chunks * 9` and the slot's
            //   `slot_size` bytes lie inside the slots area, which lies inside the region
            //   (checked in `with_layout`); the offset cannot overflow for the same reason;
            // - `slot_size` is a multiple of 8 and the slots area starts 8-aligned, so the
            //   header is aligned for `AtomicU32` and the word areas (at +16) for `AtomicUsize`;
            // - `key_words` and `value_words` words fit in the slot after its header;
            // - every bit pattern is valid for these atomics, and all accesses are atomic.
            unsafe {
                let start = self.slots.add(index * self.slot_size);
                let header = start.cast::<SlotHeader>().as_ref();
                let words = start
                    .add(crate::layout::SLOT_HEADER_SIZE)
                    .cast::<AtomicUsize>()
                    .as_ptr();
                let key = core::slice::from_raw_parts(words, self.key_words);
                let value =
                    core::slice::from_raw_parts(words.add(self.key_words), self.value_words);
                SlotRef { header, key, value }
            }
        }
        #[cfg(loom)]
        {
            let _ = self.slot_size;
            let per_slot = self.key_words + self.value_words;
            let words = &self.slot_words[index * per_slot..(index + 1) * per_slot];
            let (key, value) = words.split_at(self.key_words);
            SlotRef {
                header: &self.slot_headers[index],
                key,
                value,
            }
        }
    }
}

#[cfg(loom)]
fn new_header() -> Header {
    Header {
        words: core::array::from_fn(|_| AtomicU32::new(0)),
    }
}

#[cfg(loom)]
fn new_control() -> ControlBlock {
    ControlBlock::zeroed()
}

#[cfg(loom)]
fn new_slot_header() -> SlotHeader {
    SlotHeader {
        key_len: AtomicU32::new(0),
        value_len: AtomicU32::new(0),
        stamp: AtomicU32::new(0),
        hash: AtomicU32::new(0),
    }
}

/// Views 8-byte-aligned words as the bytes of a region, for maps kept in ordinary memory
/// (a `Vec<u64>`, a `static` array) rather than memory shared with other processes.
///
/// ```
/// use shared_hashmap::{Layout, RawMap, region_bytes};
///
/// let layout = Layout::new(10, 8, 8)?;
/// let mut words = vec![0u64; layout.region_size().div_ceil(8)];
/// let map = RawMap::init(region_bytes(&mut words), layout)?;
/// map.insert(b"k", b"v")?;
/// # Ok::<(), shared_hashmap::Error>(())
/// ```
pub fn region_bytes(words: &mut [u64]) -> &mut [u8] {
    let len = core::mem::size_of_val(words);
    // SAFETY:
    // - the pointer comes from a `&mut [u64]`, so it is valid for reads and writes of `len`
    //   bytes and exclusively borrowed for the returned lifetime;
    // - `u8` has alignment 1 and every byte of a `u64` is an initialized `u8`.
    unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) }
}
