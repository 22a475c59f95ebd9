#!/usr/bin/env bash
# The core's unit tests, and the single-threaded and hostile-region integration tests, under Miri
# with strict provenance. The unit tests run again on a 32-bit big-endian target, which has no
# 64-bit atomics: the other width of the tag word and byte order (`region.rs`). Miri interprets
# the code and links nothing, so the C code that a dev-dependency (LMDB, for the benches) builds
# for that target may come from the host's compiler.
set -euo pipefail
MIRIFLAGS="-Zmiri-strict-provenance" cargo +nightly miri test -p shared-hashmap --lib --test map --test hostile
CC_powerpc_unknown_linux_gnu=gcc AR_powerpc_unknown_linux_gnu=ar MIRIFLAGS="-Zmiri-strict-provenance" \
    cargo +nightly miri test -p shared-hashmap --lib --target powerpc-unknown-linux-gnu
