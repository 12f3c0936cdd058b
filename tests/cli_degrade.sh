#!/bin/sh
# `kgstore degrade status|replay` on a journal an application left behind
# (written by degrade_journal_writer while its primary was down):
#   cli_degrade.sh KGSTORE WRITER WORKDIR
set -u
KG=$1 WRITER=$2 dir=$3
rm -rf "$dir" && mkdir -p "$dir"
j="$dir/app.journal" db="sqlite:$dir/primary.db"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect() {
	code=$1 pat=$2
	shift 3
	out=$("$@" 2>&1)
	rc=$?
	[ "$rc" -eq "$code" ] || fail "'$*' exited $rc, expected $code: $out"
	printf '%s\n' "$out" | grep -Eq -- "$pat" || fail "'$*' printed no line matching /$pat/: $out"
}

"$WRITER" "$j" 5 || fail "the journal writer failed"
expect 0 '6 records, 6 pending replay' -- "$KG" -s "$db" degrade status --journal "$j"
expect 0 'primary .*: reachable' -- "$KG" -s "$db" degrade status --journal "$j"
expect 2 'not found' -- "$KG" -s "$db" get j3
expect 0 ': 6 applied, 0 already there, 0 conflicts, 0 rejected, 0 remaining' -- "$KG" -s "$db" degrade replay --journal "$j"
expect 0 '"id": "j3", "entity_type": "Journaled", "properties": \{"while": "degraded"\}' -- "$KG" -s "$db" get j3 --json
expect 0 '^jr: j0 -NEXT-> j1' -- "$KG" -s "$db" relation jr
expect 0 '"pending": 0' -- "$KG" -s "$db" degrade status --journal "$j" --json
# Again: nothing left, nothing written twice.
expect 0 ': 0 applied' -- "$KG" -s "$db" degrade replay --journal "$j"
expect 0 '"entity_count": 5, "relation_count": 1' -- "$KG" -s "$db" stats --json
expect 1 'status or replay' -- "$KG" -s "$db" degrade rewind --journal "$j"
[ $fails -eq 0 ] || { echo "$fails checks failed"; exit 1; }
echo "all degrade cli checks passed"
