#!/usr/bin/env bash
# tests/test_rdump.sh: rdump's views on a real database (made by taskman),
# its SQL loaded into sqlite3, and a damaged file.
# Usage: test_rdump.sh PATH/TO/rdump PATH/TO/taskman
set -u
rdump=$1
taskman=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/rl-rdump-XXXXXX")
db=$dir/tasks.rdb
trap 'rm -rf "$dir"' EXIT
passed=0
failed=0

check() { # NAME STATUS-WANTED PATTERN -- ARGS
    local name=$1 want=$2 pattern=$3 out st
    shift 4
    out=$("$rdump" "$@" 2>&1)
    st=$?
    if [ "$st" -eq "$want" ] && printf '%s\n' "$out" | grep -qE -- "$pattern"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $name (status $st, wanted $want; pattern /$pattern/):"
        printf '%s\n' "$out" | head -20 | sed 's/^/    /'
    fi
}

"$taskman" "$db" > /dev/null
"$taskman" "$db" add 1 "It's a \"quoted\" title" 2 > /dev/null

check "summary: version and blocks"  0 "^format version +1" -- "$db"
check "summary: the newest slot"    0 "<- newest" -- "$db"
check "summary: tables with rows"    0 "^  tasks +7 rows" -- "$db"
check "blocks: B+tree nodes listed"  0 "btree .* ok$" -- --blocks "$db"
check "check: a healthy file"        0 "^check: ok$" -- --check "$db"
check "schema: foreign keys"         0 "REFERENCES \"projects\"\(\"id\"\) ON DELETE CASCADE" -- --schema "$db"
check "schema: indexes"              0 "CREATE INDEX \"tasks_status\"" -- --schema "$db"
check "rows: a readable table"       0 "^\(2 of 7 rows\)$" -- --rows tasks --limit 2 "$db"
check "rows: unknown table"          1 "no such table" -- --rows nope "$db"

# --sql loads into sqlite3 as it is and gives the same rows.
if "$rdump" --sql "$db" | sqlite3 "$dir/copy.sqlite" 2> "$dir/sql.err"; then
    n=$(sqlite3 "$dir/copy.sqlite" "SELECT count(*) FROM tasks; SELECT title FROM tasks WHERE id = 7;" | tr '\n' '|')
    if [ "$n" = "7|It's a \"quoted\" title|" ]; then passed=$((passed + 1));
    else failed=$((failed + 1)); echo "FAIL: sql: sqlite3 sees '$n'"; fi
else
    failed=$((failed + 1)); echo "FAIL: sql: sqlite3 refused it:"; sed 's/^/    /' "$dir/sql.err"
fi

# A damaged block: the summary still shows what it can, --check names it.
cp "$db" "$dir/bad.rdb"
victim=$("$rdump" --blocks "$db" | awk '$2 == "btree" && $NF == "ok" { print $1; exit }')
if [ -z "$victim" ]; then
    failed=$((failed + 1)); echo "FAIL: damaged: no live B+tree block to damage"; victim=3
fi
printf 'XXXXXXXX' | dd of="$dir/bad.rdb" bs=1 seek=$((4096 * victim + 100)) conv=notrunc 2> /dev/null
check "damaged: summary still works"  0 "root slot 0" -- "$dir/bad.rdb"
check "damaged: blocks view names it" 0 "^$victim +.*checksum" -- --blocks "$dir/bad.rdb"
check "damaged: check reports it"     1 "checksum mismatch" -- --check "$dir/bad.rdb"
# Damage to a block of the newest commit looks like a torn commit: opening
# falls back to the commit before, and both views say so.
cp "$db" "$dir/torn.rdb"
newest=$("$rdump" --blocks "$db" | awk 'NR > 1 && $NF == "ok" && $5 + 0 >= top { top = $5 + 0; b = $1 } END { print b }')
printf 'XXXXXXXX' | dd of="$dir/torn.rdb" bs=1 seek=$((4096 * newest + 100)) conv=notrunc 2> /dev/null
check "torn: summary says passed over" 0 "opens at +txn [0-9]+  \(the newer slot is passed over" -- "$dir/torn.rdb"
check "torn: check notes it"          0 "note: the newer root slot .* block $newest of its commit" -- --check "$dir/torn.rdb"
check "not a database"                1 "not a relatable database" -- "$0"

echo "rdump: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
