/*
** tests/test_concurrency.c: many processes on one file.
**   - busy timeout: a second writer gives up with RL_BUSY as configured;
**   - threads sharing a handle insert at once: exact count, unique ids;
**   - threads sharing a handle with a tiny cache (every read a miss, read
**     without the handle's lock) read while one moves money: every
**     snapshot's total, by scan and by random gets, is the starting one;
**   - bank: writer processes move money between accounts while reader
**     processes check, in every snapshot, that the total never changes;
**     at the end every transfer a writer reported is in the log;
**   - kill -9: a writing process is killed at random moments, and the
**     file always opens, checks clean and keeps every committed row.
*/
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "relatable.h"
#include "tests/apiutil.h"
#include "tests/testutil.h"

#define ACCOUNTS 20
#define START 1000

static const rl_column account_cols[] = {{"balance", RL_TINTEGER, 0, RL_NOT_NULL, NULL, 0}};
static const rl_column log_cols[] = {{"src", RL_TINTEGER, 0, 0, "accounts", 0},
                                     {"dst", RL_TINTEGER, 0, 0, "accounts", 0},
                                     {"amount", RL_TINTEGER, 0, 0, NULL, 0}};

static rl_db *open_path(const char *path, int busy_ms)
{
    rl_options o = {RL_OPEN_CREATE, 512, RL_SYNC_NORMAL, 0, 0, busy_ms};
    rl_db *db = NULL;
    if (rl_open(path, &o, &db) != RL_OK)
        fail_msg("open %s: %s", path, rl_errmsg(db));
    return db;
}

static void test_busy_timeout(void **state)
{
    const char *path = tu_path("busy.rdb");
    rl_db *a = open_path(path, 0), *now = open_path(path, -1), *soon = open_path(path, 30);
    rl_txn *w, *w2, *r;
    (void)state;
    OK(a, rl_begin(a, RL_WRITE, &w));
    assert_int_equal(rl_begin(now, RL_WRITE, &w2), RL_BUSY);
    assert_non_null(strstr(rl_errmsg(now), "another writer"));
    assert_int_equal(rl_begin(soon, RL_WRITE, &w2), RL_BUSY); /* after 30 ms */
    OK(now, rl_begin(now, RL_READ, &r)); /* readers never wait */
    rl_rollback(r);
    OK(a, rl_create_table(w, "accounts", account_cols, 1));
    OK(a, rl_commit(w));
    OK(soon, rl_begin(soon, RL_WRITE, &w2)); /* free again */
    rl_rollback(w2);
    OK(a, rl_close(a));
    OK(now, rl_close(now));
    OK(soon, rl_close(soon));
}

/* A writer process: transfers, each in its own transaction; writes how
 * many committed to fd. */
static void bank_writer(const char *path, int fd, int n, uint64_t seed)
{
    rl_db *db = NULL;
    long done = 0;
    uint64_t rs = seed;
    rl_options o = {0, 0, RL_SYNC_NORMAL, 0, 0, 0};
    if (rl_open(path, &o, &db) != RL_OK)
        _exit(2);
    for (int i = 0; i < n; i++) {
        int64_t a = 1 + (int64_t)(tu_rand(&rs) % ACCOUNTS), b = 1 + (int64_t)(tu_rand(&rs) % ACCOUNTS);
        int64_t x = (int64_t)(tu_rand(&rs) % 50);
        rl_txn *t;
        rl_row *ra, *rb;
        int rc = rl_begin(db, RL_WRITE, &t);
        if (rc != RL_OK)
            _exit(3);
        if (rl_get(t, "accounts", a, &ra) != RL_OK || rl_get(t, "accounts", b, &rb) != RL_OK)
            _exit(4);
        rc = rl_update(t, "accounts", a, (rl_value[]){rl_null(), rl_int(rl_row_int(ra, 1) - x)}, 2);
        rl_row_free(ra);
        rl_row_free(rb);
        if (rc == RL_OK && rl_get(t, "accounts", b, &rb) == RL_OK) { /* a may be b */
            rc = rl_update(t, "accounts", b,
                           (rl_value[]){rl_null(), rl_int(rl_row_int(rb, 1) + x)}, 2);
            rl_row_free(rb);
        }
        if (rc == RL_OK)
            rc = rl_insert(t, "log", (rl_value[]){rl_null(), rl_int(a), rl_int(b), rl_int(x)},
                           4, NULL);
        if (rc != RL_OK || rl_commit(t) != RL_OK)
            _exit(5);
        done++;
    }
    rl_close(db);
    if (write(fd, &done, sizeof done) != (ssize_t)sizeof done)
        _exit(6);
    _exit(0);
}

/* A reader process: every snapshot's total is the starting total. */
static void bank_reader(const char *path, int rounds)
{
    rl_db *db = NULL;
    rl_options o = {0, 0, RL_SYNC_NORMAL, 0, 0, 0};
    if (rl_open(path, &o, &db) != RL_OK)
        _exit(2);
    for (int i = 0; i < rounds; i++) {
        rl_txn *t;
        rl_cursor *c;
        const rl_row *row;
        int64_t total = 0;
        int n = 0;
        if (rl_begin(db, RL_READ, &t) != RL_OK || rl_scan(t, "accounts", &c) != RL_OK) {
            fprintf(stderr, "reader: %s\n", rl_errmsg(db));
            _exit(3);
        }
        while (rl_cursor_next(c, &row) == RL_OK) {
            total += rl_row_int(row, 1);
            n++;
        }
        rl_cursor_close(c);
        rl_rollback(t);
        if (n != ACCOUNTS || total != (int64_t)ACCOUNTS * START)
            _exit(1); /* a partial commit was visible */
    }
    rl_close(db);
    _exit(0);
}

static void test_bank(void **state)
{
    const char *path = tu_path("bank.rdb");
    rl_db *db = open_path(path, 0);
    rl_txn *t;
    pid_t pids[5];
    int fds[3][2], per = (int)tu_scale(150);
    long reported = 0;
    uint64_t logged;
    (void)state;
    OK(db, rl_begin(db, RL_WRITE, &t));
    OK(db, rl_create_table(t, "accounts", account_cols, 1));
    OK(db, rl_create_table(t, "log", log_cols, 3));
    for (int i = 0; i < ACCOUNTS; i++)
        OK(db, rl_insert(t, "accounts", (rl_value[]){rl_null(), rl_int(START)}, 2, NULL));
    OK(db, rl_commit(t));
    OK(db, rl_close(db));
    for (int w = 0; w < 3; w++) {
        assert_int_equal(pipe(fds[w]), 0);
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0)
            bank_writer(path, fds[w][1], per, 1000 + (uint64_t)w);
    }
    for (int r = 3; r < 5; r++) {
        pids[r] = fork();
        assert_true(pids[r] >= 0);
        if (pids[r] == 0)
            bank_reader(path, (int)tu_scale(200));
    }
    for (int p = 0; p < 5; p++) {
        int status;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("process %d (%s) ended with status %d", p, p < 3 ? "writer" : "reader",
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    for (int w = 0; w < 3; w++) {
        long n = 0;
        assert_int_equal(read(fds[w][0], &n, sizeof n), (ssize_t)sizeof n);
        reported += n;
        close(fds[w][0]);
        close(fds[w][1]);
    }
    db = open_path(path, 0);
    OK(db, rl_begin(db, RL_READ, &t));
    OK(db, rl_count(t, "log", &logged));
    assert_int_equal(logged, (uint64_t)reported); /* no transfer lost */
    assert_int_equal(reported, 3L * per);
    {
        char *report = NULL;
        if (rl_check(t, &report) != RL_OK)
            fail_msg("rl_check: %s", report ? report : rl_errmsg(db));
        free(report);
    }
    rl_rollback(t);
    OK(db, rl_close(db));
    print_message("bank: 3 writer processes made %ld transfers, 2 readers saw the total "
                  "intact in every snapshot, every transfer logged\n", reported);
}

/* kill -9 a writing process at random moments, over and over. */
static void test_kill_writer(void **state)
{
    const char *path = tu_path("kill.rdb");
    rl_db *db = open_path(path, 0);
    rl_txn *t;
    uint64_t rs = 5, last = 0;
    int rounds = (int)tu_scale(30);
    (void)state;
    OK(db, rl_begin(db, RL_WRITE, &t));
    OK(db, rl_create_table(t, "accounts", account_cols, 1));
    OK(db, rl_commit(t));
    OK(db, rl_close(db));
    for (int round = 0; round < rounds; round++) {
        struct timespec wait = {0, (long)(1 + tu_rand(&rs) % 20) * 1000000L};
        uint64_t n;
        char *report = NULL;
        int status;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            rl_options o = {0, 0, RL_SYNC_FULL, 0, 0, 0};
            rl_db *c = NULL;
            if (rl_open(path, &o, &c) != RL_OK)
                _exit(2);
            for (int64_t i = 0;; i++) { /* until killed */
                rl_txn *w;
                if (rl_begin(c, RL_WRITE, &w) != RL_OK)
                    _exit(3);
                for (int k = 0; k < 20; k++)
                    rl_insert(w, "accounts", (rl_value[]){rl_null(), rl_int(i)}, 2, NULL);
                if (i % 5 == 4)
                    rl_delete(w, "accounts", 1 + (int64_t)(tu_rand(&rs) % 50));
                if (rl_commit(w) != RL_OK)
                    _exit(4);
            }
        }
        nanosleep(&wait, NULL);
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status)); /* it was still writing */
        db = open_path(path, 0);
        OK(db, rl_begin(db, RL_READ, &t));
        if (rl_check(t, &report) != RL_OK)
            fail_msg("round %d: rl_check: %s", round, report ? report : rl_errmsg(db));
        free(report);
        OK(db, rl_count(t, "accounts", &n));
        rl_rollback(t);
        OK(db, rl_close(db));
        /* Each commit adds 20 rows and deletes at most one of the first 50. */
        assert_true(n + 50 >= last);
        last = n;
    }
    print_message("kill -9: %d writers killed mid-work; the file opened and checked clean "
                  "every time (%llu rows at the end)\n", rounds, (unsigned long long)last);
}

/* Threads sharing one handle insert at once: exact count, unique ids. */
typedef struct inserter {
    rl_db *db;
    int n, failures;
} inserter;

static void *insert_thread(void *arg)
{
    inserter *c = arg;
    for (int i = 0; i < c->n; i++) {
        rl_txn *t;
        if (rl_begin(c->db, RL_WRITE, &t) != RL_OK ||
            rl_insert(t, "accounts", (rl_value[]){rl_null(), rl_int(i)}, 2, NULL) != RL_OK ||
            rl_commit(t) != RL_OK)
            c->failures++;
    }
    return NULL;
}

static void test_threads_insert(void **state)
{
    rl_db *db = open_path(tu_path("threads.rdb"), 0);
    inserter w[4];
    pthread_t th[4];
    rl_txn *t;
    rl_cursor *c;
    const rl_row *row;
    int64_t expect = 1;
    uint64_t n;
    (void)state;
    OK(db, rl_begin(db, RL_WRITE, &t));
    OK(db, rl_create_table(t, "accounts", account_cols, 1));
    OK(db, rl_commit(t));
    for (int i = 0; i < 4; i++) {
        w[i] = (inserter){db, (int)tu_scale(200), 0};
        pthread_create(&th[i], NULL, insert_thread, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    OK(db, rl_begin(db, RL_READ, &t));
    OK(db, rl_count(t, "accounts", &n));
    assert_int_equal(n, 4 * (uint64_t)w[0].n);
    OK(db, rl_scan(t, "accounts", &c));
    while (rl_cursor_next(c, &row) == RL_OK) /* ids 1..n, each once */
        assert_int_equal(rl_row_int(row, 0), expect++);
    rl_cursor_close(c);
    rl_rollback(t);
    OK(db, rl_close(db));
}

/* Threads of one handle, its cache 16 blocks: one moves money between
 * random accounts with durable commits, the others check that every
 * snapshot's total is the starting one, by a scan (read-ahead) and by
 * random gets (single misses), all while each one's misses and the
 * commits' syncs run without the handle's lock. */
#define MANY 2000

typedef struct sharer {
    rl_db *db;
    int rounds, failures;
    uint64_t seed;
} sharer;

static void *move_money(void *arg)
{
    sharer *c = arg;
    for (int i = 0; i < c->rounds; i++) {
        int64_t a = 1 + (int64_t)(tu_rand(&c->seed) % MANY), b = 1 + (int64_t)(tu_rand(&c->seed) % MANY);
        rl_txn *t;
        rl_row *ra = NULL, *rb = NULL;
        int rc = rl_begin(c->db, RL_WRITE, &t);
        if (rc == RL_OK && a != b && (rc = rl_get(t, "accounts", a, &ra)) == RL_OK &&
            (rc = rl_get(t, "accounts", b, &rb)) == RL_OK &&
            (rc = rl_update(t, "accounts", a, (rl_value[]){rl_null(), rl_int(rl_row_int(ra, 1) - 7)}, 2)) == RL_OK)
            rc = rl_update(t, "accounts", b, (rl_value[]){rl_null(), rl_int(rl_row_int(rb, 1) + 7)}, 2);
        rl_row_free(ra);
        rl_row_free(rb);
        if (rc == RL_OK)
            rc = rl_commit(t);
        else
            rl_rollback(t);
        c->failures += rc != RL_OK;
    }
    return NULL;
}

static void *check_totals(void *arg)
{
    sharer *c = arg;
    for (int i = 0; i < c->rounds; i++) {
        rl_txn *t;
        rl_cursor *cur;
        const rl_row *row;
        int64_t scanned = 0, got = 0;
        int rc = rl_begin(c->db, RL_READ, &t);
        if (rc != RL_OK) {
            c->failures++;
            continue;
        }
        if (rl_scan(t, "accounts", &cur) == RL_OK) {
            while (rl_cursor_next(cur, &row) == RL_OK)
                scanned += rl_row_int(row, 1);
            rl_cursor_close(cur);
        }
        for (int64_t id = 1; id <= MANY; id++) { /* every row, in a scrambled order */
            rl_row *r;
            if (rl_get(t, "accounts", 1 + (id * 7919) % MANY, &r) != RL_OK)
                break;
            got += rl_row_int(r, 1);
            rl_row_free(r);
        }
        c->failures += scanned != MANY * START || got != MANY * START;
        rl_rollback(t);
    }
    return NULL;
}

static void test_threads_read_one_handle(void **state)
{
    rl_options o = {RL_OPEN_CREATE, 512, RL_SYNC_FULL, 16 * 512, 0, 0}; /* readers go on during syncs */
    rl_db *db = NULL;
    rl_txn *t;
    sharer w, r[3];
    pthread_t tw, tr[3];
    (void)state;
    unlink(tu_path("sharers.rdb"));
    OK(db, rl_open(tu_path("sharers.rdb"), &o, &db));
    OK(db, rl_begin(db, RL_WRITE, &t));
    OK(db, rl_create_table(t, "accounts", account_cols, 1));
    for (int i = 0; i < MANY; i++)
        OK(db, rl_insert(t, "accounts", (rl_value[]){rl_null(), rl_int(START)}, 2, NULL));
    OK(db, rl_commit(t));
    w = (sharer){db, (int)tu_scale(300), 0, 7};
    pthread_create(&tw, NULL, move_money, &w);
    for (int i = 0; i < 3; i++) {
        r[i] = (sharer){db, (int)tu_scale(20), 0, 0};
        pthread_create(&tr[i], NULL, check_totals, &r[i]);
    }
    pthread_join(tw, NULL);
    assert_int_equal(w.failures, 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(tr[i], NULL);
        if (r[i].failures)
            fail_msg("reader %d: %d snapshots with a wrong total", i, r[i].failures);
    }
    OK(db, rl_close(db));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_busy_timeout),
        cmocka_unit_test(test_threads_insert),
        cmocka_unit_test(test_threads_read_one_handle),
        cmocka_unit_test(test_bank),
        cmocka_unit_test(test_kill_writer),
    };
    tu_setup_dir("concurrency");
    return cmocka_run_group_tests_name("concurrency", tests, NULL, NULL);
}
