//! Model test: arbitrary operation sequences on a small map (collisions, overflow chains and a
//! full table are common), checked step by step against `std::collections::HashMap`, with the
//! map verified after every step.

#[path = "../support/mod.rs"]
mod support;

use proptest::prelude::*;
use shared_hashmap::{Error, Layout, RawMap, ValueProblem, region_bytes};
use std::collections::HashMap;

const MAX_KEY: usize = 12;
const MAX_VALUE: usize = 16;

#[derive(Debug, Clone)]
enum Op {
    Insert(Vec<u8>, Vec<u8>),
    Get(Vec<u8>, usize),
    Remove(Vec<u8>),
    CompareExchange(Vec<u8>, Option<Vec<u8>>, Vec<u8>),
    FetchAdd(Vec<u8>, i64),
    Update(Vec<u8>, Option<Vec<u8>>),
    Clear,
    Iterate,
}

/// Keys from a small space (so operations meet the same keys), some longer than allowed.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        20 => (0u8..40).prop_map(|k| vec![k; usize::from(k % 7)]),
        3 => (0u8..40).prop_map(|k| vec![k, k, 1]),
        1 => proptest::collection::vec(any::<u8>(), MAX_KEY + 1..MAX_KEY + 3),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        10 => proptest::collection::vec(any::<u8>(), 0..=MAX_VALUE),
        3 => any::<i64>().prop_map(|n| n.to_le_bytes().to_vec()),
        1 => proptest::collection::vec(any::<u8>(), MAX_VALUE + 1..MAX_VALUE + 3),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (key(), value()).prop_map(|(k, v)| Op::Insert(k, v)),
        15 => (key(), 0usize..=MAX_VALUE + 1).prop_map(|(k, n)| Op::Get(k, n)),
        15 => key().prop_map(Op::Remove),
        8 => (key(), proptest::option::of(value()), value()).prop_map(|(k, c, n)| Op::CompareExchange(k, c, n)),
        8 => (key(), -5i64..5).prop_map(|(k, d)| Op::FetchAdd(k, d)),
        8 => (key(), proptest::option::of(value())).prop_map(|(k, v)| Op::Update(k, v)),
        1 => Just(Op::Clear),
        3 => Just(Op::Iterate),
    ]
}

fn check_lengths(key: &[u8], value: Option<&[u8]>) -> Result<(), Error> {
    if key.len() > MAX_KEY {
        return Err(Error::KeyTooLong {
            len: key.len(),
            max: MAX_KEY,
        });
    }
    match value {
        Some(value) if value.len() > MAX_VALUE => Err(Error::ValueTooLong {
            len: value.len(),
            max: MAX_VALUE,
        }),
        _ => Ok(()),
    }
}

/// What the map should answer, given the model before the operation; updates the model.
struct Model {
    entries: HashMap<Vec<u8>, Vec<u8>>,
    slots: usize,
}

impl Model {
    fn room_for(&self, key: &[u8]) -> Result<(), Error> {
        if self.entries.contains_key(key) || self.entries.len() < self.slots {
            Ok(())
        } else {
            Err(Error::TableFull)
        }
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<bool, Error> {
        check_lengths(key, Some(value))?;
        self.room_for(key)?;
        Ok(self.entries.insert(key.to_vec(), value.to_vec()).is_some())
    }
}

fn run(capacity: usize, ops: &[Op]) {
    let layout = Layout::new(capacity, MAX_KEY, MAX_VALUE).unwrap();
    let mut mem = support::memory(&layout);
    let map = RawMap::init(region_bytes(&mut mem), layout).unwrap();
    let mut model = Model {
        entries: HashMap::new(),
        slots: layout.chunks() * 8,
    };
    for (step, op) in ops.iter().enumerate() {
        let context = format!("step {step}: {op:?}");
        match op {
            Op::Insert(k, v) => {
                let expected = model.put(k, v);
                assert_eq!(map.insert(k, v), expected, "{context}");
            }
            Op::Get(k, buffer) => {
                let mut out = vec![0u8; *buffer];
                let expected = check_lengths(k, None).and_then(|()| match model.entries.get(k) {
                    Some(v) if v.len() > *buffer => Err(Error::BufferTooSmall {
                        needed: v.len(),
                        got: *buffer,
                    }),
                    Some(v) => Ok(Some(v.len())),
                    None => Ok(None),
                });
                let got = map.get(k, &mut out);
                assert_eq!(got, expected, "{context}");
                if let Ok(Some(len)) = got {
                    assert_eq!(&out[..len], &model.entries[k][..], "{context}");
                }
                assert_eq!(
                    map.contains_key(k),
                    check_lengths(k, None).map(|()| model.entries.contains_key(k)),
                    "{context}"
                );
            }
            Op::Remove(k) => {
                let expected = check_lengths(k, None).map(|()| model.entries.remove(k).is_some());
                assert_eq!(map.remove(k), expected, "{context}");
            }
            Op::CompareExchange(k, current, new) => {
                let expected = check_lengths(k, Some(new)).and_then(|()| {
                    let matches = model.entries.get(k) == current.as_ref();
                    if matches {
                        model.put(k, new)?;
                    }
                    Ok(matches)
                });
                assert_eq!(
                    map.compare_exchange(k, current.as_deref(), new),
                    expected,
                    "{context}"
                );
            }
            Op::FetchAdd(k, delta) => {
                let expected = check_lengths(k, None).and_then(|()| {
                    let old = match model.entries.get(k) {
                        None => 0,
                        Some(v) if v.len() == 8 => i64::from_le_bytes(v[..].try_into().unwrap()),
                        Some(v) => {
                            return Err(Error::InvalidValue(ValueProblem::WrongLength {
                                expected: 8,
                                found: v.len(),
                            }));
                        }
                    };
                    model.put(k, &old.wrapping_add(*delta).to_le_bytes())?;
                    Ok(old)
                });
                assert_eq!(map.fetch_add(k, *delta), expected, "{context}");
            }
            Op::Update(k, new) => {
                let mut seen = None;
                let got = map.update::<MAX_VALUE, _, _>(k, |old| {
                    seen = Some(old.map(<[u8]>::to_vec));
                    new.clone()
                });
                let expected = check_lengths(k, None).and_then(|()| {
                    let old = model.entries.get(k).cloned();
                    match new {
                        Some(v) => model.put(k, v).map(drop),
                        None => {
                            model.entries.remove(k);
                            Ok(())
                        }
                    }
                    .map(|()| old)
                });
                assert_eq!(got.map(|()| seen.clone().unwrap()), expected, "{context}");
            }
            Op::Clear => {
                map.clear().unwrap();
                model.entries.clear();
            }
            Op::Iterate => {
                let mut all: Vec<_> = map
                    .iter::<MAX_KEY, MAX_VALUE>()
                    .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
                    .collect();
                all.sort();
                let mut expected: Vec<_> = model.entries.clone().into_iter().collect();
                expected.sort();
                assert_eq!(all, expected, "{context}");
            }
        }
        assert_eq!(map.len(), model.entries.len(), "{context}");
        let report = support::verify_exact(&map);
        assert_eq!(report.entries, model.entries.len(), "{context}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// One chunk: every key collides.
    #[test]
    fn one_chunk(ops in proptest::collection::vec(op(), 1..200)) {
        run(5, &ops);
    }

    /// A few chunks: overflow chains, a full table, and double-hashing wrap-around.
    #[test]
    fn few_chunks(ops in proptest::collection::vec(op(), 1..300)) {
        run(20, &ops);
    }

    /// Room to spare.
    #[test]
    fn roomy(ops in proptest::collection::vec(op(), 1..300)) {
        run(200, &ops);
    }
}
