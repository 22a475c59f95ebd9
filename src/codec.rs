//! How typed keys and values become bytes and back: the [`Encode`] and [`Decode`] traits and
//! their implementations for strings, byte strings, integers, floats, `bool`, `()` and heapless
//! containers.
//!
//! Encodings are fixed and portable (integers and floats little-endian at their own width,
//! `bool` one byte 0 or 1, `()` nothing, strings and byte strings as they are), so processes on
//! any architecture agree on them. Decoding is total: any byte string decodes to a value or an
//! error, and whatever decodes encodes back to the same bytes.

use crate::bytes::Joined;
use crate::error::{Error, ValueProblem};

/// The bytes of an encoded key or value: a short inline head (at most 16 bytes) followed by a
/// borrowed body. Strings and byte strings are a body only, so encoding them copies nothing.
#[derive(Clone, Copy, Debug)]
pub struct Encoded<'a>(pub(crate) Joined<'a>);

impl<'a> Encoded<'a> {
    /// The longest head, in bytes.
    pub const MAX_HEAD: usize = Joined::HEAD;

    /// `bytes`, borrowed.
    pub fn new(bytes: &'a [u8]) -> Self {
        Encoded(Joined::new(&[], bytes))
    }

    /// `head` (copied) followed by `body` (borrowed); `None` if `head` is longer than
    /// [`MAX_HEAD`](Self::MAX_HEAD).
    pub fn prefixed(head: &[u8], body: &'a [u8]) -> Option<Self> {
        (head.len() <= Self::MAX_HEAD).then(|| Encoded(Joined::new(head, body)))
    }

    /// The total length in bytes.
    pub fn len(&self) -> usize {
        self.0.head().len() + self.0.body().len()
    }

    /// Whether the encoding is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The head, then the body.
    pub fn parts(&self) -> (&[u8], &'a [u8]) {
        (self.0.head(), self.0.body())
    }
}

/// A type that can be stored as a key or value of a typed [`Map`](crate::Map).
pub trait Encode {
    /// The bytes that represent `self`.
    fn encode(&self) -> Encoded<'_>;
}

/// A type that can be read back from a typed [`Map`](crate::Map).
pub trait Decode: Sized {
    /// A buffer that holds the longest encoding of `Self` (for example `[u8; 8]` for `u64`);
    /// reads copy into it before decoding, without allocating.
    type Buffer: Buffer;

    /// Decodes `bytes`, or says why they are not an encoding of `Self`.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for bytes that are not an encoding of `Self`.
    fn decode(bytes: &[u8]) -> Result<Self, Error>;
}

/// A type that can be both stored and read back: every [`Encode`] + [`Decode`] type. Keys of
/// maps that are iterated, and values that are read, need it; unsized types such as `str` and
/// `[u8]` are [`Encode`] only (they can be written, and read back as `heapless::String<N>` or
/// `heapless::Vec<u8, N>`).
pub trait Codec: Encode + Decode {}

impl<T: Encode + Decode> Codec for T {}

/// A fixed-size byte buffer, made zeroed (what [`Decode::Buffer`] is).
pub trait Buffer: AsMut<[u8]> {
    /// A buffer of zeros.
    fn zeroed() -> Self;
}

impl<const N: usize> Buffer for [u8; N] {
    fn zeroed() -> Self {
        [0; N]
    }
}

fn exact<const N: usize>(bytes: &[u8]) -> Result<[u8; N], Error> {
    bytes.try_into().map_err(|_| {
        Error::InvalidValue(ValueProblem::WrongLength {
            expected: N,
            found: bytes.len(),
        })
    })
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode(&self) -> Encoded<'_> {
        (**self).encode()
    }
}

impl Encode for [u8] {
    fn encode(&self) -> Encoded<'_> {
        Encoded::new(self)
    }
}

impl Encode for str {
    fn encode(&self) -> Encoded<'_> {
        Encoded::new(self.as_bytes())
    }
}

impl<const N: usize> Encode for [u8; N] {
    fn encode(&self) -> Encoded<'_> {
        Encoded::new(self)
    }
}

impl<const N: usize> Decode for [u8; N] {
    type Buffer = [u8; N];
    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        exact(bytes)
    }
}

impl<const N: usize> Encode for heapless::Vec<u8, N> {
    fn encode(&self) -> Encoded<'_> {
        Encoded::new(self)
    }
}

impl<const N: usize> Decode for heapless::Vec<u8, N> {
    type Buffer = [u8; N];
    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        heapless::Vec::from_slice(bytes).map_err(|_| {
            Error::InvalidValue(ValueProblem::WrongLength {
                expected: N,
                found: bytes.len(),
            })
        })
    }
}

impl<const N: usize> Encode for heapless::String<N> {
    fn encode(&self) -> Encoded<'_> {
        Encoded::new(self.as_bytes())
    }
}

impl<const N: usize> Decode for heapless::String<N> {
    type Buffer = [u8; N];
    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let text = core::str::from_utf8(bytes)
            .map_err(|_| Error::InvalidValue(ValueProblem::InvalidUtf8))?;
        heapless::String::try_from(text).map_err(|_| {
            Error::InvalidValue(ValueProblem::WrongLength {
                expected: N,
                found: bytes.len(),
            })
        })
    }
}

macro_rules! fixed_width {
    ($($ty:ty),*) => {$(
        impl Encode for $ty {
            fn encode(&self) -> Encoded<'_> {
                Encoded(Joined::new(&self.to_le_bytes(), &[]))
            }
        }

        impl Decode for $ty {
            type Buffer = [u8; core::mem::size_of::<$ty>()];
            fn decode(bytes: &[u8]) -> Result<Self, Error> {
                Ok(<$ty>::from_le_bytes(exact(bytes)?))
            }
        }
    )*};
}

fixed_width!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);

impl Encode for bool {
    fn encode(&self) -> Encoded<'_> {
        Encoded(Joined::new(&[u8::from(*self)], &[]))
    }
}

impl Decode for bool {
    type Buffer = [u8; 1];
    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        match exact::<1>(bytes)? {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(Error::InvalidValue(ValueProblem::Invalid)),
        }
    }
}

impl Encode for () {
    fn encode(&self) -> Encoded<'_> {
        Encoded::new(&[])
    }
}

impl Decode for () {
    type Buffer = [u8; 0];
    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        exact::<0>(bytes).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(encoded: Encoded<'_>) -> heapless::Vec<u8, 64> {
        let (head, body) = encoded.parts();
        let mut out = heapless::Vec::new();
        out.extend_from_slice(head).unwrap();
        out.extend_from_slice(body).unwrap();
        out
    }

    fn round_trip<T: Encode + Decode + PartialEq + core::fmt::Debug>(value: T) {
        let bytes = bytes_of(value.encode());
        assert_eq!(T::decode(&bytes).unwrap(), value);
        assert!(bytes.len() <= T::Buffer::zeroed().as_mut().len());
    }

    #[test]
    fn scalars_round_trip() {
        round_trip(0u8);
        round_trip(u16::MAX);
        round_trip(0xdead_beefu32);
        round_trip(u64::MAX - 1);
        round_trip(u128::MAX / 3);
        round_trip(-5i8);
        round_trip(i16::MIN);
        round_trip(-1i32);
        round_trip(i64::MIN);
        round_trip(i128::MIN + 7);
        round_trip(1.5f32);
        round_trip(-0.0f64);
        round_trip(true);
        round_trip(false);
        round_trip(());
        round_trip(*b"four");
    }

    #[test]
    fn containers_round_trip() {
        round_trip(heapless::String::<8>::try_from("héllo").unwrap());
        round_trip(heapless::Vec::<u8, 4>::from_slice(&[1, 2, 3]).unwrap());
    }

    #[test]
    fn integers_are_little_endian_at_their_width() {
        assert_eq!(bytes_of(0x0102u16.encode()), [2, 1]);
        assert_eq!(bytes_of((-2i32).encode()), [0xfe, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn bad_bytes_are_errors() {
        let wrong =
            |expected, found| Error::InvalidValue(ValueProblem::WrongLength { expected, found });
        assert_eq!(u32::decode(&[1, 2, 3]), Err(wrong(4, 3)));
        assert_eq!(
            bool::decode(&[2]),
            Err(Error::InvalidValue(ValueProblem::Invalid))
        );
        assert_eq!(<()>::decode(&[0]), Err(wrong(0, 1)));
        assert_eq!(
            heapless::String::<4>::decode(&[0xff]),
            Err(Error::InvalidValue(ValueProblem::InvalidUtf8))
        );
        assert_eq!(heapless::String::<2>::decode(b"abc"), Err(wrong(2, 3)));
        assert_eq!(heapless::Vec::<u8, 2>::decode(b"abc"), Err(wrong(2, 3)));
        assert_eq!(<[u8; 2]>::decode(b"abc"), Err(wrong(2, 3)));
    }

    #[test]
    fn prefixed_rejects_long_heads() {
        assert!(Encoded::prefixed(&[0; 17], b"x").is_none());
        let encoded = Encoded::prefixed(&[1; 16], b"xy").unwrap();
        assert_eq!(encoded.len(), 18);
        assert!(!encoded.is_empty());
    }
}
