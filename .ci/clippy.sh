#!/usr/bin/env bash
# Clippy with warnings denied, on every target and on the defmt feature; rustdoc with warnings denied.
set -euo pipefail
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --lib --features defmt -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
cargo clippy --manifest-path fuzz/Cargo.toml --all-targets -- -D warnings
