//! The one error type of the crate, and the detail of what [`Error::Corrupt`] found.
//!
//! Every fallible operation returns [`Error`]. An operation that returns an error has changed
//! nothing in the map (the only bytes it may have written are those of a caller's output buffer).

use core::fmt;

/// Everything that can go wrong when laying out, opening or using a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The key is longer than the map's maximum key length.
    KeyTooLong {
        /// Length of the key that was given, in bytes.
        len: usize,
        /// The map's maximum key length, in bytes.
        max: usize,
    },
    /// The value is longer than the map's maximum value length.
    ValueTooLong {
        /// Length of the value that was given, in bytes.
        len: usize,
        /// The map's maximum value length, in bytes.
        max: usize,
    },
    /// Every slot the key could go to is taken. This happens only when the map holds more
    /// entries than its capacity, or (briefly) while other writers fill the last free slots.
    TableFull,
    /// The output buffer cannot hold the value that was found.
    BufferTooSmall {
        /// Length of the stored value, in bytes.
        needed: usize,
        /// Length of the buffer that was given, in bytes.
        got: usize,
    },
    /// The region does not start at an address that is a multiple of [`REGION_ALIGN`](crate::REGION_ALIGN).
    Misaligned {
        /// The alignment the region needs, in bytes.
        required: usize,
    },
    /// The region is smaller than the layout needs.
    RegionTooSmall {
        /// Bytes the layout needs.
        needed: usize,
        /// Bytes the region has.
        got: usize,
    },
    /// The requested layout is not possible: zero capacity, or sizes that overflow the
    /// address space of this target.
    InvalidLayout(LayoutProblem),
    /// The region does not hold a map of this crate (its magic number is wrong).
    NotAMap,
    /// The region holds a map written by an incompatible version of this crate, or by a
    /// machine of the other byte order.
    IncompatibleVersion {
        /// The format version found in the region.
        found: u32,
        /// The format version this build reads and writes.
        supported: u32,
    },
    /// The region holds a map whose structure is damaged.
    Corrupt(Corruption),
    /// Waiting for a lock held by a live owner, or for the map to finish initializing, went
    /// past the bound set by the map's [`Liveness`](crate::Liveness) policy.
    TimedOut,
    /// A stored value was not what the operation needs (for example [`fetch_add`] on a value
    /// that is not 8 bytes long), or it failed to decode as the requested type.
    ///
    /// [`fetch_add`]: crate::RawMap::fetch_add
    InvalidValue(ValueProblem),
}

/// Why a requested [`Layout`](crate::Layout) cannot exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LayoutProblem {
    /// A map must be able to hold at least one entry.
    ZeroCapacity,
    /// The region this layout needs is larger than this target can address.
    TooLarge,
}

/// What was wrong with a stored or encoded value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ValueProblem {
    /// The value has the wrong length for its type.
    WrongLength {
        /// The length the type needs.
        expected: usize,
        /// The length that was found.
        found: usize,
    },
    /// The bytes are not valid UTF-8 where a string was expected.
    InvalidUtf8,
    /// A tagged [`Value`](crate::Value) starts with a tag this version does not know, or is empty.
    UnknownTag,
    /// The bytes are not a valid encoding of the type (for example a `bool` byte other than 0 or 1).
    Invalid,
}

/// What [`RawMap::verify`](crate::RawMap::verify) or an operation found damaged in a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Corruption {
    /// The header's checksum does not match its fields.
    HeaderChecksum,
    /// The header describes a layout that cannot exist.
    HeaderLayout,
    /// The header's state word is neither "initializing" nor "ready".
    HeaderState,
    /// A chunk's slot map is not a permutation of its physical slots.
    SlotMap {
        /// Index of the chunk.
        chunk: u32,
    },
    /// A stored key or value length exceeds the layout's maximum.
    SlotLength {
        /// Index of the chunk.
        chunk: u32,
        /// Logical slot within the chunk.
        slot: u8,
    },
    /// A slot's tag or stored hash does not match the hash of its key.
    SlotHash {
        /// Index of the chunk.
        chunk: u32,
        /// Logical slot within the chunk.
        slot: u8,
    },
    /// A key is stored where a lookup cannot find it (an overflow counter on its probe path
    /// is too small).
    Unreachable {
        /// Index of the chunk.
        chunk: u32,
        /// Logical slot within the chunk.
        slot: u8,
    },
    /// The same key is stored twice.
    DuplicateKey {
        /// Index of the chunk that holds the second copy.
        chunk: u32,
        /// Logical slot within the chunk.
        slot: u8,
    },
    /// An overflow counter is lower than the number of entries that probed past its chunk.
    OverflowUndercount {
        /// Index of the chunk.
        chunk: u32,
    },
    /// The overflow counters together are lower than the number of chunks that entries
    /// probed past ([`RawMap::verify_exact`](crate::RawMap::verify_exact) names the chunk).
    OverflowTotalUndercount,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::KeyTooLong { len, max } => {
                write!(
                    f,
                    "key of {len} bytes is longer than the map's maximum of {max}"
                )
            }
            Error::ValueTooLong { len, max } => {
                write!(
                    f,
                    "value of {len} bytes is longer than the map's maximum of {max}"
                )
            }
            Error::TableFull => f.write_str("the map is full"),
            Error::BufferTooSmall { needed, got } => {
                write!(
                    f,
                    "the value is {needed} bytes but the buffer holds only {got}"
                )
            }
            Error::Misaligned { required } => {
                write!(f, "the region must start at a multiple of {required} bytes")
            }
            Error::RegionTooSmall { needed, got } => {
                write!(
                    f,
                    "the layout needs a region of {needed} bytes but it has {got}"
                )
            }
            Error::InvalidLayout(LayoutProblem::ZeroCapacity) => {
                f.write_str("invalid layout: capacity must be at least 1")
            }
            Error::InvalidLayout(LayoutProblem::TooLarge) => f.write_str(
                "invalid layout: the region would be larger than this target can address",
            ),
            Error::NotAMap => f.write_str("the region does not hold a shared-hashmap map"),
            Error::IncompatibleVersion { found, supported } => write!(
                f,
                "the region holds map format version {found:#x}; this build supports {supported:#x}"
            ),
            Error::Corrupt(what) => write!(f, "the map is corrupt: {what}"),
            Error::TimedOut => f.write_str("timed out waiting for a lock or for initialization"),
            Error::InvalidValue(what) => write!(f, "invalid value: {what}"),
        }
    }
}

impl fmt::Display for ValueProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ValueProblem::WrongLength { expected, found } => {
                write!(f, "expected {expected} bytes, found {found}")
            }
            ValueProblem::InvalidUtf8 => f.write_str("not valid UTF-8"),
            ValueProblem::UnknownTag => f.write_str("unknown or missing type tag"),
            ValueProblem::Invalid => f.write_str("not a valid encoding of the type"),
        }
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Corruption::HeaderChecksum => f.write_str("header checksum mismatch"),
            Corruption::HeaderLayout => f.write_str("header describes an impossible layout"),
            Corruption::HeaderState => f.write_str("header state word is invalid"),
            Corruption::SlotMap { chunk } => write!(f, "chunk {chunk} has an invalid slot map"),
            Corruption::SlotLength { chunk, slot } => {
                write!(f, "chunk {chunk} slot {slot} has an out-of-range length")
            }
            Corruption::SlotHash { chunk, slot } => {
                write!(
                    f,
                    "chunk {chunk} slot {slot} has a tag or hash that does not match its key"
                )
            }
            Corruption::Unreachable { chunk, slot } => {
                write!(
                    f,
                    "chunk {chunk} slot {slot} holds a key that lookups cannot reach"
                )
            }
            Corruption::DuplicateKey { chunk, slot } => {
                write!(
                    f,
                    "chunk {chunk} slot {slot} holds a key that is also stored earlier"
                )
            }
            Corruption::OverflowUndercount { chunk } => {
                write!(
                    f,
                    "chunk {chunk} has an overflow counter below its true value"
                )
            }
            Corruption::OverflowTotalUndercount => {
                f.write_str("the overflow counters are below the number of displaced entries")
            }
        }
    }
}

impl core::error::Error for Error {}

impl From<ValueProblem> for Error {
    fn from(problem: ValueProblem) -> Self {
        Error::InvalidValue(problem)
    }
}

impl From<Corruption> for Error {
    fn from(what: Corruption) -> Self {
        Error::Corrupt(what)
    }
}
