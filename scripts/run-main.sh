#!/usr/bin/env bash
# The main job on the embedded default: build kgstore, then load the
# benchmark workload (../shared/bench/WORKLOAD.md) into a SQLite file and
# the in-memory store and print the seed's four rows beside the original's.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target kgstore_cli
build/kgstore bench --backend sqlite --n 10000
build/kgstore bench --backend memory --n 10000
