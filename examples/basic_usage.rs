//! The Python package's quick start, in Rust: set, get, contains, delete and size on a map in
//! shared memory, with the same tagged values (str, int, float, bytes, None, bool) it stores.
//!
//! `cargo run --release --example basic_usage`

use shared_hashmap_posix::{Layout, OwnedValue, SharedMap, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("basic-usage-{}", std::process::id());
    // capacity 1024, keys up to 256 bytes, values up to 1024: the Python package's defaults.
    let map: SharedMap<Value<'_>, OwnedValue<1024>> =
        SharedMap::create(&name, Layout::new(1024, 256, 1024)?)?;

    map.insert(&Value::Str("key1"), &OwnedValue::new(Value::Str("value1"))?)?;
    map.insert(&Value::Str("key2"), &OwnedValue::new(Value::Int(42))?)?;
    map.insert(&Value::Int(7), &OwnedValue::new(Value::Float(2.5))?)?;
    map.insert(&Value::Str("nothing"), &OwnedValue::new(Value::None)?)?;

    let show = |value: Option<OwnedValue<1024>>| {
        value.map_or("(absent)".to_owned(), |v| format!("{:?}", v.value()))
    };
    println!("key1 -> {}", show(map.get(&Value::Str("key1"))?));
    println!("key2 -> {}", show(map.get(&Value::Str("key2"))?));
    println!("7    -> {}", show(map.get(&Value::Int(7))?));
    if map.contains_key(&Value::Str("key1"))? {
        println!("key1 exists!");
    }
    println!("delete key1: {}", map.remove(&Value::Str("key1"))?);
    println!("delete key1 again: {}", map.remove(&Value::Str("key1"))?);
    println!("size: {}", map.len());

    shared_hashmap_posix::SharedHashMap::unlink(&name)?;
    Ok(())
}
