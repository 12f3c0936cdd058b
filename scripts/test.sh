#!/usr/bin/env bash
# The whole test suite: release build (gcc) + ctest, a clang -Werror build,
# an ASan+UBSan build + ctest, and valgrind over the memory conformance run.
# PostgreSQL tests start their own throwaway servers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)

echo "== gcc release build + tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

echo "== clang build (warnings are errors)"
cmake -S . -B build-clang -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-clang -j"$jobs"

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build + tests"
cmake -S . -B build-asan -DKG_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure -j"$jobs" -E '_long$')

echo "== valgrind (leaks and invalid accesses) over the memory conformance suite"
valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
  build/tests/conformance memory: >/dev/null
echo "valgrind: clean"

echo "== fuzz targets (libFuzzer, ${KG_FUZZ_SECONDS:-30} s each)"
scripts/fuzz.sh "${KG_FUZZ_SECONDS:-30}"

echo "== summary"
(cd build && ctest -N | tail -1)
