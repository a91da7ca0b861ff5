/*
** tests/test_blocks_stress.c: the block layer under load: thousands of
** random chain operations against an in-memory model (with a check of the
** space accounting after every commit), threads reading while a thread
** writes, readers sharing a handle reading the file at the same time (and
** single blocks without the handle's lock), and
** readers in other handles and processes keeping their snapshots while a
** writer rewrites the data.
*/
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/blkutil.h"
#include "tests/testutil.h"

/* A writer in another handle or process must not reuse the blocks of a
 * snapshot that a reader there still holds. */
static void rewrite_many(rl__blk_db *db, uint64_t head, int rounds)
{
    uint8_t buf[20000];
    for (int i = 0; i < rounds; i++) {
        rl__blk_txn *w;
        fill(buf, sizeof buf, 100 + (uint64_t)i);
        assert_int_equal(rl__blk_begin(db, 1, &w), RL_OK);
        assert_int_equal(rl__blk_chain_write(w, head, 0, buf, sizeof buf), RL_OK);
        assert_int_equal(rl__blk_commit(w), RL_OK);
    }
}

static void test_other_handles_keep_snapshots(void **state)
{
    const char *path = tu_path("handles.rdb");
    rl__blk_db *a, *b;
    uint64_t head;
    uint8_t got[20000], want[20000];
    rl__blk_txn *r;
    int to_child[2], to_parent[2], status;
    char go = 'g';
    pid_t pid;
    (void)state;
    /* The readers' caches hold 16 of the chain's 45 blocks, so they really
     * read the file again (a cache would hide a reused block). */
    unlink(path);
    a = open_opts(path, 512, RL__BLK_CREATE, RL__DURABLE_FULL, 16 * 512);
    head = make_chain(a, 20000, 1);
    fill(want, sizeof want, 1);
    /* Two handles in one process: each is its own open file description. */
    b = open_db(path, 0);
    assert_int_equal(rl__blk_begin(a, 0, &r), RL_OK);
    rewrite_many(b, head, 30);
    assert_int_equal(rl__blk_chain_read(r, head, 0, got, sizeof got), RL_OK);
    assert_memory_equal(got, want, sizeof got);
    rl__blk_rollback(r);
    expect_chain(a, head, 20000, 129);
    rl__blk_close(b);
    /* A reader in another process. */
    assert_int_equal(pipe(to_child), 0);
    assert_int_equal(pipe(to_parent), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rl__blk_options o = {0, 0, RL__DURABLE_FULL, 16 * 512, NULL, NULL, 0};
        rl__blk_db *c;
        rl__err err;
        int ok;
        if (rl__blk_open(path, &o, &c, &err) != RL_OK || rl__blk_begin(c, 0, &r) != RL_OK)
            _exit(2);
        fill(want, sizeof want, 129);
        ok = rl__blk_chain_read(r, head, 0, got, sizeof got) == RL_OK &&
             memcmp(got, want, sizeof got) == 0;
        if (write(to_parent[1], &go, 1) != 1 || read(to_child[0], &go, 1) != 1)
            _exit(3);
        ok = ok && rl__blk_chain_read(r, head, 0, got, sizeof got) == RL_OK &&
             memcmp(got, want, sizeof got) == 0;
        rl__blk_rollback(r);
        rl__blk_close(c);
        /* The parent's handle, copied by fork: closing this copy frees its
         * memory; the shared file description and its locks stay open. */
        rl__blk_close(a);
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(read(to_parent[0], &go, 1), 1);
    rewrite_many(a, head, 30);
    assert_int_equal(write(to_child[1], &go, 1), 1);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0); /* the child kept its snapshot */
    /* With the reader gone, the space is reused again: the file stays small. */
    rewrite_many(a, head, 10);
    print_message("after 70 rewrites of 20,000 bytes with readers in between: %llu bytes\n",
                  (unsigned long long)tu_file_size(path));
    assert_true(tu_file_size(path) < 200000);
    rl__blk_close(a);
    close(to_child[0]);
    close(to_child[1]);
    close(to_parent[0]);
    close(to_parent[1]);
}

/* ---- randomised test against an in-memory model ---------------------------- */

#define MAXCH 8
typedef struct model {
    uint64_t head[MAXCH];
    uint8_t *data[MAXCH];
    size_t len[MAXCH];
    int live[MAXCH];
} model;

static void model_copy(model *dst, const model *src)
{
    for (int i = 0; i < MAXCH; i++) {
        free(dst->data[i]);
        dst->data[i] = NULL;
        dst->head[i] = src->head[i];
        dst->len[i] = src->len[i];
        dst->live[i] = src->live[i];
        if (src->live[i]) {
            dst->data[i] = malloc(src->len[i] + 1);
            memcpy(dst->data[i], src->data[i], src->len[i]);
        }
    }
}

static void model_free(model *m)
{
    for (int i = 0; i < MAXCH; i++)
        free(m->data[i]);
}

static void model_check(rl__blk_txn *t, const model *m)
{
    for (int i = 0; i < MAXCH; i++) {
        uint64_t len = 0;
        uint8_t *got;
        if (!m->live[i])
            continue;
        T_OK(t, rl__blk_chain_length(t, m->head[i], &len));
        assert_int_equal(len, m->len[i]);
        got = malloc(m->len[i] + 1);
        T_OK(t, rl__blk_chain_read(t, m->head[i], 0, got, m->len[i]));
        assert_memory_equal(got, m->data[i], m->len[i]);
        free(got);
    }
}

/* One random change to chain i in txn t and in the working model m. */
static void random_change(rl__blk_txn *t, model *m, int i, uint64_t *rs, uint32_t bs)
{
    uint8_t buf[6000];
    size_t k = tu_rand(rs) % (tu_rand(rs) % 4 == 0 ? sizeof buf : bs + 10);
    uint64_t op = tu_rand(rs) % 10;
    fill(buf, k, tu_rand(rs));
    if (!m->live[i]) {
        T_OK(t, rl__blk_chain_create(t, RL__BLK_TYPE_USER, &m->head[i]));
        m->live[i] = 1;
        m->len[i] = 0;
        m->data[i] = malloc(1);
    } else if (op < 4) { /* append */
        T_OK(t, rl__blk_chain_append(t, m->head[i], buf, k));
        m->data[i] = realloc(m->data[i], m->len[i] + k + 1);
        memcpy(m->data[i] + m->len[i], buf, k);
        m->len[i] += k;
    } else if (op < 7) { /* overwrite, maybe extending */
        size_t off = m->len[i] ? tu_rand(rs) % (m->len[i] + 1) : 0;
        T_OK(t, rl__blk_chain_write(t, m->head[i], off, buf, k));
        if (off + k > m->len[i]) {
            m->data[i] = realloc(m->data[i], off + k + 1);
            m->len[i] = off + k;
        }
        memcpy(m->data[i] + off, buf, k);
    } else if (op < 9) { /* truncate */
        size_t len = m->len[i] ? tu_rand(rs) % (m->len[i] + 1) : 0;
        T_OK(t, rl__blk_chain_truncate(t, m->head[i], len));
        m->len[i] = len;
    } else { /* free */
        T_OK(t, rl__blk_chain_free(t, m->head[i]));
        free(m->data[i]);
        m->data[i] = NULL;
        m->live[i] = 0;
    }
}


/* Space accounting: every map node and every block of the model's chains
 * is used once, and none of them is on the freelist. */
static void mark(uint8_t *seen, uint64_t n, uint64_t phys, const char *what)
{
    if (phys >= n)
        fail_msg("%s block %llu beyond block count %llu", what, (unsigned long long)phys,
                 (unsigned long long)n);
    if (seen[phys])
        fail_msg("%s block %llu seen twice (kind %d)", what, (unsigned long long)phys, seen[phys]);
    seen[phys] = what[0] == 'f' ? 2 : 1;
}

static void walk_map(rl__blk_txn *t, uint8_t *seen, uint64_t n, uint64_t node, uint32_t level)
{
    rl__blk_page *p;
    mark(seen, n, node, "map");
    assert_int_equal(rl__cache_get(t, node, &p), RL_OK);
    for (uint32_t i = 0; level > 0 && i < t->db->fanout; i++) {
        uint64_t c = rl__get64(p->buf + RL__HDR_SIZE + 8 * i);
        if (c)
            walk_map(t, seen, n, c, level - 1);
    }
    rl__cache_unpin(p);
}

static void check_space_t(rl__blk_txn *t, const model *m)
{
    rl__blk_db *db = t->db;
    uint64_t n = t->root.block_count;
    uint8_t *seen;
    seen = calloc(n, 1);
    if (t->root.map_root)
        walk_map(t, seen, n, t->root.map_root, t->root.map_depth - 1);
    for (int i = 0; i < MAXCH; i++) {
        uint64_t l = m->head[i];
        if (!m->live[i])
            continue;
        while (l) {
            uint64_t phys;
            rl__blk_page *p;
            T_OK(t, rl__map_lookup(t, l, &phys));
            mark(seen, n, phys, "chain");
            assert_int_equal(rl__cache_get(t, phys, &p), RL_OK);
            rl__blk_bhdr h;
            rl__fmt_bhdr_decode(p->buf, &h);
            l = h.next;
            rl__cache_unpin(p);
        }
    }
    for (size_t i = 0; i < db->free.nready; i++)
        mark(seen, n, db->free.ready[i].phys, "free-ready");
    for (size_t i = 0; i < db->free.npending; i++)
        mark(seen, n, db->free.pending[i].phys, "free-pending");
    free(seen);
}

/* check_space_t on the committed state, with the freelist read back from
 * the file (as after a rollback or by another process). */
static void check_space(rl__blk_db *db, const model *m)
{
    rl__blk_txn *t;
    db->free.valid = 0;
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    check_space_t(t, m);
    rl__blk_rollback(t);
}

/* A second handle on the file reads every chain after some commits (one
 * to about six): its cache keeps what the commits in between did not
 * write, so it must drop exactly what they did (rl__file_drop_written). */
static void watch(const char *path, rl__blk_db **watcher, const model *committed, uint32_t bs,
                  long *checks)
{
    rl__blk_txn *t;
    if (!*watcher)
        *watcher = open_opts(path, 0, 0, RL__DURABLE_OFF, 256 * bs);
    assert_int_equal(rl__blk_begin(*watcher, 0, &t), RL_OK);
    model_check(t, committed);
    rl__blk_rollback(t);
    (*checks)++;
}

static void random_run(uint32_t bs, long steps, uint64_t seed)
{
    char name[64];
    model committed, working;
    rl__blk_db *db, *watcher = NULL;
    rl__blk_txn *t = NULL;
    uint64_t rs = seed;
    long commits = 0, rollbacks = 0, reopens = 0, checks = 0;
    snprintf(name, sizeof name, "random-%u.rdb", bs);
    unlink(tu_path(name));
    memset(&committed, 0, sizeof committed);
    memset(&working, 0, sizeof working);
    db = open_opts(tu_path(name), bs, RL__BLK_CREATE, RL__DURABLE_OFF, 64 * bs);
    for (long s = 0; s < steps; s++) {
        uint64_t act = tu_rand(&rs) % 100;
        if (!t)
            assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
        if (act < 80) {
            random_change(t, &working, (int)(tu_rand(&rs) % MAXCH), &rs, bs);
        } else if (act < 88) {
            model_check(t, &working);
        } else if (act < 95) {
            assert_int_equal(rl__blk_commit(t), RL_OK);
            model_copy(&committed, &working);
            commits++;
            t = NULL;
            check_space(db, &committed);
            if (tu_rand(&rs) % 3 == 0)
                watch(tu_path(name), &watcher, &committed, bs, &checks);
        } else {
            rl__blk_rollback(t);
            model_copy(&working, &committed);
            rollbacks++;
            t = NULL;
            if (act >= 98) {
                rl__blk_close(db);
                db = open_opts(tu_path(name), 0, 0, RL__DURABLE_OFF, 64 * bs);
                reopens++;
            }
        }
    }
    if (t)
        rl__blk_rollback(t);
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    model_check(t, &committed);
    rl__blk_rollback(t);
    watch(tu_path(name), &watcher, &committed, bs, &checks);
    print_message("block size %u: %ld steps, %ld commits, %ld rollbacks, %ld reopens, %ld checks "
                  "by a second handle, file %llu bytes\n",
                  bs, steps, commits, rollbacks, reopens, checks,
                  (unsigned long long)tu_file_size(tu_path(name)));
    rl__blk_close(watcher);
    rl__blk_close(db);
    model_free(&committed);
    model_free(&working);
}

static void test_random_against_model(void **state)
{
    (void)state;
    random_run(512, tu_scale(6000), 12345);
    random_run(4096, tu_scale(6000), 999);
}

/* ---- threads: readers always see a whole commit ---------------------------- */

typedef struct thread_ctx {
    rl__blk_db *db;
    uint64_t head;
    int rounds;
    int failures;
    char first[400]; /* what the first failure was, for the failure message */
} thread_ctx;

static void failed(thread_ctx *c, const char *what, int rc, int round)
{
    if (c->failures++ == 0)
        snprintf(c->first, sizeof c->first, "round %d: %s: %s", round, what, rl_errname(rc));
}

static void *writer_thread(void *arg)
{
    thread_ctx *c = arg;
    uint8_t buf[9000];
    for (int i = 1; i <= c->rounds; i++) {
        rl__blk_txn *t;
        memset(buf, i & 0xff, sizeof buf);
        int rc = rl__blk_begin(c->db, 1, &t);
        if (rc == RL_OK && (rc = rl__blk_chain_write(t, c->head, 0, buf, sizeof buf)) != RL_OK)
            rl__blk_rollback(t);
        if (rc == RL_OK)
            rc = rl__blk_commit(t);
        if (rc != RL_OK)
            failed(c, "write", rc, i);
    }
    return NULL;
}

static void *reader_thread(void *arg)
{
    thread_ctx *c = arg;
    uint8_t buf[9000];
    for (int i = 0; i < c->rounds; i++) {
        rl__blk_txn *t;
        int rc = rl__blk_begin(c->db, 0, &t);
        if (rc != RL_OK) {
            failed(c, "begin", rc, i);
            continue;
        }
        rc = rl__blk_chain_read(t, c->head, 0, buf, sizeof buf);
        if (rc != RL_OK)
            failed(c, "chain read", rc, i);
        for (size_t k = 1; rc == RL_OK && k < sizeof buf; k++)
            if (buf[k] != buf[0]) {
                char what[64];
                snprintf(what, sizeof what, "torn read: byte %zu is %u, byte 0 is %u", k,
                         buf[k], buf[0]);
                failed(c, what, RL_OK, i);
                break;
            }
        rl__blk_rollback(t);
    }
    return NULL;
}

static void test_threads_see_whole_commits(void **state)
{
    rl__blk_db *db = open_opts(tu_path("threads.rdb"), 512, RL__BLK_CREATE, RL__DURABLE_OFF, 0);
    uint8_t zero[9000] = {0};
    thread_ctx w, r[3];
    pthread_t tw, tr[3];
    rl__blk_txn *t;
    uint64_t head;
    (void)state;
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__blk_chain_create(t, RL__BLK_TYPE_CHAIN, &head), RL_OK);
    assert_int_equal(rl__blk_chain_append(t, head, zero, sizeof zero), RL_OK);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    w = (thread_ctx){db, head, (int)tu_scale(400), 0, ""};
    pthread_create(&tw, NULL, writer_thread, &w);
    for (int i = 0; i < 3; i++) {
        r[i] = (thread_ctx){db, head, (int)tu_scale(400), 0, ""};
        pthread_create(&tr[i], NULL, reader_thread, &r[i]);
    }
    pthread_join(tw, NULL);
    for (int i = 0; i < 3; i++) {
        pthread_join(tr[i], NULL);
        if (r[i].failures)
            fail_msg("reader %d: %d failures; the first: %s", i, r[i].failures, r[i].first);
    }
    if (w.failures)
        fail_msg("writer: %d failures; the first: %s", w.failures, w.first);
    rl__blk_close(db);
}

/* An I/O whose reads, while the gate is armed, wait (up to ten seconds)
 * until another read is under way too: the readers of one handle must
 * read the file at the same time, not one after the other under the
 * handle's lock. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int armed, inside, met;
    /* With sync_armed, a sync waits (up to ten seconds) for a reader of
     * the same handle to finish a read transaction meanwhile (read_done). */
    int sync_armed, syncing, read_done, sync_met;
    rl__io *real;
} gate;

static gate the_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, 0, 0, NULL};

/* Wait on g->cv until *flag is set or ten seconds pass. Caller holds g->mu. */
static void gate_wait(gate *g, const int *flag)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    while (!*flag && pthread_cond_timedwait(&g->cv, &g->mu, &until) == 0)
        ;
}

static int gate_read(rl__io *io, void *buf, size_t n, uint64_t off, size_t *got)
{
    gate *g = io->ctx;
    pthread_mutex_lock(&g->mu);
    g->inside++;
    if (g->armed) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        pthread_cond_broadcast(&g->cv);
        while (g->armed && g->inside < 2 &&
               pthread_cond_timedwait(&g->cv, &g->mu, &until) == 0)
            ;
        if (g->inside >= 2)
            g->met = 1;
        g->armed = 0; /* one meeting is the proof; later reads go straight on */
    }
    pthread_mutex_unlock(&g->mu);
    int e = g->real->read(g->real, buf, n, off, got);
    pthread_mutex_lock(&g->mu);
    g->inside--;
    pthread_mutex_unlock(&g->mu);
    return e;
}

#define GATE_PASS(name, ret, params, args)                                     \
    static ret gate_##name params                                              \
    {                                                                          \
        gate *g = io->ctx;                                                     \
        return g->real->name args;                                             \
    }
GATE_PASS(write, int, (rl__io *io, const void *buf, size_t n, uint64_t off), (g->real, buf, n, off))
GATE_PASS(truncate, int, (rl__io *io, uint64_t size), (g->real, size))
GATE_PASS(size, int, (rl__io *io, uint64_t *size), (g->real, size))
GATE_PASS(lock, int, (rl__io *io, uint64_t off, uint64_t len, int type, int wait),
          (g->real, off, len, type, wait))
GATE_PASS(probe, int, (rl__io *io, uint64_t off, uint64_t len, uint64_t *held),
          (g->real, off, len, held))
GATE_PASS(writev, int,
          (rl__io *io, const uint8_t *const *bufs, size_t nbufs, size_t each, uint64_t off),
          (g->real, bufs, nbufs, each, off))

static int gate_sync(rl__io *io)
{
    gate *g = io->ctx;
    pthread_mutex_lock(&g->mu);
    if (g->sync_armed) {
        g->syncing = 1;
        pthread_cond_broadcast(&g->cv);
        gate_wait(g, &g->read_done);
        g->sync_met = g->read_done;
        g->sync_armed = 0;
    }
    pthread_mutex_unlock(&g->mu);
    return g->real->sync(g->real);
}

static void gate_close(rl__io *io)
{
    gate *g = io->ctx;
    g->real->close(g->real);
    free(io);
}

static int gate_open(void *arg, const char *path, int flags, int mode, rl__io **out)
{
    gate *g = arg;
    rl__io *io = calloc(1, sizeof *io);
    int e = io ? rl__io_posix_open(path, flags, mode, &g->real) : ENOMEM;
    if (e) {
        free(io);
        return e;
    }
    *io = (rl__io){gate_read, gate_write, gate_sync, gate_truncate, gate_size, gate_lock,
                   gate_probe, gate_close, NULL, NULL, g->real->fd, g};
    *out = io;
    return 0;
}

typedef struct chain_reader {
    rl__blk_txn *t;
    uint64_t head;
    int rc;
} chain_reader;

static void *read_whole_chain(void *arg)
{
    chain_reader *r = arg;
    uint8_t buf[20000];
    r->rc = rl__blk_chain_read(r->t, r->head, 0, buf, sizeof buf);
    for (size_t k = 0; r->rc == RL_OK && k < sizeof buf; k++)
        if (buf[k] != (uint8_t)r->head)
            r->rc = RL_CORRUPT;
    return NULL;
}

static void test_readers_of_one_handle_read_at_once(void **state)
{
    const char *path = tu_path("gate.rdb");
    rl__blk_options o = {RL__BLK_CREATE, 512, RL__DURABLE_OFF, 16 * 512, gate_open, &the_gate, 0};
    rl__blk_db *db;
    rl__err err;
    chain_reader r[2];
    pthread_t th[2];
    uint8_t buf[20000];
    (void)state;
    unlink(path);
    assert_int_equal(rl__blk_open(path, &o, &db, &err), RL_OK);
    for (int i = 0; i < 2; i++) { /* two chains of 40 blocks; the cache holds 16 */
        rl__blk_txn *w;
        assert_int_equal(rl__blk_begin(db, 1, &w), RL_OK);
        T_OK(w, rl__blk_chain_create(w, RL__BLK_TYPE_CHAIN, &r[i].head));
        memset(buf, (uint8_t)r[i].head, sizeof buf);
        T_OK(w, rl__blk_chain_append(w, r[i].head, buf, sizeof buf));
        T_OK(w, rl__blk_commit(w));
    }
    for (int i = 0; i < 2; i++) /* begin reads the root slots under the lock: before the gate */
        assert_int_equal(rl__blk_begin(db, 0, &r[i].t), RL_OK);
    the_gate.armed = 1;
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, read_whole_chain, &r[i]);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].rc, RL_OK);
        rl__blk_rollback(r[i].t);
    }
    if (!the_gate.met)
        fail_msg("the two readers never read the file at the same time: a miss holds the lock");
    assert_true(rl__cache_consistent(&db->cache));
    rl__blk_close(db);
}

typedef struct sync_reader {
    rl__blk_db *db;
    chain_reader r;
    uint64_t saw; /* the transaction its snapshot read */
} sync_reader;

/* A read transaction that waits until the writer is inside its commit's
 * sync, then begins, reads its chain and ends. */
static void *read_during_sync(void *arg)
{
    rl__blk_db *db = ((sync_reader *)arg)->db;
    chain_reader *r = &((sync_reader *)arg)->r;
    pthread_mutex_lock(&the_gate.mu);
    gate_wait(&the_gate, &the_gate.syncing);
    pthread_mutex_unlock(&the_gate.mu);
    r->rc = rl__blk_begin(db, 0, &r->t);
    if (r->rc == RL_OK) {
        ((sync_reader *)arg)->saw = rl__blk_txn_id(r->t);
        read_whole_chain(r);
        rl__blk_rollback(r->t);
    }
    pthread_mutex_lock(&the_gate.mu);
    the_gate.read_done = 1;
    pthread_cond_broadcast(&the_gate.cv);
    pthread_mutex_unlock(&the_gate.mu);
    return NULL;
}

static void test_readers_go_on_during_a_commits_sync(void **state)
{
    const char *path = tu_path("gate-sync.rdb");
    rl__blk_options o = {RL__BLK_CREATE, 512, RL__DURABLE_FULL, 0, gate_open, &the_gate, 0};
    rl__blk_db *db;
    rl__blk_txn *w;
    rl__err err;
    sync_reader sr;
    chain_reader *r = &sr.r;
    pthread_t th;
    uint8_t buf[20000];
    uint64_t other, base;
    (void)state;
    unlink(path);
    assert_int_equal(rl__blk_open(path, &o, &db, &err), RL_OK);
    assert_int_equal(rl__blk_begin(db, 1, &w), RL_OK);
    base = rl__blk_txn_id(w);
    T_OK(w, rl__blk_chain_create(w, RL__BLK_TYPE_CHAIN, &r->head));
    memset(buf, (uint8_t)r->head, sizeof buf);
    T_OK(w, rl__blk_chain_append(w, r->head, buf, sizeof buf));
    T_OK(w, rl__blk_commit(w));
    sr.db = db;
    the_gate.sync_armed = 1;
    pthread_create(&th, NULL, read_during_sync, &sr);
    assert_int_equal(rl__blk_begin(db, 1, &w), RL_OK); /* a commit the reader waits for */
    T_OK(w, rl__blk_chain_create(w, RL__BLK_TYPE_CHAIN, &other));
    T_OK(w, rl__blk_chain_append(w, other, buf, 100));
    T_OK(w, rl__blk_commit(w));
    pthread_join(th, NULL);
    assert_int_equal(r->rc, RL_OK);
    if (!the_gate.sync_met)
        fail_msg("no reader of the handle could read while a commit synced");
    assert_int_equal(sr.saw, base); /* the commit before: not the one syncing */
    rl__blk_close(db);
}

/* ---- single blocks read without the handle's lock ------------------------- */

#define SB_FIXED 24 /* blocks no commit changes */
#define SB_MOVING 24 /* blocks every commit rewrites */

/* Fill a single block's payload: the version, then bytes that depend on
 * the block's logical number and the version (a torn or stale page shows). */
static void sb_fill(uint8_t *data, uint32_t cap, uint64_t logical, uint64_t version)
{
    memcpy(data, &version, sizeof version);
    for (uint32_t k = sizeof version; k < cap; k++)
        data[k] = (uint8_t)(logical * 31 + version * 7 + k);
}

/* The version block logical holds, or UINT64_MAX if its bytes disagree. */
static uint64_t sb_version(const rl__blk_ref *ref)
{
    uint64_t v;
    memcpy(&v, ref->data, sizeof v);
    for (uint32_t k = sizeof v; k < ref->cap; k++)
        if (ref->data[k] != (uint8_t)(ref->logical * 31 + v * 7 + k))
            return UINT64_MAX;
    return v;
}

/* The gate's I/O, unarmed, except that a read of more than one block
 * (read-ahead) sleeps once it has read, as a preempted thread would: by
 * the time the cache keeps what it read, a writer may have changed those
 * blocks. */
static gate slow_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, 0, 0, NULL};

static int slow_readv(rl__io *io, uint8_t *const *bufs, size_t nbufs, size_t each, uint64_t off,
                      size_t *got)
{
    gate *g = io->ctx;
    int e = g->real->readv(g->real, bufs, nbufs, each, off, got);
    if (nbufs > 1)
        nanosleep(&(struct timespec){0, 300000}, NULL);
    return e;
}

static int slow_open(void *arg, const char *path, int flags, int mode, rl__io **out)
{
    int e = gate_open(&slow_gate, path, flags, mode, out);
    (void)arg;
    if (!e) {
        (*out)->readv = slow_readv;
        (*out)->writev = gate_writev;
    }
    return e;
}

typedef struct sb_ctx {
    rl__blk_db *db;
    uint64_t ids[SB_FIXED + SB_MOVING];
    int rounds;
    uint64_t seed;
    thread_ctx out; /* failures */
} sb_ctx;

/* Every commit rewrites the moving blocks (each a copy on write to a new
 * physical block, the old ones freed and later reused) with its id. */
static void *sb_writer(void *arg)
{
    sb_ctx *c = arg;
    for (int i = 0; i < c->rounds; i++) {
        rl__blk_txn *t;
        int rc = rl__blk_begin(c->db, 1, &t);
        for (int b = SB_FIXED; rc == RL_OK && b < SB_FIXED + SB_MOVING; b++) {
            rl__blk_ref ref;
            rc = rl__blk_block_get(t, c->ids[b], 1, &ref);
            if (rc == RL_OK) {
                sb_fill(ref.wdata, ref.cap, ref.logical, rl__blk_txn_id(t));
                rl__blk_block_put(&ref);
            }
        }
        rc = rc == RL_OK ? rl__blk_commit(t) : (rl__blk_rollback(t), rc);
        if (rc != RL_OK)
            failed(&c->out, rl__blk_last_error(c->db)->msg, rc, i);
    }
    return NULL;
}

/* Each snapshot reads every block in a random order, some twice at once:
 * a fixed block holds version 0, every moving one the snapshot's id. */
static void *sb_reader(void *arg)
{
    sb_ctx *c = arg;
    for (int i = 0; i < c->rounds; i++) {
        rl__blk_txn *t;
        rl__blk_ref held;
        int rc = rl__blk_begin(c->db, 0, &t);
        if (rc != RL_OK) {
            failed(&c->out, "begin", rc, i);
            continue;
        }
        rc = rl__blk_block_get(t, c->ids[tu_rand(&c->seed) % (SB_FIXED + SB_MOVING)], 0, &held);
        for (int k = 0; rc == RL_OK && k < 2 * (SB_FIXED + SB_MOVING); k++) {
            int b = (int)(tu_rand(&c->seed) % (SB_FIXED + SB_MOVING));
            uint64_t want = b < SB_FIXED ? 0 : rl__blk_txn_id(t), got;
            rl__blk_ref ref;
            rc = rl__blk_block_get(t, c->ids[b], 0, &ref);
            if (rc != RL_OK)
                break;
            got = sb_version(&ref);
            if (got != want) {
                char what[96];
                snprintf(what, sizeof what, "block %d holds version %llu, snapshot wants %llu", b,
                         (unsigned long long)got, (unsigned long long)want);
                failed(&c->out, what, RL_OK, i);
            }
            rl__blk_block_put(&ref);
        }
        if (rc != RL_OK)
            failed(&c->out, t->err.msg, rc, i);
        else if (sb_version(&held) == UINT64_MAX)
            failed(&c->out, "a page changed while it was pinned", RL_OK, i);
        rl__blk_block_put(&held);
        rl__blk_rollback(t);
    }
    return NULL;
}

/* A handle with a 16-page cache, SB_FIXED blocks of version 0 and
 * SB_MOVING blocks rewritten by one more commit; its I/O from io_open
 * (NULL: the real one). */
static rl__blk_db *sb_open(const char *name, rl__io_open_fn io_open, sb_ctx *c)
{
    rl__blk_options o = {RL__BLK_CREATE, 512, RL__DURABLE_OFF, 16 * 512, io_open, NULL, 0};
    rl__blk_txn *t;
    rl__err err;
    memset(c, 0, sizeof *c);
    unlink(tu_path(name));
    assert_int_equal(rl__blk_open(tu_path(name), &o, &c->db, &err), RL_OK);
    assert_int_equal(rl__blk_begin(c->db, 1, &t), RL_OK);
    for (int b = 0; b < SB_FIXED + SB_MOVING; b++) {
        rl__blk_ref ref;
        T_OK(t, rl__blk_block_alloc(t, RL__BLK_TYPE_USER, 0, &c->ids[b], &ref));
        sb_fill(ref.wdata, ref.cap, ref.logical, 0);
        rl__blk_block_put(&ref);
    }
    T_OK(t, rl__blk_commit(t));
    c->rounds = 1;
    sb_writer(c); /* the moving blocks: version = a commit's id from now on */
    assert_int_equal(c->out.failures, 0);
    return c->db;
}

/* Readers sharing a handle with a writer: they find pages without the
 * lock while the writer's commits and their own misses evict and reuse
 * pages (16 of them for 48 blocks), and every block they read is the
 * snapshot's, whole, and stays so while pinned. Their read-aheads are
 * slow, so that the writer often rewrites and evicts a block one of them
 * is reading ahead: the cache must not keep the old bytes. */
static void test_single_block_readers_beside_a_writer(void **state)
{
    sb_ctx w, r[3];
    pthread_t tw, tr[3];
    rl__blk_db *db = sb_open("sb-stress.rdb", slow_open, &w);
    (void)state;
    w.rounds = (int)tu_scale(300);
    pthread_create(&tw, NULL, sb_writer, &w);
    for (int i = 0; i < 3; i++) {
        r[i] = w;
        r[i].rounds = (int)tu_scale(300);
        r[i].seed = 17 + (uint64_t)i;
        pthread_create(&tr[i], NULL, sb_reader, &r[i]);
    }
    pthread_join(tw, NULL);
    for (int i = 0; i < 3; i++) {
        pthread_join(tr[i], NULL);
        if (r[i].out.failures)
            fail_msg("reader %d: %d failures; the first: %s", i, r[i].out.failures, r[i].out.first);
    }
    if (w.out.failures)
        fail_msg("writer: %d failures; the first: %s", w.out.failures, w.out.first);
    pthread_mutex_lock(&db->mu);
    assert_true(rl__cache_consistent(&db->cache));
    pthread_mutex_unlock(&db->mu);
    rl__blk_close(db);
}

/* A thread that holds db->mu until told to let go, or ten seconds pass. */
typedef struct lock_holder {
    rl__blk_db *db;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int holding, let_go, released;
} lock_holder;

static void *hold_the_lock(void *arg)
{
    lock_holder *h = arg;
    struct timespec until;
    pthread_mutex_lock(&h->db->mu);
    pthread_mutex_lock(&h->mu);
    h->holding = 1;
    pthread_cond_broadcast(&h->cv);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    while (!h->let_go && pthread_cond_timedwait(&h->cv, &h->mu, &until) == 0)
        ;
    h->released = 1;
    pthread_mutex_unlock(&h->mu);
    pthread_mutex_unlock(&h->db->mu);
    return NULL;
}

/* Read block b of c in t and check it; 1 if the lock holder still held
 * the lock when the read returned. */
static int read_while_held(sb_ctx *c, rl__blk_txn *t, lock_holder *h, int b)
{
    rl__blk_ref ref;
    int held;
    T_OK(t, rl__blk_block_get(t, c->ids[b], 0, &ref));
    pthread_mutex_lock(&h->mu);
    held = !h->released;
    pthread_mutex_unlock(&h->mu);
    assert_int_equal(sb_version(&ref), b < SB_FIXED ? 0 : rl__blk_txn_id(t));
    rl__blk_block_put(&ref);
    return held;
}

/* While another thread holds the handle's lock (a writer inserting or
 * committing), a reader still reads single blocks: the cached ones from
 * the cache, the others from the file into pages of its own, which the
 * cache takes once the lock is free (on a block's second miss, admit.c). */
static void test_single_block_reads_never_wait_for_the_lock(void **state)
{
    sb_ctx c;
    rl__blk_db *db = sb_open("sb-lock.rdb", NULL, &c);
    lock_holder h = {db, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
    rl__blk_stats before, after;
    rl__blk_txn *t;
    pthread_t th;
    size_t cached;
    (void)state;
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    assert_int_equal(read_while_held(&c, t, &h, 0), 1);
    assert_int_equal(read_while_held(&c, t, &h, 0), 1); /* missed twice: cached now */
    rl__blk_get_stats(db, &before);
    cached = db->cache.count;
    pthread_create(&th, NULL, hold_the_lock, &h);
    pthread_mutex_lock(&h.mu);
    while (!h.holding)
        pthread_cond_wait(&h.cv, &h.mu);
    pthread_mutex_unlock(&h.mu);
    if (!read_while_held(&c, t, &h, 0) || !read_while_held(&c, t, &h, 5) ||
        !read_while_held(&c, t, &h, SB_FIXED + 3) || !read_while_held(&c, t, &h, 5))
        fail_msg("a read waited for the handle's lock");
    assert_int_equal(db->cache.count, cached); /* the misses stayed the reader's */
    pthread_mutex_lock(&h.mu);
    h.let_go = 1;
    pthread_cond_broadcast(&h.cv);
    pthread_mutex_unlock(&h.mu);
    pthread_join(th, NULL);
    rl__blk_get_stats(db, &after);
    /* Block 5 once: its second read found it in the reader's own page. */
    assert_int_equal(after.blocks_read - before.blocks_read, 2);
    /* Used again with the lock free: the doorkeeper (admit.c) has not
     * seen block 5 miss, so the cache keeps it the second time. */
    read_while_held(&c, t, &h, 5);
    read_while_held(&c, t, &h, 5);
    rl__blk_get_stats(db, &before);
    read_while_held(&c, t, &h, 5);
    rl__blk_get_stats(db, &after);
    assert_int_equal(after.blocks_read, before.blocks_read);
    rl__blk_rollback(t);
    pthread_mutex_lock(&db->mu);
    assert_true(rl__cache_consistent(&db->cache));
    pthread_mutex_unlock(&db->mu);
    rl__blk_close(db);
}

/* Read chain head of n bytes through a new read transaction of db, check
 * it holds want, and return how many blocks that read missed. */
static uint64_t read_counting(rl__blk_db *db, uint64_t head, const uint8_t *want, size_t n)
{
    rl__blk_stats before, after;
    rl__blk_txn *t;
    uint8_t *got = malloc(n);
    assert_non_null(got);
    rl__blk_get_stats(db, &before);
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    T_OK(t, rl__blk_chain_read(t, head, 0, got, n));
    assert_memory_equal(got, want, n);
    rl__blk_rollback(t);
    rl__blk_get_stats(db, &after);
    free(got);
    return after.blocks_read - before.blocks_read;
}

/* Handle a commits; handle b's cache drops only the blocks a's commits
 * wrote, as their root slots list them, or everything when the slots no
 * longer cover all the commits since b last looked. */
static void test_other_handle_keeps_its_cache(void **state)
{
    const char *path = tu_path("keep-cache.rdb");
    uint8_t want[20000], patch[100];
    rl__blk_db *a, *b;
    uint64_t head, missed;
    (void)state;
    unlink(path);
    a = open_opts(path, 512, RL__BLK_CREATE, RL__DURABLE_FULL, 0);
    head = make_chain(a, sizeof want, 1); /* 40 blocks */
    fill(want, sizeof want, 1);
    b = open_opts(path, 0, 0, RL__DURABLE_FULL, 0);
    assert_true(read_counting(b, head, want, sizeof want) >= 40); /* all cold */
    for (int round = 0; round < 2; round++) {
        int commits = round == 0 ? 1 : RL__NSLOTS + 1;
        for (int c = 0; c < commits; c++) { /* one block of the chain changes per commit */
            rl__blk_txn *w;
            size_t off = 1000 + (size_t)c * 3000;
            fill(patch, sizeof patch, 10 + (uint64_t)c);
            memcpy(want + off, patch, sizeof patch);
            assert_int_equal(rl__blk_begin(a, 1, &w), RL_OK);
            T_OK(w, rl__blk_chain_write(w, head, off, patch, sizeof patch));
            T_OK(w, rl__blk_commit(w));
        }
        missed = read_counting(b, head, want, sizeof want);
        print_message("after %d commit(s) by another handle: %llu blocks read again\n", commits,
                      (unsigned long long)missed);
        if (round == 0)
            assert_true(missed <= 3); /* the changed block and map nodes at most */
        else
            assert_true(missed >= 40); /* too many commits since: every page dropped */
    }
    rl__blk_close(b);
    rl__blk_close(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_threads_see_whole_commits),
        cmocka_unit_test(test_readers_of_one_handle_read_at_once),
        cmocka_unit_test(test_readers_go_on_during_a_commits_sync),
        cmocka_unit_test(test_single_block_readers_beside_a_writer),
        cmocka_unit_test(test_single_block_reads_never_wait_for_the_lock),
        cmocka_unit_test(test_other_handles_keep_snapshots),
        cmocka_unit_test(test_other_handle_keeps_its_cache),
    };
    tu_setup_dir("blocks-stress");
    return cmocka_run_group_tests_name("blocks-stress", tests, NULL, NULL);
}
