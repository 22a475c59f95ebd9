//! [`Map`]: a typed view of a [`RawMap`], encoding keys and values with [`Encode`] and
//! [`Decode`].

use crate::bytes::Bytes;
use crate::codec::{Buffer, Decode, Encode};
use crate::error::Error;
use crate::layout::Layout;
use crate::raw::RawMap;
use core::marker::PhantomData;

/// A map from `K` to `V` over a [`RawMap`]: every operation encodes its arguments and decodes
/// what it reads, and otherwise behaves (and is guaranteed) exactly as the raw operation.
///
/// `K` and `V` may be unsized when only written (`Map<str, u64>` takes `&str` keys); reading
/// them back (`get`, `iter`) needs [`Decode`] types such as `heapless::String<N>`, integers or
/// [`OwnedValue`](crate::OwnedValue).
///
/// ```
/// use shared_hashmap::{Layout, Map, region_bytes};
///
/// let layout = Layout::new(100, 32, 8)?;
/// let mut words = vec![0u64; layout.region_size().div_ceil(8)];
/// let scores: Map<str, u64> = Map::init(region_bytes(&mut words), layout)?;
/// scores.insert("alice", &10)?;
/// scores.fetch_add("alice", 5)?;
/// assert_eq!(scores.get("alice")?, Some(15));
/// # Ok::<(), shared_hashmap::Error>(())
/// ```
pub struct Map<'r, K: ?Sized, V: ?Sized> {
    raw: RawMap<'r>,
    types: PhantomData<fn(&K, &V)>,
}

impl<K: ?Sized, V: ?Sized> core::fmt::Debug for Map<'_, K, V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Map").field(&self.raw).finish()
    }
}

/// The encoding of an owned value, for the write path.
struct Encodable<T>(T);

impl<T: Encode> Bytes for Encodable<T> {
    fn len(&self) -> usize {
        self.0.encode().len()
    }
    fn word(&self, index: usize) -> usize {
        self.0.encode().0.word(index)
    }
    fn hash(&self, seed: &crate::hash::Seed) -> u64 {
        self.0.encode().0.hash(seed)
    }
}

/// Integer value types that [`Map::fetch_add`] can add to: 8-byte little-endian, as
/// [`RawMap::fetch_add`] stores them.
pub trait Counter: Encode + Decode + private::Sealed {
    /// Converts the raw map's `i64` result.
    fn from_i64(value: i64) -> Self;
}

mod private {
    pub trait Sealed {}
    impl Sealed for i64 {}
    impl Sealed for u64 {}
}

impl Counter for i64 {
    fn from_i64(value: i64) -> Self {
        value
    }
}

impl Counter for u64 {
    fn from_i64(value: i64) -> Self {
        value as u64
    }
}

impl<'r, K: ?Sized, V: ?Sized> Map<'r, K, V> {
    /// A typed view of `raw`.
    pub fn new(raw: RawMap<'r>) -> Self {
        Map {
            raw,
            types: PhantomData,
        }
    }

    /// Formats `region` as an empty map; see [`RawMap::init`].
    ///
    /// # Errors
    /// As for [`RawMap::init`].
    pub fn init(region: &'r mut [u8], layout: Layout) -> Result<Self, Error> {
        RawMap::init(region, layout).map(Map::new)
    }

    /// Opens the map that `region` holds; see [`RawMap::attach`].
    ///
    /// # Errors
    /// As for [`RawMap::attach`].
    pub fn attach(region: &'r mut [u8]) -> Result<Self, Error> {
        RawMap::attach(region).map(Map::new)
    }

    /// The raw map underneath.
    pub fn raw(&self) -> &RawMap<'r> {
        &self.raw
    }

    /// The raw map underneath, by value.
    pub fn into_raw(self) -> RawMap<'r> {
        self.raw
    }

    /// The number of entries; see [`RawMap::len`].
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the map is empty; see [`RawMap::len`].
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The number of entries the map is guaranteed to hold.
    pub fn capacity(&self) -> usize {
        self.raw.capacity()
    }

    /// Removes every entry; see [`RawMap::clear`].
    ///
    /// # Errors
    /// As for [`RawMap::clear`].
    pub fn clear(&self) -> Result<(), Error> {
        self.raw.clear()
    }
}

impl<K: Encode + ?Sized, V: ?Sized> Map<'_, K, V> {
    /// Inserts or replaces; returns whether it replaced a value. See [`RawMap::insert`].
    ///
    /// # Errors
    /// As for [`RawMap::insert`].
    pub fn insert(&self, key: &K, value: &V) -> Result<bool, Error>
    where
        V: Encode,
    {
        self.raw.insert_bytes(&key.encode().0, &value.encode().0)
    }

    /// Whether the map holds `key`. See [`RawMap::contains_key`].
    ///
    /// # Errors
    /// As for [`RawMap::contains_key`].
    pub fn contains_key(&self, key: &K) -> Result<bool, Error> {
        self.raw.contains_bytes(&key.encode().0)
    }

    /// Removes `key`; returns whether it was there. See [`RawMap::remove`].
    ///
    /// # Errors
    /// As for [`RawMap::remove`].
    pub fn remove(&self, key: &K) -> Result<bool, Error> {
        self.raw.remove_bytes(&key.encode().0)
    }

    /// Stores `new` if the current value is `current` (`None`: absent). See
    /// [`RawMap::compare_exchange`].
    ///
    /// # Errors
    /// As for [`RawMap::compare_exchange`].
    pub fn compare_exchange(&self, key: &K, current: Option<&V>, new: &V) -> Result<bool, Error>
    where
        V: Encode,
    {
        let current = current.map(Encode::encode);
        self.raw.compare_exchange_bytes(
            &key.encode().0,
            current.as_ref().map(|c| &c.0),
            &new.encode().0,
        )
    }
}

impl<K: Encode + ?Sized, V: Decode> Map<'_, K, V> {
    /// The value of `key`, or `None`. See [`RawMap::get`].
    ///
    /// # Errors
    /// As for [`RawMap::get`]; [`Error::BufferTooSmall`] or [`Error::InvalidValue`] if the
    /// stored bytes are not an encoding of `V`.
    pub fn get(&self, key: &K) -> Result<Option<V>, Error> {
        let mut buffer = V::Buffer::zeroed();
        let buffer = buffer.as_mut();
        match self.raw.get_bytes(&key.encode().0, buffer)? {
            Some(len) => V::decode(&buffer[..len]).map(Some),
            None => Ok(None),
        }
    }

    /// Reads, modifies and writes one entry atomically with respect to its other writers; `f`
    /// gets the current value and returns the new one (`None` removes the key). See
    /// [`RawMap::update`], whose rules for `f` apply.
    ///
    /// # Errors
    /// As for [`RawMap::update`]; [`Error::InvalidValue`] if the stored bytes are not an
    /// encoding of `V` (then `f` is not called).
    pub fn update(&self, key: &K, f: impl FnOnce(Option<V>) -> Option<V>) -> Result<(), Error>
    where
        V: Encode,
    {
        let mut buffer = V::Buffer::zeroed();
        self.raw
            .update_bytes(&key.encode().0, buffer.as_mut(), |old| {
                let old = old.map(V::decode).transpose()?;
                Ok(f(old).map(Encodable))
            })
    }

    /// Adds `delta` to the counter under `key` (0 when absent) and returns its previous value.
    /// See [`RawMap::fetch_add`].
    ///
    /// # Errors
    /// As for [`RawMap::fetch_add`].
    pub fn fetch_add(&self, key: &K, delta: i64) -> Result<V, Error>
    where
        V: Counter,
    {
        self.raw
            .fetch_add_bytes(&key.encode().0, delta)
            .map(V::from_i64)
    }
}

impl<'r, K: Decode, V: Decode> Map<'r, K, V> {
    /// An iterator over decoded copies of every entry, with the guarantees of [`RawMap::iter`].
    pub fn iter(&self) -> impl Iterator<Item = Result<(K, V), Error>> + '_ {
        let mut cursor = self.raw.cursor();
        core::iter::from_fn(move || {
            let mut key = K::Buffer::zeroed();
            let mut value = V::Buffer::zeroed();
            let (key, value) = (key.as_mut(), value.as_mut());
            Some(
                cursor
                    .next_into(key, value)?
                    .and_then(|(key_len, value_len)| {
                        Ok((K::decode(&key[..key_len])?, V::decode(&value[..value_len])?))
                    }),
            )
        })
    }
}
