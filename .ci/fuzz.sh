#!/usr/bin/env bash
# Each fuzz target runs for a minute; a crash or a hang fails CI.
set -euo pipefail
cargo install cargo-fuzz --locked
for target in codec attach ops; do
    fuzz/run.sh "$target" 60
done
