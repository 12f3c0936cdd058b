#!/usr/bin/env bash
# Line and branch coverage of the library and the kgstore command under the
# whole test suite: a gcov build (-DKG_COVERAGE=ON) in build-cov/, ctest,
# then lcov. Prints a table per directory; the HTML report goes to
# build-cov/coverage-html/index.html.
#
#   scripts/coverage.sh            build, run every test, report
#   scripts/coverage.sh --report   report on the counters of the last run
#   COVERAGE_CTEST_ARGS="-R unit_" scripts/coverage.sh   a subset of the tests
#
# Exit status 1 if a test fails (the report is still printed).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=build-cov
jobs=${COVERAGE_JOBS:-$(nproc)}
report_only=0
[ "${1:-}" = "--report" ] && report_only=1
command -v lcov >/dev/null || { echo "coverage: lcov is not installed (scripts/install-deps.sh)" >&2; exit 2; }

tests_rc=0
if [ $report_only -eq 0 ]; then
	cmake -S . -B "$build" -DKG_COVERAGE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null || exit 2
	cmake --build "$build" -j"$jobs" >/dev/null || exit 2
	lcov --quiet --zerocounters --directory "$build"
	# shellcheck disable=SC2086
	(cd "$build" && ctest --output-on-failure -j"$jobs" -E '_long$' ${COVERAGE_CTEST_ARGS:-}) || tests_rc=1
fi

info=$build/coverage.info
lcov --quiet --capture --directory "$build" --base-directory "$root" --rc lcov_branch_coverage=1 \
	--output-file "$build/coverage-all.info" 2>/dev/null || { echo "coverage: lcov capture failed" >&2; exit 2; }
lcov --quiet --rc lcov_branch_coverage=1 --extract "$build/coverage-all.info" "$root/src/*" \
	--output-file "$info" >/dev/null || exit 2
genhtml --quiet --branch-coverage --output-directory "$build/coverage-html" "$info" >/dev/null 2>&1 || true

# Per directory (and src/backends as a whole): lines and branches hit/found.
awk -v root="$root/" '
	/^SF:/ { f = substr($0, 4); sub(root, "", f); n = split(f, p, "/");
	         dir = p[1]; for (i = 2; i < n; i++) dir = dir "/" p[i];
	         dirs[dir] = 1; if (dir ~ /^src\/backends\//) dirs["src/backends"] = 1 }
	/^LF:/ { lf[dir] += substr($0, 4); if (dir ~ /^src\/backends\//) lf["src/backends"] += substr($0, 4); tlf += substr($0, 4) }
	/^LH:/ { lh[dir] += substr($0, 4); if (dir ~ /^src\/backends\//) lh["src/backends"] += substr($0, 4); tlh += substr($0, 4) }
	/^BRF:/ { bf[dir] += substr($0, 5); if (dir ~ /^src\/backends\//) bf["src/backends"] += substr($0, 5); tbf += substr($0, 5) }
	/^BRH:/ { bh[dir] += substr($0, 5); if (dir ~ /^src\/backends\//) bh["src/backends"] += substr($0, 5); tbh += substr($0, 5) }
	function pct(h, f) { return f ? sprintf("%5.1f%%", 100.0 * h / f) : "    -" }
	END {
		printf "%-22s %15s %7s   %15s %7s\n", "directory", "lines", "", "branches", ""
		m = 0; for (d in dirs) order[++m] = d
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (order[j] < order[i]) { t = order[i]; order[i] = order[j]; order[j] = t }
		for (i = 1; i <= m; i++) { d = order[i]
			printf "%-22s %7d/%-7d %7s   %7d/%-7d %7s\n", d, lh[d], lf[d], pct(lh[d], lf[d]), bh[d], bf[d], pct(bh[d], bf[d]) }
		printf "%-22s %7d/%-7d %7s   %7d/%-7d %7s\n", "total", tlh, tlf, pct(tlh, tlf), tbh, tbf, pct(tbh, tbf)
	}' "$info"
echo "coverage: HTML report in $build/coverage-html/index.html"
exit $tests_rc
