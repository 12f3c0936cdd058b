#!/usr/bin/env bash
# bench-report.sh - writes docs/PERFORMANCE.md and docs/performance.svg from
# ONE run of `kgstore bench --report` over every backend, PostgreSQL on a
# throwaway server this script starts (scripts/pg-test-server.sh) and stops
# when it ends, also on failure or Ctrl-C.
#
#   scripts/bench-report.sh [BENCH OPTIONS...]
#
#   BUILD=dir     the build tree holding `kgstore` (default: build)
#   OUT=dir       where PERFORMANCE.md and performance.svg go (default: docs)
#   PIN=no        leave the PostgreSQL client and server where the scheduler
#                 puts them (default: both pinned to CPU 0, see the note)
# Extra options go to the program, e.g. --long (adds N = 10M for memory and
# SQLite: about an hour more and ~16 GB of RAM) or --runs 3. Run it on an
# idle machine: every other process moves the figures, the thread rows most
# (about 12 minutes on a 2-CPU VM without --long).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
out=${OUT:-$root/docs}
kgstore=$build/kgstore
die() { echo "bench-report.sh: $*" >&2; exit 1; }
[ -x "$kgstore" ] || die "no $kgstore: build first (cmake -S . -B build && cmake --build build -j2), or set BUILD=dir"
mkdir -p "$out"

# The socket path must stay short: a directory directly under /tmp.
pgdir=$(mktemp -d /tmp/kgbench.XXXXXX)
tmp=$(mktemp -d)
cleanup() {
	"$root/scripts/pg-test-server.sh" stop "$pgdir" >/dev/null 2>&1 || true
	rm -rf "$tmp" "$pgdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench-report.sh: starting a throwaway PostgreSQL in $pgdir" >&2
uri=$("$root/scripts/pg-test-server.sh" start "$pgdir" | tail -n 1)

pin=(--pin=0)
[ "${PIN:-yes}" = no ] && pin=()
cmd=("$kgstore" bench --report --backend all --uri "$uri" "${pin[@]}" --json
     --markdown="$tmp/tables.md" --svg "$tmp/performance.svg" "$@")
echo "bench-report.sh: ${cmd[*]}" >&2
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
"${cmd[@]}" >"$tmp/results.jsonl" || die "the benchmark failed (above); $out is unchanged"

# What the figures were taken on.
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
ncpu=$(nproc)
mem=$(awk '/^MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo)
pgver=$("${PGBIN:-/usr/lib/postgresql/15/bin}/postgres" --version 2>/dev/null || echo unknown)
sqlver=$(sqlite3 --version 2>/dev/null | cut -d' ' -f1 || echo unknown)
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null | head -n 1)
cc_ver=$("${cc:-cc}" --version 2>/dev/null | head -n 1 || true)
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null | head -n 1)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
load=$(cut -d' ' -f1-3 /proc/loadavg)
shown=("kgstore" bench --report --backend all --uri "postgresql:///kgtest?host=DIR&user=postgres" "${pin[@]}" "$@")

{
	cat <<EOF
# Performance

What kgstore costs over the engines underneath it, measured by one run of
\`kgstore bench\` (bench/) on the benchmark workload defined in
[bench/WORKLOAD.md](../bench/WORKLOAD.md) (N entities, 3N relations, random
numbers from splitmix64 started at 42). find_paths is timed over two sets of
100 pairs: \`find_paths_d5\`, random pairs, most of which no path of 5
relations joins (the search proves there is none), and
\`find_paths_reach_d5\`, pairs joined by a random walk of 2-5 relations (the
search finds paths).
Every figure stands beside the same job done **without kgstore**, in the
same run, on the same data:

| backend | the raw engine |
| --- | --- |
| memory | records copied into arrays, an open-addressing hash over the ids (get), CSR adjacency (neighbors), a backward BFS for distances plus a pruned depth-first walk (find_paths), one contiguous float array scanned with an 8-lane dot product (vector search) |
| sqlite | the same file schema and PRAGMAs (WAL, synchronous=NORMAL, 64 MB cache), one prepared statement per job in a bare loop: the same INSERTs (one transaction for bulk, autocommit for single adds), the same primary-key SELECT, a depth-5 recursive CTE for paths; a connection per reader thread |
| postgres | the same table definitions and indexes (schema \`kg_raw\`), a bare text-format COPY, a prepared SELECT one call at a time and the same SELECTs pipelined (libpq pipeline mode, 100 a sync), a depth-5 recursive CTE for paths; a connection per reader thread |

The ratio is kgstore / raw: for times above 1 means kgstore is slower, for
rows/s and ops/s below 1 means kgstore is slower. The benchmark also checks,
untimed, that kgstore and the raw engine find the same number of paths (for
every pair of both sets) and neighbors, and that kgstore finds a path for
every joined pair, and flags a WARNING in the note when they do not.

## The run

- Started $start on: $cpu, $ncpu CPUs, $mem RAM, load average before the run $load
- $pgver (throwaway cluster, unix socket, fsync=off as the test server runs); SQLite $sqlver; ${cc_ver:-compiler unknown}, build type ${btype:-unknown}; kgstore commit $commit$dirty
- Command (scripts/bench-report.sh):

      ${shown[*]}

- PostgreSQL placement: on these virtual machines a round trip costs ~10 µs
  when the client and its server process share a CPU and ~80-90 µs when they
  do not. With \`--pin\` (the script's default) the PostgreSQL runs put the
  benchmark process and every server process on CPU 0, so the figures are
  repeatable; \`PIN=no\` leaves the placement to the scheduler, and then only
  figures from the same run compare. Memory and SQLite are never pinned. The
  placement used is stated at the top of the tables below.

## Tables

EOF
	cat "$tmp/tables.md"
	cat <<'EOF'

## The plot

![time against N, log scales, one line per backend; dashed: raw engine](performance.svg)

`performance.svg`, drawn by the program itself (`--svg`): bulk load, get_entity,
neighbors and find_paths (both pair sets) against N, log scales, one colour per backend, solid
for kgstore and dashed for the raw engine.

## How to reproduce

```sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build -j2
scripts/bench-report.sh              # N = 10K, 100K, 1M; rewrites docs/PERFORMANCE.md
scripts/bench-report.sh --long       # adds N = 10M for memory and SQLite
build/kgstore bench --backend sqlite --n 10000 --runs 5     # one backend, a quick table
build/kgstore bench --report --json --uri postgresql://...  # one JSON object per figure
```

Each (backend, N) runs in a child process of its own, so `peak_rss` is that
child's peak RSS (the workload's arrays included), and `store_memory` is the
heap in use after the bulk load minus before it (glibc's mallinfo2; for
SQLite the page caches are included, for PostgreSQL it is the client's
only). kgstore's store is closed before the raw engine loads, so the two
never hold the graph at once (except at the first N of a --report run,
where the threads and mixed rows need both). Medians over 5
runs at N <= 20K, 3 up to 200K, 1 above. Text search has no raw counterpart
(nothing bare scores the same four methods), so its ratio is empty; the
threads rows are total lookups per second over 1, 2 and 4 threads sharing one
kgstore handle (raw: a reader each); the mixed rows are 2 reader threads
while one thread adds entities one call at a time.

## Notes on the targets

Targets marked **no** in the table above are open work. What the profiles
(perf, strace) and experiments show about each:

- **Noise.** Figures move by up to ±30 % between runs on this shared 2-CPU
  VM. A target within that margin of its limit may flip from one run to the
  next: rerun on an idle machine before reading much into it.
- **Thread scaling (memory and SQLite, 2 threads >= 1.7x 1).** The raw
  engines do not reach it either in the same run (their ratio is in the
  table: a bare hash lookup per thread, a bare SQLite connection per
  thread), so what is measured here is mostly how much of the second vCPU
  the VM gives. kgstore's memory backend no longer shares a counter between
  reader threads (src/backends/memory/brlock.h: a slot per thread, the
  pthread_rwlock before it gave 0.7x with 2 threads); SQLite readers each
  use a connection of the read pool.
- **memory, neighbors (5-10x) and memory use (1.7-2x the raw layout).**
  neighbors hands back a malloc'd copy of every neighboring entity (the API
  returns copies; the raw engine only walks the CSR), plus a sort to remove
  duplicates. The store's heap holds about 1.1 GB per million entities with
  their 3 million relations, so 10M + 30M would need about 11 GB against the
  6 GB target; fewer allocations per record (strings in one block with the
  record, interned types, 32-bit endpoints) is the way down.
- **memory, vector search.** Met since the cosine runs in four lanes
  (4.3 ms -> 2.5 ms over 100K x 64); the rest of the gap to the raw scan is
  each embedding living in its own record (a pointer chase per row).
- **SQLite, bulk load at 1M (target 300K rows/s).** The bare prepared loop
  with the original's eight indexes (random text keys) reaches ~70-80K
  rows/s at N = 1M here. kgstore drops the secondary indexes for a large
  load and builds them once before the commit (sqlite.c, "Bulk loads"), in
  small sorted runs on worker threads, which is why it beats the bare loop
  ~2.5-3x (~180-220K rows/s). 300K rows/s leaves 13 s for the 4M rows; the
  five relation indexes alone take ~6 s to build over 3M rows (sqlite3
  shell, same settings) and the inserts with their text primary keys most
  of the rest: it would need fewer indexes than the original's schema has.
- **SQLite, add_entity x1K and get_entity.** The bare
  loop needs about the same (1,000 commits in WAL mode each write a frame for
  each of 5 b-trees; each read transaction takes 2 fcntl locks on the -shm
  file), so these targets sit at the engine's own floor on this VM.
- **PostgreSQL, full load at 1M (target 100K rows/s).** The bare COPY itself
  reaches ~30-45K rows/s there with the original's GIN indexes on both JSONB
  columns, client and server sharing one CPU (`--pin`); kgstore matches it.
  The target needs the GIN maintenance out of the load (building the GIN
  indexes after it), or both CPUs for the server.
- PostgreSQL thread rows are pinned to one CPU when `--pin` is on, so they
  show no scaling by construction; the scaling targets are for memory and
  SQLite.
- The raw side of the memory mixed rows takes glibc's default
  pthread_rwlock per call, which lets readers starve the writer, so those
  two ratios say little.
- Neither side runs ANALYZE after the bulk load; autovacuum may, at a moment
  of its choosing, and plans (the recursive CTEs above all) can change when
  it does.

<details><summary>The run's JSON lines</summary>

```
EOF
	cat "$tmp/results.jsonl"
	cat <<'EOF'
```

</details>
EOF
} >"$tmp/PERFORMANCE.md"
# Both files from the same run, replaced together.
mv "$tmp/performance.svg" "$out/performance.svg"
mv "$tmp/PERFORMANCE.md" "$out/PERFORMANCE.md"
echo "bench-report.sh: wrote $out/PERFORMANCE.md and $out/performance.svg" >&2
