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
# More commits: blocks from the commit areas are carried home, and the
# ones changed after that leave free blocks behind.
for task in 1 2 3 4; do "$taskman" "$db" status $task done > /dev/null; done

check "summary: version and blocks"  0 "^format version +5" -- "$db"
check "summary: the newest slot"    0 "<- newest" -- "$db"
check "summary: tables with rows"    0 "^  tasks +7 +2 +3 +[0-9.]+% 0 blocks$" -- "$db"
check "summary: btree by role"       0 "^    btree +11 \(tables 4, indexes 7\)$" -- "$db"
check "indexes: one line each"       0 "^tasks_status +tasks +status +no +7 +1 +1 +[0-9.]+%$" -- --indexes "$db"
check "space: tables and indexes"    0 "^  tasks_project_fk \(index\) +7 +1 +1 +0 " -- --space "$db"
check "tombstones: the space view"   0 "^B\+tree bytes: [0-9]+ used, [0-9]+ free" -- --tombstones "$db"
# Every block after the root area is in use, free, or left by a commit
# that did not finish; so are the blocks of the commit areas (inside the
# root area) that the newest commits wrote; in-use blocks add up by type.
"$rdump" "$db" > "$dir/summary.out"
sum=$(awk '/^blocks / { total = $2; root = $5 + 0 } /^  (in use|free|not in use) / { n += $NF }
           /^  of which in the commit areas / { areas = $NF }
           /^    / { types += $2 } /^  in use / { inuse = $3 }
           END { print (root + n - areas == total && types == inuse && inuse > 0) ? "ok" : "bad " total " " root " " n " " areas " " types " " inuse }' "$dir/summary.out")
if [ "$sum" = ok ]; then passed=$((passed + 1));
else failed=$((failed + 1)); echo "FAIL: summary: block counts do not add up ($sum)"; cat "$dir/summary.out"; fi
check "blocks: B+tree nodes listed"  0 "btree .* ok$" -- --blocks "$db"
check "check: a healthy file"        0 "^check: ok$" -- --check "$db"
check "schema: foreign keys"         0 "REFERENCES \"projects\"\(\"id\"\) ON DELETE CASCADE" -- --schema "$db"
check "schema: indexes"              0 "CREATE INDEX \"tasks_status\"" -- --schema "$db"
check "rows: a readable table"       0 "^\(2 of 7 rows\)$" -- --rows tasks --limit 2 "$db"
check "rows: unknown table"          1 "no such table" -- --rows nope "$db"

# The raw walks: the map, the freelist, one chain, the picture and the
# graph. Small commits put what they change in the commit areas, and carry
# it home into blocks the commits before freed, so the task file has no
# free block: blockdemo's file (a chain rewritten in the middle) has.
"$(dirname "$taskman")/blockdemo" "$dir/blocks.rdb" > /dev/null
schema_l=$("$rdump" --map "$db" | awk '$3 == "schema" { print $1; exit }')
nfree=$("$rdump" "$dir/blocks.rdb" | sed -n 's/^  free  *\([0-9]*\)$/\1/p')
check "map: the schema chain is mapped" 0 "^${schema_l:-x} +[0-9]+ +schema +${schema_l:-x} +ok$" -- --map "$db"
check "freelist: its count"            0 "^\(txn [0-9]+: $nfree free blocks\)$" -- --freelist "$dir/blocks.rdb"
check "chain: the schema chain"        0 "^[0-9]+ +schema +${schema_l:-x} +${schema_l:-x} .* ok$" -- --chain "${schema_l:-1}" "$db"
check "chain: not mapped"              1 "logical 999999 is not in the map" -- --chain 999999 "$db"
listed=$("$rdump" --freelist "$dir/blocks.rdb" | awk '/^[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+$/ { n += $2 } END { print n + 0 }')
if [ "$nfree" -gt 0 ] && [ "$listed" -eq "$nfree" ]; then passed=$((passed + 1));
else failed=$((failed + 1)); echo "FAIL: freelist: its runs hold $listed blocks, summary says '$nfree'"; fi
"$rdump" --svg "$dir/pic.svg" "$dir/blocks.rdb" > /dev/null
nblocks=$(( $(stat -c %s "$dir/blocks.rdb") / 4096 ))
cells=$(grep -c '^<rect .*<title>block ' "$dir/pic.svg")
freecells=$(grep -c '<title>block [0-9]*: free</title>' "$dir/pic.svg")
if [ "$cells" -eq "$nblocks" ] && [ "$freecells" -eq "$nfree" ] && tail -1 "$dir/pic.svg" | grep -q '^</svg>$'; then
    passed=$((passed + 1))
else failed=$((failed + 1)); echo "FAIL: svg: $cells cells ($nblocks blocks), $freecells free ($nfree)"; fi
mapped=$("$rdump" --map "$db" | grep -cE '^[0-9]+ +[0-9]+ ')
nodes=$("$rdump" --dot "$db" | grep -c 'label="owner')
if [ "$nodes" -eq "$mapped" ] && [ "$mapped" -gt 0 ]; then passed=$((passed + 1));
else failed=$((failed + 1)); echo "FAIL: dot: $nodes nodes for $mapped mapped blocks"; fi

# --json: every view is valid JSON (sqlite3's json_valid judges).
for view in "" --blocks --map --freelist "--chain ${schema_l:-1}" --check --schema "--rows tasks" \
            --indexes --space; do
    # shellcheck disable=SC2086
    "$rdump" --json $view "$db" > "$dir/view.json"
    v=$(sqlite3 :memory: "SELECT json_valid(CAST(readfile('$dir/view.json') AS TEXT));")
    if [ "$v" = 1 ]; then passed=$((passed + 1));
    else failed=$((failed + 1)); echo "FAIL: json: '--json $view' is not valid JSON"; head -5 "$dir/view.json"; fi
done
check "json: rows as objects"          0 '"title": "It.s a \\"quoted\\" title"' -- --json --rows tasks "$db"

# --sql loads into sqlite3 as it is and gives the same rows.
if "$rdump" --sql "$db" | sqlite3 "$dir/copy.sqlite" 2> "$dir/sql.err"; then
    n=$(sqlite3 "$dir/copy.sqlite" "SELECT count(*) FROM tasks; SELECT title FROM tasks WHERE id = 7;" | tr '\n' '|')
    n="$n$(sqlite3 "$dir/copy.sqlite" "SELECT count(*) FROM sqlite_master WHERE name = 'tasks_project_fk';")"
    if [ "$n" = "7|It's a \"quoted\" title|1" ]; then passed=$((passed + 1));
    else failed=$((failed + 1)); echo "FAIL: sql: sqlite3 sees '$n'"; fi
else
    failed=$((failed + 1)); echo "FAIL: sql: sqlite3 refused it:"; sed 's/^/    /' "$dir/sql.err"
fi

# A damaged block of a table: the summary still shows what it can and
# names it, --check names it.
cp "$db" "$dir/bad.rdb"
victim=$("$rdump" --map "$db" | awk '$3 == "btree" && $NF == "ok" { print $2; exit }')
if [ -z "$victim" ]; then
    failed=$((failed + 1)); echo "FAIL: damaged: no live B+tree block to damage"; victim=3
fi
printf 'XXXXXXXX' | dd of="$dir/bad.rdb" bs=1 seek=$((4096 * victim + 100)) conv=notrunc 2> /dev/null
check "damaged: summary still works"  1 "root slot 0" -- "$dir/bad.rdb"
check "damaged: summary names it"     1 "^  [a-z]+ +block $victim: checksum mismatch$" -- "$dir/bad.rdb"
check "damaged: the rest is shown"    1 "^  projects +3 +2 " -- "$dir/bad.rdb"
check "damaged: blocks view names it" 0 "^$victim +.*checksum" -- --blocks "$dir/bad.rdb"
check "damaged: check reports it"     1 "checksum mismatch" -- --check "$dir/bad.rdb"
# Damage to a block of the newest commit looks like a torn commit: opening
# falls back to the commit before, and both views say so.
cp "$db" "$dir/torn.rdb"
newest=$("$rdump" --blocks "$db" | awk 'NR > 1 && $NF == "ok" && $5 + 0 >= top { top = $5 + 0; b = $1 } END { print b }')
printf 'XXXXXXXX' | dd of="$dir/torn.rdb" bs=1 seek=$((4096 * newest + 100)) conv=notrunc 2> /dev/null
check "torn: summary says passed over" 0 "opens at +txn [0-9]+  \(the newer slot is passed over" -- "$dir/torn.rdb"
check "torn: its blocks not in use"   0 "^  not in use +[1-9][0-9]* \(written by a commit that did not finish\)$" -- "$dir/torn.rdb"
check "torn: check notes it"          0 "note: the newer root slot .* block $newest of its commit" -- --check "$dir/torn.rdb"
# Damaged map nodes (all of them: which one is live depends on which root
# slot opens): the map view says so and the picture is still drawn.
cp "$db" "$dir/badmap.rdb"
for mapnode in $("$rdump" --blocks "$db" | awk '$2 == "map" { print $1 }'); do
    printf 'XXXXXXXX' | dd of="$dir/badmap.rdb" bs=1 seek=$((4096 * mapnode + 200)) conv=notrunc 2> /dev/null
done
"$rdump" --map "$dir/badmap.rdb" > "$dir/map.out"; st=$?
"$rdump" --svg "$dir/bad.svg" "$dir/badmap.rdb" > /dev/null
if [ "$st" -ne 0 ] && grep -q "^damage: map node at block" "$dir/map.out" && tail -1 "$dir/bad.svg" | grep -q '</svg>'; then
    passed=$((passed + 1))
else failed=$((failed + 1)); echo "FAIL: damaged map (status $st):"; head -5 "$dir/map.out"; fi

# Text with a newline and a tab stays on its row's line, escaped.
cp "$db" "$dir/nl.rdb"
"$taskman" "$dir/nl.rdb" add 1 $'two\nlines\there' 2 > /dev/null
check "rows: control bytes escaped"   0 '\| two\\nlines\\there \|' -- --rows tasks "$dir/nl.rdb"

check "not a database"                1 "not a relatable database" -- "$0"

echo "rdump: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
