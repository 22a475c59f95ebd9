//! [`RawMap`]: the byte-keyed, byte-valued map over a region, its constructors and accessors.
//!
//! Reads (`read.rs`) take no lock; writes (`write.rs`) lock the key's home chunk, which
//! serializes every writer of one key; iteration is in `iter.rs` and the structural check in
//! `verify.rs`.

mod iter;
mod read;
mod verify;
mod write;

pub use iter::Iter;
pub use verify::VerifyReport;

use crate::chunk::{self, IDENTITY_MAP, Tags};
use crate::error::Error;
use crate::hash::{Seed, hash_bytes};
use crate::header;
use crate::layout::Layout;
use crate::liveness::{Liveness, SingleProcess};
use crate::lock::Waiter;
use crate::probe::Probe;
use crate::region::{Region, Unformatted};
use crate::sync::{ATOMICS_ARE_LOCK_FREE, Ordering};

/// A concurrent hash map from byte strings to byte strings, stored entirely in a region of
/// memory that the caller provides and that any number of threads, or processes, share.
///
/// Readers take no lock, but they are not read-only: a reader that finds a chunk left
/// mid-write by a dead writer repairs it. Every process needs the region mapped read-write.
///
/// Every operation takes `&self`: share a `&RawMap` between threads, or give each process its
/// own `RawMap` over the same shared memory. [`handle`](Self::handle) makes another handle on
/// the same map (for example to give it another [`Liveness`] with
/// [`with_liveness`](Self::with_liveness)). Keys and values are copied in and out; no operation
/// allocates.
///
/// ```
/// use shared_hashmap::{Layout, RawMap, region_bytes};
///
/// let layout = Layout::new(100, 16, 64)?;
/// let mut words = vec![0u64; layout.region_size().div_ceil(8)];
/// let map = RawMap::init(region_bytes(&mut words), layout)?;
///
/// assert_eq!(map.insert(b"apple", b"red")?, false);
/// assert_eq!(map.insert(b"apple", b"green")?, true);
/// let mut out = [0u8; 64];
/// let len = map.get(b"apple", &mut out)?.unwrap();
/// assert_eq!(&out[..len], b"green");
/// assert_eq!(map.fetch_add(b"visits", 3)?, 0);
/// assert_eq!(map.len(), 2);
/// # Ok::<(), shared_hashmap::Error>(())
/// ```
pub struct RawMap<'r> {
    region: Region<'r>,
    layout: Layout,
    seed: Seed,
    owner: u32,
    liveness: &'r dyn Liveness,
    /// Whether writes prefetch the slots they will touch (`write::PREFETCH_ABOVE`).
    prefetch_writes: bool,
    /// Whether writes prefetch all of a long value's lines (`write::prefetches_values`).
    prefetch_values: bool,
}

impl core::fmt::Debug for RawMap<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawMap")
            .field("layout", &self.layout)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// Gives up at once: for reading the header of a region nobody else can be formatting.
struct NoWait;

impl Liveness for NoWait {
    fn owner_id(&self) -> core::num::NonZeroU32 {
        SingleProcess.owner_id()
    }

    fn is_alive(&self, _owner: u32) -> bool {
        true
    }

    fn wait(&self, _attempt: u32) -> bool {
        false
    }
}

impl<'r> RawMap<'r> {
    /// Whether maps may be shared between processes on this target: true when every atomic the
    /// map keeps in its region is natively lock-free. Where it is false (targets that emulate
    /// compare-and-swap with a critical section), a map works between threads and interrupt
    /// handlers of one program, but two processes mapping one region would not exclude each
    /// other.
    pub const SHAREABLE_BETWEEN_PROCESSES: bool = ATOMICS_ARE_LOCK_FREE;

    /// Formats `region` as an empty map with `layout`, seeding its hash from the region's
    /// address and layout.
    ///
    /// The seed is not secret. Where keys may come from an adversary who knows the address,
    /// use [`init_with_seed`](Self::init_with_seed) with a random seed.
    ///
    /// # Errors
    /// [`Error::Misaligned`] if `region` does not start at a multiple of
    /// [`REGION_ALIGN`](crate::REGION_ALIGN); [`Error::RegionTooSmall`] if it is shorter than
    /// [`Layout::region_size`]. The region is unchanged when an error is returned.
    pub fn init(region: &'r mut [u8], layout: Layout) -> Result<Self, Error> {
        let mut identity = [0u8; 24];
        identity[..8].copy_from_slice(&(region.as_ptr() as usize as u64).to_le_bytes());
        identity[8..16].copy_from_slice(&(layout.capacity() as u64).to_le_bytes());
        identity[16..20].copy_from_slice(&(layout.max_key_len() as u32).to_le_bytes());
        identity[20..24].copy_from_slice(&(layout.max_value_len() as u32).to_le_bytes());
        let seed = hash_bytes(0x5eed, &identity);
        Self::init_with_seed(region, layout, seed)
    }

    /// Formats `region` as an empty map with `layout` and hash seed `seed`.
    ///
    /// # Errors
    /// As for [`init`](Self::init).
    pub fn init_with_seed(region: &'r mut [u8], layout: Layout, seed: u64) -> Result<Self, Error> {
        Self::format(
            Unformatted::from_slice(region)?,
            layout,
            seed,
            &SingleProcess,
        )
    }

    /// Opens the map that `region` holds, reading its layout and seed from the header.
    ///
    /// # Errors
    /// [`Error::Misaligned`], [`Error::RegionTooSmall`] as for [`init`](Self::init);
    /// [`Error::NotAMap`] if the region does not hold a map; [`Error::IncompatibleVersion`] if
    /// it holds one of another format version; [`Error::Corrupt`] if its header is damaged;
    /// [`Error::TimedOut`] if its initialization never finished (with the region borrowed
    /// exclusively, nobody can be finishing it, so this does not wait).
    pub fn attach(region: &'r mut [u8]) -> Result<Self, Error> {
        let region = Unformatted::from_slice(region)?;
        let stored = header::read(region.header(), &NoWait)?;
        Self::opened(region, stored, &SingleProcess)
    }

    /// Formats the memory at `base` as an empty map; for memory that other processes map too.
    ///
    /// # Errors
    /// As for [`init`](Self::init); a null `base` gives [`Error::Misaligned`].
    ///
    /// # Safety
    ///
    /// Behavior is undefined if any of the following conditions are violated:
    /// - `base` is valid for reads and writes of `len` bytes for the whole lifetime `'r`;
    /// - for that lifetime, every access to those bytes, by this process or any other, is made
    ///   through this crate's maps (which use atomic operations only): no plain reads or writes,
    ///   and no `&`/`&mut` references to the bytes anywhere;
    /// - no other party formats or attaches to the memory until this call returns.
    #[cfg(not(loom))]
    #[allow(unsafe_code)]
    pub unsafe fn init_raw(
        base: *mut u8,
        len: usize,
        layout: Layout,
        seed: u64,
        liveness: &'r dyn Liveness,
    ) -> Result<Self, Error> {
        // SAFETY: the caller upholds `Unformatted::from_raw`'s contract, which is this one's.
        let region = unsafe { Unformatted::from_raw(base, len)? };
        Self::format(region, layout, seed, liveness)
    }

    /// Opens the map in the memory at `base`, waiting (bounded by `liveness`) while another
    /// process is still formatting it.
    ///
    /// # Errors
    /// As for [`attach`](Self::attach), and [`Error::TimedOut`] if the map stays in
    /// initialization longer than `liveness` waits; a null `base` gives [`Error::Misaligned`].
    ///
    /// # Safety
    ///
    /// Behavior is undefined if any of the following conditions are violated:
    /// - `base` is valid for reads and writes of `len` bytes for the whole lifetime `'r`;
    /// - for that lifetime, every access to those bytes, by this process or any other, is made
    ///   through this crate's maps (which use atomic operations only): no plain reads or writes,
    ///   and no `&`/`&mut` references to the bytes anywhere.
    #[cfg(not(loom))]
    #[allow(unsafe_code)]
    pub unsafe fn attach_raw(
        base: *mut u8,
        len: usize,
        liveness: &'r dyn Liveness,
    ) -> Result<Self, Error> {
        // SAFETY: the caller upholds `Unformatted::from_raw`'s contract, which is this one's.
        let region = unsafe { Unformatted::from_raw(base, len)? };
        Self::open(region, liveness)
    }

    /// Another handle on the same map, borrowed from this one (so it cannot outlive it).
    pub fn handle(&self) -> RawMap<'_> {
        RawMap {
            region: self.region,
            layout: self.layout,
            seed: self.seed,
            owner: self.owner,
            liveness: self.liveness,
            prefetch_writes: self.prefetch_writes,
            prefetch_values: self.prefetch_values,
        }
    }

    /// This handle, with `liveness` deciding its owner id, how it waits and which lock holders
    /// are dead. Handles made by the safe constructors use [`SingleProcess`].
    pub fn with_liveness(self, liveness: &'r dyn Liveness) -> Self {
        RawMap {
            owner: liveness.owner_id().get(),
            liveness,
            ..self
        }
    }

    fn format(
        region: Unformatted<'r>,
        layout: Layout,
        seed: u64,
        liveness: &'r dyn Liveness,
    ) -> Result<Self, Error> {
        let region = region.with_layout(&layout)?;
        header::begin(region.header(), &layout, seed);
        for control in region.controls() {
            // Relaxed: published by the Release store of READY in `header::publish`.
            control.lock.store(0, Ordering::Relaxed);
            control.seq.store(0, Ordering::Relaxed);
            chunk::clear_tags(control);
            control.map.store(IDENTITY_MAP, Ordering::Relaxed);
            control.overflow.store(0, Ordering::Relaxed);
            control.reserved[0].store(0, Ordering::Relaxed);
            control.reserved[1].store(0, Ordering::Relaxed);
        }
        header::publish(region.header());
        Ok(RawMap {
            region,
            layout,
            seed: Seed::new(seed),
            owner: liveness.owner_id().get(),
            liveness,
            prefetch_writes: write::prefetches(&layout),
            prefetch_values: write::prefetches_values(&layout),
        })
    }

    #[cfg_attr(loom, allow(dead_code))]
    fn open(region: Unformatted<'r>, liveness: &'r dyn Liveness) -> Result<Self, Error> {
        let stored = header::read(region.header(), liveness)?;
        Self::opened(region, stored, liveness)
    }

    fn opened(
        region: Unformatted<'r>,
        stored: header::Stored,
        liveness: &'r dyn Liveness,
    ) -> Result<Self, Error> {
        let region = region.with_layout(&stored.layout)?;
        Ok(RawMap {
            region,
            layout: stored.layout,
            seed: Seed::new(stored.seed),
            owner: liveness.owner_id().get(),
            liveness,
            prefetch_writes: write::prefetches(&stored.layout),
            prefetch_values: write::prefetches_values(&stored.layout),
        })
    }

    /// The map's layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The number of entries the map is guaranteed to hold.
    pub fn capacity(&self) -> usize {
        self.layout.capacity()
    }

    /// The number of entries in the map.
    ///
    /// Exact when no write is in progress. While others write, it is a sum over chunks read one
    /// after another, so it may count an entry moved between chunks twice or not at all (never
    /// more than the map's slots); it is not a value the count necessarily had at one instant.
    /// It is computed from the chunks' tags, so it can never drift, even when a writer dies;
    /// it costs one pass over the control blocks (32 bytes per 7 entries of capacity).
    pub fn len(&self) -> usize {
        self.region
            .controls()
            .iter()
            .map(|control| Tags::load(control).full().count())
            .sum()
    }

    /// Whether the map has no entries; see [`len`](Self::len).
    pub fn is_empty(&self) -> bool {
        self.region
            .controls()
            .iter()
            .all(|control| Tags::load(control).full().is_empty())
    }

    /// Returns a fresh number from a counter in the map's header (wrapping at 2^32), for a
    /// [`Liveness`] implementation that builds owner ids from a process id and an attach
    /// generation.
    pub fn next_generation(&self) -> u32 {
        // Relaxed: a counter; uniqueness comes from the read-modify-write, not from ordering.
        header::generation(self.region.header()).fetch_add(1, Ordering::Relaxed)
    }

    /// A waiter for one operation.
    #[inline]
    fn waiter(&self) -> Waiter<'r> {
        Waiter::new(self.owner, self.liveness)
    }

    /// The probe sequence of a key with `hash`.
    #[inline]
    fn probe(&self, hash: u64) -> Probe {
        Probe::new(hash, self.region.chunks())
    }

    #[inline]
    fn check_key(&self, len: usize) -> Result<(), Error> {
        let max = self.layout.max_key_len();
        if len > max {
            Err(Error::KeyTooLong { len, max })
        } else {
            Ok(())
        }
    }

    #[inline]
    fn check_value(&self, len: usize) -> Result<(), Error> {
        let max = self.layout.max_value_len();
        if len > max {
            Err(Error::ValueTooLong { len, max })
        } else {
            Ok(())
        }
    }
}
