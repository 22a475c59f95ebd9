#!/usr/bin/env bash
# Runs a fuzzing campaign: fuzz/run.sh TARGET SECONDS. The committed seeds (fuzz/seeds/TARGET)
# start it; what it finds accumulates in fuzz/corpus/TARGET; a crash is saved under
# fuzz/artifacts/TARGET and fails the run. An input that takes over 10 s counts as a hang.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET SECONDS}
seconds=${2:?usage: fuzz/run.sh TARGET SECONDS}
mkdir -p "corpus/$target"
cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1
