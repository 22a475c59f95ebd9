//! A concurrent hash map that lives entirely inside a byte region the caller provides, so that
//! any number of threads, or processes mapping the same shared memory, use one map at once.
//!
//! The crate is `no_std` and never allocates. A map is a fixed-capacity table of inline
//! key and value slots, laid out in the region by a [`Layout`]; all state, locks included, is in
//! the region, and every access to it is atomic. Reads take no lock (a seqlock per chunk of 8
//! slots, with copies made of atomic word accesses); writes lock the key's home chunk, which
//! makes duplicate keys impossible; a process that dies holding a lock is detected through the [`Liveness`]
//! trait and its lock taken over, and every write is published by one atomic store, so a death
//! at any instant leaves each key with its old value or its new one. Deleted slots are reused
//! at once (overflow counters instead of tombstones), and hashing is a fixed, seeded function
//! (through the [`hash32`] trait) that every process and architecture computes alike.
//!
//! [`RawMap`] maps byte strings to byte strings; [`Map`] adds typed keys and values through
//! [`Encode`] and [`Decode`] (together, [`Codec`]), including the tagged [`Value`] that the
//! Python package uses. The
//! `shared-hashmap-posix` crate puts maps into POSIX shared memory by name.
//!
//! ```
//! use shared_hashmap::{Layout, RawMap, region_bytes};
//!
//! // 1000 entries, keys up to 16 bytes, values up to 64.
//! let layout = Layout::new(1000, 16, 64)?;
//! let mut memory = vec![0u64; layout.region_size().div_ceil(8)];
//! let map = RawMap::init(region_bytes(&mut memory), layout)?;
//!
//! std::thread::scope(|s| {
//!     for t in 0..4u8 {
//!         let map = &map;
//!         s.spawn(move || {
//!             for i in 0..100u8 {
//!                 map.insert(&[t, i], &[i; 8]).unwrap();
//!                 map.fetch_add(b"total", 1).unwrap();
//!             }
//!         });
//!     }
//! });
//! assert_eq!(map.len(), 401);
//! assert_eq!(map.get_into::<8>(b"total")?.unwrap(), 400i64.to_le_bytes());
//! map.verify()?;
//! # Ok::<(), shared_hashmap::Error>(())
//! ```
//!
//! # Features
//! - `defmt`: derives `defmt::Format` for the public types.
//! - `critical-section`: forwarded to portable-atomic, for targets without native
//!   compare-and-swap (see [`RawMap::SHAREABLE_BETWEEN_PROCESSES`]).

#![no_std]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]
#![deny(unsafe_code)]

#[cfg(any(loom, test))]
extern crate std;

mod bytes;
mod chunk;
mod codec;
mod error;
mod hash;
mod header;
mod layout;
mod liveness;
mod lock;
mod probe;
mod raw;
#[allow(unsafe_code)]
mod region;
mod slot;
mod sync;
mod typed;
mod value;
mod wide;

pub use codec::{Buffer, Codec, Decode, Encode, Encoded};
pub use error::{Corruption, Error, LayoutProblem, ValueProblem};
pub use hash::{MapHasher, hash_bytes};
pub use header::FORMAT_VERSION;
pub use layout::{Layout, REGION_ALIGN};
pub use liveness::{Liveness, SingleProcess, spin_wait};
pub use raw::{Iter, RawMap, VerifyReport};
pub use region::region_bytes;
pub use typed::{Counter, Map};
pub use value::{OwnedValue, Value};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
