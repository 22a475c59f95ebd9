//! POSIX shared memory for `shared-hashmap`: any number of processes share one map by name.
//!
//! [`SharedHashMap::create`] makes a map in a POSIX shared memory object
//! (`/dev/shm/<name>` on Linux), [`SharedHashMap::open`] attaches to it from any process,
//! [`SharedHashMap::open_or_create`] does whichever is needed (race-free: one creator), and
//! [`SharedHashMap::unlink`] removes the name. A handle dereferences to the core
//! [`RawMap`], so every operation of the map works on it; [`SharedMap`]
//! does the same for the typed [`Map`].
//!
//! Processes that die holding a chunk lock are detected with [`ProcessLiveness`] (process id and
//! start time, `kill(pid, 0)`) and their locks taken over by the next waiter. Maps are created
//! with mode 0600 unless [`Options::mode`] says otherwise; maps that must outlive a reboot can
//! live in a regular file ([`SharedHashMap::create_file`], [`SharedHashMap::flush`]).
//! [`SharedHashMap::unlink_on_drop`] makes a handle remove its map's name when it is dropped.
//!
//! # Processes, not handles, share a map
//!
//! Each process opens the map itself. A handle must not be used after `fork` in the child: the
//! child would take locks under its parent's owner id, so a waiter would judge those locks by
//! the parent's liveness (and could take them over from a live child when the parent dies).
//! Open the map again in the child (or `exec` a new program, as [`std::process::Command`]
//! does). All processes sharing a map must be in one PID namespace.
//!
//! ```
//! use shared_hashmap_posix::{Layout, SharedHashMap};
//!
//! # let name = format!("doc-lib-{}", std::process::id());
//! let map = SharedHashMap::open_or_create(&name, Layout::new(1024, 64, 256)?)?;
//! map.insert(b"greeting", b"hello from one process")?;
//! assert_eq!(map.len(), 1);
//! SharedHashMap::unlink(&name)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]

mod error;
mod liveness;
mod map;
mod name;
#[allow(unsafe_code)]
mod segment;

pub use error::Error;
pub use liveness::ProcessLiveness;
pub use map::{Options, SharedHashMap, SharedMap};
pub use name::NAME_MAX;
/// The core crate, for its types that this crate's glob re-export shadows (its `Error`).
pub use shared_hashmap;
/// The error of operations on an open map (the core's [`shared_hashmap::Error`]); [`Error`] is
/// the error of creating, opening and removing maps.
pub use shared_hashmap::Error as MapError;
pub use shared_hashmap::*;
