/*
** examples/quickstart.c: relatable's public API in one page. Creates two
** related tables, inserts, reads, updates and deletes rows, scans, and
** reopens the file to show that everything is still there.
**
** Usage: quickstart FILE   (a new file is created; an existing one is used)
*/
#include <stdio.h>
#include <stdlib.h>

#include "relatable.h"

static rl_db *db;

static void check(int rc, const char *what)
{
    if (rc != RL_OK) {
        fprintf(stderr, "quickstart: %s: %s: %s\n", what, rl_errname(rc), rl_errmsg(db));
        exit(1);
    }
}

static void print_tasks(rl_txn *t)
{
    rl_cursor *c;
    const rl_row *row;
    check(rl_scan(t, "tasks", &c), "scan");
    while (rl_cursor_next(c, &row) == RL_OK) {
        rl_row *project;
        check(rl_get(t, "projects", rl_row_int(row, 1), &project), "get project");
        printf("  task %lld  %-28s prio %lld  %5.1f h  project %s\n",
               (long long)rl_row_int(row, 0), (const char *)rl_row_bytes(row, 2, NULL),
               (long long)rl_row_int(row, 3), rl_row_real(row, 4),
               (const char *)rl_row_bytes(project, 1, NULL));
        rl_row_free(project);
    }
    rl_cursor_close(c);
}

int main(int argc, char **argv)
{
    static const rl_column projects[] = {
        {"name", RL_TTEXT, 0, RL_NOT_NULL, NULL, 0},
    };
    static const rl_column tasks[] = {
        {"project", RL_TINTEGER, 0, RL_NOT_NULL, "projects", 0},
        {"title", RL_TTEXT, 0, RL_NOT_NULL, NULL, 0},
        {"priority", RL_TINTEGER, 0, 0, NULL, 0},
        {"hours", RL_TREAL, 0, 0, NULL, 0},
    };
    rl_txn *t;
    int64_t engine, docs, id;
    uint64_t n;
    int rc;
    if (argc != 2) {
        fprintf(stderr, "usage: quickstart FILE\n");
        return 2;
    }
    check(rl_open(argv[1], NULL, &db), "open");

    check(rl_begin(db, RL_WRITE, &t), "begin");
    check(rl_create_table(t, "projects", projects, 1), "create projects");
    check(rl_create_table(t, "tasks", tasks, 4), "create tasks");
    check(rl_insert(t, "projects", (rl_value[]){rl_null(), rl_text("storage engine")}, 2, &engine),
          "insert");
    check(rl_insert(t, "projects", (rl_value[]){rl_null(), rl_text("documentation")}, 2, &docs),
          "insert");
    check(rl_insert(t, "tasks", (rl_value[]){rl_null(), rl_int(engine), rl_text("design the block map"),
                                             rl_int(1), rl_real(6)}, 5, NULL), "insert");
    check(rl_insert(t, "tasks", (rl_value[]){rl_null(), rl_int(engine), rl_text("write the freelist"),
                                             rl_int(2), rl_real(4.5)}, 5, NULL), "insert");
    check(rl_insert(t, "tasks", (rl_value[]){rl_null(), rl_int(docs), rl_text("describe every byte"),
                                             rl_int(2), rl_null()}, 5, &id), "insert");
    check(rl_commit(t), "commit");
    printf("created 2 projects and 3 tasks in %s\n", argv[1]);

    check(rl_begin(db, RL_WRITE, &t), "begin");
    rc = rl_insert(t, "tasks", (rl_value[]){rl_null(), rl_int(99), rl_text("orphan"), rl_null(),
                                            rl_null()}, 5, NULL);
    printf("a task for project 99 is refused: %s (%s)\n", rl_errname(rc), rl_errmsg(db));
    check(rl_update(t, "tasks", id, (rl_value[]){rl_null(), rl_int(docs),
                                                 rl_text("describe every byte, twice"), rl_int(3),
                                                 rl_real(2)}, 5), "update");
    check(rl_delete(t, "tasks", 1), "delete");
    check(rl_commit(t), "commit");
    printf("updated task %lld, deleted task 1\n", (long long)id);

    check(rl_close(db), "close");
    check(rl_open(argv[1], NULL, &db), "reopen");
    check(rl_begin(db, RL_READ, &t), "begin");
    check(rl_count(t, "tasks", &n), "count");
    printf("after reopening, %llu tasks:\n", (unsigned long long)n);
    print_tasks(t);
    rl_rollback(t);
    check(rl_close(db), "close");
    return 0;
}
