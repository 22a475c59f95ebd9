#!/usr/bin/env bash
# Every bench compiles and runs once (criterion's test mode), so a bench that panics fails CI.
set -euo pipefail
cargo bench --workspace --no-run
cargo bench --workspace -- --test
