//! POSIX shared memory for `shared-hashmap` (in progress: see issue 3).

pub use shared_hashmap::*;
