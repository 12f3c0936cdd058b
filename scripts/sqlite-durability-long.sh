#!/usr/bin/env bash
# Release check: the SQLite SIGKILL durability test, run much longer than the
# ctest run (tests/sqlite_crash.c). A writer process bulk-loads batches and is
# killed with SIGKILL at random moments; after each kill the file must open,
# pass PRAGMA integrity_check and hold whole committed batches only.
#
# Usage: scripts/sqlite-durability-long.sh [KILLS] [MAX_DELAY_MS] [SEED]
#   KILLS         default 2000 (ctest runs 100)
#   MAX_DELAY_MS  default 200: longer runs between kills, bigger WAL files and
#                 checkpoints killed midway
#   SEED          default: from the clock; printed, to replay a failure
# Environment:
#   BUILD_DIR       build tree to use (default build-durability, configured
#                   and built here when missing)
#   KILLS_PER_FILE  kills before the file is started over (default 200)
#   DB_DIR          where the database file goes (default a fresh mktemp -d)
#   KG_CRASH_WRITER_OPTIONS  extra URI options for the writer, e.g.
#                   "synchronous=FULL" or "cache_size=-2000"
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-2000}
delay=${2:-200}
seed=${3:-$(( $(date +%s) % 100000 ))}
build=${BUILD_DIR:-build-durability}
per_file=${KILLS_PER_FILE:-200}
for v in "$kills" "$delay" "$seed" "$per_file"; do
	[[ "$v" =~ ^[0-9]+$ && "$v" -gt 0 ]] || { echo "arguments must be positive integers (got '$v')" >&2; exit 2; }
done
if [[ ! -x "$build/tests/sqlite_crash" ]]; then
	cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$build" -j2 --target sqlite_crash
fi
dir=${DB_DIR:-$(mktemp -d)}
mkdir -p "$dir"
echo "durability: $kills kills, delays up to $delay ms, seed $seed, file $dir/durability.db"
start=$(date +%s)
"$build/tests/sqlite_crash" "$dir/durability.db" "$kills" "$delay" "$seed" "$per_file"
echo "durability: passed in $(( $(date +%s) - start )) s"
[[ -n "${DB_DIR:-}" ]] || rmdir "$dir" 2>/dev/null || true
