//! The Python package's quick start, in Rust: set, get, contains, delete and size on a map in
//! shared memory, with the same tagged values (str, int, float, bytes, None, bool) it stores.
//!
//! `cargo run --release --example basic_usage`

use shared_hashmap_posix::{Layout, OwnedValue, SharedMap, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("basic-usage-{}", std::process::id());
    // capacity 1024, keys up to 256 bytes, values up to 1024: the Python package's defaults.
    // The map's name is removed when `map` is dropped, however `main` ends.
    let map: SharedMap<Value<'_>, OwnedValue<1024>> =
        SharedMap::create(&name, Layout::new(1024, 256, 1024)?)?.unlink_on_drop();

    let entries = [
        (Value::Str("key1"), Value::Str("value1")),
        (Value::Str("key2"), Value::Int(42)),
        (Value::Int(7), Value::Float(2.5)),
        (Value::Str("blob"), Value::Bytes(&[0x00, 0xff, 0x10])),
        (Value::Str("enabled"), Value::Bool(true)),
        (Value::Str("nothing"), Value::None),
    ];
    for (key, value) in &entries {
        map.insert(key, &OwnedValue::new(*value)?)?;
    }

    for (key, stored) in &entries {
        let value = map.get(key)?.ok_or("an entry is missing")?;
        println!("{key:?} -> {:?}", value.value());
        if value.value() != *stored {
            return Err(format!("{key:?} came back as {:?}", value.value()).into());
        }
    }
    if map.contains_key(&Value::Str("key1"))? {
        println!("key1 exists!");
    }
    println!("delete key1: {}", map.remove(&Value::Str("key1"))?);
    println!("delete key1 again: {}", map.remove(&Value::Str("key1"))?);
    println!("size: {}", map.len());
    Ok(())
}
