//! Helpers shared by the integration tests: a controllable `Liveness`, self-checking values.

#![allow(dead_code, unreachable_pub)]

use shared_hashmap::{Layout, Liveness, RawMap};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

/// A `Liveness` for tests: a fixed owner id, a set of ids the test declares dead, and waits
/// that yield the processor (tests run many threads on few cores) and give up after
/// `max_attempts`.
pub struct TestLiveness {
    pub owner: u32,
    pub dead: Dead,
    pub max_attempts: u32,
}

/// The owner ids a test has declared dead, shared between the handles of one test.
pub type Dead = Arc<Mutex<Vec<u32>>>;

impl TestLiveness {
    pub fn new(owner: u32, dead: &Dead) -> Self {
        TestLiveness {
            owner,
            dead: Arc::clone(dead),
            max_attempts: 1_000_000,
        }
    }
}

impl Liveness for TestLiveness {
    fn owner_id(&self) -> NonZeroU32 {
        NonZeroU32::new(self.owner).unwrap()
    }

    fn is_alive(&self, owner: u32) -> bool {
        !self.dead.lock().unwrap().contains(&owner)
    }

    fn wait(&self, attempt: u32) -> bool {
        if attempt < 16 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
        attempt < self.max_attempts
    }
}

/// An empty set of dead owners.
pub fn no_dead() -> Dead {
    Arc::new(Mutex::new(Vec::new()))
}

/// `verify_exact`, with its scratch buffer.
pub fn verify_exact(map: &RawMap<'_>) -> shared_hashmap::VerifyReport {
    let mut scratch = vec![0u32; map.layout().chunks()];
    map.verify_exact(&mut scratch).unwrap()
}

/// Memory for a region of `layout`, 8-byte aligned.
pub fn memory(layout: &Layout) -> Vec<u64> {
    vec![0u64; layout.region_size().div_ceil(8)]
}

/// Memory that several map handles share, as processes share a mapping: owned through a raw
/// pointer, so no reference to its bytes exists while handles use it.
pub struct SharedMemory {
    base: *mut u64,
    words: usize,
}

// SAFETY: the memory is only reached through map handles, which access it atomically.
unsafe impl Send for SharedMemory {}
// SAFETY: as for `Send`.
unsafe impl Sync for SharedMemory {}

impl SharedMemory {
    /// Takes over `words` (for example a region a test prepared, or scribbled on).
    pub fn new(words: Vec<u64>) -> Self {
        let words = words.into_boxed_slice();
        let len = words.len();
        SharedMemory {
            base: Box::into_raw(words).cast(),
            words: len,
        }
    }

    /// Memory for `layout`, formatted as an empty map.
    pub fn formatted(layout: Layout) -> Self {
        SharedMemory::formatted_with_seed(layout, 1)
    }

    /// Memory for `layout`, formatted as an empty map with hash seed `seed`.
    pub fn formatted_with_seed(layout: Layout, seed: u64) -> Self {
        let mut words = memory(&layout);
        let _ =
            RawMap::init_with_seed(shared_hashmap::region_bytes(&mut words), layout, seed).unwrap();
        SharedMemory::new(words)
    }

    /// A handle with any liveness.
    pub fn attach_with<'r>(&'r self, liveness: &'r dyn shared_hashmap::Liveness) -> RawMap<'r> {
        // SAFETY: the memory lives as long as `self`, and is reached only through handles and
        // `atomic_u32`.
        unsafe { RawMap::attach_raw(self.base.cast(), self.words * 8, liveness) }.unwrap()
    }

    /// The 32-bit word at byte `offset` (a multiple of 4), to inspect or set a control word
    /// as another process might.
    pub fn atomic_u32(&self, offset: usize) -> &std::sync::atomic::AtomicU32 {
        assert!(offset % 4 == 0 && offset + 4 <= self.words * 8);
        // SAFETY: in bounds and aligned (checked above; `base` is 8-aligned); every access to
        // the memory is atomic, and the reference lives no longer than `self`.
        unsafe {
            &*self
                .base
                .cast::<u8>()
                .add(offset)
                .cast::<std::sync::atomic::AtomicU32>()
        }
    }

    /// A handle on the map in this memory, as another process would have: its own liveness.
    pub fn attach<'r>(&'r self, liveness: &'r TestLiveness) -> RawMap<'r> {
        // SAFETY: the memory lives as long as `self`, and is reached only through handles.
        unsafe { RawMap::attach_raw(self.base.cast(), self.words * 8, liveness) }.unwrap()
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // SAFETY: `base` and `words` came from `Box::into_raw` of a boxed slice of this length,
        // and every handle borrowing `self` is gone.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.base, self.words)) });
    }
}

/// A value that proves its own integrity: writer, sequence number, a length that varies with
/// the sequence, filler derived from both, and a checksum over everything before it.
pub fn checked_value(writer: u32, seq: u32, max_len: usize) -> Vec<u8> {
    let len = 16 + (seq as usize * 7 % (max_len - 15));
    let mut value = Vec::with_capacity(len);
    value.extend_from_slice(&writer.to_le_bytes());
    value.extend_from_slice(&seq.to_le_bytes());
    let mut state = (u64::from(writer) << 32 | u64::from(seq)) ^ 0x9e37_79b9_7f4a_7c15;
    while value.len() < len - 8 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        value.push(state as u8);
    }
    let sum = checksum(&value);
    value.extend_from_slice(&sum.to_le_bytes());
    value
}

/// Checks a value made by `checked_value`; returns its writer and sequence number.
pub fn check_value(value: &[u8], max_len: usize) -> (u32, u32) {
    assert!(
        value.len() >= 16,
        "value of {} bytes is too short: torn or foreign",
        value.len()
    );
    let (body, sum) = value.split_at(value.len() - 8);
    assert_eq!(
        checksum(body).to_le_bytes(),
        sum,
        "checksum mismatch: a torn read"
    );
    let writer = u32::from_le_bytes(value[0..4].try_into().unwrap());
    let seq = u32::from_le_bytes(value[4..8].try_into().unwrap());
    assert_eq!(
        checked_value(writer, seq, max_len),
        value,
        "value does not match its header"
    );
    (writer, seq)
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
