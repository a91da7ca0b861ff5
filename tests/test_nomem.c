/*
** tests/test_nomem.c: out of memory at every allocation of a workload.
**
** The test program replaces malloc, calloc, realloc and free (glibc allows
** it; the library has no allocator hook and needs none), counts live
** allocations, and can fail the Nth one. For each N the workload runs
** until a call fails; that call must say RL_NOMEM, everything must be
** freed once the handle is closed, and the file, reopened with memory
** back, must pass rl_check and hold a committed state.
** Under AddressSanitizer (which owns malloc) the test is skipped.
*/
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "relatable.h"
#include "tests/testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define NOMEM_SKIP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NOMEM_SKIP 1
#endif
#endif

/* ---- the allocator: counts, and fails on request ------------------------ */

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static long fail_countdown = -1; /* the allocation that fails: 0 = the next; -1 none */
static long live, allocations;
static int failed;

static int fail_now(void)
{
    allocations++;
    if (fail_countdown < 0)
        return 0;
    if (fail_countdown-- == 0) {
        failed = 1;
        if (getenv("NOMEM_BREAK")) /* debugging: stop here under gdb */
            raise(SIGTRAP);
        return 1;
    }
    return 0;
}

void *malloc(size_t n)
{
    void *p = fail_now() ? NULL : __libc_malloc(n);
    live += p != NULL;
    return p;
}

void *calloc(size_t n, size_t size)
{
    void *p = fail_now() ? NULL : __libc_calloc(n, size);
    live += p != NULL;
    return p;
}

void *realloc(void *p, size_t n)
{
    void *q;
    if (fail_now())
        return NULL;
    q = __libc_realloc(p, n);
    live += q != NULL && p == NULL;
    return q;
}

void free(void *p)
{
    live -= p != NULL;
    __libc_free(p);
}

/* ---- the workload ---------------------------------------------------------- */

#define NSTEPS 6

static const rl_column users[] = {{"name", RL_TTEXT, 0, RL_NOT_NULL, NULL, 0},
                                  {"email", RL_TCHAR, 20, RL_UNIQUE, NULL, 0}};
static const rl_column tasks[] = {{"owner", RL_TINTEGER, 0, 0, "users", RL_FK_CASCADE},
                                  {"title", RL_TTEXT, 0, 0, NULL, 0},
                                  {"body", RL_TBLOB, 0, 0, NULL, 0}};
static char big[2000];

static int step(rl_txn *t, int s)
{
    int rc = RL_OK;
    switch (s) {
    case 0:
        rc = rl_create_table(t, "users", users, 2);
        return rc ? rc : rl_create_table(t, "tasks", tasks, 3);
    case 1:
        for (int i = 1; rc == RL_OK && i <= 6; i++) {
            char email[20];
            snprintf(email, sizeof email, "u%d", i);
            rc = rl_insert(t, "users", (rl_value[]){rl_null(), rl_text("u"), rl_text(email)}, 3,
                           NULL);
        }
        for (int i = 1; rc == RL_OK && i <= 12; i++)
            rc = rl_insert(t, "tasks", (rl_value[]){rl_null(), rl_int(1 + i % 6), rl_text("design"),
                                                    rl_blob(big, i % 4 ? 10 : sizeof big)},
                           4, NULL);
        return rc;
    case 2:
        rc = rl_create_index(t, "tasks_title", "tasks", (const char *[]){"title"}, 1, 0);
        return rc ? rc : rl_update(t, "tasks", 2, (rl_value[]){rl_null(), rl_int(3),
                                                               rl_text("build"), rl_null()}, 4);
    case 3: {
        rl_query q = {0};
        rl_cursor *c;
        const rl_row *row;
        rl_cond *cond = rl_and(rl_cmp("title", RL_EQ, rl_text("design")),
                               rl_cmp("owner", RL_GT, rl_int(2)));
        if (!cond)
            return RL_NOMEM;
        q.table = "tasks";
        q.where = cond;
        rc = rl_query_open(t, &q, &c);
        if (rc == RL_OK) {
            while ((rc = rl_cursor_next(c, &row)) == RL_OK)
                ;
            rl_cursor_close(c); /* also after an error */
        }
        rl_cond_free(cond);
        return rc == RL_DONE ? RL_OK : rc;
    }
    case 4:
        return rl_delete(t, "users", 2); /* cascades */
    default:
        return rl_vacuum(t, NULL);
    }
}

/* Run the workload on path; *commits counts the commits that returned;
 * the first failing call's code goes to *first_error. */
static void run(const char *path, int *commits, int *first_error)
{
    rl_options o = {RL_OPEN_CREATE, 512, RL_SYNC_OFF, 0, -1, 0};
    rl_db *db = NULL;
    int rc = rl_open(path, &o, &db);
    *commits = 0;
    *first_error = rc;
    for (int s = 0; rc == RL_OK && s < NSTEPS; s++) {
        rl_txn *t = NULL;
        rc = rl_begin(db, RL_WRITE, &t);
        if (rc == RL_OK && (rc = step(t, s)) != RL_OK)
            rl_rollback(t);
        else if (rc == RL_OK && (rc = rl_commit(t)) == RL_OK)
            (*commits)++;
        *first_error = rc;
    }
    rl_close(db);
}

/* Row count of every table, or -1 for an error; the state's fingerprint. */
static long fingerprint(const char *path)
{
    rl_db *db = NULL;
    rl_txn *t;
    const char *name;
    char *report = NULL;
    long sum = 0;
    if (rl_open(path, NULL, &db) != RL_OK || rl_begin(db, RL_READ, &t) != RL_OK) {
        rl_close(db);
        return -1;
    }
    if (rl_check(t, &report) != RL_OK)
        fail_msg("rl_check: %s", report ? report : rl_errmsg(db));
    free(report);
    for (int i = 0; rl_table_at(t, i, &name) == RL_OK; i++) {
        uint64_t n = 0;
        rl_count(t, name, &n);
        sum = sum * 1000 + (long)n + 1;
    }
    rl_rollback(t);
    rl_close(db);
    return sum;
}

static void test_out_of_memory_everywhere(void **state)
{
    const char *path = tu_path("nomem.rdb");
    long states[NSTEPS + 1], total, tried = 0, absorbed = 0, step_by = tu_quick() ? 37 : 1;
    int commits, err;
    (void)state;
#ifdef NOMEM_SKIP
    skip();
#endif
    memset(big, 'z', sizeof big);
    /* The reference: the state after every commit. */
    {
        long before = allocations;
        unlink(path);
        run(path, &commits, &err);
        assert_int_equal(err, RL_OK);
        assert_int_equal(commits, NSTEPS);
        total = allocations - before;
    }
    /* States by replaying the first k steps. */
    for (int k = 0; k <= NSTEPS; k++) {
        rl_db *db = NULL;
        unlink(path);
        assert_int_equal(rl_open(path, NULL, &db), RL_OK);
        for (int s = 0; s < k; s++) {
            rl_txn *t;
            assert_int_equal(rl_begin(db, RL_WRITE, &t), RL_OK);
            assert_int_equal(step(t, s), RL_OK);
            assert_int_equal(rl_commit(t), RL_OK);
        }
        rl_close(db);
        states[k] = fingerprint(path);
    }
    for (long n = getenv("NOMEM_AT") ? atol(getenv("NOMEM_AT")) : 0; n < total; n += step_by) {
        long base = live, got;
        unlink(path);
        failed = 0;
        fail_countdown = n;
        run(path, &commits, &err);
        fail_countdown = -1;
        if (!failed)
            continue; /* this run allocated less (a cache hit): nothing failed */
        if (err == RL_OK) { /* a best-effort allocation: the work went on */
            assert_int_equal(commits, NSTEPS);
            assert_int_equal(fingerprint(path), states[NSTEPS]);
            absorbed++;
            continue;
        }
        if (err != RL_NOMEM)
            fail_msg("allocation %ld failed: the call said %s, not RL_NOMEM", n,
                     rl_errname(err));
        if (live != base)
            fail_msg("allocation %ld failed: %ld allocations leaked", n, live - base);
        if (commits == 0 && access(path, F_OK) != 0)
            got = 0; /* the database was never created */
        else
            got = fingerprint(path);
        if (got != states[commits] && (commits == NSTEPS || got != states[commits + 1]))
            fail_msg("allocation %ld failed after %d commits: the file holds state %ld",
                     n, commits, got);
        tried++;
    }
    if (tried + absorbed == 0)
        skip(); /* malloc is not ours here (a memory checker took it over) */
    print_message("out of memory at %ld allocation points (of %ld): %ld reported RL_NOMEM, "
                  "leaked nothing and left a committed state; %ld were best-effort and the "
                  "work went on\n", tried + absorbed, total, tried, absorbed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_out_of_memory_everywhere),
    };
    tu_setup_dir("nomem");
    return cmocka_run_group_tests_name("nomem", tests, NULL, NULL);
}
