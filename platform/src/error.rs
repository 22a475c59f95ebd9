//! The errors of creating, opening and removing a shared map: each names the map it is about.

use shared_hashmap::Layout;
use std::fmt;

/// What can go wrong when a map is created, opened or removed by name. Operations on an open
/// map return the core's [`shared_hashmap::Error`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The name breaks POSIX's rules for shared memory object names.
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No map has this name.
    NotFound {
        /// The map's name.
        name: String,
    },
    /// A map (or other shared memory object) already has this name.
    AlreadyExists {
        /// The map's name.
        name: String,
    },
    /// The map exists but this process may not open it (another user made it with mode 0600).
    PermissionDenied {
        /// The map's name.
        name: String,
    },
    /// The object does not hold a shared-hashmap map (or its creator died before formatting it).
    NotAMap {
        /// The map's name.
        name: String,
    },
    /// The map was made by an incompatible version of this library.
    IncompatibleVersion {
        /// The map's name.
        name: String,
        /// The format version the map has.
        found: u32,
        /// The format version this build supports.
        supported: u32,
    },
    /// The object's size is not the size its header's layout needs.
    SizeMismatch {
        /// The map's name.
        name: String,
        /// Bytes the layout needs.
        expected: u64,
        /// Bytes the object has.
        found: u64,
    },
    /// `open_or_create` found a map whose layout is not the one requested.
    LayoutMismatch {
        /// The map's name.
        name: String,
        /// The layout of the existing map.
        existing: Layout,
        /// The layout that was asked for.
        requested: Layout,
    },
    /// The map's creator did not finish formatting it within the timeout.
    TimedOut {
        /// The map's name.
        name: String,
    },
    /// This target's atomics are not lock-free, so processes could not share a map safely.
    NotShareable,
    /// The map is damaged, or another error from the core while opening it.
    Map {
        /// The map's name.
        name: String,
        /// What the core reported.
        source: shared_hashmap::Error,
    },
    /// A system call failed.
    Os {
        /// The map's name.
        name: String,
        /// The call, for example `ftruncate`.
        call: &'static str,
        /// What the system reported.
        source: std::io::Error,
    },
}

impl Error {
    /// The error for a failed system call on `name`, mapped to the specific variants where the
    /// errno says which.
    pub(crate) fn os(name: &str, call: &'static str, errno: rustix::io::Errno) -> Error {
        let name = name.to_owned();
        match errno {
            rustix::io::Errno::NOENT => Error::NotFound { name },
            rustix::io::Errno::EXIST => Error::AlreadyExists { name },
            rustix::io::Errno::ACCESS | rustix::io::Errno::PERM => Error::PermissionDenied { name },
            other => Error::Os {
                name,
                call,
                source: std::io::Error::from_raw_os_error(other.raw_os_error()),
            },
        }
    }

    /// The error for a core error met while opening or creating `name`.
    pub(crate) fn map(name: &str, error: shared_hashmap::Error) -> Error {
        let name = name.to_owned();
        match error {
            shared_hashmap::Error::NotAMap => Error::NotAMap { name },
            shared_hashmap::Error::IncompatibleVersion { found, supported } => {
                Error::IncompatibleVersion {
                    name,
                    found,
                    supported,
                }
            }
            shared_hashmap::Error::TimedOut => Error::TimedOut { name },
            source => Error::Map { name, source },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidName { name, reason } => {
                write!(f, "invalid shared map name {name:?}: {reason}")
            }
            Error::NotFound { name } => write!(f, "no shared map named {name:?}"),
            Error::AlreadyExists { name } => {
                write!(f, "a shared map named {name:?} already exists")
            }
            Error::PermissionDenied { name } => {
                write!(f, "permission denied for the shared map {name:?}")
            }
            Error::NotAMap { name } => write!(
                f,
                "{name:?} is not a shared-hashmap map (or its creator died before formatting it)"
            ),
            Error::IncompatibleVersion {
                name,
                found,
                supported,
            } => write!(
                f,
                "the shared map {name:?} has format version {found:#x}; this build supports {supported:#x}"
            ),
            Error::SizeMismatch {
                name,
                expected,
                found,
            } => write!(
                f,
                "the shared map {name:?} is {found} bytes but its layout needs {expected}"
            ),
            Error::LayoutMismatch {
                name,
                existing,
                requested,
            } => write!(
                f,
                "the shared map {name:?} exists with {} entries, keys up to {} bytes and values up to {}; \
                 requested {} entries, keys up to {} bytes and values up to {}",
                existing.capacity(),
                existing.max_key_len(),
                existing.max_value_len(),
                requested.capacity(),
                requested.max_key_len(),
                requested.max_value_len()
            ),
            Error::TimedOut { name } => write!(
                f,
                "timed out waiting for the shared map {name:?} to be initialized"
            ),
            Error::NotShareable => f.write_str(
                "this target's atomics are not lock-free: maps cannot be shared between processes",
            ),
            Error::Map { name, source } => write!(f, "shared map {name:?}: {source}"),
            Error::Os { name, call, source } => {
                write!(f, "shared map {name:?}: {call} failed: {source}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Map { source, .. } => Some(source),
            Error::Os { source, .. } => Some(source),
            _ => None,
        }
    }
}
