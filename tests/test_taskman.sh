#!/usr/bin/env bash
# tests/test_taskman.sh: runs the taskman demo end to end on a new file and
# checks what it prints. Usage: test_taskman.sh PATH/TO/taskman
set -u
tm=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/rl-taskman-XXXXXX")
db=$dir/tasks.rdb
trap 'rm -rf "$dir"' EXIT
passed=0
failed=0

# expect NAME PATTERN -- ARGS: run taskman ARGS and look for PATTERN.
expect() {
    local name=$1 pattern=$2
    shift 3
    local out
    out=$("$tm" "$db" "$@" 2>&1)
    if printf '%s\n' "$out" | grep -qE -- "$pattern"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $name: no line matches /$pattern/ in:"
        printf '%s\n' "$out" | sed 's/^/    /'
    fi
}

expect "first run creates sample data" "created a new database with sample data" --
expect "dashboard lists owners"        "#1 Storage engine +active +owner Ada Lovelace +2 open" --
expect "dashboard counts via index"    "SEARCH tasks USING INDEX tasks_project_fk" --
expect "recent tasks, newest first"    "^  #6 Plan range scans" --
expect "project shows unassigned"      "Measure fsync latency.*\(unassigned\)" -- project 1
expect "project joins via the index"   "LEFT JOIN tasks USING INDEX tasks_project_fk" -- project 1
expect "task shows comment authors"    "Grace Hopper: Logical numbers keep chains cheap" -- task 1
expect "search finds design work"      "task +#4 Design the colour palette" -- search des
expect "search is case-insensitive"    "project +#2 Website redesign" -- search DES
expect "search counts"                 "4 match\(es\)" -- search des
expect "add a task"                    "added task #7" -- add 1 "Benchmark the commit" 1
expect "the new task is there"         "#7 Benchmark the commit" -- project 1
expect "change a status"               "task #3 is now done" -- status 3 done
expect "open tasks drop"               "#1 Storage engine .* 2 open" --
expect "bad project is refused"        "refused: RL_FOREIGNKEY" -- add 99 "Orphan" 1
expect "delete cascades to comments"   "deleted task #1 and its comments" -- delete 1
expect "comments went with the task"   "no task #1" -- task 1
expect "indexes match their tables"    "^check: ok$" -- check

echo "taskman: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
