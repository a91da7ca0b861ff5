/*
** tests/test_api.c: the public API (relatable.h) end to end: every type
** and its edges, persistence, the schema read back, tombstones, vacuum,
** every error with the database unchanged after it (the randomised run
** against a model is tests/test_model.c).
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
#include "tests/apiutil.h"
#include "tests/testutil.h"

/* The root area of a file of 512-byte blocks: the header, four root slots
 * and their commit areas (docs/format.md), a fixed part of every size. */
#define ROOT_AREA_512 (4096 + 4 * (4096 + 16 * 512))

/* ---- every type, with its edges ------------------------------------------- */

static const rl_column all_types[] = {
    {"i", RL_TINTEGER, 0, 0, NULL, 0}, {"r", RL_TREAL, 0, 0, NULL, 0},
    {"c", RL_TCHAR, 6, 0, NULL, 0},    {"t", RL_TTEXT, 0, 0, NULL, 0},
    {"b", RL_TBLOB, 0, 0, NULL, 0},
};

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

/* An index whose keys arrive run by run, (group, id) with ids growing
 * and groups mixed, splits a full leaf right after a key that ends its
 * run: its leaves end up well filled, where halves would leave each about
 * half empty. Keys that land inside a run split in halves as before, and
 * every key stays findable either way. */
static void test_index_fill_for_runs(void **state)
{
    static const rl_column cols[] = {{"grp", RL_TINTEGER, 0, 0, NULL, 0}};
    static const char *const grp[] = {"grp"};
    rl_db *db = open_at("runs.rdb", 512, -1.0, 1);
    rl_txn *t = begin(db, RL_WRITE);
    rl_space sp;
    uint64_t n, total = 0, seed = 7;
    (void)state;
    OK(db, rl_create_table(t, "t", cols, 1));
    OK(db, rl_create_index(t, "t_grp", "t", grp, 1, 0));
    for (int i = 0; i < 20000; i++) { /* groups in a scrambled order */
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        OK(db, rl_insert(t, "t", (rl_value[]){rl_int(2 * i + 2), rl_int((int64_t)(seed >> 33) % 40)}, 2,
                         NULL));
    }
    OK(db, rl_commit(t));
    sp = space_of(db, 512, "t", "t_grp");
    print_message("index of 20,000 keys in runs: %llu leaves, %.1f%% used\n",
                  (unsigned long long)sp.leaf_blocks,
                  100.0 * (double)sp.bytes_used / (double)(sp.bytes_used + sp.bytes_free));
    assert_true(sp.bytes_used * 100 >= (sp.bytes_used + sp.bytes_free) * 75); /* halves: 58% */
    t = begin(db, RL_WRITE);
    for (int i = 0; i < 3000; i++) { /* keys inside the runs: odd ids between the even ones */
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        OK(db, rl_insert(t, "t", (rl_value[]){rl_int(2 * (i * 7 % 20000) + 1), rl_int((int64_t)(seed >> 33) % 40)},
                         2, NULL));
    }
    for (int g = 0; g < 40; g++) {
        rl_query q = {0};
        rl_cond *c = rl_cmp("grp", RL_EQ, rl_int(g));
        q.table = "t";
        q.where = c;
        OK(db, rl_query_count(t, &q, &n));
        total += n;
        rl_cond_free(c);
    }
    assert_int_equal(total, 23000);
    {
        char *report = NULL;
        OK(db, rl_check(t, &report));
        assert_string_equal(report, "");
        free(report);
    }
    OK(db, rl_commit(t));
    OK(db, rl_close(db));
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

/* A table's row count and next id, committed and read back. */
static void expect_state(rl_db *db, const char *table, uint64_t count, int64_t next_id)
{
    rl_txn *t = begin(db, RL_WRITE);
    rl_value v[3] = {rl_null(), rl_text("probe"), rl_null()};
    uint64_t n;
    int64_t id;
    OK(db, rl_count(t, table, &n));
    assert_int_equal(n, count);
    OK(db, rl_insert(t, table, v, 3, &id));
    assert_int_equal(id, next_id);
    rl_rollback(t);
}

/* The table state (row count, next id) a run of rows changes is written
 * once per run (rl__tbl_state_flush): it must reach the file when the
 * transaction turns to another table, creates or drops one, and commits. */
static void test_table_state_across_tables(void **state)
{
    rl_db *db = open_at("state.rdb", 512, -1, 1);
    rl_txn *t = begin(db, RL_WRITE);
    rl_value v[3] = {rl_null(), rl_text("a"), rl_null()};
    int64_t id;
    uint64_t n;
    (void)state;
    OK(db, rl_create_table(t, "a", users_cols, 2));
    for (int i = 0; i < 5; i++)
        OK(db, rl_insert(t, "a", v, 3, &id));
    OK(db, rl_create_table(t, "b", users_cols, 2)); /* a's state pending */
    for (int i = 0; i < 3; i++) {
        OK(db, rl_insert(t, "b", v, 3, &id));
        OK(db, rl_insert(t, "a", v, 3, &id)); /* turns between the two */
    }
    OK(db, rl_delete(t, "a", 1));
    OK(db, rl_delete(t, "b", 2));
    OK(db, rl_create_table(t, "c", users_cols, 2));
    OK(db, rl_insert(t, "c", v, 3, &id));
    OK(db, rl_drop_table(t, "c")); /* its own state was pending */
    OK(db, rl_insert(t, "a", v, 3, &id));
    assert_int_equal(id, 9);
    OK(db, rl_commit(t));
    rl_close(db);
    db = open_at("state.rdb", 512, -1, 0);
    expect_state(db, "a", 8, 10);
    expect_state(db, "b", 2, 4);
    t = begin(db, RL_READ);
    assert_int_equal(rl_count(t, "c", &n), RL_NOTABLE);
    rl_rollback(t);
    /* A rolled-back run leaves the committed state as it was. */
    t = begin(db, RL_WRITE);
    for (int i = 0; i < 4; i++)
        OK(db, rl_insert(t, "a", v, 3, &id));
    rl_rollback(t);
    expect_state(db, "a", 8, 10);
    rl_close(db);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types_roundtrip),
        cmocka_unit_test(test_persistence_and_schema),
        cmocka_unit_test(test_txn_ids_and_damaged_last_commit),
        cmocka_unit_test(test_tombstones_and_vacuum),
        cmocka_unit_test(test_index_fill_for_runs),
        cmocka_unit_test(test_vacuum_beside_an_old_reader),
        cmocka_unit_test(test_index_build_leaves_room),
        cmocka_unit_test(test_space_of_chains_and_indexes),
        cmocka_unit_test(test_errors_leave_database_unchanged),
        cmocka_unit_test(test_ids_update_truncate_drop),
        cmocka_unit_test(test_table_state_across_tables),
        cmocka_unit_test(test_unique_and_indexes),
        cmocka_unit_test(test_foreign_key_rules),
        cmocka_unit_test(test_processes_insert),
    };
    tu_setup_dir("api");
    return cmocka_run_group_tests_name("api", tests, NULL, NULL);
}
