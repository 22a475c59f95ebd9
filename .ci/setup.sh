#!/usr/bin/env bash
# Installs the targets and components the other steps use. Fails if any cannot be installed.
set -euo pipefail
rustup component add clippy rustfmt --toolchain stable
rustup target add --toolchain stable thumbv7em-none-eabihf thumbv6m-none-eabi riscv32imc-unknown-none-elf
rustup component add miri rust-src --toolchain nightly
cargo +nightly miri setup
