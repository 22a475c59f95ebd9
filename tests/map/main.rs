//! Single-threaded behaviour of `RawMap` and `Map`: every operation, every error, and the
//! promise that an operation that fails changes nothing.

use shared_hashmap::{
    Corruption, Error, Layout, LayoutProblem, Map, OwnedValue, RawMap, Value, ValueProblem,
    region_bytes,
};

fn memory(layout: &Layout) -> Vec<u64> {
    vec![0u64; layout.region_size().div_ceil(8)]
}

/// Every entry of `map`, sorted.
fn entries(map: &RawMap<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut all: Vec<_> = map
        .iter::<64, 64>()
        .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect();
    all.sort();
    all
}

#[test]
fn insert_get_replace_remove() {
    let layout = Layout::new(100, 16, 32).unwrap();
    let mut mem = memory(&layout);
    let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    let mut out = [0u8; 32];

    assert!(map.is_empty());
    assert_eq!(map.get(b"k", &mut out), Ok(None));
    assert_eq!(map.insert(b"k", b"one"), Ok(false));
    assert_eq!(map.get(b"k", &mut out), Ok(Some(3)));
    assert_eq!(&out[..3], b"one");
    assert_eq!(map.insert(b"k", b"a longer value"), Ok(true));
    assert_eq!(
        map.get_into::<32>(b"k").unwrap().unwrap(),
        b"a longer value"
    );
    assert_eq!(map.insert(b"k", b""), Ok(true));
    assert_eq!(map.get(b"k", &mut out), Ok(Some(0)));
    assert_eq!(map.contains_key(b"k"), Ok(true));
    assert_eq!(map.len(), 1);
    assert_eq!(map.remove(b"k"), Ok(true));
    assert_eq!(map.remove(b"k"), Ok(false));
    assert_eq!(map.contains_key(b"k"), Ok(false));
    assert!(map.is_empty());
    map.verify().unwrap();
}

#[test]
fn empty_keys_and_maximum_lengths_work() {
    let layout = Layout::new(10, 13, 21).unwrap();
    let mut mem = memory(&layout);
    let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    map.insert(b"", b"empty key").unwrap();
    map.insert(&[7; 13], &[9; 21]).unwrap();
    assert_eq!(map.get_into::<32>(b"").unwrap().unwrap(), b"empty key");
    assert_eq!(map.get_into::<32>(&[7; 13]).unwrap().unwrap(), [9; 21]);
    // Keys differing only in length or in the padding byte range are distinct.
    map.insert(&[7; 12], b"shorter").unwrap();
    map.insert(&[7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 0], b"zero tail")
        .unwrap();
    assert_eq!(map.len(), 4);
    assert_eq!(map.get_into::<32>(&[7; 13]).unwrap().unwrap(), [9; 21]);
    map.verify().unwrap();
}

#[test]
fn oversized_input_is_rejected_and_changes_nothing() {
    let layout = Layout::new(10, 4, 4).unwrap();
    let mut mem = memory(&layout);
    let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    map.insert(b"k", b"v").unwrap();
    let before = entries(&map);
    assert_eq!(
        map.insert(b"toolong", b"v"),
        Err(Error::KeyTooLong { len: 7, max: 4 })
    );
    assert_eq!(
        map.insert(b"k", b"toolong"),
        Err(Error::ValueTooLong { len: 7, max: 4 })
    );
    assert_eq!(
        map.insert(b"new", b"toolong"),
        Err(Error::ValueTooLong { len: 7, max: 4 })
    );
    assert_eq!(
        map.get(b"toolong", &mut [0; 4]),
        Err(Error::KeyTooLong { len: 7, max: 4 })
    );
    assert_eq!(
        map.remove(b"toolong"),
        Err(Error::KeyTooLong { len: 7, max: 4 })
    );
    assert_eq!(
        map.compare_exchange(b"k", Some(b"v"), b"toolong"),
        Err(Error::ValueTooLong { len: 7, max: 4 })
    );
    assert_eq!(
        map.fetch_add(b"k", 1),
        Err(Error::ValueTooLong { len: 8, max: 4 })
    );
    assert_eq!(entries(&map), before);
}

#[test]
fn a_short_output_buffer_reports_the_needed_size() {
    let layout = Layout::new(10, 4, 16).unwrap();
    let mut mem = memory(&layout);
    let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    map.insert(b"k", b"0123456789").unwrap();
    assert_eq!(
        map.get(b"k", &mut [0; 4]),
        Err(Error::BufferTooSmall { needed: 10, got: 4 })
    );
    assert_eq!(
        map.get_into::<4>(b"k"),
        Err(Error::BufferTooSmall { needed: 10, got: 4 })
    );
    assert_eq!(
        map.update::<4, Vec<u8>, _>(b"k", |_| panic!("must not run")),
        Err(Error::BufferTooSmall { needed: 10, got: 4 })
    );
    assert_eq!(map.get_into::<16>(b"k").unwrap().unwrap(), b"0123456789");
}

#[test]
fn capacity_is_guaranteed_and_a_full_table_changes_nothing() {
    let capacities: &[usize] = if cfg!(miri) {
        &[1, 8, 50]
    } else {
        &[1, 6, 7, 8, 50, 333]
    };
    for &capacity in capacities {
        let layout = Layout::new(capacity, 8, 8).unwrap();
        let mut mem = memory(&layout);
        let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
        let mut inserted = 0u64;
        loop {
            match map.insert(&inserted.to_le_bytes(), &inserted.to_le_bytes()) {
                Ok(false) => inserted += 1,
                Err(Error::TableFull) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        // The map holds at least its capacity; it may hold more (its slack slots).
        assert!(
            inserted as usize >= capacity,
            "capacity {capacity}: full after {inserted}"
        );
        assert_eq!(inserted as usize, layout.chunks() * 8);
        let before = entries(&map);
        assert_eq!(map.insert(b"another", b"x"), Err(Error::TableFull));
        // Replacing an existing key still works when full.
        assert_eq!(map.insert(&0u64.to_le_bytes(), b"replaced"), Ok(true));
        map.insert(&0u64.to_le_bytes(), &0u64.to_le_bytes())
            .unwrap();
        assert_eq!(entries(&map), before);
        assert_eq!(map.len(), inserted as usize);
        map.verify().unwrap();
        // Removing any one key makes room again.
        map.remove(&3u64.min(inserted - 1).to_le_bytes()).unwrap();
        map.insert(b"another", b"x").unwrap();
        map.verify().unwrap();
    }
}

#[test]
fn compare_exchange_swaps_only_on_a_match() {
    let layout = Layout::new(10, 8, 8).unwrap();
    let mut mem = memory(&layout);
    let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    assert_eq!(map.compare_exchange(b"k", Some(b"x"), b"y"), Ok(false));
    assert_eq!(map.contains_key(b"k"), Ok(false));
    assert_eq!(map.compare_exchange(b"k", None, b"first"), Ok(true));
    assert_eq!(map.compare_exchange(b"k", None, b"second"), Ok(false));
    assert_eq!(
        map.compare_exchange(b"k", Some(b"firs"), b"second"),
        Ok(false)
    );
    assert_eq!(
        map.compare_exchange(b"k", Some(b"first"), b"second"),
        Ok(true)
    );
    assert_eq!(map.get_into::<8>(b"k").unwrap().unwrap(), b"second");
}

#[test]
fn fetch_add_counts_and_checks_the_value_length() {
    let layout = Layout::new(10, 8, 8).unwrap();
    let mut mem = memory(&layout);
    let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    assert_eq!(map.fetch_add(b"c", 5), Ok(0));
    assert_eq!(map.fetch_add(b"c", -7), Ok(5));
    assert_eq!(map.fetch_add(b"c", 0), Ok(-2));
    map.insert(b"max", &i64::MAX.to_le_bytes()).unwrap();
    assert_eq!(map.fetch_add(b"max", 1), Ok(i64::MAX));
    assert_eq!(map.fetch_add(b"max", 0), Ok(i64::MIN));
    map.insert(b"short", b"abc").unwrap();
    assert_eq!(
        map.fetch_add(b"short", 1),
        Err(Error::InvalidValue(ValueProblem::WrongLength {
            expected: 8,
            found: 3
        }))
    );
    assert_eq!(map.get_into::<8>(b"short").unwrap().unwrap(), b"abc");
}

/// Replaces whose new value fits in one word and has the old one's length are stored in
/// place; the others go through the spare slot. Both change the key's value and nothing else.
#[test]
fn replaces_in_place_and_through_the_spare_slot_change_only_their_value() {
    let layout = Layout::new(40, 8, 16).unwrap();
    let mut mem = memory(&layout);
    let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    let key = |n: u8| [n; 8];
    for n in 0..30 {
        map.insert(&key(n), &[n; 5]).unwrap();
    }
    let mut expected = entries(&map);
    let mut check = |n: u8, value: &[u8]| {
        assert_eq!(map.insert(&key(n), value), Ok(true));
        expected[usize::from(n)].1 = value.to_vec();
        assert_eq!(entries(&map), expected);
        // A buffer longer than the value: the bytes past it are not the value's.
        let mut out = [0xee; 16];
        assert_eq!(map.get(&key(n), &mut out), Ok(Some(value.len())));
        assert_eq!(&out[..value.len()], value);
        map.verify().unwrap();
    };
    // Same length, one word: in place.
    check(3, b"abcde");
    check(3, b"vwxyz");
    // Shorter and longer, within a word: through the spare slot, then in place again.
    check(3, b"ab");
    check(3, b"cd");
    check(3, b"12345678");
    check(3, &u64::MAX.to_le_bytes());
    // Longer than a word, then back.
    check(3, b"a value of 16 b.");
    check(3, b"another, 16 long");
    check(3, b"");
    check(3, b"");
    check(3, b"x");
    // An iterator started before a replace yields the key once, with the old or new value.
    let mut iter = map.iter::<8, 16>();
    let first = iter.next().unwrap().unwrap();
    for n in 0..30 {
        map.insert(&key(n), &[n ^ 0xff; 5]).unwrap();
    }
    let rest: Vec<_> = iter.map(Result::unwrap).collect();
    assert_eq!(rest.len(), 29);
    assert!(rest.iter().all(|(k, _)| k[..] != first.0[..]));
}

#[test]
fn update_inserts_modifies_and_removes() {
    let layout = Layout::new(10, 8, 8).unwrap();
    let mut mem = memory(&layout);
    let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    let mut seen = Vec::new();
    map.update::<8, _, _>(b"k", |old| {
        seen.push(old.map(<[u8]>::to_vec));
        Some(*b"v1")
    })
    .unwrap();
    map.update::<8, _, _>(b"k", |old| {
        seen.push(old.map(<[u8]>::to_vec));
        Some(*b"v22")
    })
    .unwrap();
    map.update::<8, [u8; 0], _>(b"k", |old| {
        seen.push(old.map(<[u8]>::to_vec));
        None
    })
    .unwrap();
    map.update::<8, [u8; 0], _>(b"absent", |old| {
        seen.push(old.map(<[u8]>::to_vec));
        None
    })
    .unwrap();
    assert_eq!(
        seen,
        [None, Some(b"v1".to_vec()), Some(b"v22".to_vec()), None]
    );
    assert!(map.is_empty());
    // A new value that is too long fails and leaves the entry as it was.
    map.insert(b"k", b"keep").unwrap();
    assert_eq!(
        map.update::<8, _, _>(b"k", |_| Some([0u8; 9])),
        Err(Error::ValueTooLong { len: 9, max: 8 })
    );
    assert_eq!(map.get_into::<8>(b"k").unwrap().unwrap(), b"keep");
}

#[test]
fn clear_empties_and_the_map_keeps_working() {
    // Filled until every slot is taken (past its capacity), so that entries certainly probed
    // past their home chunks; a fixed seed keeps the test the same wherever memory lands.
    const N: usize = if cfg!(miri) { 60 } else { 200 };
    let layout = Layout::new(N, 8, 8).unwrap();
    let mut mem = memory(&layout);
    let map = RawMap::init_with_seed(region_bytes(&mut mem), layout, 7).unwrap();
    let fill = |value: &[u8]| {
        let mut inserted = 0u64;
        while map.insert(&inserted.to_le_bytes(), value) != Err(Error::TableFull) {
            inserted += 1;
        }
        inserted as usize
    };
    let full = fill(b"v");
    assert_eq!(full, layout.chunks() * 8);
    assert!(map.verify().unwrap().max_probe_distance > 0);
    map.clear().unwrap();
    assert!(map.is_empty());
    let report = map.verify().unwrap();
    assert_eq!(report.entries, 0);
    assert_eq!(
        report.overflow_excess, 0,
        "clear must lower every overflow counter"
    );
    assert_eq!(fill(b"w"), full);
    map.verify().unwrap();
}

#[test]
fn iteration_yields_every_entry_once() {
    // Fewer under Miri, which is about 1000 times slower.
    const N: u64 = if cfg!(miri) { 60 } else { 500 };
    let layout = Layout::new(N as usize, 8, 8).unwrap();
    let mut mem = memory(&layout);
    let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    for i in 0..N {
        map.insert(&i.to_le_bytes(), &(i * 3).to_le_bytes())
            .unwrap();
    }
    let all = entries(&map);
    assert_eq!(all.len(), N as usize);
    for (key, value) in all {
        let key = u64::from_le_bytes(key.try_into().unwrap());
        assert_eq!(u64::from_le_bytes(value.try_into().unwrap()), key * 3);
    }
    // Entries too long for the iterator's buffers are reported, and iteration goes on.
    map.insert(b"8 bytes!", b"x").unwrap();
    let results: Vec<_> = map.iter::<7, 8>().collect();
    assert_eq!(results.len(), N as usize + 1);
    assert_eq!(
        results.iter().filter(|r| r.is_err()).count(),
        N as usize + 1
    );
    let results: Vec<_> = map.iter::<8, 8>().collect();
    assert!(results.iter().all(Result::is_ok));
}

#[test]
fn reattaching_sees_the_same_map() {
    let layout = Layout::new(50, 8, 8).unwrap();
    let mut mem = memory(&layout);
    {
        let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
        map.insert(b"persist", b"yes").unwrap();
    }
    let map = RawMap::attach(region_bytes(&mut mem)).unwrap();
    assert_eq!(map.layout(), layout);
    assert_eq!(map.get_into::<8>(b"persist").unwrap().unwrap(), b"yes");
    assert_ne!(map.next_generation(), map.next_generation());
}

#[test]
fn region_errors() {
    let layout = Layout::new(50, 8, 8).unwrap();
    let mut mem = memory(&layout);
    let bytes = region_bytes(&mut mem);
    let size = layout.region_size();
    assert_eq!(
        RawMap::init(&mut bytes[1..], layout).unwrap_err(),
        Error::Misaligned { required: 8 }
    );
    assert_eq!(
        RawMap::init(&mut bytes[..size - 1], layout).unwrap_err(),
        Error::RegionTooSmall {
            needed: size,
            got: size - 1
        }
    );
    assert_eq!(
        RawMap::attach(&mut bytes[..10]).unwrap_err(),
        Error::RegionTooSmall {
            needed: 64,
            got: 10
        }
    );
    assert_eq!(RawMap::attach(bytes).unwrap_err(), Error::NotAMap);
    assert_eq!(
        Layout::new(0, 1, 1),
        Err(Error::InvalidLayout(LayoutProblem::ZeroCapacity))
    );
    let _ = RawMap::init(bytes, layout).unwrap();
    assert_eq!(
        RawMap::attach(&mut bytes[..size - 8]).unwrap_err(),
        Error::RegionTooSmall {
            needed: size,
            got: size - 8
        }
    );
}

#[test]
fn damaged_headers_are_reported() {
    let layout = Layout::new(50, 8, 8).unwrap();
    let mut mem = memory(&layout);
    let _ = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    let pristine = mem.clone();
    // Header words as u32s: 0 magic, 1 state, 2 version, 3 byte order, 4.. layout and seed.
    let mut with_word = |index: usize, value: u32| {
        mem.copy_from_slice(&pristine);
        let bytes = region_bytes(&mut mem);
        bytes[index * 4..index * 4 + 4].copy_from_slice(&value.to_ne_bytes());
        RawMap::attach(bytes).unwrap_err()
    };
    assert_eq!(with_word(0, 0x1234), Error::NotAMap);
    // A valid magic with a blank state: a correct creator writes the state first.
    assert_eq!(with_word(1, 0), Error::Corrupt(Corruption::HeaderState));
    assert_eq!(
        with_word(1, 0x1234),
        Error::Corrupt(Corruption::HeaderState)
    );
    assert_eq!(
        with_word(2, 99),
        Error::IncompatibleVersion {
            found: 99,
            supported: shared_hashmap::FORMAT_VERSION
        }
    );
    assert!(matches!(
        with_word(3, 0x0403_0201),
        Error::IncompatibleVersion { .. }
    ));
    assert_eq!(with_word(6, 9), Error::Corrupt(Corruption::HeaderChecksum));
    assert_eq!(with_word(9, 1), Error::Corrupt(Corruption::HeaderChecksum));
}

#[test]
fn typed_maps_encode_and_decode() {
    let layout = Layout::new(50, 32, 32).unwrap();
    let mut mem = memory(&layout);
    let map: Map<str, u64> = Map::init(region_bytes(&mut mem), layout).unwrap();
    map.insert("a", &1).unwrap();
    assert_eq!(map.fetch_add("a", 2).unwrap(), 1);
    assert_eq!(map.get("a").unwrap(), Some(3));
    map.update("a", |old| old.map(|n| n * 10)).unwrap();
    assert_eq!(map.get("a").unwrap(), Some(30));
    assert!(map.compare_exchange("a", Some(&30), &31).unwrap());
    assert!(!map.compare_exchange("a", Some(&30), &32).unwrap());
    assert!(map.contains_key("a").unwrap());
    assert!(map.remove("a").unwrap());
    assert_eq!(map.get("a").unwrap(), None);

    // The same region read back with owned key types, and as raw bytes.
    map.insert("b", &7).unwrap();
    let raw = map.into_raw();
    assert_eq!(
        raw.get_into::<8>(b"b").unwrap().unwrap(),
        7u64.to_le_bytes()
    );
    let typed: Map<heapless::String<32>, u64> = Map::new(raw);
    let all: Vec<_> = typed.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(all, [(heapless::String::try_from("b").unwrap(), 7)]);
    // Reading as the wrong type is an error, not garbage.
    let wrong: Map<str, u32> = Map::new(typed.into_raw());
    assert_eq!(
        wrong.get("b"),
        Err(Error::BufferTooSmall { needed: 8, got: 4 })
    );
}

#[test]
fn tagged_values_share_one_map() {
    let layout = Layout::new(50, 32, 32).unwrap();
    let mut mem = memory(&layout);
    let map: Map<Value<'_>, OwnedValue<32>> = Map::init(region_bytes(&mut mem), layout).unwrap();
    let pairs = [
        (Value::Str("name"), Value::Str("Ada")),
        (Value::Int(7), Value::Float(2.5)),
        (Value::Bytes(b"\x00\x01"), Value::None),
        (Value::Bool(true), Value::Pickled(b"\x80\x04")),
    ];
    for (key, value) in pairs {
        map.insert(&key, &OwnedValue::new(value).unwrap()).unwrap();
    }
    for (key, value) in pairs {
        assert_eq!(map.get(&key).unwrap().unwrap().value(), value);
    }
    // Int 7 and Str "7" are different keys.
    assert_eq!(map.get(&Value::Str("7")).unwrap(), None);
    assert_eq!(map.len(), 4);
}

/// Keys that share their home chunk and their tag byte: the lookup's fast path looks only at
/// the first slot with a matching tag, so the others must be found on the general path.
#[test]
fn keys_sharing_a_tag_in_one_chunk_are_all_found() {
    // Seven entries fit one chunk: every key has the same home.
    let layout = Layout::new(7, 8, 8).unwrap();
    assert_eq!(layout.chunks(), 1);
    let mut mem = memory(&layout);
    let seed = 0x7a6;
    let map = RawMap::init_with_seed(region_bytes(&mut mem), layout, seed).unwrap();
    let tag = |key: &[u8]| shared_hashmap::hash_bytes(seed, key) & 0x7f;
    // Three keys with one tag, and a fourth, absent, with that tag too.
    let mut same: Vec<[u8; 8]> = Vec::new();
    let first = 0u64.to_le_bytes();
    for n in 1..100_000u64 {
        let key = n.to_le_bytes();
        if tag(&key) == tag(&first) {
            same.push(key);
        }
        if same.len() == 3 {
            break;
        }
    }
    assert_eq!(same.len(), 3, "keys sharing a tag");
    map.insert(&first, b"first").unwrap();
    map.insert(b"other", b"x").unwrap();
    map.insert(&same[0], b"second").unwrap();
    map.insert(&same[1], b"third").unwrap();
    assert_eq!(map.get_into::<8>(&first).unwrap().unwrap(), b"first");
    assert_eq!(map.get_into::<8>(&same[0]).unwrap().unwrap(), b"second");
    assert_eq!(map.get_into::<8>(&same[1]).unwrap().unwrap(), b"third");
    assert_eq!(map.contains_key(&same[1]), Ok(true));
    assert_eq!(map.get_into::<8>(&same[2]).unwrap(), None);
    assert_eq!(map.contains_key(&same[2]), Ok(false));
    // With the first one gone, the later ones are still found, and the absent one is not.
    assert_eq!(map.remove(&first), Ok(true));
    assert_eq!(map.get_into::<8>(&same[1]).unwrap().unwrap(), b"third");
    assert_eq!(map.get_into::<8>(&same[2]).unwrap(), None);
    map.verify().unwrap();
}

#[test]
// Miri runs neither the prefetches nor the block copies (both are cfg'd out there), and this
// many 1 KiB values would take it minutes.
#[cfg_attr(miri, ignore)]
fn long_values_in_a_map_larger_than_the_caches_are_copied_whole() {
    // More than 4 MiB of region and values of four cache lines or more: the size at which reads
    // and writes prefetch a value's lines, and values copied in SSE2 blocks on x86-64.
    const VALUE: usize = 1000;
    let layout = Layout::new(6000, 24, VALUE).unwrap();
    assert!(layout.region_size() > 4 << 20);
    let mut mem = memory(&layout);
    let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    let key = |i: u32| format!("key {i}").into_bytes();
    // Lengths around every 8- and 32-byte boundary, each byte naming its key and position.
    let value = |i: u32, round: u8| -> Vec<u8> {
        let len = VALUE - (i as usize % 41);
        (0..len)
            .map(|p| (p as u32 ^ i.wrapping_mul(2_654_435_761)) as u8 ^ round)
            .collect()
    };
    for i in 0..6000 {
        assert!(!map.insert(&key(i), &value(i, 0)).unwrap());
    }
    for i in (0..6000).step_by(2) {
        assert!(map.insert(&key(i), &value(i, 1)).unwrap());
    }
    for i in (0..6000).step_by(3) {
        assert!(map.remove(&key(i)).unwrap());
    }
    let mut out = vec![0u8; VALUE];
    for i in 0..6000 {
        let got = map.get(&key(i), &mut out).unwrap();
        if i % 3 == 0 {
            assert_eq!(got, None, "key {i} was removed");
        } else {
            let want = value(i, u8::from(i % 2 == 0));
            assert_eq!(got, Some(want.len()), "key {i}");
            assert_eq!(out[..want.len()], want[..], "key {i}");
        }
    }
    assert_eq!(map.len(), 4000);
    map.verify().unwrap();
}
