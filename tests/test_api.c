/*
** tests/test_api.c: the public API (relatable.h) end to end: every type
** and its edges, persistence, the schema read back, tombstones, vacuum,
** every error with the database unchanged after it, and a randomised run
** on three related tables against an in-memory model.
*/
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "relatable.h"
#include "tests/testutil.h"

/* The root area of a file of 512-byte blocks: the header, four root slots
 * and their commit areas (docs/format.md), a fixed part of every size. */
#define ROOT_AREA_512 (4096 + 4 * (4096 + 16 * 512))

#define OK(db, call)                                                           \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != RL_OK)                                                      \
            fail_msg("%s -> %s: %s", #call, rl_errname(rc_), rl_errmsg(db));   \
    } while (0)

static rl_db *open_at(const char *name, uint32_t bs, double autovac, int fresh)
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

static rl_txn *begin(rl_db *db, int mode)
{
    rl_txn *t = NULL;
    OK(db, rl_begin(db, mode, &t));
    return t;
}

/* ---- every type, with its edges ------------------------------------------- */

static const rl_column all_types[] = {
    {"i", RL_TINTEGER, 0, 0, NULL, 0}, {"r", RL_TREAL, 0, 0, NULL, 0},
    {"c", RL_TCHAR, 6, 0, NULL, 0},    {"t", RL_TTEXT, 0, 0, NULL, 0},
    {"b", RL_TBLOB, 0, 0, NULL, 0},
};

static void expect_bytes(const rl_row *row, int col, const void *p, size_t n)
{
    size_t len = 999;
    const void *got = rl_row_bytes(row, col, &len);
    assert_int_equal(len, n);
    assert_non_null(got);
    assert_memory_equal(got, p, n);
    assert_int_equal(((const char *)got)[n], '\0'); /* documented terminator */
}

static void test_types_roundtrip(void **state)
{
    rl_db *db = open_at("types.rdb", 512, 0, 1);
    rl_txn *t = begin(db, RL_WRITE);
    size_t big = (size_t)tu_scale(10 << 20);
    uint8_t *blob = malloc(big);
    const char *utf8 = "Grüße, 世界 \xF0\x9F\x98\x80";
    int64_t ids[8];
    rl_row *row;
    (void)state;
    for (size_t i = 0; i < big; i++)
        blob[i] = (uint8_t)(i * 31 + (i >> 9));
    OK(db, rl_create_table(t, "v", all_types, 5));
    {
        rl_value rows[8][6] = {
            {rl_null(), rl_int(INT64_MIN), rl_real(NAN), rl_textn("a\0 b  ", 6), rl_text(""),
             rl_blob("", 0)},
            {rl_null(), rl_int(INT64_MAX), rl_real(INFINITY), rl_textn("", 0), rl_text(utf8),
             rl_blob(blob, big)},
            {rl_null(), rl_int(0), rl_real(-INFINITY), rl_text("x"), rl_textn("nul\0in", 6),
             rl_blob("\0", 1)},
            {rl_null(), rl_null(), rl_null(), rl_null(), rl_null(), rl_null()},
            {rl_null(), rl_int(-1), rl_real(-0.0), rl_textn("   ", 3), rl_textn((const char *)blob, 513),
             rl_blob(blob, 512)},
            {rl_null(), rl_int(1), rl_int(7), rl_text("ab"), rl_textn((char *)blob, 100000),
             rl_blob(blob, 513)},
            {rl_null(), rl_int(2), rl_real(1e308), rl_text("é"), rl_text("x"), rl_null()},
            {rl_null(), rl_int(3), rl_real(5e-324), rl_textn("\xff\xfe", 2), rl_text("y"),
             rl_null()},
        };
        for (int r = 0; r < 8; r++)
            OK(db, rl_insert(t, "v", rows[r], 6, &ids[r]));
    }
    for (int pass = 0; pass < 2; pass++) {
        /* Pass 0 reads inside the writing transaction, pass 1 after a reopen. */
        OK(db, rl_get(t, "v", ids[0], &row));
        assert_int_equal(rl_row_int(row, 1), INT64_MIN);
        assert_true(isnan(rl_row_real(row, 2)));
        expect_bytes(row, 3, "a\0 b  ", 6); /* trailing spaces and NUL kept */
        expect_bytes(row, 4, "", 0);
        expect_bytes(row, 5, "", 0);
        assert_int_equal(rl_row_type(row, 5), RL_TBLOB);
        rl_row_free(row);
        OK(db, rl_get(t, "v", ids[1], &row));
        assert_int_equal(rl_row_int(row, 1), INT64_MAX);
        assert_true(isinf(rl_row_real(row, 2)) && rl_row_real(row, 2) > 0);
        expect_bytes(row, 4, utf8, strlen(utf8));
        expect_bytes(row, 5, blob, big);
        rl_row_free(row);
        OK(db, rl_get(t, "v", ids[2], &row));
        assert_true(isinf(rl_row_real(row, 2)) && rl_row_real(row, 2) < 0);
        expect_bytes(row, 4, "nul\0in", 6);
        expect_bytes(row, 5, "\0", 1);
        rl_row_free(row);
        OK(db, rl_get(t, "v", ids[3], &row));
        for (int c = 1; c < 6; c++)
            assert_true(rl_row_is_null(row, c));
        assert_null(rl_row_bytes(row, 4, NULL));
        rl_row_free(row);
        OK(db, rl_get(t, "v", ids[4], &row));
        assert_true(rl_row_real(row, 2) == 0.0 && signbit(rl_row_real(row, 2)));
        expect_bytes(row, 3, "   ", 3);
        expect_bytes(row, 4, blob, 513);
        expect_bytes(row, 5, blob, 512);
        rl_row_free(row);
        OK(db, rl_get(t, "v", ids[5], &row));
        assert_int_equal(rl_row_type(row, 2), RL_TREAL); /* integer stored as REAL */
        assert_true(rl_row_real(row, 2) == 7.0);
        expect_bytes(row, 4, blob, 100000);
        rl_row_free(row);
        OK(db, rl_get(t, "v", ids[7], &row));
        assert_true(rl_row_real(row, 2) == 5e-324);
        assert_int_equal(rl_row_col(row, "B"), 5);
        assert_string_equal(rl_row_name(row, 0), "id");
        rl_row_free(row);
        if (pass == 0) {
            OK(db, rl_commit(t));
            OK(db, rl_close(db));
            db = open_at("types.rdb", 0, 0, 0);
            t = begin(db, RL_READ);
        }
    }
    rl_rollback(t);
    OK(db, rl_close(db));
    free(blob);
}

/* ---- persistence and the schema read back ----------------------------------- */

static const rl_column users_cols[] = {
    {"name", RL_TTEXT, 0, RL_NOT_NULL, NULL, 0},
    {"email", RL_TCHAR, 40, RL_UNIQUE, NULL, 0},
};
static const rl_column projects_cols[] = {
    {"owner", RL_TINTEGER, 0, 0, "users", 0},
    {"title", RL_TTEXT, 0, RL_NOT_NULL, NULL, 0},
    {"budget", RL_TREAL, 0, 0, NULL, 0},
};
static const rl_column tasks_cols[] = {
    {"project", RL_TINTEGER, 0, RL_NOT_NULL, "projects", RL_FK_CASCADE},
    {"parent", RL_TINTEGER, 0, 0, "tasks", RL_FK_SET_NULL},
    {"title", RL_TTEXT, 0, RL_NOT_NULL, NULL, 0},
    {"body", RL_TTEXT, 0, 0, NULL, 0},
    {"prio", RL_TINTEGER, 0, 0, NULL, 0},
    {"hours", RL_TREAL, 0, 0, NULL, 0},
};

static void make_schema(rl_db *db, rl_txn *t)
{
    OK(db, rl_create_table(t, "users", users_cols, 2));
    OK(db, rl_create_table(t, "projects", projects_cols, 3));
    OK(db, rl_create_table(t, "tasks", tasks_cols, 6));
}

static void test_persistence_and_schema(void **state)
{
    rl_db *db = open_at("persist.rdb", 4096, 0, 1);
    rl_txn *t = begin(db, RL_WRITE);
    const rl_column *cols;
    const char *name;
    int ncols;
    int64_t u, p, k;
    rl_row *row;
    (void)state;
    make_schema(db, t);
    OK(db, rl_insert(t, "users", (rl_value[]){rl_null(), rl_text("Ada"), rl_text("ada@x")}, 3, &u));
    OK(db, rl_insert(t, "projects",
                     (rl_value[]){rl_null(), rl_int(u), rl_text("Engine"), rl_real(1.5)}, 4, &p));
    OK(db, rl_insert(t, "tasks",
                     (rl_value[]){rl_null(), rl_int(p), rl_null(), rl_text("design"), rl_null(),
                                  rl_int(2), rl_real(3.25)},
                     7, &k));
    OK(db, rl_commit(t));
    OK(db, rl_close(db));

    db = open_at("persist.rdb", 0, 0, 0);
    t = begin(db, RL_READ);
    OK(db, rl_table_at(t, 0, &name));
    assert_string_equal(name, "users");
    OK(db, rl_table_at(t, 2, &name));
    assert_string_equal(name, "tasks");
    assert_int_equal(rl_table_at(t, 3, &name), RL_NOTFOUND);
    OK(db, rl_columns(t, "TASKS", &cols, &ncols)); /* names ignore case */
    assert_int_equal(ncols, 7);
    assert_string_equal(cols[0].name, "id");
    assert_string_equal(cols[1].name, "project");
    assert_string_equal(cols[1].references, "projects");
    assert_int_equal(cols[1].flags, RL_NOT_NULL);
    assert_int_equal(cols[6].type, RL_TREAL);
    OK(db, rl_columns(t, "users", &cols, &ncols));
    assert_int_equal(cols[2].type, RL_TCHAR);
    assert_int_equal(cols[2].size, 40);
    OK(db, rl_get(t, "tasks", k, &row));
    assert_int_equal(rl_row_int(row, 1), p);
    assert_true(rl_row_is_null(row, 2));
    expect_bytes(row, 3, "design", 6);
    assert_true(rl_row_real(row, 6) == 3.25);
    rl_row_free(row);
    rl_rollback(t);
    OK(db, rl_close(db));
}

/* ---- commit numbers; a damaged last commit -------------------------------------- */

static rl_db *open_full(const char *name)
{
    rl_options o;
    rl_db *db = NULL;
    memset(&o, 0, sizeof o);
    o.durability = RL_SYNC_FULL;
    OK(db, rl_open(tu_path(name), &o, &db));
    return db;
}

static uint64_t read_id(rl_db *db)
{
    rl_txn *t = begin(db, RL_READ);
    uint64_t id = rl_txn_id(t);
    rl_rollback(t);
    return id;
}

/* Check; return whether the report mentions a passed-over root slot. */
static int check_notes_passed_over(rl_db *db)
{
    rl_txn *t = begin(db, RL_READ);
    char *report = NULL;
    int noted;
    OK(db, rl_check(t, &report));
    noted = report && strstr(report, "passed over") != NULL;
    free(report);
    rl_rollback(t);
    return noted;
}

static void test_txn_ids_and_damaged_last_commit(void **state)
{
    const char *path = tu_path("torn.rdb");
    rl_db *db;
    rl_txn *t;
    size_t size;
    uint8_t *bytes;
    (void)state;
    unlink(path);
    db = open_full("torn.rdb");
    assert_int_equal(read_id(db), 1); /* the empty database */
    assert_int_equal(rl_txn_id(NULL), 0);
    t = begin(db, RL_WRITE);
    assert_int_equal(rl_txn_id(t), 2); /* the number its commit will take */
    make_schema(db, t);
    OK(db, rl_commit(t));
    assert_int_equal(read_id(db), 2);
    assert_false(check_notes_passed_over(db));
    OK(db, rl_close(db));

    /* Damage the file's last block: it was written by commit 2. Opening
     * cannot tell that from a torn commit, so it opens commit 1, and the
     * check says why; the next commit takes the number 2 again. */
    bytes = tu_read_file(path, &size);
    free(bytes);
    tu_write_at(path, size - 100, "XXXXXXXX", 8);
    db = open_full("torn.rdb");
    assert_int_equal(read_id(db), 1);
    assert_true(check_notes_passed_over(db));
    t = begin(db, RL_WRITE);
    make_schema(db, t);
    OK(db, rl_commit(t));
    assert_int_equal(read_id(db), 2);
    assert_false(check_notes_passed_over(db));
    OK(db, rl_close(db));
}

/* ---- tombstones, vacuum, automatic vacuum -------------------------------------- */

static void fill_table(rl_db *db, int n, const char *body)
{
    rl_txn *t = begin(db, RL_WRITE);
    for (int i = 0; i < n; i++)
        OK(db, rl_insert(t, "users", (rl_value[]){rl_null(), rl_text(body), rl_null()}, 3, NULL));
    OK(db, rl_commit(t));
}

static void idle(rl_db *db, int n)
{
    /* Commits that change nothing write nothing; insert and delete a row. */
    for (int i = 0; i < n; i++) {
        rl_txn *t = begin(db, RL_WRITE);
        int64_t id;
        OK(db, rl_insert(t, "users", (rl_value[]){rl_null(), rl_text("x"), rl_null()}, 3, &id));
        OK(db, rl_delete(t, "users", id));
        OK(db, rl_commit(t));
    }
}

/* A fresh file of 512-byte blocks (autovac as open_at) holding a users
 * table of 3000 rows, each with name body: rows small enough to live in
 * the leaves. */
static rl_db *users_3000(const char *name, double autovac, const char *body)
{
    rl_db *db = open_at(name, 512, autovac, 1);
    rl_txn *t = begin(db, RL_WRITE);
    OK(db, rl_create_table(t, "users", users_cols, 2));
    OK(db, rl_commit(t));
    fill_table(db, 3000, body);
    return db;
}

/* The table's space, with the checks that hold for any tree. */
static rl_space space_of(rl_db *db, uint32_t block_size, const char *table, const char *index)
{
    rl_txn *t = begin(db, RL_READ);
    rl_space sp;
    OK(db, rl_space_of(t, table, index, &sp));
    rl_rollback(t);
    assert_int_equal(sp.bytes_used + sp.bytes_free, sp.tree_blocks * (block_size - 40));
    assert_int_equal(sp.blocks, sp.tree_blocks + sp.chain_blocks + sp.other_blocks);
    assert_true(sp.leaf_blocks <= sp.tree_blocks && sp.depth >= 1);
    return sp;
}

static void test_tombstones_and_vacuum(void **state)
{
    const char *path = tu_path("vac.rdb");
    char body[41];
    rl_db *db;
    rl_txn *t;
    rl_cursor *c;
    const rl_row *row;
    uint64_t n, full, after;
    rl_space sp, vac;
    int seen = 0;
    (void)state;
    memset(body, 'q', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    db = users_3000("vac.rdb", -1, body); /* automatic vacuum off */
    full = tu_file_size(path);
    sp = space_of(db, 512, "users", NULL);
    assert_int_equal(sp.entries, 3000);
    assert_int_equal(sp.other_blocks, 1);
    assert_int_equal(sp.chain_blocks, 0);
    print_message("3000 rows: %llu tree blocks (%llu leaves, depth %u), vacuum would free %llu\n",
                  (unsigned long long)sp.tree_blocks, (unsigned long long)sp.leaf_blocks,
                  sp.depth, (unsigned long long)sp.vacuum_frees);
    assert_true(sp.depth >= 2 && sp.vacuum_frees <= 2); /* rows in id order fill leaves */
    t = begin(db, RL_WRITE);
    for (int64_t id = 1; id <= 3000; id++)
        if (id % 3 != 0)
            OK(db, rl_delete(t, "users", id));
    assert_int_equal(rl_delete(t, "users", 1), RL_NOTFOUND);
    OK(db, rl_count(t, "users", &n));
    assert_int_equal(n, 1000);
    OK(db, rl_scan(t, "users", &c));
    while (rl_cursor_next(c, &row) == RL_OK) {
        assert_int_equal(rl_row_int(row, 0) % 3, 0); /* tombstones are skipped */
        seen++;
    }
    rl_cursor_close(c);
    assert_int_equal(seen, 1000);
    OK(db, rl_commit(t));
    idle(db, 4);
    after = tu_file_size(path);
    print_message("3000 rows: %llu bytes; 2000 deleted, no vacuum: %llu bytes\n",
                  (unsigned long long)full, (unsigned long long)after);
    assert_true(after >= full * 8 / 10); /* deletes leave the leaves, underfull */
    sp = space_of(db, 512, "users", NULL);
    assert_int_equal(sp.entries, 1000);
    assert_true(sp.bytes_free > (sp.bytes_used + sp.bytes_free) / 2);
    assert_true(sp.vacuum_frees > sp.tree_blocks / 2);
    t = begin(db, RL_WRITE);
    OK(db, rl_vacuum(t, "users"));
    OK(db, rl_commit(t));
    vac = space_of(db, 512, "users", NULL);
    print_message("tree: %llu blocks, vacuum estimated to free %llu, freed %llu\n",
                  (unsigned long long)sp.tree_blocks, (unsigned long long)sp.vacuum_frees,
                  (unsigned long long)(sp.tree_blocks - vac.tree_blocks));
    assert_true(vac.tree_blocks + sp.vacuum_frees <= sp.tree_blocks + sp.tree_blocks / 20 + 1);
    assert_true(vac.tree_blocks + sp.vacuum_frees + sp.tree_blocks / 20 + 1 >= sp.tree_blocks);
    assert_true(vac.vacuum_frees <= 1);
    /* the vacuum's commit moved the new tree down before it returned */
    print_message("after rl_vacuum: %llu bytes\n", (unsigned long long)tu_file_size(path));
    assert_true(tu_file_size(path) - ROOT_AREA_512 < (full - ROOT_AREA_512) / 2);
    t = begin(db, RL_READ);
    OK(db, rl_count(t, "users", &n));
    assert_int_equal(n, 1000);
    {
        rl_row *r;
        OK(db, rl_get(t, "users", 3000, &r));
        expect_bytes(r, 1, body, strlen(body));
        rl_row_free(r);
        assert_int_equal(rl_get(t, "users", 2999, &r), RL_NOTFOUND);
    }
    rl_rollback(t);
    OK(db, rl_close(db));

    /* Automatic: the default threshold (half the rows, at least 1000). */
    db = users_3000("autovac.rdb", 0, body);
    full = tu_file_size(tu_path("autovac.rdb"));
    t = begin(db, RL_WRITE);
    for (int64_t id = 1; id <= 2400; id++)
        OK(db, rl_delete(t, "users", id));
    OK(db, rl_commit(t)); /* vacuums, then moves the new tree down */
    print_message("automatic vacuum: %llu bytes -> %llu bytes\n", (unsigned long long)full,
                  (unsigned long long)tu_file_size(tu_path("autovac.rdb")));
    assert_true(tu_file_size(tu_path("autovac.rdb")) - ROOT_AREA_512 < (full - ROOT_AREA_512) / 2);
    OK(db, rl_close(db));
}

/* A reader that holds the blocks a vacuum freed keeps the vacuum's commit
 * from moving its new tree down, without failing or stalling it; the
 * commits after the reader has gone do the moving. */
static void test_vacuum_beside_an_old_reader(void **state)
{
    const char *path = tu_path("vacread.rdb");
    rl_db *db = users_3000("vacread.rdb", -1, "a name of forty bytes, more or less....");
    rl_txn *t, *r;
    uint64_t full = tu_file_size(path), n;
    (void)state;
    t = begin(db, RL_WRITE);
    for (int64_t id = 1; id <= 2400; id++)
        OK(db, rl_delete(t, "users", id));
    OK(db, rl_vacuum(t, "users"));
    r = begin(db, RL_READ); /* sees the 3000 rows: their tree stays */
    OK(db, rl_commit(t));
    assert_true(tu_file_size(path) >= full);
    OK(db, rl_count(r, "users", &n));
    assert_int_equal(n, 3000);
    rl_rollback(r);
    idle(db, 12);
    print_message("vacuum beside a reader: %llu bytes, %llu after it left\n",
                  (unsigned long long)full, (unsigned long long)tu_file_size(path));
    assert_true(tu_file_size(path) - ROOT_AREA_512 < (full - ROOT_AREA_512) / 2);
    OK(db, rl_close(db));
}

/* An index build (and so a vacuum's) leaves room in each leaf, so that the
 * inserts after it do not split a full leaf each. */
static void test_index_build_leaves_room(void **state)
{
    static const rl_column cols[] = {{"grp", RL_TINTEGER, 0, 0, NULL, 0}};
    static const char *const grp[] = {"grp"};
    rl_db *db = open_at("ixroom.rdb", 4096, -1, 1);
    rl_txn *t = begin(db, RL_WRITE);
    rl_space built, after;
    (void)state;
    OK(db, rl_create_table(t, "items", cols, 1));
    for (int i = 0; i < 20000; i++)
        OK(db, rl_insert(t, "items", (rl_value[]){rl_null(), rl_int(i % 100)}, 2, NULL));
    OK(db, rl_create_index(t, "items_grp", "items", grp, 1, 0));
    OK(db, rl_commit(t));
    built = space_of(db, 4096, "items", "items_grp");
    print_message("index of 20000 rows: %llu leaves, %llu of %llu bytes free\n",
                  (unsigned long long)built.leaf_blocks, (unsigned long long)built.bytes_free,
                  (unsigned long long)(built.bytes_used + built.bytes_free));
    assert_true(built.bytes_free * 100 >= (built.bytes_used + built.bytes_free) * 4);
    assert_true(built.bytes_free * 100 <= (built.bytes_used + built.bytes_free) * 12);
    t = begin(db, RL_WRITE);
    for (int g = 0; g < 100; g++) /* one more row at the end of each group */
        OK(db, rl_insert(t, "items", (rl_value[]){rl_null(), rl_int(g)}, 2, NULL));
    OK(db, rl_commit(t));
    after = space_of(db, 4096, "items", "items_grp");
    assert_int_equal(after.entries, 20100);
    assert_int_equal(after.leaf_blocks, built.leaf_blocks);
    OK(db, rl_close(db));
}

/* rl_space_of counts large values' chains, indexes, and refuses unknown names. */
static void test_space_of_chains_and_indexes(void **state)
{
    rl_db *db = open_at("space.rdb", 4096, -1, 1);
    rl_txn *t = begin(db, RL_WRITE);
    static char big[10000];
    const char *name, *const *cols;
    char ix[80];
    int unique, ncols;
    rl_space sp, isp;
    (void)state;
    memset(big, 'b', sizeof big - 1);
    OK(db, rl_create_table(t, "users", users_cols, 2));
    for (int i = 0; i < 500; i++) {
        char email[32];
        snprintf(email, sizeof email, "u%d@example.com", i);
        OK(db, rl_insert(t, "users",
                         (rl_value[]){rl_null(), rl_text(i % 100 ? "short" : big), rl_text(email)},
                         3, NULL));
    }
    OK(db, rl_index_at(t, "users", 0, &name, &unique, &cols, &ncols));
    snprintf(ix, sizeof ix, "%s", name); /* name lives as long as t */
    assert_int_equal(rl_space_of(t, "nope", NULL, &sp), RL_NOTABLE);
    assert_int_equal(rl_space_of(t, "users", "nope", &sp), RL_NOTFOUND);
    assert_non_null(strstr(rl_errmsg(db), "nope"));
    OK(db, rl_commit(t));
    sp = space_of(db, 4096, "users", NULL);
    assert_int_equal(sp.entries, 500);
    assert_int_equal(sp.chain_blocks, 5 * 3); /* 5 values of 10,000 bytes: 3 blocks each */
    isp = space_of(db, 4096, "users", ix);
    assert_int_equal(isp.entries, 500);
    assert_int_equal(isp.chain_blocks + isp.other_blocks, 0);
    assert_true(isp.tree_blocks >= 2);
    OK(db, rl_close(db));
}

/* ---- errors ----------------------------------------------------------------------- */

/* Expect call to fail with code and a message containing what. */
#define FAILS(db, code, what, call)                                            \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != (code))                                                     \
            fail_msg("%s -> %s, expected %s (%s)", #call, rl_errname(rc_),     \
                     rl_errname(code), rl_errmsg(db));                         \
        if (!strstr(rl_errmsg(db), (what)))                                    \
            fail_msg("%s: message \"%s\" lacks \"%s\"", #call, rl_errmsg(db),  \
                     (what));                                                  \
    } while (0)

static void test_errors_leave_database_unchanged(void **state)
{
    const char *path = tu_path("errors.rdb");
    rl_db *db = open_at("errors.rdb", 512, 0, 1);
    rl_txn *t = begin(db, RL_WRITE);
    rl_value ok_task[7];
    rl_row *row;
    uint8_t *before, *after;
    size_t nb, na;
    int64_t u, p, k;
    uint64_t n;
    (void)state;
    make_schema(db, t);
    OK(db, rl_insert(t, "users", (rl_value[]){rl_null(), rl_text("Bob"), rl_null()}, 3, &u));
    OK(db, rl_insert(t, "projects",
                     (rl_value[]){rl_null(), rl_int(u), rl_text("P"), rl_null()}, 4, &p));
    OK(db, rl_commit(t));
    before = tu_read_file(path, &nb);

    t = begin(db, RL_WRITE);
    memcpy(ok_task, (rl_value[]){rl_null(), rl_int(p), rl_null(), rl_text("t"), rl_null(),
                                 rl_int(1), rl_real(1)},
           sizeof ok_task);
    FAILS(db, RL_NOTABLE, "nosuch", rl_insert(t, "nosuch", ok_task, 7, NULL));
    FAILS(db, RL_INVALID, "7 columns", rl_insert(t, "tasks", ok_task, 6, NULL));
    FAILS(db, RL_TYPE, "tasks.prio",
          rl_insert(t, "tasks", (rl_value[]){rl_null(), rl_int(p), rl_null(), rl_text("t"),
                                             rl_null(), rl_text("high"), rl_null()}, 7, NULL));
    FAILS(db, RL_TYPE, "tasks.title",
          rl_insert(t, "tasks", (rl_value[]){rl_null(), rl_int(p), rl_null(), rl_int(5),
                                             rl_null(), rl_null(), rl_null()}, 7, NULL));
    FAILS(db, RL_TOOBIG, "users.email",
          rl_insert(t, "users", (rl_value[]){rl_null(), rl_text("x"),
                                             rl_text("0123456789012345678901234567890123456789X")},
                    3, NULL));
    FAILS(db, RL_NOTNULL, "users.name",
          rl_insert(t, "users", (rl_value[]){rl_null(), rl_null(), rl_null()}, 3, NULL));
    FAILS(db, RL_DUPLICATE, "id 1",
          rl_insert(t, "users", (rl_value[]){rl_int(u), rl_text("dup"), rl_null()}, 3, NULL));
    FAILS(db, RL_FOREIGNKEY, "projects.owner = 99",
          rl_insert(t, "projects", (rl_value[]){rl_null(), rl_int(99), rl_text("P"), rl_null()},
                    4, NULL));
    FAILS(db, RL_FOREIGNKEY, "tasks.parent = 5",
          rl_insert(t, "tasks", (rl_value[]){rl_null(), rl_int(p), rl_int(5), rl_text("t"),
                                             rl_null(), rl_null(), rl_null()}, 7, NULL));
    FAILS(db, RL_NOTFOUND, "id 42", rl_get(t, "users", 42, &row));
    assert_null(row);
    FAILS(db, RL_NOTFOUND, "id 42", rl_delete(t, "users", 42));
    FAILS(db, RL_NOTFOUND, "id 42",
          rl_update(t, "users", 42, (rl_value[]){rl_null(), rl_text("x"), rl_null()}, 3));
    FAILS(db, RL_FOREIGNKEY, "projects.owner = 77",
          rl_update(t, "projects", p, (rl_value[]){rl_null(), rl_int(77), rl_text("P"), rl_null()},
                    4));
    FAILS(db, RL_INVALID, "cannot change the id",
          rl_update(t, "users", u, (rl_value[]){rl_int(u + 1), rl_text("x"), rl_null()}, 3));
    FAILS(db, RL_EXISTS, "table Users already exists", rl_create_table(t, "Users", users_cols, 2));
    FAILS(db, RL_INVALID, "column name",
          rl_create_table(t, "bad", (rl_column[]){{"id", RL_TINTEGER, 0, 0, NULL, 0}}, 1));
    FAILS(db, RL_INVALID, "CHAR(0)",
          rl_create_table(t, "bad", (rl_column[]){{"c", RL_TCHAR, 0, 0, NULL, 0}}, 1));
    FAILS(db, RL_NOTABLE, "unknown table ghosts",
          rl_create_table(t, "bad", (rl_column[]){{"g", RL_TINTEGER, 0, 0, "ghosts", 0}}, 1));
    FAILS(db, RL_INVALID, "table name", rl_create_table(t, "1abc", users_cols, 2));
    FAILS(db, RL_FOREIGNKEY, "referenced by", rl_drop_table(t, "users"));
    /* The transaction is still usable after every failure. */
    OK(db, rl_insert(t, "tasks", ok_task, 7, &k));
    OK(db, rl_get(t, "tasks", k, &row));
    rl_row_free(row);
    rl_rollback(t);
    /* A read transaction refuses writes. */
    t = begin(db, RL_READ);
    FAILS(db, RL_READONLY, "read transaction", rl_insert(t, "tasks", ok_task, 7, NULL));
    FAILS(db, RL_READONLY, "read transaction", rl_create_table(t, "x", users_cols, 2));
    FAILS(db, RL_READONLY, "read transaction", rl_vacuum(t, NULL));
    OK(db, rl_count(t, "tasks", &n));
    assert_int_equal(n, 0);
    /* Closing with a transaction open is refused; misuse is reported. */
    assert_int_equal(rl_close(db), RL_BUSY);
    rl_rollback(t);
    assert_int_equal(rl_begin(NULL, RL_READ, &t), RL_MISUSE);
    assert_int_equal(rl_begin(db, 7, &t), RL_MISUSE);
    assert_int_equal(rl_insert(NULL, "users", ok_task, 3, NULL), RL_MISUSE);
    assert_int_equal(rl_commit(NULL), RL_MISUSE);
    rl_rollback(NULL);
    rl_row_free(NULL);
    rl_cursor_close(NULL);
    OK(db, rl_close(db));
    assert_int_equal(rl_close(NULL), RL_OK);
    /* Nothing that failed reached the file. */
    after = tu_read_file(path, &na);
    assert_int_equal(na, nb);
    assert_memory_equal(before, after, nb);
    free(before);
    free(after);
    /* Opening garbage or a missing file explains itself. */
    {
        rl_options o = {RL_OPEN_READONLY, 0, 0, 0, 0, 0};
        rl_db *bad = NULL;
        FILE *f = fopen(tu_path("junk.rdb"), "w");
        fputs("not a database at all, just some text that is long enough", f);
        fclose(f);
        assert_int_equal(rl_open(tu_path("junk.rdb"), NULL, &bad), RL_CORRUPT);
        assert_non_null(strstr(rl_errmsg(bad), "magic"));
        rl_close(bad);
        assert_int_equal(rl_open(tu_path("none.rdb"), &o, &bad), RL_CANTOPEN);
        rl_close(bad);
    }
}

static void test_ids_update_truncate_drop(void **state)
{
    rl_db *db = open_at("ids.rdb", 512, 0, 1);
    rl_txn *t = begin(db, RL_WRITE);
    rl_value v[3] = {rl_null(), rl_text("a"), rl_null()};
    int64_t id;
    uint64_t n;
    rl_row *row;
    (void)state;
    OK(db, rl_create_table(t, "users", users_cols, 2));
    OK(db, rl_insert(t, "users", v, 3, &id));
    assert_int_equal(id, 1);
    v[0] = rl_int(100);
    OK(db, rl_insert(t, "users", v, 3, &id));
    assert_int_equal(id, 100);
    v[0] = rl_null();
    OK(db, rl_insert(t, "users", v, 3, &id));
    assert_int_equal(id, 101); /* the sequence moved past 100 */
    v[0] = rl_int(-5);
    OK(db, rl_insert(t, "users", v, 3, &id));
    assert_int_equal(id, -5);
    v[0] = rl_null();
    OK(db, rl_insert(t, "users", v, 3, &id));
    assert_int_equal(id, 102);
    /* Update keeps the id, replaces the values, also with a large value. */
    {
        char *big = malloc(5000);
        memset(big, 'z', 5000);
        OK(db, rl_update(t, "users", 100,
                         (rl_value[]){rl_null(), rl_textn(big, 5000), rl_text("e")}, 3));
        OK(db, rl_get(t, "users", 100, &row));
        expect_bytes(row, 1, big, 5000);
        rl_row_free(row);
        OK(db, rl_update(t, "users", 100, (rl_value[]){rl_int(100), rl_text("b"), rl_null()}, 3));
        free(big);
    }
    OK(db, rl_get(t, "users", 100, &row));
    expect_bytes(row, 1, "b", 1);
    assert_true(rl_row_is_null(row, 2));
    rl_row_free(row);
    OK(db, rl_count(t, "users", &n));
    assert_int_equal(n, 5);
    OK(db, rl_commit(t));
    t = begin(db, RL_WRITE);
    OK(db, rl_truncate(t, "users"));
    OK(db, rl_count(t, "users", &n));
    assert_int_equal(n, 0);
    OK(db, rl_insert(t, "users", v, 3, &id));
    assert_int_equal(id, 103); /* ids are never reused */
    OK(db, rl_drop_table(t, "users"));
    assert_int_equal(rl_count(t, "users", &n), RL_NOTABLE);
    /* The table state a write transaction keeps follows drops and creates:
     * after "a" goes, "b" takes its place in the catalog, and a new
     * "users" may take a dropped state block's number. */
    OK(db, rl_create_table(t, "a", users_cols, 2));
    OK(db, rl_create_table(t, "b", users_cols, 2));
    v[0] = rl_int(50);
    OK(db, rl_insert(t, "a", v, 3, &id));
    v[0] = rl_null();
    OK(db, rl_insert(t, "b", v, 3, &id));
    assert_int_equal(id, 1);
    OK(db, rl_insert(t, "a", v, 3, &id));
    assert_int_equal(id, 51);
    OK(db, rl_drop_table(t, "a"));
    OK(db, rl_insert(t, "b", v, 3, &id));
    assert_int_equal(id, 2);
    OK(db, rl_create_table(t, "users", users_cols, 2));
    OK(db, rl_insert(t, "users", v, 3, &id));
    assert_int_equal(id, 1);
    OK(db, rl_count(t, "b", &n));
    assert_int_equal(n, 2);
    OK(db, rl_count(t, "users", &n));
    assert_int_equal(n, 1);
    OK(db, rl_drop_table(t, "users"));
    OK(db, rl_drop_table(t, "b"));
    OK(db, rl_commit(t));
    t = begin(db, RL_READ);
    assert_int_equal(rl_count(t, "users", &n), RL_NOTABLE);
    rl_rollback(t);
    OK(db, rl_close(db));
}


/* ---- indexes and constraints ------------------------------------------------------ */

static uint64_t count_of(rl_db *db, rl_txn *t, const char *table)
{
    uint64_t n = 0;
    OK(db, rl_count(t, table, &n));
    return n;
}

static void expect_check_ok(rl_db *db, rl_txn *t)
{
    char *report = NULL;
    int rc = rl_check(t, &report);
    if (rc != RL_OK)
        fail_msg("rl_check: %s", report ? report : rl_errmsg(db));
    free(report);
}

static void test_unique_and_indexes(void **state)
{
    rl_db *db = open_at("unique.rdb", 512, 0, 1);
    rl_txn *t = begin(db, RL_WRITE);
    const char *name, *const *cols;
    const char *by_name[] = {"name"}, *by_both[] = {"name", "email"};
    int unique, ncols;
    int64_t a, b;
    (void)state;
    OK(db, rl_create_table(t, "users", users_cols, 2));
    OK(db, rl_insert(t, "users", (rl_value[]){rl_null(), rl_text("Ann"), rl_text("a@x")}, 3, &a));
    OK(db, rl_insert(t, "users", (rl_value[]){rl_null(), rl_text("Ann"), rl_text("b@x")}, 3, &b));
    FAILS(db, RL_DUPLICATE, "users_email_unique",
          rl_insert(t, "users", (rl_value[]){rl_null(), rl_text("Bo"), rl_text("a@x")}, 3, NULL));
    /* NULLs are exempt; a row may keep its own value. */
    OK(db, rl_insert(t, "users", (rl_value[]){rl_null(), rl_text("C"), rl_null()}, 3, NULL));
    OK(db, rl_insert(t, "users", (rl_value[]){rl_null(), rl_text("D"), rl_null()}, 3, NULL));
    OK(db, rl_update(t, "users", a, (rl_value[]){rl_null(), rl_text("Ann2"), rl_text("a@x")}, 3));
    FAILS(db, RL_DUPLICATE, "row 1",
          rl_update(t, "users", b, (rl_value[]){rl_null(), rl_text("Ann"), rl_text("a@x")}, 3));
    /* After a delete the value is free again. */
    OK(db, rl_delete(t, "users", a));
    OK(db, rl_update(t, "users", b, (rl_value[]){rl_null(), rl_text("Ann"), rl_text("a@x")}, 3));
    /* A unique index the rows already break is refused, and leaves nothing. */
    OK(db, rl_insert(t, "users", (rl_value[]){rl_null(), rl_text("Ann"), rl_text("c@x")}, 3, NULL));
    FAILS(db, RL_DUPLICATE, "unique index users_name", rl_create_index(t, "users_name", "users",
                                                                        by_name, 1, 1));
    assert_int_equal(rl_index_at(t, "users", 1, &name, &unique, &cols, &ncols), RL_NOTFOUND);
    OK(db, rl_create_index(t, "users_name", "users", by_name, 1, 0));
    OK(db, rl_create_index(t, "users_both", "users", by_both, 2, 1));
    FAILS(db, RL_EXISTS, "users_name", rl_create_index(t, "users_name", "users", by_name, 1, 0));
    FAILS(db, RL_NOCOLUMN, "nope",
          rl_create_index(t, "ix", "users", (const char *[]){"nope"}, 1, 0));
    OK(db, rl_index_at(t, "users", 2, &name, &unique, &cols, &ncols));
    assert_string_equal(name, "users_both");
    assert_int_equal(unique, 1);
    assert_int_equal(ncols, 2);
    assert_string_equal(cols[1], "email");
    expect_check_ok(db, t);
    OK(db, rl_commit(t));
    /* Indexes survive reopening, are kept through vacuum, and can go. */
    OK(db, rl_close(db));
    db = open_at("unique.rdb", 0, 0, 0);
    t = begin(db, RL_WRITE);
    FAILS(db, RL_DUPLICATE, "users_email_unique",
          rl_insert(t, "users", (rl_value[]){rl_null(), rl_text("Ann"), rl_text("c@x")}, 3, NULL));
    /* A unique index over two columns: only the pair must be new. */
    {
        static const rl_column pair_cols[] = {{"a", RL_TINTEGER, 0, 0, NULL, 0},
                                              {"b", RL_TINTEGER, 0, 0, NULL, 0}};
        const char *ab[] = {"a", "b"};
        OK(db, rl_create_table(t, "pairs", pair_cols, 2));
        OK(db, rl_create_index(t, "pairs_ab", "pairs", ab, 2, 1));
        OK(db, rl_insert(t, "pairs", (rl_value[]){rl_null(), rl_int(1), rl_int(2)}, 3, NULL));
        OK(db, rl_insert(t, "pairs", (rl_value[]){rl_null(), rl_int(1), rl_int(3)}, 3, NULL));
        OK(db, rl_insert(t, "pairs", (rl_value[]){rl_null(), rl_int(2), rl_int(2)}, 3, NULL));
        FAILS(db, RL_DUPLICATE, "pairs_ab",
              rl_insert(t, "pairs", (rl_value[]){rl_null(), rl_int(1), rl_int(2)}, 3, NULL));
        OK(db, rl_insert(t, "pairs", (rl_value[]){rl_null(), rl_int(1), rl_null()}, 3, NULL));
        OK(db, rl_insert(t, "pairs", (rl_value[]){rl_null(), rl_int(1), rl_null()}, 3, NULL));
    }
    for (int i = 0; i < 300; i++)
        OK(db, rl_insert(t, "users", (rl_value[]){rl_null(), rl_text("x"), rl_null()}, 3, NULL));
    for (int64_t id = 10; id < 250; id++)
        OK(db, rl_delete(t, "users", id));
    OK(db, rl_vacuum(t, NULL));
    expect_check_ok(db, t);
    OK(db, rl_drop_index(t, "users_name"));
    FAILS(db, RL_NOTFOUND, "users_name", rl_drop_index(t, "users_name"));
    expect_check_ok(db, t);
    OK(db, rl_commit(t));
    OK(db, rl_close(db));
}

static void test_foreign_key_rules(void **state)
{
    rl_db *db = open_at("fk.rdb", 512, 0, 1);
    rl_txn *t = begin(db, RL_WRITE);
    int64_t u, p1, p2, k1, k2, k3;
    rl_row *row;
    (void)state;
    make_schema(db, t); /* owner RESTRICT, project CASCADE, parent SET NULL */
    OK(db, rl_insert(t, "users", (rl_value[]){rl_null(), rl_text("U"), rl_null()}, 3, &u));
    OK(db, rl_insert(t, "projects", (rl_value[]){rl_null(), rl_int(u), rl_text("P1"), rl_null()},
                     4, &p1));
    OK(db, rl_insert(t, "projects", (rl_value[]){rl_null(), rl_int(u), rl_text("P2"), rl_null()},
                     4, &p2));
    OK(db, rl_insert(t, "tasks", (rl_value[]){rl_null(), rl_int(p1), rl_null(), rl_text("a"),
                                              rl_null(), rl_null(), rl_null()}, 7, &k1));
    OK(db, rl_insert(t, "tasks", (rl_value[]){rl_null(), rl_int(p2), rl_int(k1), rl_text("b"),
                                              rl_null(), rl_null(), rl_null()}, 7, &k2));
    OK(db, rl_insert(t, "tasks", (rl_value[]){rl_null(), rl_int(p1), rl_int(k2), rl_text("c"),
                                              rl_null(), rl_null(), rl_null()}, 7, &k3));
    /* RESTRICT: the user owns projects. */
    FAILS(db, RL_FOREIGNKEY, "users 1 is referenced by projects 1", rl_delete(t, "users", u));
    FAILS(db, RL_FOREIGNKEY, "referenced by projects", rl_truncate(t, "users"));
    assert_int_equal(count_of(db, t, "users"), 1);
    /* CASCADE: deleting P1 deletes tasks a and c; SET NULL: b loses its parent a. */
    OK(db, rl_delete(t, "projects", p1));
    assert_int_equal(count_of(db, t, "tasks"), 1);
    OK(db, rl_get(t, "tasks", k2, &row));
    assert_true(rl_row_is_null(row, 2));
    rl_row_free(row);
    assert_int_equal(rl_get(t, "tasks", k3, &row), RL_NOTFOUND);
    /* A task that is its own parent goes away without a fuss. */
    OK(db, rl_update(t, "tasks", k2, (rl_value[]){rl_null(), rl_int(p2), rl_int(k2), rl_text("b"),
                                                  rl_null(), rl_null(), rl_null()}, 7));
    OK(db, rl_delete(t, "tasks", k2));
    /* Truncate follows the rules too: projects cascade into tasks. */
    OK(db, rl_insert(t, "tasks", (rl_value[]){rl_null(), rl_int(p2), rl_null(), rl_text("d"),
                                              rl_null(), rl_null(), rl_null()}, 7, NULL));
    OK(db, rl_truncate(t, "projects"));
    assert_int_equal(count_of(db, t, "tasks"), 0);
    OK(db, rl_delete(t, "users", u)); /* nothing references it now */
    expect_check_ok(db, t);
    OK(db, rl_commit(t));
    OK(db, rl_close(db));
}


/* Several processes insert at once: one writer at a time, nothing lost. */
static void test_processes_insert(void **state)
{
    const char *path = tu_path("procs.rdb");
    rl_db *db = open_at("procs.rdb", 512, 0, 1);
    rl_txn *t = begin(db, RL_WRITE);
    pid_t pids[3];
    int per = (int)tu_scale(100);
    uint64_t n;
    (void)state;
    OK(db, rl_create_table(t, "users", users_cols, 2));
    OK(db, rl_commit(t));
    OK(db, rl_close(db));
    for (int p = 0; p < 3; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            rl_db *c = NULL;
            int ok = rl_open(path, NULL, &c) == RL_OK;
            for (int i = 0; ok && i < per; i++) {
                rl_txn *w = NULL;
                ok = rl_begin(c, RL_WRITE, &w) == RL_OK &&
                     rl_insert(w, "users", (rl_value[]){rl_null(), rl_text("p"), rl_null()}, 3,
                               NULL) == RL_OK &&
                     rl_commit(w) == RL_OK;
                if (!ok)
                    fprintf(stderr, "process %d, insert %d: %s\n", p, i, rl_errmsg(c));
            }
            ok = rl_close(c) == RL_OK && ok;
            _exit(ok ? 0 : 1);
        }
    }
    for (int p = 0; p < 3; p++) {
        int status;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    db = open_at("procs.rdb", 0, 0, 0);
    t = begin(db, RL_READ);
    OK(db, rl_count(t, "users", &n));
    assert_int_equal(n, 3 * (uint64_t)per); /* every insert of every process */
    {
        rl_cursor *c;
        const rl_row *row;
        int64_t expect = 1;
        OK(db, rl_scan(t, "users", &c));
        while (rl_cursor_next(c, &row) == RL_OK) /* ids 1..3*per, each once */
            assert_int_equal(rl_row_int(row, 0), expect++);
        rl_cursor_close(c);
        assert_int_equal(expect - 1, 3 * per);
    }
    expect_check_ok(db, t);
    rl_rollback(t);
    OK(db, rl_close(db));
}

/* ---- randomised: three related tables against a model ------------------------------- */

#define NT 3
static const char *const tnames[NT] = {"users", "projects", "tasks"};
static const int tncols[NT] = {3, 4, 7};

typedef struct mrow {
    int live;
    rl_value v[7];
    char *text[7]; /* owned copies of byte values */
} mrow;

typedef struct mtable {
    mrow *rows; /* indexed by id */
    int64_t cap, next_id;
} mtable;

typedef struct mdb {
    mtable t[NT];
} mdb;

static void mrow_clear(mrow *r)
{
    for (int c = 0; c < 7; c++)
        free(r->text[c]);
    memset(r, 0, sizeof *r);
}

static void mrow_set(mrow *r, const rl_value *v, int n)
{
    mrow_clear(r);
    r->live = 1;
    for (int c = 0; c < n; c++) {
        r->v[c] = v[c];
        if (v[c].type >= RL_TCHAR) {
            r->text[c] = malloc(v[c].v.b.n + 1);
            memcpy(r->text[c], v[c].v.b.p, v[c].v.b.n);
            r->v[c].v.b.p = r->text[c];
        }
    }
}

static void mdb_copy(mdb *dst, const mdb *src)
{
    for (int i = 0; i < NT; i++) {
        for (int64_t id = 0; id < dst->t[i].cap; id++)
            mrow_clear(&dst->t[i].rows[id]);
        free(dst->t[i].rows);
        dst->t[i] = src->t[i];
        dst->t[i].rows = calloc((size_t)src->t[i].cap + 1, sizeof(mrow));
        for (int64_t id = 0; id < src->t[i].cap; id++)
            if (src->t[i].rows[id].live)
                mrow_set(&dst->t[i].rows[id], src->t[i].rows[id].v, tncols[i]);
    }
}

static void mdb_free(mdb *m)
{
    for (int i = 0; i < NT; i++) {
        for (int64_t id = 0; id < m->t[i].cap; id++)
            mrow_clear(&m->t[i].rows[id]);
        free(m->t[i].rows);
    }
}

static int mlive(const mdb *m, int tb, int64_t id)
{
    return id > 0 && id < m->t[tb].cap && m->t[tb].rows[id].live;
}

static void expect_row(const rl_row *row, const mrow *r, int n)
{
    for (int c = 0; c < n; c++) {
        assert_int_equal(rl_row_type(row, c) == RL_TNULL, r->v[c].type == RL_TNULL);
        if (r->v[c].type == RL_TINTEGER)
            assert_int_equal(rl_row_int(row, c), r->v[c].v.i);
        else if (r->v[c].type == RL_TREAL)
            assert_true(rl_row_real(row, c) == r->v[c].v.r);
        else if (r->v[c].type != RL_TNULL)
            expect_bytes(row, c, r->v[c].v.b.p, r->v[c].v.b.n);
    }
}

/* Check every table of the database against the model. */
static void mdb_check(rl_db *db, rl_txn *t, const mdb *m)
{
    for (int i = 0; i < NT; i++) {
        uint64_t n = 0, live = 0;
        rl_cursor *c;
        const rl_row *row;
        for (int64_t id = 1; id < m->t[i].cap; id++)
            live += m->t[i].rows[id].live != 0;
        OK(db, rl_count(t, tnames[i], &n));
        assert_int_equal(n, live);
        OK(db, rl_scan(t, tnames[i], &c));
        n = 0;
        while (rl_cursor_next(c, &row) == RL_OK) {
            int64_t id = rl_row_int(row, 0);
            assert_true(mlive(m, i, id));
            expect_row(row, &m->t[i].rows[id], tncols[i]);
            n++;
        }
        rl_cursor_close(c);
        assert_int_equal(n, live);
    }
}

/* Random values for a row of table tb; may name missing parents. */
static void random_row(const mdb *m, int tb, uint64_t *rs, rl_value *v, char *buf, size_t bufn)
{
    size_t len = tu_rand(rs) % 8 == 0 ? tu_rand(rs) % bufn : tu_rand(rs) % 60;
    int64_t pick;
    memset(buf, 'a' + (int)(tu_rand(rs) % 26), len);
    v[0] = rl_null();
    if (tb == 0) {
        v[1] = rl_textn(buf, len);
        v[2] = tu_rand(rs) % 3 ? rl_textn(buf, len % 41) : rl_null();
    } else if (tb == 1) {
        pick = (int64_t)(tu_rand(rs) % (uint64_t)(m->t[0].next_id + 1));
        v[1] = tu_rand(rs) % 5 ? rl_int(pick) : rl_null();
        v[2] = rl_textn(buf, len);
        v[3] = rl_real((double)(tu_rand(rs) % 1000) / 8);
    } else {
        pick = (int64_t)(tu_rand(rs) % (uint64_t)(m->t[1].next_id + 1));
        v[1] = rl_int(pick);
        pick = (int64_t)(tu_rand(rs) % (uint64_t)(m->t[2].next_id + 1));
        v[2] = tu_rand(rs) % 3 ? rl_null() : rl_int(pick);
        v[3] = rl_textn(buf, len % 100);
        v[4] = tu_rand(rs) % 2 ? rl_textn(buf, len) : rl_null();
        v[5] = rl_int((int64_t)(tu_rand(rs) % 5));
        v[6] = tu_rand(rs) % 4 ? rl_real((double)len / 4) : rl_null();
    }
}

/* The result the model expects for an insert or update of v in tb. */
static int model_verdict(const mdb *m, int tb, const rl_value *v, int64_t self)
{
    if (tb == 0 && v[2].type != RL_TNULL) /* users.email is UNIQUE */
        for (int64_t u = 1; u < m->t[0].cap; u++)
            if (u != self && mlive(m, 0, u) && m->t[0].rows[u].v[2].type != RL_TNULL &&
                m->t[0].rows[u].v[2].v.b.n == v[2].v.b.n &&
                memcmp(m->t[0].rows[u].v[2].v.b.p, v[2].v.b.p, v[2].v.b.n) == 0)
                return RL_DUPLICATE;
    if (tb == 1 && v[1].type != RL_TNULL && !mlive(m, 0, v[1].v.i))
        return RL_FOREIGNKEY;
    if (tb == 2 && !mlive(m, 1, v[1].v.i))
        return RL_FOREIGNKEY;
    if (tb == 2 && v[2].type != RL_TNULL && v[2].v.i != self && !mlive(m, 2, v[2].v.i))
        return RL_FOREIGNKEY;
    return RL_OK;
}

static void mtable_put(mtable *mt, int64_t id, const rl_value *v, int n)
{
    if (id >= mt->cap) {
        int64_t cap = (id + 1) * 2;
        mt->rows = realloc(mt->rows, (size_t)cap * sizeof(mrow));
        memset(mt->rows + mt->cap, 0, (size_t)(cap - mt->cap) * sizeof(mrow));
        mt->cap = cap;
    }
    mrow_set(&mt->rows[id], v, n);
    mt->rows[id].v[0] = rl_int(id);
    if (id >= mt->next_id)
        mt->next_id = id + 1;
}

/* Delete a row of the model and follow tasks.project (CASCADE) and
 * tasks.parent (SET NULL). */
static void model_delete(mdb *m, int tb, int64_t id)
{
    mrow_clear(&m->t[tb].rows[id]);
    if (tb == 1) /* the project's tasks go with it */
        for (int64_t k = 1; k < m->t[2].cap; k++)
            if (mlive(m, 2, k) && m->t[2].rows[k].v[1].v.i == id)
                model_delete(m, 2, k);
    if (tb == 2) /* children of the task lose their parent */
        for (int64_t k = 1; k < m->t[2].cap; k++)
            if (mlive(m, 2, k) && m->t[2].rows[k].v[2].type == RL_TINTEGER &&
                m->t[2].rows[k].v[2].v.i == id)
                m->t[2].rows[k].v[2] = rl_null();
}

static void random_step(rl_db *db, rl_txn *t, mdb *m, uint64_t *rs, char *buf, size_t bufn)
{
    int tb = (int)(tu_rand(rs) % NT), rc, want;
    uint64_t op = tu_rand(rs) % 10;
    int64_t id = (int64_t)(tu_rand(rs) % (uint64_t)(m->t[tb].next_id + 1)), got;
    rl_value v[7];
    random_row(m, tb, rs, v, buf, bufn);
    if (op < 5) { /* insert */
        want = model_verdict(m, tb, v, m->t[tb].next_id);
        rc = rl_insert(t, tnames[tb], v, tncols[tb], &got);
        if (rc != want)
            fail_msg("insert into %s: %s, model says %s (%s)", tnames[tb], rl_errname(rc),
                     rl_errname(want), rl_errmsg(db));
        if (rc == RL_OK) {
            assert_int_equal(got, m->t[tb].next_id);
            mtable_put(&m->t[tb], got, v, tncols[tb]);
        }
    } else if (op < 7) { /* update */
        want = !mlive(m, tb, id) ? RL_NOTFOUND : model_verdict(m, tb, v, id);
        if (want == RL_NOTFOUND && model_verdict(m, tb, v, id) == RL_FOREIGNKEY)
            want = RL_FOREIGNKEY; /* values are checked before the row is looked up */
        rc = rl_update(t, tnames[tb], id, v, tncols[tb]);
        if (rc != want)
            fail_msg("update %s %lld: %s, model says %s (%s)", tnames[tb], (long long)id,
                     rl_errname(rc), rl_errname(want), rl_errmsg(db));
        if (rc == RL_OK)
            mtable_put(&m->t[tb], id, v, tncols[tb]);
    } else if (op < 9) { /* delete, following the foreign keys */
        want = !mlive(m, tb, id) ? RL_NOTFOUND : RL_OK;
        for (int64_t p = 1; tb == 0 && want == RL_OK && p < m->t[1].cap; p++)
            if (mlive(m, 1, p) && m->t[1].rows[p].v[1].type == RL_TINTEGER &&
                m->t[1].rows[p].v[1].v.i == id)
                want = RL_FOREIGNKEY; /* projects.owner: RESTRICT */
        rc = rl_delete(t, tnames[tb], id);
        if (rc != want)
            fail_msg("delete %s %lld: %s, model says %s (%s)", tnames[tb], (long long)id,
                     rl_errname(rc), rl_errname(want), rl_errmsg(db));
        if (rc == RL_OK)
            model_delete(m, tb, id);
    } else { /* get */
        rl_row *row = NULL;
        rc = rl_get(t, tnames[tb], id, &row);
        assert_int_equal(rc, mlive(m, tb, id) ? RL_OK : RL_NOTFOUND);
        if (rc == RL_OK)
            expect_row(row, &m->t[tb].rows[id], tncols[tb]);
        rl_row_free(row);
    }
}

static void random_run(uint32_t bs, long steps, uint64_t seed)
{
    char name[64];
    size_t bufn = bs * 3;
    char *buf = malloc(bufn);
    mdb committed, working;
    rl_db *db;
    rl_txn *t = NULL;
    uint64_t rs = seed;
    long commits = 0, rollbacks = 0, reopens = 0;
    snprintf(name, sizeof name, "model-%u.rdb", bs);
    memset(&committed, 0, sizeof committed);
    memset(&working, 0, sizeof working);
    for (int i = 0; i < NT; i++)
        committed.t[i].next_id = working.t[i].next_id = 1;
    db = open_at(name, bs, 0, 1);
    t = begin(db, RL_WRITE);
    make_schema(db, t);
    OK(db, rl_commit(t));
    t = NULL;
    for (long s = 0; s < steps; s++) {
        uint64_t act = tu_rand(&rs) % 1000;
        if (!t)
            t = begin(db, RL_WRITE);
        if (act < 960) {
            random_step(db, t, &working, &rs, buf, bufn);
        } else if (act < 985) {
            if (act % 5 == 0) /* now and then, rebuild everything first */
                OK(db, rl_vacuum(t, act % 2 ? NULL : tnames[act % NT]));
            OK(db, rl_commit(t));
            mdb_copy(&committed, &working);
            commits++;
            t = NULL;
        } else {
            rl_rollback(t);
            mdb_copy(&working, &committed);
            rollbacks++;
            t = NULL;
            if (act >= 995) {
                OK(db, rl_close(db));
                db = open_at(name, 0, 0, 0);
                reopens++;
            }
        }
        if (s % 2000 == 1999) {
            rl_txn *r = begin(db, RL_READ);
            char *report = NULL;
            mdb_check(db, r, &committed);
            if (rl_check(r, &report) != RL_OK)
                fail_msg("rl_check: %s", report ? report : rl_errmsg(db));
            free(report);
            rl_rollback(r);
        }
    }
    if (t)
        OK(db, rl_commit(t));
    mdb_copy(&committed, &working);
    t = begin(db, RL_READ);
    mdb_check(db, t, &committed);
    rl_rollback(t);
    print_message("block size %u: %ld operations, %ld commits, %ld rollbacks, %ld reopens, "
                  "file %llu bytes\n",
                  bs, steps, commits, rollbacks, reopens,
                  (unsigned long long)tu_file_size(tu_path(name)));
    OK(db, rl_close(db));
    mdb_free(&committed);
    mdb_free(&working);
    free(buf);
}

static void test_random_three_tables(void **state)
{
    (void)state;
    random_run(512, tu_scale(20000), 4242);
    random_run(4096, tu_scale(20000), 777);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types_roundtrip),
        cmocka_unit_test(test_persistence_and_schema),
        cmocka_unit_test(test_txn_ids_and_damaged_last_commit),
        cmocka_unit_test(test_tombstones_and_vacuum),
        cmocka_unit_test(test_vacuum_beside_an_old_reader),
        cmocka_unit_test(test_index_build_leaves_room),
        cmocka_unit_test(test_space_of_chains_and_indexes),
        cmocka_unit_test(test_errors_leave_database_unchanged),
        cmocka_unit_test(test_ids_update_truncate_drop),
        cmocka_unit_test(test_unique_and_indexes),
        cmocka_unit_test(test_foreign_key_rules),
        cmocka_unit_test(test_processes_insert),
        cmocka_unit_test(test_random_three_tables),
    };
    tu_setup_dir("api");
    return cmocka_run_group_tests_name("api", tests, NULL, NULL);
}
