//! The region's header: what it holds, how `init` publishes it and how `attach` checks it.
//!
//! | word | field |
//! |---|---|
//! | 0 | magic `"SHMH"` |
//! | 1 | state: 0 blank, `INITIALIZING`, `READY` |
//! | 2 | format version |
//! | 3 | byte-order mark `0x01020304` |
//! | 4, 5 | capacity (low, high) |
//! | 6, 7 | maximum key and value length |
//! | 8 | chunk count |
//! | 9, 10 | hash seed (low, high) |
//! | 11 | checksum of words 0 and 2..=10 |
//! | 12 | iteration epoch (changes; see `raw/iter.rs`) |
//! | 13 | attach generation (changes; for owner ids, see [`RawMap::next_generation`](crate::RawMap::next_generation)) |
//! | 14, 15 | zero |
//!
//! Creation writes every field, then stores `READY` with `Release`; attach loads the state with
//! `Acquire` before it reads anything else, so it never sees a half-written header.

use crate::error::{Corruption, Error};
use crate::hash::hash_bytes;
use crate::layout::Layout;
use crate::liveness::Liveness;
use crate::region::Header;
use crate::sync::{AtomicU32, Ordering};

const MAGIC: u32 = u32::from_le_bytes(*b"SHMH");
const STATE_INITIALIZING: u32 = u32::from_le_bytes(*b"INIT");
const STATE_READY: u32 = u32::from_le_bytes(*b"REDY");
const BYTE_ORDER_MARK: u32 = 0x0102_0304;

/// The version of the region format this build reads and writes. It changes whenever the
/// layout, the hash function or the meaning of any stored field changes.
pub const FORMAT_VERSION: u32 = 1;

const W_MAGIC: usize = 0;
const W_STATE: usize = 1;
const W_VERSION: usize = 2;
const W_BYTE_ORDER: usize = 3;
const W_CAPACITY_LO: usize = 4;
const W_CAPACITY_HI: usize = 5;
const W_MAX_KEY: usize = 6;
const W_MAX_VALUE: usize = 7;
const W_CHUNKS: usize = 8;
const W_SEED_LO: usize = 9;
const W_SEED_HI: usize = 10;
const W_CHECKSUM: usize = 11;
const W_EPOCH: usize = 12;
const W_GENERATION: usize = 13;

/// The fields covered by the checksum, in order.
const CHECKED: [usize; 10] = [
    W_MAGIC,
    W_VERSION,
    W_BYTE_ORDER,
    W_CAPACITY_LO,
    W_CAPACITY_HI,
    W_MAX_KEY,
    W_MAX_VALUE,
    W_CHUNKS,
    W_SEED_LO,
    W_SEED_HI,
];

fn checksum(words: &[u32; 16]) -> u32 {
    let mut bytes = [0u8; CHECKED.len() * 4];
    for (out, &word) in bytes.chunks_exact_mut(4).zip(CHECKED.iter()) {
        out.copy_from_slice(&words[word].to_le_bytes());
    }
    hash_bytes(0, &bytes) as u32
}

/// Marks the header as being initialized. The caller formats the rest of the region next and
/// then calls [`publish`].
pub(crate) fn begin(header: &Header, layout: &Layout, seed: u64) {
    let mut words = [0u32; 16];
    words[W_MAGIC] = MAGIC;
    words[W_VERSION] = FORMAT_VERSION;
    words[W_BYTE_ORDER] = BYTE_ORDER_MARK;
    let capacity = layout.capacity() as u64;
    words[W_CAPACITY_LO] = capacity as u32;
    words[W_CAPACITY_HI] = (capacity >> 32) as u32;
    words[W_MAX_KEY] = layout.max_key_len() as u32;
    words[W_MAX_VALUE] = layout.max_value_len() as u32;
    words[W_CHUNKS] = layout.chunks() as u32;
    words[W_SEED_LO] = seed as u32;
    words[W_SEED_HI] = (seed >> 32) as u32;
    words[W_CHECKSUM] = checksum(&words);
    // Relaxed: nobody may read these fields until `publish` stores READY with Release, and an
    // attacher loads the state with Acquire before reading them.
    header.words[W_STATE].store(STATE_INITIALIZING, Ordering::Relaxed);
    for (index, (cell, value)) in header.words.iter().zip(words).enumerate() {
        if index != W_STATE {
            cell.store(value, Ordering::Relaxed);
        }
    }
}

/// Makes a formatted region visible to attachers.
pub(crate) fn publish(header: &Header) {
    // Release: pairs with the Acquire load in `read`, making every field and control block
    // written before this store visible to an attacher that sees READY.
    header.words[W_STATE].store(STATE_READY, Ordering::Release);
}

/// What `attach` learns from a header.
pub(crate) struct Stored {
    pub(crate) layout: Layout,
    pub(crate) seed: u64,
}

/// Waits (bounded by `liveness`) until the header is READY, then checks and decodes it. A
/// header still being written, or still blank (all zero, as a new shared memory object is),
/// is waited for; when the wait gives up, the first is [`Error::TimedOut`] and the second
/// [`Error::NotAMap`].
pub(crate) fn read(header: &Header, liveness: &dyn Liveness) -> Result<Stored, Error> {
    let mut attempt = 0u32;
    loop {
        // Acquire: pairs with the Release store in `publish`.
        let state = header.words[W_STATE].load(Ordering::Acquire);
        // Relaxed: a magic number is only compared, never used to reach other data.
        let magic = header.words[W_MAGIC].load(Ordering::Relaxed);
        let outcome = match state {
            STATE_READY => break,
            STATE_INITIALIZING => Error::TimedOut,
            // Blank: a creator may be about to format it (a new shared memory object is zeros).
            0 if magic == 0 => Error::NotAMap,
            _ if magic != MAGIC => return Err(Error::NotAMap),
            _ => return Err(Error::Corrupt(Corruption::HeaderState)),
        };
        if !liveness.wait(attempt) {
            return Err(outcome);
        }
        attempt = attempt.saturating_add(1);
    }
    // Relaxed: ordered after the Acquire load of READY above; these fields never change after.
    let words: [u32; 16] = core::array::from_fn(|i| header.words[i].load(Ordering::Relaxed));
    if words[W_MAGIC] != MAGIC {
        return Err(Error::NotAMap);
    }
    if words[W_BYTE_ORDER] != BYTE_ORDER_MARK || words[W_VERSION] != FORMAT_VERSION {
        return Err(Error::IncompatibleVersion {
            found: words[W_VERSION],
            supported: FORMAT_VERSION,
        });
    }
    if checksum(&words) != words[W_CHECKSUM] {
        return Err(Error::Corrupt(Corruption::HeaderChecksum));
    }
    let capacity = u64::from(words[W_CAPACITY_LO]) | (u64::from(words[W_CAPACITY_HI]) << 32);
    let layout = Layout::from_stored(
        capacity,
        words[W_MAX_KEY],
        words[W_MAX_VALUE],
        words[W_CHUNKS],
    )
    .ok_or(Error::Corrupt(Corruption::HeaderLayout))?;
    let seed = u64::from(words[W_SEED_LO]) | (u64::from(words[W_SEED_HI]) << 32);
    Ok(Stored { layout, seed })
}

/// The iteration epoch word.
pub(crate) fn epoch(header: &Header) -> &AtomicU32 {
    &header.words[W_EPOCH]
}

/// The attach generation word.
pub(crate) fn generation(header: &Header) -> &AtomicU32 {
    &header.words[W_GENERATION]
}
