//! Arbitrary bytes decoded by every codec and by the tagged `Value`: nothing panics, and
//! whatever decodes encodes back to exactly the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared_hashmap::{Decode, Encode, Error, OwnedValue, Value};

fn bytes_of<T: Encode + ?Sized>(value: &T) -> Vec<u8> {
    let encoded = value.encode();
    let (head, body) = encoded.parts();
    [head, body].concat()
}

fn round_trip<T: Decode + Encode>(data: &[u8]) {
    if let Ok(value) = T::decode(data) {
        assert_eq!(
            bytes_of(&value),
            data,
            "{} does not re-encode to its bytes",
            std::any::type_name::<T>()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<u8>(data);
    round_trip::<u16>(data);
    round_trip::<u32>(data);
    round_trip::<u64>(data);
    round_trip::<u128>(data);
    round_trip::<i8>(data);
    round_trip::<i16>(data);
    round_trip::<i32>(data);
    round_trip::<i64>(data);
    round_trip::<i128>(data);
    round_trip::<f32>(data);
    round_trip::<f64>(data);
    round_trip::<bool>(data);
    round_trip::<()>(data);
    round_trip::<[u8; 4]>(data);
    round_trip::<heapless::Vec<u8, 16>>(data);
    round_trip::<heapless::String<16>>(data);
    round_trip::<OwnedValue<64>>(data);
    if let Ok(value) = Value::decode(data) {
        assert_eq!(
            bytes_of(&value),
            data,
            "Value does not re-encode to its bytes"
        );
        // Held inline up to its capacity; longer values are refused with their length.
        match OwnedValue::<4096>::new(value) {
            Ok(owned) => assert_eq!(owned.as_bytes(), data),
            Err(Error::ValueTooLong { len, max }) => {
                assert_eq!((len, max), (data.len(), 4096));
                assert!(data.len() > 4096, "refused a value that fits");
            }
            Err(other) => panic!("OwnedValue::new: {other:?}"),
        }
    }
});
