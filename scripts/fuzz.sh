#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/fuzz_*.c) with clang, ASan and UBSan in
# build-fuzz/ and runs each for SECONDS (default 60), starting from its seed
# corpus fuzz/corpus/NAME/. New inputs go to build-fuzz/corpus/NAME/ (the
# checked-in seeds are never modified); a crash or a broken invariant leaves
# build-fuzz/artifacts/NAME/crash-* and makes the script exit 1.
#
#   scripts/fuzz.sh [SECONDS] [NAME...]     e.g. scripts/fuzz.sh 1800 jsonl
#   FUZZ_JOBS=2 scripts/fuzz.sh 1800        two targets at a time
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DKG_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for src in fuzz/fuzz_*.c; do
    [ -e "$src" ] || { echo "fuzz: no targets in fuzz/"; exit 0; }
    n=$(basename "$src" .c); names+=("${n#fuzz_}")
  done
fi
mkdir -p build-fuzz/artifacts
run_one() {
  local n=$1 corpus=build-fuzz/corpus/$1 art=build-fuzz/artifacts/$1
  mkdir -p "$corpus" "$art"
  [ -d "fuzz/corpus/$n" ] && cp -n fuzz/corpus/"$n"/* "$corpus"/ 2>/dev/null || true
  if (cd build-fuzz && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      "fuzz/fuzz_$n" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2560 \
      -print_final_stats=1 -artifact_prefix="artifacts/$n/" "corpus/$n" \
      >"artifacts/$n/log" 2>&1); then
    printf '%-14s ok  %s\n' "$n" "$(grep -E '^stat::number_of_executed_units' "$art/log" | awk '{print $2 " execs"}'), $(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$art/log" | tail -1)"
  else
    printf '%-14s FAILED (%s/log):\n' "$n" "$art"
    tail -n 40 "$art/log"
    echo FAILED >"$art/failed"
  fi
}
jobs=${FUZZ_JOBS:-1}
rm -f build-fuzz/artifacts/*/failed
for n in "${names[@]}"; do
  run_one "$n" &
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
done
wait
if ls build-fuzz/artifacts/*/failed >/dev/null 2>&1; then exit 1; fi
