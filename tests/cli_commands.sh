#!/bin/sh
# The kgstore command end to end: the WordNet demo into a SQLite file, then
# every read subcommand on it, in human and --json form, with exit codes.
#   cli_commands.sh KGSTORE WORKDIR
set -u
KG=$1
dir=$2
rm -rf "$dir" && mkdir -p "$dir"
db="sqlite:$dir/wn.db"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect CODE PATTERN -- command...: exit code CODE and output matching PATTERN (grep -E).
expect() {
	code=$1 pat=$2
	shift 3
	out=$("$@" 2>&1)
	rc=$?
	[ "$rc" -eq "$code" ] || fail "'$*' exited $rc, expected $code: $(echo "$out" | head -5)"
	if [ -n "$pat" ] && ! printf '%s\n' "$out" | grep -Eq -- "$pat"; then
		fail "'$*' printed no line matching /$pat/: $(echo "$out" | head -20)"
	fi
}

expect 0 'Loaded 117659 synsets and 377583 relations' -- "$KG" -q -s "$db" demo
expect 0 'dog\.n\.01 -HYPERNYM-> canine\.n\.02 -HYPERNYM-> carnivore\.n\.01 -HYPONYM-> feline\.n\.01 -HYPONYM-> cat\.n\.01' -- "$KG" -s "$db" demo
expect 0 'platform\.n\.03' -- "$KG" -s "$db" demo
expect 0 'already in the store' -- "$KG" -s "$db" demo
expect 0 '^\{"id": "dog\.n\.01", "entity_type": "Noun", "properties": \{"words": \["dog"' -- "$KG" -s "$db" get dog.n.01 --json
expect 0 '^dog\.n\.01 \(Noun\)' -- "$KG" -s "$db" get dog.n.01
expect 2 "entity 'no.such.id' not found" -- "$KG" -s "$db" get no.such.id
expect 0 '"relation_type": "HYPERNYM", "source_id": "dog\.n\.01", "target_id": "canine\.n\.02"' -- "$KG" -s "$db" --json relation 'dog.n.01|HYPERNYM|canine.n.02'
expect 0 '^\[\{"nodes": \[\{"id": "dog\.n\.01"' -- "$KG" -s "$db" paths dog.n.01 cat.n.01 --max-paths 1 --json
expect 0 '^\(0 paths of at most 1 edges\)' -- "$KG" -s "$db" paths dog.n.01 cat.n.01 --max-depth 1
expect 0 '^-HYPERNYM-> canine\.n\.02' -- "$KG" -s "$db" neighbors dog.n.01 --type HYPERNYM
expect 0 '^<-ANTONYM- bad\.a\.01' -- "$KG" -s "$db" neighbors good.a.01 --direction in --type ANTONYM
expect 0 '"id": "canine\.n\.02"' -- "$KG" -s "$db" neighbors dog.n.01 --type HYPERNYM --json
expect 1 'is out, in or both' -- "$KG" -s "$db" neighbors dog.n.01 --direction sideways
n=$("$KG" -s "$db" list --type Verb --limit 3 --offset 2 | wc -l)
[ "$n" -eq 3 ] || fail "list --limit 3 printed $n lines"
n=$("$KG" -s "$db" list --type Adverb --limit 0 --json | wc -l)
[ "$n" -eq 3621 ] || fail "list --limit 0 streamed $n adverbs, expected 3621"
expect 0 '"entity_count": 117659, "relation_count": 377583' -- "$KG" -s "$db" stats --json
expect 0 'feline\.n\.01' -- "$KG" -s "$db" search feline -k 3
expect 0 'dangling relations: 0: ok' -- "$KG" -s "$db" check
expect 0 '"schema_version": 1, ' -- "$KG" -s "$db" check --json
expect 3 'tenant' -- "$KG" -s "$db" --tenant 'bad tenant!' stats
expect 1 'unknown' -- "$KG" -s "$db" stats --no-such-option
expect 1 'unknown command' -- "$KG" no-such-command
printf 'this is a text file, not a database, and kgstore must leave it alone\n' >"$dir/not-a-db"
expect 5 'not-a-db' -- "$KG" -s "sqlite:$dir/not-a-db" stats
grep -q 'must leave it alone' "$dir/not-a-db" || fail "the non-database file was modified"
for cmd in init get relation neighbors paths list search stats check demo bench import export migrate verify degrade; do
	expect 0 'usage: kgstore' -- "$KG" "$cmd" --help
done

# The seed's environment opening: testing -> sqlite::memory:, bad -> exit 3.
expect 0 '^sqlite store, global namespace: 0 entities' -- env ENVIRONMENT=testing "$KG" stats
expect 3 'ENVIRONMENT=.bogus. is not one of' -- env ENVIRONMENT=bogus "$KG" stats

# Moving data: the adverbs (and relations among them) out and into a new
# file, compared by verify; a truncated file changes nothing.
expect 0 'adv.jsonl.gz: 3621 entities, 710 relations, gzip' -- "$KG" -s "$db" export "$dir/adv.jsonl.gz" --type Adverb
expect 0 '3621 entities' -- "$KG" -s "sqlite:$dir/adv.db" import "$dir/adv.jsonl.gz"
expect 0 '"entity_count": 3621' -- "$KG" -s "sqlite:$dir/adv.db" stats --json
expect 0 '^equal' -- "$KG" verify "sqlite:$dir/adv.db" "sqlite:$dir/adv.db"
expect 5 '' -- "$KG" verify "sqlite:$dir/adv.db" "$db"
expect 0 'verified' -- "$KG" migrate "sqlite:$dir/adv.db" "sqlite:$dir/adv2.db"
expect 0 '^equal' -- "$KG" verify "sqlite:$dir/adv.db" "sqlite:$dir/adv2.db"
expect 0 '' -- "$KG" migrate "sqlite:$dir/adv2.db" "$dir/adv2.json"
# Into the original's per-tenant layout (tenant t1 -> tenant_t1_* tables) and back.
expect 0 '3621 entities' -- "$KG" -s "sqlite:$dir/adv.db" --tenant t1 import "$dir/adv.jsonl.gz"
expect 0 'verified' -- "$KG" migrate "sqlite:$dir/adv.db" "sqlite:$dir/tab.db?tenancy=tables"
expect 0 '^3621$' -- sqlite3 "$dir/tab.db" "SELECT count(*) FROM tenant_t1_entities"
expect 0 '^equal' -- "$KG" verify "sqlite:$dir/tab.db" "sqlite:$dir/adv.db"
expect 3 'tenancy=shared' -- "$KG" -s "sqlite:$dir/adv.db?tenancy=tables" stats
expect 0 '"entities"' -- head -c 100 "$dir/adv2.json"
head -c 20000 "$dir/adv.jsonl.gz" >"$dir/cut.jsonl.gz"
expect 5 'cut\.jsonl\.gz' -- "$KG" -s "sqlite:$dir/adv2.db" import "$dir/cut.jsonl.gz" --tenant t1
expect 0 '"entity_count": 0' -- "$KG" -s "sqlite:$dir/adv2.db" --tenant t1 stats --json
expect 0 'none' -- "$KG" degrade status --journal "$dir/no-journal"

# A store the original system (or hand-written SQL) left inconsistent.
sqlite3 "$dir/wn.db" "INSERT INTO relations (id, tenant_id, relation_type, source_id, target_id, properties)
                      VALUES ('dangling-1', NULL, 'X', 'dog.n.01', 'gone.n.01', '{}')" ||
	fail "sqlite3 could not write the test row"
expect 5 'dangling relation dangling-1' -- "$KG" -s "$db" check

# Vector search on a small in-memory store is covered by the conformance
# suite; here: a bad vector is a usage error.
expect 1 'numbers separated by commas' -- "$KG" -s memory: search --vector 0.1,abc

[ $fails -eq 0 ] || { echo "$fails checks failed"; exit 1; }
echo "all cli checks passed"
