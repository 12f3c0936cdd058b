#!/bin/sh
# The kgstore command's --json output is JSON whatever the strings hold:
# ids, types, sources and property values with backslashes, quotes, control
# characters and non-ASCII, in every command that prints records. Each
# output line is read back with Python's json module and must hold the
# strings as they were stored.
#   cli_json.sh KGSTORE WORKDIR
set -u
KG=$1
dir=$2
rm -rf "$dir" && mkdir -p "$dir"
db="sqlite:$dir/esc.db"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# The records, written by Python so that the file itself is right.
python3 - "$dir/esc.jsonl" <<'EOF'
import json, sys
A, D = 'a\\b"c \u00e9', 'd\\'
recs = [
    {"type": "entity", "data": {"id": A, "entity_type": 'T\\"y', "source": 'src\\ \t\u0001 x',
                                "properties": {"p": 'back\\slash "q" \u0001\u001f\n \u00e9 fox'}}},
    {"type": "entity", "data": {"id": D, "entity_type": 'T\\"y', "properties": {"k\\": "\\"}}},
    {"type": "relation", "data": {"id": 'r\\1"', "relation_type": 'R\\', "source_id": A, "target_id": D,
                                  "properties": {"w": "\\"}, "weight": 0.5, "source": 'rs\\'}},
]
with open(sys.argv[1], "w") as f:
    for r in recs:
        f.write(json.dumps(r) + "\n")
EOF
"$KG" -q -s "$db" import "$dir/esc.jsonl" >/dev/null 2>&1 || fail "import of $dir/esc.jsonl failed"

# check NAME WANT... -- command: every line of the output is JSON and the
# strings WANT (Python literals) are among the values (and keys) it holds.
check() {
	name=$1
	shift
	wants=""
	while [ "$1" != "--" ]; do
		wants="$wants$1
"
		shift
	done
	shift
	"$@" >"$dir/out" 2>"$dir/err"
	rc=$?
	[ $rc -eq 0 ] || { fail "$name: '$*' exited $rc: $(head -3 "$dir/err")"; return; }
	WANTS=$wants python3 - "$dir/out" "$name" <<'EOF' || fails=$((fails + 1))
import ast, json, os, sys
path, name = sys.argv[1], sys.argv[2]
seen = set()
def walk(v):
    if isinstance(v, str):
        seen.add(v)
    elif isinstance(v, dict):
        for k, x in v.items():
            seen.add(k)
            walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)
text = open(path, encoding="utf-8", errors="strict").read()
lines = [l for l in text.split("\n") if l.strip()]
if not lines:
    print(f"FAIL: {name}: no output"); sys.exit(1)
try:  # one document (a list over several lines), or one per line
    walk(json.loads(text))
except ValueError:
    for l in lines:
        try:
            walk(json.loads(l))
        except ValueError as e:
            print(f"FAIL: {name}: a line is not JSON ({e}): {l!r}"); sys.exit(1)
for w in os.environ["WANTS"].split("\n"):
    if w and ast.literal_eval(w) not in seen:
        print(f"FAIL: {name}: {ast.literal_eval(w)!r} is not in the output: {lines[0][:300]!r}"); sys.exit(1)
EOF
}

A='a\b"c é'
check get "'a\\\\b\"c \\u00e9'" "'T\\\\\"y'" "'src\\\\ \\t\\u0001 x'" "'back\\\\slash \"q\" \\u0001\\u001f\\n \\u00e9 fox'" \
	-- "$KG" -s "$db" get "$A" --json
check relation "'r\\\\1\"'" "'R\\\\'" "'d\\\\'" "'rs\\\\'" "'\\\\'" -- "$KG" -s "$db" --json relation 'r\1"'
check neighbors "'d\\\\'" "'k\\\\'" -- "$KG" -s "$db" neighbors "$A" --json
check paths "'a\\\\b\"c \\u00e9'" "'d\\\\'" "'r\\\\1\"'" -- "$KG" -s "$db" paths "$A" 'd\' --json
check list "'a\\\\b\"c \\u00e9'" "'d\\\\'" -- "$KG" -s "$db" list --json
check list-offset "'d\\\\'" -- "$KG" -s "$db" list --limit 1 --offset 1 --json
check search "'a\\\\b\"c \\u00e9'" -- "$KG" -s "$db" search fox --json
check stats "'T\\\\\"y'" "'R\\\\'" -- "$KG" -s "$db" stats --json

[ $fails -eq 0 ] || { echo "$fails checks failed"; exit 1; }
echo "all cli json checks passed"
