#!/usr/bin/env bash
# The main job on the embedded default: build kgstore, load WordNet 3.0
# (Debian's wordnet-base) into a SQLite file and ask it questions
# (`kgstore demo`), then time the seed's workload on SQLite and memory.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target kgstore_cli
build/kgstore -s sqlite:wordnet.db demo --reload
build/kgstore bench --backend sqlite --n 10000
build/kgstore bench --backend memory --n 10000
