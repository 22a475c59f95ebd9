//! Arbitrary operation sequences on a small map (collisions, overflow chains and a full table
//! are common), checked step by step against `std::collections::HashMap`, with `verify_exact`
//! clean after every step.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shared_hashmap::{Error, Layout, RawMap, region_bytes};
use std::collections::HashMap;

const MAX_KEY: usize = 6;
const MAX_VALUE: usize = 10;

#[derive(Arbitrary, Debug)]
enum Op {
    Insert(Vec<u8>, Vec<u8>),
    Get(Vec<u8>),
    Remove(Vec<u8>),
    CompareExchange(Vec<u8>, Option<Vec<u8>>, Vec<u8>),
    FetchAdd(Vec<u8>, i8),
    Update(Vec<u8>, Option<Vec<u8>>),
    Clear,
    Iterate,
}

#[derive(Arbitrary, Debug)]
struct Input {
    capacity: u8,
    ops: Vec<Op>,
}

fn lengths_ok(key: &[u8], value: Option<&[u8]>) -> bool {
    key.len() <= MAX_KEY && value.is_none_or(|v| v.len() <= MAX_VALUE)
}

fuzz_target!(|input: Input| {
    let layout = Layout::new(usize::from(input.capacity % 30) + 1, MAX_KEY, MAX_VALUE).unwrap();
    let slots = layout.chunks() * 8;
    let mut words = vec![0u64; layout.region_size().div_ceil(8)];
    let map = RawMap::init_with_seed(region_bytes(&mut words), layout, 3).unwrap();
    let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let room = |model: &HashMap<Vec<u8>, Vec<u8>>, key: &[u8]| {
        model.contains_key(key) || model.len() < slots
    };
    let mut scratch = vec![0; layout.chunks()];
    for op in input.ops.iter().take(200) {
        match op {
            Op::Insert(k, v) => match map.insert(k, v) {
                Ok(replaced) => {
                    assert!(lengths_ok(k, Some(v)), "accepted a key or value too long");
                    assert_eq!(replaced, model.insert(k.clone(), v.clone()).is_some());
                }
                Err(Error::TableFull) => assert!(!room(&model, k)),
                Err(_) => assert!(!lengths_ok(k, Some(v))),
            },
            Op::Get(k) => {
                let mut out = [0u8; MAX_VALUE];
                match map.get(k, &mut out) {
                    Ok(found) => {
                        assert!(lengths_ok(k, None), "accepted a key too long");
                        let found = found.map(|len| &out[..len]);
                        assert_eq!(found, model.get(k).map(Vec::as_slice));
                    }
                    Err(_) => assert!(!lengths_ok(k, None)),
                }
            }
            Op::Remove(k) => match map.remove(k) {
                Ok(removed) => {
                    assert!(lengths_ok(k, None), "accepted a key too long");
                    assert_eq!(removed, model.remove(k).is_some());
                }
                Err(_) => assert!(!lengths_ok(k, None)),
            },
            Op::CompareExchange(k, current, new) => {
                match map.compare_exchange(k, current.as_deref(), new) {
                    Ok(swapped) => {
                        assert!(lengths_ok(k, Some(new)), "accepted a key or value too long");
                        assert_eq!(swapped, model.get(k) == current.as_ref());
                        if swapped {
                            model.insert(k.clone(), new.clone());
                        }
                    }
                    Err(Error::TableFull) => {
                        assert!(current.is_none() && !model.contains_key(k) && !room(&model, k))
                    }
                    Err(_) => assert!(!lengths_ok(k, Some(new))),
                }
            }
            Op::FetchAdd(k, delta) => match map.fetch_add(k, i64::from(*delta)) {
                Ok(old) => {
                    assert!(lengths_ok(k, None), "accepted a key too long");
                    let expected = model
                        .get(k)
                        .map_or(0, |v| i64::from_le_bytes(v[..].try_into().unwrap()));
                    assert_eq!(old, expected);
                    model.insert(
                        k.clone(),
                        old.wrapping_add(i64::from(*delta)).to_le_bytes().to_vec(),
                    );
                }
                Err(Error::TableFull) => assert!(!room(&model, k)),
                Err(Error::InvalidValue(_)) => assert!(model.get(k).is_some_and(|v| v.len() != 8)),
                Err(_) => assert!(!lengths_ok(k, None)),
            },
            Op::Update(k, new) => {
                // The closure sees the current value, exactly once.
                let mut calls = 0;
                let result = map.update::<MAX_VALUE, _, _>(k, |old| {
                    calls += 1;
                    assert_eq!(
                        old,
                        model.get(k).map(Vec::as_slice),
                        "update saw another value"
                    );
                    new.clone()
                });
                match result {
                    Ok(()) => {
                        assert_eq!(calls, 1);
                        assert!(
                            lengths_ok(k, new.as_deref()),
                            "accepted a key or value too long"
                        );
                        match new {
                            Some(v) => drop(model.insert(k.clone(), v.clone())),
                            None => drop(model.remove(k)),
                        }
                    }
                    Err(Error::TableFull) => assert!(new.is_some() && !room(&model, k)),
                    Err(_) => assert!(!lengths_ok(k, new.as_deref())),
                }
            }
            Op::Clear => {
                map.clear().unwrap();
                model.clear();
            }
            Op::Iterate => {
                let mut all: Vec<_> = map
                    .iter::<MAX_KEY, MAX_VALUE>()
                    .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
                    .collect();
                all.sort();
                let mut expected: Vec<_> = model.clone().into_iter().collect();
                expected.sort();
                assert_eq!(all, expected);
            }
        }
        assert_eq!(map.len(), model.len());
        assert_eq!(map.verify_exact(&mut scratch).unwrap().entries, model.len());
    }
});
