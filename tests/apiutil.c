/*
** tests/apiutil.c: see apiutil.h. Test code only.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/apiutil.h"
#include "tests/testutil.h"

const rl_column users_cols[] = {
    {"name", RL_TTEXT, 0, RL_NOT_NULL, NULL, 0},
    {"email", RL_TCHAR, 40, RL_UNIQUE, NULL, 0},
};
const rl_column projects_cols[] = {
    {"owner", RL_TINTEGER, 0, 0, "users", 0},
    {"title", RL_TTEXT, 0, RL_NOT_NULL, NULL, 0},
    {"budget", RL_TREAL, 0, 0, NULL, 0},
};
const rl_column tasks_cols[] = {
    {"project", RL_TINTEGER, 0, RL_NOT_NULL, "projects", RL_FK_CASCADE},
    {"parent", RL_TINTEGER, 0, 0, "tasks", RL_FK_SET_NULL},
    {"title", RL_TTEXT, 0, RL_NOT_NULL, NULL, 0},
    {"body", RL_TTEXT, 0, 0, NULL, 0},
    {"prio", RL_TINTEGER, 0, 0, NULL, 0},
    {"hours", RL_TREAL, 0, 0, NULL, 0},
};

rl_db *open_at(const char *name, uint32_t bs, double autovac, int fresh)
{
    rl_options o;
    rl_db *db = NULL;
    int rc;
    memset(&o, 0, sizeof o);
    o.block_size = bs;
    o.durability = RL_SYNC_OFF;
    o.autovacuum_ratio = autovac;
    if (fresh)
        unlink(tu_path(name));
    rc = rl_open(tu_path(name), &o, &db);
    if (rc != RL_OK)
        fail_msg("rl_open %s: %s: %s", name, rl_errname(rc), rl_errmsg(db));
    return db;
}

rl_txn *begin(rl_db *db, int mode)
{
    rl_txn *t = NULL;
    OK(db, rl_begin(db, mode, &t));
    return t;
}

void expect_bytes(const rl_row *row, int col, const void *p, size_t n)
{
    size_t len = 999;
    const void *got = rl_row_bytes(row, col, &len);
    assert_int_equal(len, n);
    assert_non_null(got);
    assert_memory_equal(got, p, n);
    assert_int_equal(((const char *)got)[n], '\0'); /* documented terminator */
}

void make_schema(rl_db *db, rl_txn *t)
{
    OK(db, rl_create_table(t, "users", users_cols, 2));
    OK(db, rl_create_table(t, "projects", projects_cols, 3));
    OK(db, rl_create_table(t, "tasks", tasks_cols, 6));
}
