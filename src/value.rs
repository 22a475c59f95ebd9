//! [`Value`]: the tagged encoding that mirrors the Python package's serialization table, so a
//! Rust process and a Python process can share one map.
//!
//! | tag | Python type | payload |
//! |---|---|---|
//! | 0 | `None` | nothing |
//! | 1 | `str` | UTF-8 |
//! | 2 | `bytes` | the bytes |
//! | 3 | `int` (fits in 64 bits) | `i64`, 8 bytes little-endian |
//! | 4 | `float` | `f64` bits, 8 bytes little-endian |
//! | 5 | `bool` | one byte, 0 or 1 |
//! | 6 | anything else, pickled | the pickle, opaque here |
//!
//! Python integers beyond 64 bits travel pickled. Decoding is total and canonical: any byte
//! string decodes to a value or an error, and a value that decodes encodes to the same bytes.

use crate::codec::{Decode, Encode, Encoded};
use crate::error::{Error, ValueProblem};

const TAG_NONE: u8 = 0;
const TAG_STR: u8 = 1;
const TAG_BYTES: u8 = 2;
const TAG_INT: u8 = 3;
const TAG_FLOAT: u8 = 4;
const TAG_BOOL: u8 = 5;
const TAG_PICKLED: u8 = 6;

/// A dynamically typed key or value, as the Python package stores them.
///
/// ```
/// use shared_hashmap::{Encode, Value};
///
/// let encoded = Value::Str("héllo").encode();
/// let (head, body) = encoded.parts();
/// assert_eq!(head, [1]);
/// let mut bytes = head.to_vec();
/// bytes.extend_from_slice(body);
/// assert_eq!(Value::decode(&bytes)?, Value::Str("héllo"));
/// # Ok::<(), shared_hashmap::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Value<'a> {
    /// Python's `None`.
    None,
    /// A string.
    Str(&'a str),
    /// A byte string.
    Bytes(&'a [u8]),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A double-precision float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A pickled Python object, opaque to Rust.
    Pickled(&'a [u8]),
}

impl<'a> Value<'a> {
    /// Decodes a tagged value, borrowing strings and byte strings from `bytes`.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if `bytes` is empty, has an unknown tag, a payload of the wrong
    /// length for its tag, a `bool` byte other than 0 or 1, or a string that is not UTF-8.
    pub fn decode(bytes: &'a [u8]) -> Result<Value<'a>, Error> {
        let (&tag, payload) = bytes
            .split_first()
            .ok_or(Error::InvalidValue(ValueProblem::UnknownTag))?;
        let eight = || -> Result<[u8; 8], Error> {
            payload.try_into().map_err(|_| {
                Error::InvalidValue(ValueProblem::WrongLength {
                    expected: 8,
                    found: payload.len(),
                })
            })
        };
        match tag {
            TAG_NONE if payload.is_empty() => Ok(Value::None),
            TAG_NONE => Err(Error::InvalidValue(ValueProblem::WrongLength {
                expected: 0,
                found: payload.len(),
            })),
            TAG_STR => core::str::from_utf8(payload)
                .map(Value::Str)
                .map_err(|_| Error::InvalidValue(ValueProblem::InvalidUtf8)),
            TAG_BYTES => Ok(Value::Bytes(payload)),
            TAG_INT => Ok(Value::Int(i64::from_le_bytes(eight()?))),
            TAG_FLOAT => Ok(Value::Float(f64::from_bits(u64::from_le_bytes(eight()?)))),
            TAG_BOOL => match payload {
                [0] => Ok(Value::Bool(false)),
                [1] => Ok(Value::Bool(true)),
                [_] => Err(Error::InvalidValue(ValueProblem::Invalid)),
                _ => Err(Error::InvalidValue(ValueProblem::WrongLength {
                    expected: 1,
                    found: payload.len(),
                })),
            },
            TAG_PICKLED => Ok(Value::Pickled(payload)),
            _ => Err(Error::InvalidValue(ValueProblem::UnknownTag)),
        }
    }
}

impl Encode for Value<'_> {
    fn encode(&self) -> Encoded<'_> {
        let mut head = [0u8; 9];
        let (head_len, body): (usize, &[u8]) = match *self {
            Value::None => {
                head[0] = TAG_NONE;
                (1, &[])
            }
            Value::Str(text) => {
                head[0] = TAG_STR;
                (1, text.as_bytes())
            }
            Value::Bytes(bytes) => {
                head[0] = TAG_BYTES;
                (1, bytes)
            }
            Value::Int(int) => {
                head[0] = TAG_INT;
                head[1..].copy_from_slice(&int.to_le_bytes());
                (9, &[])
            }
            Value::Float(float) => {
                head[0] = TAG_FLOAT;
                head[1..].copy_from_slice(&float.to_bits().to_le_bytes());
                (9, &[])
            }
            Value::Bool(flag) => {
                head[0] = TAG_BOOL;
                head[1] = u8::from(flag);
                (2, &[])
            }
            Value::Pickled(pickle) => {
                head[0] = TAG_PICKLED;
                (1, pickle)
            }
        };
        Encoded(crate::bytes::Joined::new(&head[..head_len], body))
    }
}

/// A [`Value`] read out of a map: its encoding, at most `N` bytes, kept inline.
///
/// ```
/// use shared_hashmap::{OwnedValue, Value};
///
/// let owned = OwnedValue::<16>::new(Value::Int(-3))?;
/// assert_eq!(owned.value(), Value::Int(-3));
/// # Ok::<(), shared_hashmap::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct OwnedValue<const N: usize> {
    encoded: heapless::Vec<u8, N>,
}

impl<const N: usize> OwnedValue<N> {
    /// Encodes `value` inline.
    ///
    /// # Errors
    /// [`Error::ValueTooLong`] if its encoding is longer than `N` bytes.
    pub fn new(value: Value<'_>) -> Result<Self, Error> {
        let encoded = value.encode();
        let (head, body) = encoded.parts();
        let mut bytes = heapless::Vec::new();
        bytes
            .extend_from_slice(head)
            .and_then(|()| bytes.extend_from_slice(body))
            .map_err(|_| Error::ValueTooLong {
                len: encoded.len(),
                max: N,
            })?;
        Ok(OwnedValue { encoded: bytes })
    }

    /// The value.
    pub fn value(&self) -> Value<'_> {
        // The bytes were checked when this was made, so decoding succeeds.
        Value::decode(&self.encoded).unwrap_or(Value::None)
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }
}

impl<const N: usize> core::fmt::Debug for OwnedValue<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.value().fmt(f)
    }
}

impl<const N: usize> Encode for OwnedValue<N> {
    fn encode(&self) -> Encoded<'_> {
        Encoded::new(&self.encoded)
    }
}

impl<const N: usize> Decode for OwnedValue<N> {
    type Buffer = [u8; N];
    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        Value::decode(bytes)?;
        let encoded = heapless::Vec::from_slice(bytes).map_err(|_| {
            Error::InvalidValue(ValueProblem::WrongLength {
                expected: N,
                found: bytes.len(),
            })
        })?;
        Ok(OwnedValue { encoded })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_to_vec(value: Value<'_>) -> heapless::Vec<u8, 64> {
        OwnedValue::<64>::new(value).unwrap().encoded
    }

    #[test]
    fn every_variant_round_trips_canonically() {
        let values = [
            Value::None,
            Value::Str(""),
            Value::Str("naïve"),
            Value::Bytes(&[0, 255, 7]),
            Value::Int(i64::MIN),
            Value::Int(42),
            Value::Float(-1.25),
            Value::Float(f64::INFINITY),
            Value::Bool(true),
            Value::Bool(false),
            Value::Pickled(b"\x80\x04N."),
        ];
        for value in values {
            let bytes = encode_to_vec(value);
            assert_eq!(Value::decode(&bytes).unwrap(), value);
            assert_eq!(encode_to_vec(Value::decode(&bytes).unwrap()), bytes);
        }
    }

    #[test]
    fn the_tag_table_is_fixed() {
        assert_eq!(encode_to_vec(Value::None), [0]);
        assert_eq!(encode_to_vec(Value::Str("a")), [1, b'a']);
        assert_eq!(encode_to_vec(Value::Bytes(b"a")), [2, b'a']);
        assert_eq!(encode_to_vec(Value::Int(1)), [3, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            encode_to_vec(Value::Float(1.0)),
            [4, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]
        );
        assert_eq!(encode_to_vec(Value::Bool(true)), [5, 1]);
        assert_eq!(encode_to_vec(Value::Pickled(b"p")), [6, b'p']);
    }

    #[test]
    fn malformed_encodings_are_errors() {
        let invalid = |bytes: &[u8]| Value::decode(bytes).is_err();
        assert!(invalid(&[]));
        assert!(invalid(&[7]));
        assert!(invalid(&[0, 0]));
        assert!(invalid(&[1, 0xc3]));
        assert!(invalid(&[3, 1, 2]));
        assert!(invalid(&[4; 10]));
        assert!(invalid(&[5, 2]));
        assert!(invalid(&[5]));
    }

    #[test]
    fn owned_values_are_bounded() {
        assert_eq!(
            OwnedValue::<4>::new(Value::Str("toolong")),
            Err(Error::ValueTooLong { len: 8, max: 4 })
        );
        assert!(OwnedValue::<4>::decode(&[9]).is_err());
        assert_eq!(
            OwnedValue::<4>::decode(&[1, b'x']).unwrap().value(),
            Value::Str("x")
        );
    }
}
