/*
** fuzz/fuzz_db.c: any bytes as a database file, through the public API:
** open it, check it, read every table (scan, lookups, a query, a join),
** then change it (insert, delete, vacuum, commit) and read it again.
** Checksums are not checked in fuzz builds, so mutated catalogs, records,
** B+tree nodes and index keys reach their decoders. Whatever the bytes,
** every call must return a code: no crash, no hang, no leak.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relatable.h"

#define MAX_ROWS 2000

static void read_table(rl_txn *t, const char *table)
{
    rl_cursor *c;
    const rl_row *row;
    rl_row *one;
    int n = 0;
    if (rl_scan(t, table, &c) == RL_OK) {
        while (n++ < MAX_ROWS && rl_cursor_next(c, &row) == RL_OK)
            for (int k = 0; k < rl_row_ncols(row); k++) {
                size_t len;
                (void)rl_row_bytes(row, k, &len);
                (void)rl_row_int(row, k);
            }
        rl_cursor_close(c);
    }
    for (int64_t id = -1; id < 6; id++)
        if (rl_get(t, table, id, &one) == RL_OK)
            rl_row_free(one);
}

static void query_table(rl_txn *t, const char *table)
{
    const rl_column *cols;
    int ncols;
    rl_query q = {0};
    rl_cursor *c;
    const rl_row *row;
    rl_cond *cond = NULL;
    uint64_t n;
    if (rl_columns(t, table, &cols, &ncols) != RL_OK)
        return;
    for (int k = 1; k < ncols && !cond; k++)
        cond = cols[k].type == RL_TINTEGER ? rl_cmp(cols[k].name, RL_GE, rl_int(0))
               : cols[k].type == RL_TTEXT ? rl_icontains(cols[k].name, "a")
                                          : NULL;
    q.table = table;
    q.where = cond;
    q.order = (rl_order[]){{ncols > 1 ? cols[1].name : "id", 1}};
    q.norder = 1;
    q.limit = 50;
    if (rl_query_open(t, &q, &c) == RL_OK) {
        while (rl_cursor_next(c, &row) == RL_OK)
            ;
        rl_cursor_close(c);
    }
    (void)rl_query_count(t, &q, &n);
    for (int k = 1; k < ncols; k++) /* follow a foreign key, both ways */
        if (cols[k].references) {
            char on[200];
            rl_query base = {0};
            rl_join j[1];
            snprintf(on, sizeof on, "%s.%s", table, cols[k].name);
            j[0].table = cols[k].references;
            j[0].on = on;
            j[0].left = 1;
            base.table = table;
            base.limit = 100;
            if (rl_join_open(t, &base, j, 1, &c) == RL_OK) {
                while (rl_cursor_next(c, &row) == RL_OK)
                    ;
                rl_cursor_close(c);
            }
            break;
        }
    rl_cond_free(cond);
}

static void read_all(rl_db *db)
{
    rl_txn *t;
    const char *name;
    char *report = NULL;
    if (rl_begin(db, RL_READ, &t) != RL_OK)
        return;
    (void)rl_check(t, &report);
    free(report);
    for (int i = 0; i < 16 && rl_table_at(t, i, &name) == RL_OK; i++) {
        const char *ix, *const *cols;
        int unique, ncols;
        rl_space sp;
        read_table(t, name);
        query_table(t, name);
        (void)rl_space_of(t, name, NULL, &sp);
        for (int k = 0; k < 4 && rl_index_at(t, name, k, &ix, &unique, &cols, &ncols) == RL_OK; k++)
            (void)rl_space_of(t, name, ix, &sp);
    }
    rl_rollback(t);
}

static void change_some(rl_db *db)
{
    rl_txn *t;
    const char *name;
    const rl_column *cols;
    int ncols;
    if (rl_begin(db, RL_WRITE, &t) != RL_OK)
        return;
    if (rl_table_at(t, 0, &name) == RL_OK && rl_columns(t, name, &cols, &ncols) == RL_OK &&
        ncols <= 64) {
        rl_value vals[64];
        for (int k = 0; k < ncols; k++)
            vals[k] = rl_null();
        (void)rl_insert(t, name, vals, ncols, NULL);
        (void)rl_delete(t, name, 1);
        (void)rl_delete(t, name, 2);
        (void)rl_vacuum(t, name);
    }
    (void)rl_create_table(t, "fuzz_new", (rl_column[]){{"x", RL_TINTEGER, 0, 0, NULL, 0}}, 1);
    (void)rl_commit(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    rl_options o = {RL_OPEN_CREATE, 0, RL_SYNC_OFF, 256 * 1024, 0, 0};
    rl_db *db = NULL;
    FILE *f;
    if (size > (1u << 20))
        return 0;
    snprintf(path, sizeof path, "/dev/shm/rl-fuzz-%d.rdb", (int)getpid());
    f = fopen(path, "wb");
    if (!f)
        return 0;
    if (size)
        fwrite(data, 1, size, f);
    fclose(f);
    o.flags = 0; /* the file is there: do not create one */
    if (rl_open(path, &o, &db) == RL_OK) {
        read_all(db);
        change_some(db);
        read_all(db);
    }
    rl_close(db);
    unlink(path);
    return 0;
}
