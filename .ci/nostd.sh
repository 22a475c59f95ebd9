#!/usr/bin/env bash
# The core builds without std or alloc for microcontrollers. thumbv6m and riscv32imc have no
# compare-and-swap: CI turns on the core's `critical-section` feature for them (the final binary
# supplies the implementation; a library build does not link). A build against a sysroot of
# `core` alone proves that nothing uses `alloc`.
set -euo pipefail
for features in "" "--features defmt"; do
    # shellcheck disable=SC2086
    cargo build --lib --target thumbv7em-none-eabihf $features
done
cargo build --lib --target thumbv6m-none-eabi --features critical-section
cargo build --lib --target riscv32imc-unknown-none-elf --features critical-section,defmt
cargo +nightly build --lib -Z build-std=core --target thumbv7em-none-eabihf --target-dir target/nostd
