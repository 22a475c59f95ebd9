#!/usr/bin/env bash
# The core's unit tests, and the single-threaded and hostile-region integration tests, under Miri
# with strict provenance.
set -euo pipefail
MIRIFLAGS="-Zmiri-strict-provenance" cargo +nightly miri test -p shared-hashmap --lib --test map --test hostile
