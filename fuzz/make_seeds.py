#!/usr/bin/env python3
"""Writes the made seeds of the fuzz targets (fuzz/seeds/TARGET/*.bin).

The targets decode their input with `arbitrary` 1.x (`Input::arbitrary_take_rest`): integers
are little-endian bytes, a bool is a byte's low bit, an enum variant is chosen by a u32 `x` as
`(x * variants) >> 32`, a `Vec` that is not the last field is a sequence of (1, element) ending
with 0, and the last field's `Vec` takes (1, element) until the input ends. `cargo fuzz fmt
TARGET FILE` prints what a seed decodes to. Run from anywhere: python3 fuzz/make_seeds.py
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def u8(v):
    return bytes([v & 0xFF])


def u16(v):
    return struct.pack("<H", v)


def u32(v):
    return struct.pack("<I", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def i8(v):
    return struct.pack("<b", v)


def variant(index, count):
    """The u32 that selects variant `index` of an enum with `count` variants."""
    return u32(((2 * index + 1) << 32) // (2 * count))


def vec(elements):
    """A Vec that is not the last field: (1, element)* 0."""
    return b"".join(b"\x01" + e for e in elements) + b"\x00"


def rest(elements):
    """The last field's Vec: (1, element) until the input ends."""
    return b"".join(b"\x01" + e for e in elements)


def byte_vec(data):
    return vec([u8(b) for b in data])


def option(value):
    return b"\x00" if value is None else b"\x01" + value


# ---------------------------------------------------------------------------------------------
# attach: Input { capacity: u8, entries: u8, from: u16, scribble: Vec<u8>, fix_checksum: bool,
#                 resize: i8, ops: Vec<Op> }

ATTACH_OPS = ["Get", "Insert", "Remove", "FetchAdd", "CompareExchange", "Update", "Iterate",
              "Clear", "Verify"]


def attach_op(name, *fields):
    body = variant(ATTACH_OPS.index(name), len(ATTACH_OPS))
    for field in fields:
        body += boolean(field) if isinstance(field, bool) else u8(field)
    return body


def every_attach_op(keys):
    ops = []
    for k in keys:
        ops += [attach_op("Insert", k, k + 1), attach_op("Get", k), attach_op("FetchAdd", k),
                attach_op("CompareExchange", k, k + 1), attach_op("Update", k, k % 2 == 0)]
    ops += [attach_op("Iterate"), attach_op("Verify")]
    ops += [attach_op("Remove", k) for k in keys[::2]]
    ops += [attach_op("Iterate"), attach_op("Clear"), attach_op("Iterate"), attach_op("Verify")]
    return ops


def attach_input(capacity, entries, at, scribble, fix_checksum, resize, ops):
    return (u8(capacity - 1) + u8(entries) + u16(at) + byte_vec(scribble) + boolean(fix_checksum)
            + i8(resize) + rest(ops))


def chunks_for(capacity):
    """The chunk count of Layout::new(capacity, ..): ceil(capacity / 7), then 1, 2 or a prime."""
    least = -(-capacity // 7)
    if least <= 2:
        return least
    n = least | 1
    while any(n % d == 0 for d in range(3, int(n ** 0.5) + 1, 2)):
        n += 2
    return n


def layout_words(capacity, key, value):
    """Header words 4..=8: capacity (low, high), maximum key and value lengths, chunks."""
    return struct.pack("<5I", capacity, 0, key, value, chunks_for(capacity))


def attach_seeds():
    ops = every_attach_op(list(range(0, 40, 3)))
    # The made map: capacity 40 (7 chunks), 30 entries [k] -> [k; 8]; header words at 4 * i,
    # control blocks from byte 64 (32 bytes each: lock, sequence, 2 tag words, slot map,
    # overflow counters), slots after them.
    yield "forged-smaller-layout", attach_input(40, 30, 16, layout_words(12, 8, 8), True, 0, ops)
    yield "forged-longer-values", attach_input(40, 30, 16, layout_words(9, 4, 16), True, 0, ops)
    yield "forged-seed", attach_input(40, 30, 36, struct.pack("<2I", 0xDEADBEEF, 7), True, 0, ops)
    # A map of capacity 14 (2 chunks, 704 bytes) in a region of 1056 bytes, the size of
    # capacity 20 (3 chunks), which its forged header claims.
    yield "forged-layout-longer-region", attach_input(
        14, 14, 16, layout_words(20, 8, 8), True, 88, ops)
    yield "forged-without-checksum", attach_input(40, 30, 16, layout_words(12, 8, 8), False, 0, ops)
    yield "shorter-region", attach_input(40, 30, 0, b"", False, -3, ops)
    yield "longer-region", attach_input(40, 30, 0, b"", False, 100, ops)
    # Control block 1: locked by a dead owner (odd ids are dead) inside a write.
    yield "dead-writer-odd-sequence", attach_input(
        40, 30, 96, struct.pack("<2I", 3, 7), False, 0, ops)
    # Control block 2: locked by a live owner; overflow counters at their maximum.
    yield "live-holder-high-overflow", attach_input(
        40, 30, 128, struct.pack("<8I", 4, 2, 0x01010101, 0x01010101, 0x76543210, 0xFFFFFFFF,
                                 0, 0), False, 0, ops)
    # Control block 0: a slot map that is not a permutation, and tags of entries not there.
    yield "bad-slot-map", attach_input(
        40, 30, 64, struct.pack("<6I", 0, 0, 0xFFFFFFFF, 0xFFFFFFFF, 0x11111111, 0), False, 0,
        ops)
    # The first slots: lengths past the maximum, then a plausible key with a wrong hash.
    slots = 64 + 32 * 8
    yield "bad-slot-lengths", attach_input(
        40, 30, slots, struct.pack("<4I", 9, 0xFFFFFFFF, 0, 0) + struct.pack("<4I", 1, 8, 0, 1)
        + b"\x05" * 16, False, 0, ops)
    yield "zeroed-body", attach_input(40, 40, 64, bytes(600), False, 0, ops)


# ---------------------------------------------------------------------------------------------
# ops: Input { capacity: u8, ops: Vec<Op> }

OPS = ["Insert", "Get", "Remove", "CompareExchange", "FetchAdd", "Update", "Clear", "Iterate"]


def op(name, *fields):
    body = variant(OPS.index(name), len(OPS))
    for field in fields:
        body += field
    return body


def long_history(seed, count, key_space, capacity):
    """`count` operations of every kind on keys of 0 to 7 bytes and values of 0 to 11 bytes
    (one past each maximum), from a fixed generator."""
    state = seed

    def rand(n):
        nonlocal state
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return (state >> 33) % n

    def key():
        k = rand(key_space)
        length = 7 if rand(40) == 0 else 1 + k % 3
        return bytes([k] * length)

    def value():
        length = 11 if rand(40) == 0 else rand(11)
        return bytes([rand(256)] * length)

    ops = []
    for _ in range(count):
        kind = rand(100)
        if kind < 30:
            ops.append(op("Insert", byte_vec(key()), byte_vec(value())))
        elif kind < 50:
            ops.append(op("Get", byte_vec(key())))
        elif kind < 62:
            ops.append(op("Remove", byte_vec(key())))
        elif kind < 72:
            current = None if rand(3) == 0 else byte_vec(value())
            ops.append(op("CompareExchange", byte_vec(key()), option(current), byte_vec(value())))
        elif kind < 82:
            ops.append(op("FetchAdd", byte_vec(key()), i8(rand(256) - 128)))
        elif kind < 94:
            new = None if rand(3) == 0 else byte_vec(value())
            ops.append(op("Update", byte_vec(key()), option(new)))
        elif kind < 97:
            ops.append(op("Iterate"))
        else:
            ops.append(op("Clear"))
    return u8(capacity - 1) + rest(ops)


def ops_seeds():
    # Capacity 1 (one chunk), 7, 14 (2 chunks) and 29 (5 chunks): full tables, overflow
    # chains, clears of full maps.
    yield "history-capacity-1", long_history(1, 200, 12, 1)
    yield "history-capacity-7", long_history(2, 200, 24, 7)
    yield "history-capacity-14", long_history(3, 200, 40, 14)
    yield "history-capacity-29", long_history(4, 200, 80, 29)
    fill = [op("Insert", byte_vec([k, k]), byte_vec([k] * 10)) for k in range(70)]
    churn = [op("Remove", byte_vec([k, k])) for k in range(0, 70, 2)]
    refill = [op("Update", byte_vec([k, k]), option(byte_vec([k] * (k % 11))))
              for k in range(0, 70, 3)]
    yield "fill-churn-refill-capacity-29", u8(28) + rest(
        fill + [op("Iterate")] + churn + refill + [op("Iterate"), op("Clear"), op("Iterate")])


# ---------------------------------------------------------------------------------------------
# codec: raw bytes. Values longer than `OwnedValue<4096>` holds (libFuzzer's default maximum
# input length is 4096 bytes, or the longest seed's).


def codec_seeds():
    yield "bytes-value-of-5000", b"\x02" + bytes(range(256)) * 19 + bytes(135)
    yield "str-value-of-4097", b"\x01" + "\u00e9".encode() * 2048
    yield "pickled-value-of-4096", b"\x06" + b"\x80" * 4095


def main():
    for target, seeds in (("attach", attach_seeds()), ("ops", ops_seeds()),
                          ("codec", codec_seeds())):
        folder = os.path.join(HERE, "seeds", target)
        os.makedirs(folder, exist_ok=True)
        for name, data in seeds:
            with open(os.path.join(folder, name + ".bin"), "wb") as out:
                out.write(data)


if __name__ == "__main__":
    main()
