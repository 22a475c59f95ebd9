//! Loom models of the chunk protocol, run on the crate's real code (under `cfg(loom)` the
//! region is backed by loom's atomics): two inserters of one key, a read during updates, a
//! read during a remove, a read during a remove and reuse of the slot, an iteration during a
//! remove-and-reinsert and during a clear-and-reinsert, and a lock taken over from a dead
//! owner. Each was checked to fail with the protocol step it covers taken out. Two more cover
//! one-word values replaced in place: a read during such updates (values in order, the last one
//! seen after the writer ends) and two `fetch_add`s of one key (no lost count; checked to fail
//! when the old value is read outside the key's lock).
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom`.

#[cfg(loom)]
mod tests {
    use loom::sync::atomic::{AtomicBool, Ordering};
    use loom::thread;
    use shared_hashmap::{Layout, Liveness, RawMap, region_bytes};
    use std::num::NonZeroU32;

    /// A one-chunk map (every key collides) that lives for the rest of the model.
    fn map(liveness: &'static dyn Liveness) -> &'static RawMap<'static> {
        let layout = Layout::new(7, 8, 16).unwrap();
        let words: &'static mut [u64] =
            Box::leak(vec![0u64; layout.region_size().div_ceil(8)].into_boxed_slice());
        let map = RawMap::init_with_seed(region_bytes(words), layout, 42)
            .unwrap()
            .with_liveness(liveness);
        Box::leak(Box::new(map))
    }

    /// Owner ids per handle; the owner `dead` names (if any) is dead once its flag is set.
    struct ModelLiveness {
        owner: u32,
        dead_owner: u32,
        dead: &'static AtomicBool,
    }

    impl Liveness for ModelLiveness {
        fn owner_id(&self) -> NonZeroU32 {
            NonZeroU32::new(self.owner).unwrap()
        }
        fn is_alive(&self, owner: u32) -> bool {
            owner != self.dead_owner || !self.dead.load(Ordering::SeqCst)
        }
        fn wait(&self, attempt: u32) -> bool {
            thread::yield_now();
            attempt < 10_000
        }
    }

    fn liveness(owner: u32, dead_owner: u32, dead: &'static AtomicBool) -> &'static ModelLiveness {
        Box::leak(Box::new(ModelLiveness {
            owner,
            dead_owner,
            dead,
        }))
    }

    fn never_dead() -> &'static AtomicBool {
        Box::leak(Box::new(AtomicBool::new(false)))
    }

    /// A 16-byte value whose halves must agree: a torn read would show two writers' halves.
    fn value(tag: u8) -> [u8; 16] {
        [tag; 16]
    }

    fn assert_whole(bytes: &[u8]) -> u8 {
        assert_eq!(bytes.len(), 16, "length from another value");
        assert!(bytes.iter().all(|&b| b == bytes[0]), "torn value {bytes:?}");
        bytes[0]
    }

    #[test]
    fn two_inserters_of_one_key_make_one_entry() {
        loom::model(|| {
            let map = map(liveness(1, 0, never_dead()));
            let other = thread::spawn(move || map.insert(b"k", &value(1)).unwrap());
            let here = map.insert(b"k", &value(2)).unwrap();
            let there = other.join().unwrap();
            assert_ne!(here, there, "exactly one insert finds the key absent");
            assert_eq!(map.len(), 1);
            map.verify().unwrap();
        });
    }

    #[test]
    fn a_read_during_updates_sees_whole_values_in_order() {
        loom::model(|| {
            let map = map(liveness(1, 0, never_dead()));
            map.insert(b"k", &value(1)).unwrap();
            // Two updates: the second rewrites the physical slot the first one retired, which
            // a slow reader may still be copying (one update alone never touches it).
            let writer = thread::spawn(move || {
                map.insert(b"k", &value(2)).unwrap();
                map.insert(b"k", &value(3)).unwrap();
            });
            let first = assert_whole(&map.get_into::<16>(b"k").unwrap().unwrap());
            let second = assert_whole(&map.get_into::<16>(b"k").unwrap().unwrap());
            assert!(
                (1..=3).contains(&first) && first <= second,
                "{first} then {second}"
            );
            writer.join().unwrap();
            assert_eq!(assert_whole(&map.get_into::<16>(b"k").unwrap().unwrap()), 3);
        });
    }

    #[test]
    fn a_read_during_in_place_updates_sees_values_in_order() {
        loom::model(|| {
            let map = map(liveness(1, 0, never_dead()));
            // Values of one word and one length: each update is stored in place.
            map.insert(b"k", &1u64.to_le_bytes()).unwrap();
            let writer = thread::spawn(move || {
                map.insert(b"k", &2u64.to_le_bytes()).unwrap();
                map.insert(b"k", &3u64.to_le_bytes()).unwrap();
            });
            let read = || {
                let bytes = map.get_into::<16>(b"k").unwrap().unwrap();
                u64::from_le_bytes(bytes.into_array().unwrap())
            };
            let (first, second) = (read(), read());
            assert!(
                (1..=3).contains(&first) && first <= second && second <= 3,
                "{first} then {second}"
            );
            writer.join().unwrap();
            assert_eq!(read(), 3);
        });
    }

    #[test]
    fn two_fetch_adds_of_one_key_lose_no_count() {
        loom::model(|| {
            let map = map(liveness(1, 0, never_dead()));
            map.insert(b"c", &0u64.to_le_bytes()).unwrap();
            let other = thread::spawn(move || map.fetch_add(b"c", 1).unwrap());
            let here = map.fetch_add(b"c", 1).unwrap();
            let there = other.join().unwrap();
            assert_eq!(here + there, 1, "each saw the other's add or none");
            assert_eq!(map.fetch_add(b"c", 0).unwrap(), 2);
        });
    }

    #[test]
    fn a_read_during_a_remove_sees_the_value_or_nothing() {
        loom::model(|| {
            let map = map(liveness(1, 0, never_dead()));
            map.insert(b"other", &value(9)).unwrap();
            map.insert(b"k", &value(1)).unwrap();
            let remover = thread::spawn(move || map.remove(b"k").unwrap());
            if let Some(bytes) = map.get_into::<16>(b"k").unwrap() {
                assert_eq!(assert_whole(&bytes), 1);
            }
            assert_eq!(
                assert_whole(&map.get_into::<16>(b"other").unwrap().unwrap()),
                9
            );
            assert!(remover.join().unwrap());
            assert_eq!(map.get_into::<16>(b"k").unwrap(), None);
        });
    }

    #[test]
    fn a_read_during_a_remove_and_reuse_of_the_slot_sees_the_value_or_nothing() {
        loom::model(|| {
            let map = map(liveness(1, 0, never_dead()));
            map.insert(b"k", &value(1)).unwrap();
            // Removal bumps no sequence; the insert that reuses `k`'s slot (the first empty
            // one) for `x` must make a read of `k` that overlaps it retry.
            let writer = thread::spawn(move || {
                map.remove(b"k").unwrap();
                map.insert(b"x", &value(2)).unwrap();
            });
            if let Some(bytes) = map.get_into::<16>(b"k").unwrap() {
                assert_eq!(assert_whole(&bytes), 1);
            }
            writer.join().unwrap();
            assert_eq!(map.get_into::<16>(b"k").unwrap(), None);
        });
    }

    #[test]
    fn an_iteration_during_remove_and_reinsert_never_yields_twice() {
        loom::model(|| {
            let map = map(liveness(1, 0, never_dead()));
            map.insert(b"k", &value(1)).unwrap(); // slot 0
            map.insert(b"stable", &value(5)).unwrap(); // slot 1
            // Another key takes slot 0 before `k` comes back, so `k` comes back in slot 2:
            // after the slot the iterator may already have yielded it from.
            let churn = thread::spawn(move || {
                map.remove(b"k").unwrap();
                map.insert(b"x", &value(3)).unwrap();
                map.insert(b"k", &value(2)).unwrap();
            });
            let keys: Vec<_> = map.iter::<8, 16>().map(|entry| entry.unwrap().0).collect();
            assert!(
                keys.iter().filter(|k| k.as_slice() == b"k").count() <= 1,
                "{keys:?}"
            );
            assert_eq!(keys.iter().filter(|k| k.as_slice() == b"stable").count(), 1);
            churn.join().unwrap();
        });
    }

    #[test]
    fn an_iteration_during_clear_and_reinsert_never_yields_twice() {
        loom::model(|| {
            let map = map(liveness(1, 0, never_dead()));
            map.insert(b"k", &value(1)).unwrap(); // slot 0
            // After the clear, `x` takes slot 0 and `k` comes back in slot 1: after the slot
            // the iterator may already have yielded it from.
            let churn = thread::spawn(move || {
                map.clear().unwrap();
                map.insert(b"x", &value(3)).unwrap();
                map.insert(b"k", &value(2)).unwrap();
            });
            let keys: Vec<_> = map.iter::<8, 16>().map(|entry| entry.unwrap().0).collect();
            assert!(
                keys.iter().filter(|k| k.as_slice() == b"k").count() <= 1,
                "{keys:?}"
            );
            churn.join().unwrap();
        });
    }

    #[test]
    fn a_lock_held_by_a_dead_owner_is_taken_over() {
        loom::model(|| {
            let dead = never_dead();
            let map = map(liveness(1, 7, dead));
            map.insert(b"k", &value(1)).unwrap();
            // A second handle, as another process would have.
            let victim: &'static RawMap<'static> =
                Box::leak(Box::new(map.handle().with_liveness(liveness(7, 7, dead))));
            let done: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
            let victim_thread = thread::spawn(move || {
                // The victim "dies" holding the chunk's lock (one chunk: every key shares it): its
                // closure marks it dead and waits for the survivor, then changes nothing.
                victim
                    .update::<16, [u8; 16], _>(b"absent", |_| {
                        dead.store(true, Ordering::SeqCst);
                        while !done.load(Ordering::SeqCst) {
                            thread::yield_now();
                        }
                        None
                    })
                    .unwrap();
            });
            while !dead.load(Ordering::SeqCst) {
                thread::yield_now();
            }
            assert!(map.insert(b"k", &value(2)).unwrap());
            assert_eq!(assert_whole(&map.get_into::<16>(b"k").unwrap().unwrap()), 2);
            done.store(true, Ordering::SeqCst);
            victim_thread.join().unwrap();
        });
    }
}
