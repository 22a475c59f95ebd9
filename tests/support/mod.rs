//! Helpers shared by the integration tests: a controllable `Liveness`, self-checking values.

#![allow(dead_code, unreachable_pub)]

use shared_hashmap::{Layout, Liveness, RawMap};
use std::num::NonZeroU32;
use std::sync::Mutex;

/// A `Liveness` for tests: a fixed owner id, a set of ids the test declares dead, and waits
/// that yield the processor (tests run many threads on few cores) and give up after
/// `max_attempts`.
pub struct TestLiveness {
    pub owner: u32,
    pub dead: &'static Mutex<Vec<u32>>,
    pub max_attempts: u32,
}

impl TestLiveness {
    pub fn new(owner: u32, dead: &'static Mutex<Vec<u32>>) -> Self {
        TestLiveness {
            owner,
            dead,
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

/// A leaked, empty set of dead owners.
pub fn no_dead() -> &'static Mutex<Vec<u32>> {
    Box::leak(Box::new(Mutex::new(Vec::new())))
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

/// A second handle on the map in `memory`, as another process would have: its own liveness.
///
/// The memory must already hold a map, stay alive and be accessed only through map handles
/// while the returned handle lives.
pub fn attach_shared<'r>(memory: &'r [u64], liveness: &'r TestLiveness) -> RawMap<'r> {
    let len = std::mem::size_of_val(memory);
    // SAFETY: the memory outlives `'r` and the tests touch it only through map handles.
    unsafe { RawMap::attach_raw(memory.as_ptr().cast_mut().cast(), len, liveness) }.unwrap()
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
