#!/usr/bin/env bash
# Model-checks the chunk protocol with loom (the crate's real code over loom's atomics).
set -euo pipefail
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
    cargo test --release --test loom
