/*
** tests/test_crash.c: crashes at every write, truncate and sync of a
** scripted workload (tables, inserts with large values, updates, cascading
** deletes, an index, vacuum, one-row commits), under every policy for the
** writes that were not synced (all lost, all kept, the last one torn at
** 512-byte granularity, random sectors kept). After each crash the file
** must open, pass rl_check, and hold exactly the state after the last
** commit that returned, or after the commit the crash interrupted.
*/
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "schema/schema.h"
#include "tests/simio.h"
#include "tests/testutil.h"

#define MAX_COMMITS 32

/* ---- a canonical text of the whole database ---------------------------- */

typedef struct text {
    char *p;
    size_t n, cap;
} text;

static void add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text *t, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (t->cap - t->n < 4096) {
        t->cap = t->cap ? 2 * t->cap + 4096 : 8192;
        t->p = realloc(t->p, t->cap);
    }
    va_start(ap, fmt);
    n = vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < t->cap - t->n)
        t->n += (size_t)n;
}

/* Every table, column, index and row, in a fixed order. */
static char *dump(rl_db *db)
{
    text t = {0};
    rl_txn *tx;
    const char *name;
    add(&t, "db\n");
    if (rl_begin(db, RL_READ, &tx) != RL_OK)
        return t.p;
    for (int i = 0; rl_table_at(tx, i, &name) == RL_OK; i++) {
        const rl_column *cols;
        const char *ix, *const *icols;
        int ncols, unique, nic;
        rl_cursor *c;
        const rl_row *row;
        add(&t, "table %s\n", name);
        rl_columns(tx, name, &cols, &ncols);
        for (int k = 0; rl_index_at(tx, name, k, &ix, &unique, &icols, &nic) == RL_OK; k++)
            add(&t, " index %s %d\n", ix, unique);
        if (rl_scan(tx, name, &c) != RL_OK) {
            add(&t, " scan failed\n");
            continue;
        }
        while (rl_cursor_next(c, &row) == RL_OK) {
            for (int k = 0; k < ncols; k++) {
                rl_value v;
                rl_row_get(row, k, &v);
                if (v.type == RL_TNULL)
                    add(&t, " -");
                else if (v.type == RL_TINTEGER)
                    add(&t, " %lld", (long long)v.v.i);
                else if (v.type == RL_TREAL)
                    add(&t, " %.17g", v.v.r);
                else {
                    uint32_t h = 2166136261u; /* FNV-1a of the bytes */
                    for (size_t b = 0; b < v.v.b.n; b++)
                        h = (h ^ ((const uint8_t *)v.v.b.p)[b]) * 16777619u;
                    add(&t, " %zu:%08x", v.v.b.n, h);
                }
            }
            add(&t, "\n");
        }
        rl_cursor_close(c);
    }
    rl_rollback(tx);
    return t.p;
}

/* ---- the workload ---------------------------------------------------------- */

static const rl_column users[] = {
    {"name", RL_TTEXT, 0, RL_NOT_NULL, NULL, 0},
    {"email", RL_TCHAR, 20, RL_UNIQUE, NULL, 0},
};
static const rl_column tasks[] = {
    {"owner", RL_TINTEGER, 0, 0, "users", RL_FK_CASCADE},
    {"title", RL_TTEXT, 0, 0, NULL, 0},
    {"body", RL_TTEXT, 0, 0, NULL, 0},
    {"hours", RL_TREAL, 0, 0, NULL, 0},
};

static char big[3000];

static int add_user(rl_txn *t, int i)
{
    char email[20];
    snprintf(email, sizeof email, "u%d@x", i);
    return rl_insert(t, "users", (rl_value[]){rl_null(), rl_text("user"), rl_text(email)}, 3,
                     NULL);
}

static int add_task(rl_txn *t, int owner, int i)
{
    size_t body = i % 7 == 0 ? sizeof big : (size_t)(i * 13 % 200);
    return rl_insert(t, "tasks",
                     (rl_value[]){rl_null(), rl_int(owner), rl_text(i % 2 ? "design" : "build"),
                                  rl_textn(big, body), rl_real(i / 4.0)}, 5, NULL);
}

/* One transaction of the script; returns RL_OK or the first failure. */
static int step(rl_txn *t, int n)
{
    int rc = RL_OK;
    switch (n) {
    case 0:
        rc = rl_create_table(t, "users", users, 2);
        return rc ? rc : rl_create_table(t, "tasks", tasks, 4);
    case 1:
        for (int i = 1; rc == RL_OK && i <= 12; i++)
            rc = add_user(t, i);
        for (int i = 1; rc == RL_OK && i <= 30; i++)
            rc = add_task(t, 1 + i % 12, i);
        return rc;
    case 2:
        for (int i = 1; rc == RL_OK && i <= 30; i += 3)
            rc = rl_update(t, "tasks", i, (rl_value[]){rl_null(), rl_int(2), rl_text("changed"),
                                                        rl_textn(big, (size_t)i * 50),
                                                        rl_null()}, 5);
        return rc ? rc : rl_delete(t, "users", 3); /* cascades to its tasks */
    case 3:
        rc = rl_create_index(t, "tasks_title", "tasks", (const char *[]){"title"}, 1, 0);
        for (int i = 31; rc == RL_OK && i <= 36; i++)
            rc = add_task(t, 1 + i % 12, i);
        return rc;
    case 4:
        return rl_vacuum(t, NULL);
    case 5:
    case 6:
    case 7:
        return add_task(t, 4, 100 + n); /* one-row commits */
    case 8: /* tasks whose owner (1 + i % 12) is not the deleted user 3 */
        for (int i = 4; rc == RL_OK && i <= 28; i += 4)
            rc = rl_delete(t, "tasks", i);
        return rc;
    default:
        return add_user(t, 100 + n);
    }
}

#define NSTEPS 10

/* Run the script on d; *commits counts the commits that returned. With
 * expect (not NULL), record the dump after each commit there. */
static void run(simdisk *d, const char *path, int *commits, char **expect)
{
    rl_options o = {RL_OPEN_CREATE, 0, RL_SYNC_FULL, 32 * 512, -1, 0};
    rl_db *db = NULL;
    *commits = 0;
    if (rl__open_io(path, &o, simdisk_open, d, &db) != RL_OK) {
        rl_close(db);
        return;
    }
    for (int s = 0; s < NSTEPS; s++) {
        rl_txn *t;
        int rc = rl_begin(db, RL_WRITE, &t);
        if (rc != RL_OK)
            break;
        rc = step(t, s);
        if (rc != RL_OK) {
            rl_rollback(t);
            break;
        }
        if (rl_commit(t) != RL_OK)
            break;
        (*commits)++;
        if (expect)
            expect[*commits] = dump(db);
    }
    if (d->fail_at && !d->crashed) {
        /* After an I/O error, with the disk back, the same handle answers a
         * read or says why not: a code, never a crash. */
        rl_txn *r;
        char *report = NULL;
        long failed_at = d->fail_at;
        d->fail_at = 0;
        if (rl_begin(db, RL_READ, &r) == RL_OK) {
            const char *name;
            int rc = rl_check(r, &report);
            assert_true(rc == RL_OK || rc == RL_CORRUPT || rc == RL_IOERR);
            if (rc != RL_OK)
                print_message("error at op %ld (sticky %d): %s\n", failed_at, d->fail_sticky, report);
            assert_int_equal(rc, RL_OK); /* nothing committed was damaged */
            (void)rl_table_at(r, 0, &name);
            free(report);
            rl_rollback(r);
        }
    }
    rl_close(db);
}

/* The image of a new, empty database of 512-byte blocks. */
static void fresh_image(simdisk *d, const char *path)
{
    rl_options o = {RL_OPEN_CREATE, 512, RL_SYNC_OFF, 0, 0, 0};
    rl_db *db;
    uint8_t *bytes;
    size_t n;
    unlink(path);
    assert_int_equal(rl_open(path, &o, &db), RL_OK);
    assert_int_equal(rl_close(db), RL_OK);
    bytes = tu_read_file(path, &n);
    simdisk_init(d);
    d->durable = bytes;
    d->dsize = d->dcap = n;
    d->live = malloc(n);
    memcpy(d->live, bytes, n);
    d->lsize = d->lcap = n;
}

static void test_crash_matrix(void **state)
{
    const char *path = tu_path("crash.rdb");
    char *expect[MAX_COMMITS] = {0};
    simdisk base, d;
    long total_ops, tried = 0, step_by;
    int commits;
    (void)state;
    memset(big, 'q', sizeof big);
    for (size_t i = 0; i < sizeof big; i += 7)
        big[i] = (char)('a' + i % 26);
    fresh_image(&base, path);
    /* The reference run: no crash; the dump after every commit. */
    {
        rl_db *db;
        simdisk_init(&d);
        fresh_image(&d, path);
        assert_int_equal(rl__open_io(path, NULL, simdisk_open, &d, &db), RL_OK);
        expect[0] = dump(db);
        rl_close(db);
        run(&d, path, &commits, expect);
        assert_int_equal(commits, NSTEPS);
        total_ops = d.ops;
        simdisk_free(&d);
    }
    step_by = tu_quick() ? 23 : 1;
    for (long k = 1; k <= total_ops; k += step_by)
        for (int policy = 0; policy < SIM_NPOLICIES; policy++) {
            rl_options o = {0, 0, RL_SYNC_FULL, 0, -1, 0};
            rl_db *db = NULL;
            char *got, *report = NULL;
            rl_txn *t;
            int rc;
            fresh_image(&d, path);
            d.crash_at = k;
            run(&d, path, &commits, NULL);
            simdisk_recover(&d, policy, (uint64_t)k * 4 + (uint64_t)policy);
            rc = rl__open_io(path, &o, simdisk_open, &d, &db);
            if (rc != RL_OK)
                fail_msg("crash at op %ld, policy %d: open: %s", k, policy, rl_errmsg(db));
            assert_int_equal(rl_begin(db, RL_READ, &t), RL_OK);
            if (rl_check(t, &report) != RL_OK)
                fail_msg("crash at op %ld, policy %d: check: %s", k, policy,
                         report ? report : rl_errmsg(db));
            free(report);
            rl_rollback(t);
            got = dump(db);
            if (strcmp(got, expect[commits]) != 0 &&
                (commits + 1 > NSTEPS || strcmp(got, expect[commits + 1]) != 0))
                fail_msg("crash at op %ld, policy %d, after %d commits: the file holds neither "
                         "commit %d nor commit %d", k, policy, commits, commits, commits + 1);
            free(got);
            rl_close(db);
            simdisk_free(&d);
            tried++;
        }
    print_message("crash matrix: %ld crash points x %d policies = %ld crashes, all recovered "
                  "to a committed state\n", (total_ops + step_by - 1) / step_by, SIM_NPOLICIES,
                  tried);
    for (int i = 0; i < MAX_COMMITS; i++)
        free(expect[i]);
    simdisk_free(&base);
}

/* Does the dump equal committed state i? (Several states can be equal:
 * a vacuum changes no content.) */
static int is_state(char *const *expect, int i, const char *got)
{
    return i >= 0 && i <= NSTEPS && expect[i] && strcmp(expect[i], got) == 0;
}

/* A failed operation (EIO once, or ENOSPC from then on) at every point of
 * the workload: the failing call reports it, the handle still answers a
 * read (or says why not), and after reopening the file passes rl_check
 * and holds a committed state. */
static void test_io_errors(void **state)
{
    const char *path = tu_path("ioerr.rdb");
    char *expect[MAX_COMMITS] = {0};
    simdisk d;
    long total_ops, tried = 0, step_by = tu_quick() ? 19 : 1;
    int commits;
    (void)state;
    fresh_image(&d, path);
    {
        rl_db *db;
        assert_int_equal(rl__open_io(path, NULL, simdisk_open, &d, &db), RL_OK);
        expect[0] = dump(db);
        rl_close(db);
    }
    run(&d, path, &commits, expect);
    total_ops = d.ops;
    simdisk_free(&d);
    for (long k = 1; k <= total_ops; k += step_by)
        for (int sticky = 0; sticky < 2; sticky++) {
            rl_options o = {0, 0, RL_SYNC_FULL, 0, -1, 0};
            rl_db *db = NULL;
            rl_txn *t;
            char *got, *report = NULL;
            int rc;
            fresh_image(&d, path);
            d.fail_at = k;
            d.fail_errno = sticky ? ENOSPC : EIO;
            d.fail_sticky = sticky;
            run(&d, path, &commits, NULL); /* also probes the handle after the error */
            /* A failure stops the script, except where it is harmless (the
             * truncate after a commit that is already durable). */
            d.fail_at = 0; /* the disk works again: reopen */
            rc = rl__open_io(path, &o, simdisk_open, &d, &db);
            if (rc != RL_OK)
                fail_msg("error at op %ld (%s): reopen: %s", k, sticky ? "ENOSPC" : "EIO",
                         rl_errmsg(db));
            assert_int_equal(rl_begin(db, RL_READ, &t), RL_OK);
            if (rl_check(t, &report) != RL_OK)
                fail_msg("error at op %ld: check: %s", k, report ? report : rl_errmsg(db));
            free(report);
            rl_rollback(t);
            got = dump(db);
            if (!is_state(expect, commits, got) && !is_state(expect, commits + 1, got))
                fail_msg("error at op %ld (%s), after %d commits: the file holds neither "
                         "state %d nor %d", k, sticky ? "ENOSPC" : "EIO", commits, commits,
                         commits + 1);
            free(got);
            rl_close(db);
            simdisk_free(&d);
            tried++;
        }
    print_message("I/O errors: %ld failed operations (EIO once, ENOSPC from then on): every "
                  "reopened file holds a committed state\n", tried);
    for (int i = 0; i < MAX_COMMITS; i++)
        free(expect[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_matrix),
        cmocka_unit_test(test_io_errors),
    };
    tu_setup_dir("crash");
    return cmocka_run_group_tests_name("crash", tests, NULL, NULL);
}
