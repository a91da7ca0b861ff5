/*
** bench/bench.c: the same workload on relatable, SQLite (WAL and rollback
** journal, both synchronous=FULL) and LMDB (default, durable), in one run.
** Each engine runs in its own child process, so its peak RSS is its own.
**
** Usage: bench [-n ROWS] [-d DIR] [-e ENGINES] [-r RUNS]   (ENGINES: comma
**        list of relatable,sqlite-wal,sqlite-journal,lmdb; default all)
** With RUNS > 1 the engines take turns RUNS times (relatable, sqlite-wal,
** ..., relatable, ...), so that each round sees the same disk weather;
** the table shows each engine's median and the median of the rounds'
** ratios, and one line per phase lists every round's ratio.
**
** Workload (tasks: id, project_id, status, priority, title ~40 bytes,
** description ~200 bytes; 1,000 projects; an index on project_id):
**   1 bulk insert of N rows in one transaction
**   2 N random point lookups by id, each row read whole and checked column by column
**   3 full scan counting status = 3 AND title contains "des"
**   4 per project, count its tasks through the index
**   5 100,000 random updates in one transaction
**   6 delete every even id in one transaction
**   7 2,000 single-row inserts, each its own durable transaction
**   8 compaction (relatable vacuum, SQLite VACUUM INTO, LMDB compacting copy)
**   9 reads beside commits: one thread does NBESIDE random point lookups
**     (a read transaction per 100) while another commits one-row inserts,
**     each durable, until the lookups are done; the phase's time is the
**     lookups', and the commits a second are printed below the table
**     (relatable: one rl_db shared by both threads; SQLite-WAL: a
**     connection each; LMDB: one environment). Not run on SQLite's rollback
**     journal, which answers SQLITE_BUSY to a reader that meets a commit.
** Printed: seconds per phase and each engine's time divided by relatable's
** (above 1.0: relatable is faster), file sizes, peak RSS, commit latency
** and the raw fdatasync latency of the disk. Counts must agree.
*/
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "relatable.h"

#define NPHASES 9
#define NPROJECTS 1000
#define NUPDATES 100000
#define NSINGLE 2000
#define NBESIDE 200000 /* phase 9's lookups */
#define BESIDE_BATCH 100 /* lookups per read transaction in phase 9 */
#define MAX_RUNS 9

static const char *const phase_names[NPHASES] = {
    "1 bulk insert",      "2 point lookups", "3 scan + filter",   "4 count per project",
    "5 random updates",   "6 delete evens",  "7 durable commits", "8 compact",
    "9 reads + commits",
};

typedef struct result {
    int ok;
    char note[160];
    double secs[NPHASES];
    uint64_t scan_count, project_total, live_after;
    uint64_t size_before_compact, size_after_compact;
    double commit_median_us, commit_p99_us;
    double beside_commits_per_s; /* phase 9's writer */
    long peak_rss_kb;
} result;

typedef struct config {
    long n;
    char dir[256];
} config;

/* ---- data ------------------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return x;
}

static int64_t project_of(int64_t id) { return (int64_t)(mix((uint64_t)id) % NPROJECTS) + 1; }
static int64_t status_of(int64_t id) { return (int64_t)(mix((uint64_t)id + 7) % 5); }
static int64_t priority_of(int64_t id) { return (int64_t)(mix((uint64_t)id + 11) % 4); }

static const char *const words[] = {"design", "build", "test", "deploy", "review",
                                    "plan",   "fix",   "write", "measure", "ship"};

static size_t title_of(int64_t id, char *buf)
{
    uint64_t h = mix((uint64_t)id + 3);
    return (size_t)snprintf(buf, 64, "%s the %s of part %06lld now", words[h % 10],
                            words[(h >> 8) % 10], (long long)(id % 1000000));
}

static size_t desc_of(int64_t id, char *buf)
{
    static const char text[] = "This task covers the work needed to get the component into "
                               "shape: read the notes, agree on the plan with the team, do the "
                               "change in small steps, measure before and after, and write down "
                               "what was learned for the next person. ";
    size_t off = (size_t)(mix((uint64_t)id + 5) % 40);
    memcpy(buf, text + off, 200);
    buf[200] = '\0';
    return 200;
}

/* Phase 2's check: whether a row read back holds every column id was
 * stored with (each engine reads all five, as a caller of rl_get would). */
static int row_ok(int64_t id, int64_t project, int64_t status, int64_t priority,
                  const void *title, size_t tl, const void *desc, size_t dl)
{
    char t[64], d[256];
    size_t wtl = title_of(id, t), wdl = desc_of(id, d);
    return project == project_of(id) && status == status_of(id) &&
           priority == priority_of(id) && tl == wtl && dl == wdl && title && desc &&
           memcmp(title, t, tl) == 0 && memcmp(desc, d, dl) == 0;
}

/* ---- timing ------------------------------------------------------------------------ */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void latency(double *lat, int n, result *r)
{
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    r->commit_median_us = lat[n / 2] * 1e6;
    r->commit_p99_us = lat[n * 99 / 100] * 1e6;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static uint64_t lcg_next(uint64_t *s)
{
    *s = *s * 6364136223846793005u + 1442695040888963407u;
    return *s >> 17;
}

#define FAIL(r, ...)                                                           \
    do {                                                                       \
        snprintf((r)->note, sizeof (r)->note, __VA_ARGS__);                    \
        return;                                                                \
    } while (0)

/* ---- phase 9: a reader thread beside a committing thread ----------------------------- */

/* What phase 9's two threads share; h is the engine's handle. */
typedef struct beside {
    const config *c;
    void *h;
    const char *path;  /* SQLite: the file, for the reader's own connection */
    unsigned dbi[2];   /* LMDB: the tasks and by_project databases */
    int stop;          /* set once the reader is done: the writer stops (atomic) */
    long commits;
    char why[2][120]; /* the writer's failure, the reader's; empty if none */
} beside;

/* The odd ids up to n: rows no phase deleted. */
static int64_t live_id(uint64_t *seed, long n)
{
    return 2 * (int64_t)(lcg_next(seed) % (uint64_t)((n + 1) / 2)) + 1;
}

static int beside_stopped(beside *b)
{
    return __atomic_load_n(&b->stop, __ATOMIC_ACQUIRE);
}

/* Run reader and writer side by side; the phase's time is the reader's. */
static void run_beside(beside *b, void *(*writer)(void *), void *(*reader)(void *),
                       result *r)
{
    pthread_t w, rd;
    double t0 = now(), dt;
    b->stop = 0;
    b->commits = 0;
    b->why[0][0] = b->why[1][0] = '\0';
    if (pthread_create(&w, NULL, writer, b) != 0) {
        snprintf(r->note, sizeof r->note, "phase 9: no thread");
        return;
    }
    if (pthread_create(&rd, NULL, reader, b) != 0) {
        __atomic_store_n(&b->stop, 1, __ATOMIC_RELEASE);
        pthread_join(w, NULL);
        snprintf(r->note, sizeof r->note, "phase 9: no thread");
        return;
    }
    pthread_join(rd, NULL);
    dt = now() - t0;
    __atomic_store_n(&b->stop, 1, __ATOMIC_RELEASE);
    pthread_join(w, NULL);
    r->secs[8] = dt;
    r->beside_commits_per_s = (double)b->commits / dt;
}

/* ---- relatable ------------------------------------------------------------------------ */

/* Phase 9 on relatable: both threads on one rl_db. */
static void *rl_beside_writer(void *arg)
{
    beside *b = arg;
    rl_db *db = b->h;
    char title[64], desc[256];
    for (int64_t id = b->c->n + NSINGLE + 1; !beside_stopped(b); id++) {
        size_t tl = title_of(id, title), dl = desc_of(id, desc);
        rl_value v[6] = {rl_null(),          rl_int(project_of(id)), rl_int(status_of(id)),
                         rl_int(priority_of(id)), rl_textn(title, tl), rl_textn(desc, dl)};
        rl_txn *t;
        if (rl_begin(db, RL_WRITE, &t) != RL_OK || rl_insert(t, "tasks", v, 6, NULL) != RL_OK ||
            rl_commit(t) != RL_OK) {
            snprintf(b->why[0], sizeof b->why[0], "commit: %s", rl_errmsg(db));
            break;
        }
        b->commits++;
    }
    return NULL;
}

static void *rl_beside_reader(void *arg)
{
    beside *b = arg;
    rl_db *db = b->h;
    uint64_t seed = 7;
    for (long i = 0; i < NBESIDE && !b->why[1][0]; i += BESIDE_BATCH) {
        rl_txn *t;
        if (rl_begin(db, RL_READ, &t) != RL_OK) {
            snprintf(b->why[1], sizeof b->why[1], "begin: %s", rl_errmsg(db));
            break;
        }
        for (int k = 0; k < BESIDE_BATCH && !b->why[1][0]; k++) {
            int64_t id = live_id(&seed, b->c->n);
            rl_row *got = NULL;
            int rc = rl_get(t, "tasks", id, &got);
            if (rc != RL_OK || rl_row_int(got, 1) != project_of(id))
                snprintf(b->why[1], sizeof b->why[1], "lookup %lld: %s", (long long)id,
                         rc != RL_OK ? rl_errmsg(db) : "wrong row");
            rl_row_free(got);
        }
        rl_rollback(t);
    }
    return NULL;
}

static void run_relatable(const config *c, result *r)
{
    static const rl_column cols[] = {
        {"project_id", RL_TINTEGER, 0, RL_NOT_NULL, NULL, 0}, {"status", RL_TINTEGER, 0, 0, NULL, 0},
        {"priority", RL_TINTEGER, 0, 0, NULL, 0},             {"title", RL_TTEXT, 0, 0, NULL, 0},
        {"description", RL_TTEXT, 0, 0, NULL, 0},
    };
    char path[600], title[64], desc[256];
    rl_options o = {RL_OPEN_CREATE, 4096, RL_SYNC_FULL, 0, 0, 0};
    rl_db *db;
    rl_txn *t;
    rl_value v[6];
    uint64_t seed = 42;
    double t0, *lat = malloc(NSINGLE * sizeof *lat);
    snprintf(path, sizeof path, "%s/bench.rdb", c->dir);
    unlink(path);
    if (rl_open(path, &o, &db) != RL_OK)
        FAIL(r, "open: %s", rl_errmsg(db));
    t0 = now();
    rl_begin(db, RL_WRITE, &t);
    if (rl_create_table(t, "tasks", cols, 5) != RL_OK ||
        rl_create_index(t, "tasks_project", "tasks", (const char *[]){"project_id"}, 1, 0) != RL_OK)
        FAIL(r, "create: %s", rl_errmsg(db));
    for (int64_t id = 1; id <= c->n; id++) {
        size_t tl = title_of(id, title), dl = desc_of(id, desc);
        v[0] = rl_null();
        v[1] = rl_int(project_of(id));
        v[2] = rl_int(status_of(id));
        v[3] = rl_int(priority_of(id));
        v[4] = rl_textn(title, tl);
        v[5] = rl_textn(desc, dl);
        if (rl_insert(t, "tasks", v, 6, NULL) != RL_OK)
            FAIL(r, "insert %lld: %s", (long long)id, rl_errmsg(db));
    }
    if (rl_commit(t) != RL_OK)
        FAIL(r, "commit: %s", rl_errmsg(db));
    r->secs[0] = now() - t0;

    t0 = now();
    rl_begin(db, RL_READ, &t);
    for (long i = 0; i < c->n; i++) {
        int64_t id = (int64_t)(lcg_next(&seed) % (uint64_t)c->n) + 1;
        rl_row *got;
        const void *title_p, *desc_p;
        size_t tl, dl;
        if (rl_get(t, "tasks", id, &got) != RL_OK)
            FAIL(r, "lookup %lld: %s", (long long)id, rl_errmsg(db));
        title_p = rl_row_bytes(got, 4, &tl);
        desc_p = rl_row_bytes(got, 5, &dl);
        if (!row_ok(id, rl_row_int(got, 1), rl_row_int(got, 2), rl_row_int(got, 3), title_p, tl,
                    desc_p, dl))
            FAIL(r, "lookup %lld: wrong row", (long long)id);
        rl_row_free(got);
    }
    r->secs[1] = now() - t0;

    t0 = now();
    {
        rl_query q = {0};
        rl_cond *c = rl_and(rl_cmp("status", RL_EQ, rl_int(3)), rl_contains("title", "des"));
        q.table = "tasks";
        q.where = c;
        if (rl_query_count(t, &q, &r->scan_count) != RL_OK)
            FAIL(r, "scan: %s", rl_errmsg(db));
        rl_cond_free(c);
    }
    r->secs[2] = now() - t0;

    t0 = now();
    for (int p = 1; p <= NPROJECTS; p++) {
        rl_query q = {0};
        rl_cond *c = rl_cmp("project_id", RL_EQ, rl_int(p));
        uint64_t n = 0;
        q.table = "tasks";
        q.where = c;
        if (rl_query_count(t, &q, &n) != RL_OK)
            FAIL(r, "count: %s", rl_errmsg(db));
        r->project_total += n;
        rl_cond_free(c);
    }
    r->secs[3] = now() - t0;
    rl_rollback(t);
    snprintf(r->note, sizeof r->note, "phase 8 is rl_vacuum(NULL) plus 10 one-row commits");

    t0 = now();
    rl_begin(db, RL_WRITE, &t);
    for (int i = 0; i < NUPDATES; i++) {
        int64_t id = (int64_t)(lcg_next(&seed) % (uint64_t)c->n) + 1;
        size_t tl = title_of(id, title), dl = desc_of(id, desc);
        v[0] = rl_null();
        v[1] = rl_int(project_of(id));
        v[2] = rl_int((status_of(id) + 1) % 5);
        v[3] = rl_int(priority_of(id) + i % 3);
        v[4] = rl_textn(title, tl);
        v[5] = rl_textn(desc, dl);
        if (rl_update(t, "tasks", id, v, 6) != RL_OK)
            FAIL(r, "update: %s", rl_errmsg(db));
    }
    if (rl_commit(t) != RL_OK)
        FAIL(r, "commit: %s", rl_errmsg(db));
    r->secs[4] = now() - t0;

    t0 = now();
    rl_begin(db, RL_WRITE, &t);
    for (int64_t id = 2; id <= c->n; id += 2)
        if (rl_delete(t, "tasks", id) != RL_OK)
            FAIL(r, "delete: %s", rl_errmsg(db));
    if (rl_commit(t) != RL_OK)
        FAIL(r, "commit: %s", rl_errmsg(db));
    r->secs[5] = now() - t0;

    t0 = now();
    for (int i = 0; i < NSINGLE; i++) {
        double c0 = now();
        int64_t id = c->n + 1 + i;
        size_t tl = title_of(id, title), dl = desc_of(id, desc);
        v[0] = rl_null();
        v[1] = rl_int(project_of(id));
        v[2] = rl_int(status_of(id));
        v[3] = rl_int(priority_of(id));
        v[4] = rl_textn(title, tl);
        v[5] = rl_textn(desc, dl);
        rl_begin(db, RL_WRITE, &t);
        if (rl_insert(t, "tasks", v, 6, NULL) != RL_OK || rl_commit(t) != RL_OK)
            FAIL(r, "single insert: %s", rl_errmsg(db));
        lat[i] = now() - c0;
    }
    r->secs[6] = now() - t0;
    latency(lat, NSINGLE, r);

    r->size_before_compact = file_size(path);
    t0 = now();
    rl_begin(db, RL_WRITE, &t);
    rl_vacuum(t, NULL);
    rl_commit(t);
    /* Blocks freed by a commit are reusable two commits later: the file
     * shrinks over the next commits (blocks/compact.c). */
    for (int i = 0; i < 10; i++) {
        int64_t id;
        rl_begin(db, RL_WRITE, &t);
        rl_insert(t, "tasks", v, 6, &id);
        rl_delete(t, "tasks", id);
        rl_commit(t);
    }
    r->secs[7] = now() - t0;
    r->size_after_compact = file_size(path);
    rl_begin(db, RL_READ, &t);
    rl_count(t, "tasks", &r->live_after);
    rl_rollback(t);
    {
        beside b = {c, db, NULL, {0, 0}, 0, 0, {"", ""}};
        run_beside(&b, rl_beside_writer, rl_beside_reader, r);
        if (b.why[0][0] || b.why[1][0])
            FAIL(r, "phase 9: %s%s", b.why[0], b.why[1]);
    }
    rl_close(db);
    free(lat);
    r->ok = 1;
}

/* ---- SQLite ------------------------------------------------------------------------- */

static int sq_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static void sq_bind_row(sqlite3_stmt *st, int64_t id, int with_id, char *title, char *desc)
{
    int k = 1;
    size_t tl = title_of(id, title), dl = desc_of(id, desc);
    if (with_id)
        sqlite3_bind_int64(st, k++, id);
    sqlite3_bind_int64(st, k++, project_of(id));
    sqlite3_bind_int64(st, k++, status_of(id));
    sqlite3_bind_int64(st, k++, priority_of(id));
    sqlite3_bind_text(st, k++, title, (int)tl, SQLITE_STATIC);
    sqlite3_bind_text(st, k++, desc, (int)dl, SQLITE_STATIC);
}

/* Phase 9 on SQLite: the writer on the benchmark's connection, the reader
 * on its own (a connection is one thread's at a time). */
static void *sq_beside_writer(void *arg)
{
    beside *b = arg;
    sqlite3 *db = b->h;
    sqlite3_stmt *ins;
    char title[64], desc[256];
    if (sqlite3_prepare_v2(db, "INSERT INTO tasks VALUES(NULL,?,?,?,?,?)", -1, &ins, NULL) !=
        SQLITE_OK) {
        snprintf(b->why[0], sizeof b->why[0], "prepare: %s", sqlite3_errmsg(db));
        return NULL;
    }
    for (int64_t id = b->c->n + NSINGLE + 1; !beside_stopped(b); id++) {
        sq_bind_row(ins, id, 0, title, desc);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            snprintf(b->why[0], sizeof b->why[0], "commit: %s", sqlite3_errmsg(db));
            break;
        }
        sqlite3_reset(ins);
        b->commits++;
    }
    sqlite3_finalize(ins);
    return NULL;
}

static void *sq_beside_reader(void *arg)
{
    beside *b = arg;
    sqlite3 *db;
    sqlite3_stmt *get = NULL;
    uint64_t seed = 7;
    if (sqlite3_open(b->path, &db) != SQLITE_OK || sqlite3_busy_timeout(db, 10000) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT project_id, status, priority, title, description FROM "
                               "tasks WHERE id=?", -1, &get, NULL) != SQLITE_OK)
        snprintf(b->why[1], sizeof b->why[1], "reader: %s", sqlite3_errmsg(db));
    for (long i = 0; i < NBESIDE && !b->why[1][0]; i += BESIDE_BATCH) {
        sq_exec(db, "BEGIN");
        for (int k = 0; k < BESIDE_BATCH && !b->why[1][0]; k++) {
            int64_t id = live_id(&seed, b->c->n);
            int rc;
            sqlite3_bind_int64(get, 1, id);
            rc = sqlite3_step(get);
            if (rc != SQLITE_ROW || sqlite3_column_int64(get, 0) != project_of(id) ||
                !sqlite3_column_text(get, 3) || !sqlite3_column_text(get, 4))
                snprintf(b->why[1], sizeof b->why[1], "lookup %lld: %s", (long long)id,
                         sqlite3_errmsg(db));
            sqlite3_reset(get);
        }
        sq_exec(db, "COMMIT");
    }
    sqlite3_finalize(get);
    sqlite3_close(db);
    return NULL;
}

static void run_sqlite(const config *c, int wal, result *r)
{
    char path[600], copy[700], title[64], desc[256];
    sqlite3 *db;
    sqlite3_stmt *ins, *get, *upd, *del, *cnt, *scan;
    uint64_t seed = 42;
    double t0, *lat = malloc(NSINGLE * sizeof *lat);
    snprintf(path, sizeof path, "%s/bench-%s.sqlite", c->dir, wal ? "wal" : "journal");
    snprintf(copy, sizeof copy, "%s.vacuum", path);
    unlink(path);
    unlink(copy);
    if (sqlite3_open(path, &db) != SQLITE_OK)
        FAIL(r, "open: %s", sqlite3_errmsg(db));
    sq_exec(db, wal ? "PRAGMA journal_mode=WAL" : "PRAGMA journal_mode=DELETE");
    sq_exec(db, "PRAGMA synchronous=FULL");
    sq_exec(db, "CREATE TABLE tasks(id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, "
                "status INTEGER, priority INTEGER, title TEXT, description TEXT)");
    sq_exec(db, "CREATE INDEX tasks_project ON tasks(project_id)");
    sqlite3_prepare_v2(db, "INSERT INTO tasks VALUES(NULL,?,?,?,?,?)", -1, &ins, NULL);
    sqlite3_prepare_v2(db, "SELECT project_id, status, priority, title, description FROM tasks WHERE id=?", -1, &get, NULL);
    sqlite3_prepare_v2(db, "UPDATE tasks SET project_id=?, status=?, priority=?, title=?, "
                           "description=? WHERE id=?", -1, &upd, NULL);
    sqlite3_prepare_v2(db, "DELETE FROM tasks WHERE id=?", -1, &del, NULL);
    sqlite3_prepare_v2(db, "SELECT count(*) FROM tasks WHERE project_id=?", -1, &cnt, NULL);
    sqlite3_prepare_v2(db, "SELECT count(*) FROM tasks WHERE status=3 AND instr(title,'des')>0",
                       -1, &scan, NULL);

    t0 = now();
    sq_exec(db, "BEGIN");
    for (int64_t id = 1; id <= c->n; id++) {
        sq_bind_row(ins, id, 0, title, desc);
        if (sqlite3_step(ins) != SQLITE_DONE)
            FAIL(r, "insert: %s", sqlite3_errmsg(db));
        sqlite3_reset(ins);
    }
    sq_exec(db, "COMMIT");
    r->secs[0] = now() - t0;

    t0 = now();
    sq_exec(db, "BEGIN");
    for (long i = 0; i < c->n; i++) {
        int64_t id = (int64_t)(lcg_next(&seed) % (uint64_t)c->n) + 1;
        sqlite3_bind_int64(get, 1, id);
        if (sqlite3_step(get) != SQLITE_ROW)
            FAIL(r, "lookup %lld", (long long)id);
        if (!row_ok(id, sqlite3_column_int64(get, 0), sqlite3_column_int64(get, 1),
                    sqlite3_column_int64(get, 2), sqlite3_column_text(get, 3),
                    (size_t)sqlite3_column_bytes(get, 3), sqlite3_column_text(get, 4),
                    (size_t)sqlite3_column_bytes(get, 4)))
            FAIL(r, "lookup %lld: wrong row", (long long)id);
        sqlite3_reset(get);
    }
    r->secs[1] = now() - t0;

    t0 = now();
    sqlite3_step(scan);
    r->scan_count = (uint64_t)sqlite3_column_int64(scan, 0);
    sqlite3_reset(scan);
    r->secs[2] = now() - t0;

    t0 = now();
    for (int p = 1; p <= NPROJECTS; p++) {
        sqlite3_bind_int64(cnt, 1, p);
        sqlite3_step(cnt);
        r->project_total += (uint64_t)sqlite3_column_int64(cnt, 0);
        sqlite3_reset(cnt);
    }
    r->secs[3] = now() - t0;
    sq_exec(db, "COMMIT");

    t0 = now();
    sq_exec(db, "BEGIN");
    for (int i = 0; i < NUPDATES; i++) {
        int64_t id = (int64_t)(lcg_next(&seed) % (uint64_t)c->n) + 1;
        size_t tl = title_of(id, title), dl = desc_of(id, desc);
        sqlite3_bind_int64(upd, 1, project_of(id));
        sqlite3_bind_int64(upd, 2, (status_of(id) + 1) % 5);
        sqlite3_bind_int64(upd, 3, priority_of(id) + i % 3);
        sqlite3_bind_text(upd, 4, title, (int)tl, SQLITE_STATIC);
        sqlite3_bind_text(upd, 5, desc, (int)dl, SQLITE_STATIC);
        sqlite3_bind_int64(upd, 6, id);
        sqlite3_step(upd);
        sqlite3_reset(upd);
    }
    sq_exec(db, "COMMIT");
    r->secs[4] = now() - t0;

    t0 = now();
    sq_exec(db, "BEGIN");
    for (int64_t id = 2; id <= c->n; id += 2) {
        sqlite3_bind_int64(del, 1, id);
        sqlite3_step(del);
        sqlite3_reset(del);
    }
    sq_exec(db, "COMMIT");
    r->secs[5] = now() - t0;

    t0 = now();
    for (int i = 0; i < NSINGLE; i++) {
        double c0 = now();
        sq_bind_row(ins, c->n + 1 + i, 0, title, desc);
        if (sqlite3_step(ins) != SQLITE_DONE)
            FAIL(r, "single insert: %s", sqlite3_errmsg(db));
        sqlite3_reset(ins);
        lat[i] = now() - c0;
    }
    r->secs[6] = now() - t0;
    latency(lat, NSINGLE, r);

    sq_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    r->size_before_compact = file_size(path);
    t0 = now();
    {
        char sql[800];
        snprintf(sql, sizeof sql, "VACUUM INTO '%s'", copy);
        sq_exec(db, sql);
    }
    r->secs[7] = now() - t0;
    r->size_after_compact = file_size(copy);
    sqlite3_prepare_v2(db, "SELECT count(*) FROM tasks", -1, &scan, NULL);
    sqlite3_step(scan);
    r->live_after = (uint64_t)sqlite3_column_int64(scan, 0);
    sqlite3_finalize(scan);
    if (wal) { /* a rollback journal locks readers out of a commit: SQLITE_BUSY */
        beside b = {c, db, path, {0, 0}, 0, 0, {"", ""}};
        run_beside(&b, sq_beside_writer, sq_beside_reader, r);
        if (b.why[0][0] || b.why[1][0])
            FAIL(r, "phase 9: %s%s", b.why[0], b.why[1]);
    } else {
        r->secs[8] = -1; /* not run */
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(get);
    sqlite3_finalize(upd);
    sqlite3_finalize(del);
    sqlite3_finalize(cnt);
    sqlite3_close(db);
    free(lat);
    r->ok = 1;
}

/* ---- LMDB ------------------------------------------------------------------------------- */

/* Value: project u64, status u8, priority u8, title len u8, title, desc. */
static size_t lm_encode(int64_t id, int64_t status, int64_t prio, uint8_t *out)
{
    char title[64], desc[256];
    size_t tl = title_of(id, title), dl = desc_of(id, desc);
    int64_t p = project_of(id);
    memcpy(out, &p, 8);
    out[8] = (uint8_t)status;
    out[9] = (uint8_t)prio;
    out[10] = (uint8_t)tl;
    memcpy(out + 11, title, tl);
    memcpy(out + 11 + tl, desc, dl);
    return 11 + tl + dl;
}

/* Phase 9 on LMDB: one environment; each thread its own transactions. */
static void *lm_beside_writer(void *arg)
{
    beside *b = arg;
    MDB_env *env = b->h;
    uint8_t buf[512];
    for (int64_t id = b->c->n + NSINGLE + 1; !beside_stopped(b); id++) {
        int64_t p = project_of(id);
        MDB_txn *txn;
        MDB_val k = {8, &id}, v;
        v.mv_size = lm_encode(id, status_of(id), priority_of(id), buf);
        v.mv_data = buf;
        if (mdb_txn_begin(env, NULL, 0, &txn) != 0) {
            snprintf(b->why[0], sizeof b->why[0], "begin");
            break;
        }
        mdb_put(txn, b->dbi[0], &k, &v, 0);
        k.mv_data = &p;
        v.mv_size = 8;
        v.mv_data = &id;
        mdb_put(txn, b->dbi[1], &k, &v, 0);
        if (mdb_txn_commit(txn) != 0) {
            snprintf(b->why[0], sizeof b->why[0], "commit");
            break;
        }
        b->commits++;
    }
    return NULL;
}

static void *lm_beside_reader(void *arg)
{
    beside *b = arg;
    MDB_env *env = b->h;
    uint64_t seed = 7;
    for (long i = 0; i < NBESIDE && !b->why[1][0]; i += BESIDE_BATCH) {
        MDB_txn *txn;
        if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0) {
            snprintf(b->why[1], sizeof b->why[1], "begin");
            break;
        }
        for (int k = 0; k < BESIDE_BATCH && !b->why[1][0]; k++) {
            int64_t id = live_id(&seed, b->c->n), p;
            MDB_val key = {8, &id}, v;
            if (mdb_get(txn, b->dbi[0], &key, &v) != 0 || v.mv_size < 11 ||
                (memcpy(&p, v.mv_data, 8), p != project_of(id)))
                snprintf(b->why[1], sizeof b->why[1], "lookup %lld", (long long)id);
        }
        mdb_txn_abort(txn);
    }
    return NULL;
}

static void run_lmdb(const config *c, result *r)
{
    char path[512], copy[600];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi main_db, by_project;
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t buf[512];
    uint64_t seed = 42;
    double t0, *lat = malloc(NSINGLE * sizeof *lat);
    snprintf(path, sizeof path, "%s/bench.lmdb", c->dir);
    snprintf(copy, sizeof copy, "%s/bench-compact.lmdb", c->dir);
    unlink(path);
    unlink(copy);
    mdb_env_create(&env);
    mdb_env_set_mapsize(env, (size_t)c->n * 2000 + (1u << 30));
    mdb_env_set_maxdbs(env, 4);
    if (mdb_env_open(env, path, MDB_NOSUBDIR, 0644) != 0)
        FAIL(r, "cannot open the LMDB environment");
#define LM_KEY(idv) (k.mv_size = 8, k.mv_data = &(idv))
    t0 = now();
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, "tasks", MDB_CREATE | MDB_INTEGERKEY, &main_db);
    mdb_dbi_open(txn, "by_project", MDB_CREATE | MDB_INTEGERKEY | MDB_DUPSORT | MDB_INTEGERDUP |
                                        MDB_DUPFIXED, &by_project);
    for (int64_t id = 1; id <= c->n; id++) {
        int64_t p = project_of(id);
        LM_KEY(id);
        v.mv_size = lm_encode(id, status_of(id), priority_of(id), buf);
        v.mv_data = buf;
        if (mdb_put(txn, main_db, &k, &v, MDB_APPEND) != 0)
            FAIL(r, "insert");
        k.mv_data = &p;
        v.mv_size = 8;
        v.mv_data = &id;
        mdb_put(txn, by_project, &k, &v, 0);
    }
    if (mdb_txn_commit(txn) != 0)
        FAIL(r, "commit");
    r->secs[0] = now() - t0;

    t0 = now();
    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    for (long i = 0; i < c->n; i++) {
        int64_t id = (int64_t)(lcg_next(&seed) % (uint64_t)c->n) + 1, p;
        const uint8_t *d;
        LM_KEY(id);
        if (mdb_get(txn, main_db, &k, &v) != 0 || v.mv_size < 11)
            FAIL(r, "lookup %lld", (long long)id);
        d = v.mv_data;
        memcpy(&p, d, 8);
        if (11 + (size_t)d[10] > v.mv_size ||
            !row_ok(id, p, d[8], d[9], d + 11, d[10], d + 11 + d[10], v.mv_size - 11 - d[10]))
            FAIL(r, "lookup %lld: wrong row", (long long)id);
    }
    r->secs[1] = now() - t0;

    t0 = now();
    mdb_cursor_open(txn, main_db, &cur);
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        const uint8_t *d = v.mv_data;
        if (d[8] == 3 && memmem(d + 11, d[10], "des", 3))
            r->scan_count++;
    }
    mdb_cursor_close(cur);
    r->secs[2] = now() - t0;

    t0 = now();
    mdb_cursor_open(txn, by_project, &cur);
    for (int64_t p = 1; p <= NPROJECTS; p++) {
        size_t n = 0;
        LM_KEY(p);
        if (mdb_cursor_get(cur, &k, &v, MDB_SET_KEY) == 0)
            mdb_cursor_count(cur, &n);
        r->project_total += n;
    }
    mdb_cursor_close(cur);
    r->secs[3] = now() - t0;
    mdb_txn_abort(txn);

    t0 = now();
    mdb_txn_begin(env, NULL, 0, &txn);
    for (int i = 0; i < NUPDATES; i++) {
        int64_t id = (int64_t)(lcg_next(&seed) % (uint64_t)c->n) + 1;
        LM_KEY(id);
        v.mv_size = lm_encode(id, (status_of(id) + 1) % 5, priority_of(id) + i % 3, buf);
        v.mv_data = buf;
        mdb_put(txn, main_db, &k, &v, 0);
    }
    mdb_txn_commit(txn);
    r->secs[4] = now() - t0;

    t0 = now();
    mdb_txn_begin(env, NULL, 0, &txn);
    for (int64_t id = 2; id <= c->n; id += 2) {
        int64_t p = project_of(id);
        LM_KEY(id);
        mdb_del(txn, main_db, &k, NULL);
        k.mv_data = &p;
        v.mv_size = 8;
        v.mv_data = &id;
        mdb_del(txn, by_project, &k, &v);
    }
    mdb_txn_commit(txn);
    r->secs[5] = now() - t0;

    t0 = now();
    for (int i = 0; i < NSINGLE; i++) {
        double c0 = now();
        int64_t id = c->n + 1 + i, p = project_of(id);
        mdb_txn_begin(env, NULL, 0, &txn);
        LM_KEY(id);
        v.mv_size = lm_encode(id, status_of(id), priority_of(id), buf);
        v.mv_data = buf;
        mdb_put(txn, main_db, &k, &v, 0);
        k.mv_data = &p;
        v.mv_size = 8;
        v.mv_data = &id;
        mdb_put(txn, by_project, &k, &v, 0);
        if (mdb_txn_commit(txn) != 0)
            FAIL(r, "single commit");
        lat[i] = now() - c0;
    }
    r->secs[6] = now() - t0;
    latency(lat, NSINGLE, r);

    r->size_before_compact = file_size(path);
    t0 = now();
    mdb_env_copy2(env, copy, MDB_CP_COMPACT);
    r->secs[7] = now() - t0;
    r->size_after_compact = file_size(copy);
    {
        MDB_stat st;
        mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
        mdb_stat(txn, main_db, &st);
        r->live_after = st.ms_entries;
        mdb_txn_abort(txn);
    }
    {
        beside b = {c, env, NULL, {main_db, by_project}, 0, 0, {"", ""}};
        run_beside(&b, lm_beside_writer, lm_beside_reader, r);
        if (b.why[0][0] || b.why[1][0])
            FAIL(r, "phase 9: %s%s", b.why[0], b.why[1]);
    }
    mdb_env_close(env);
    free(lat);
    r->ok = 1;
}

/* ---- driver ------------------------------------------------------------------------------ */

typedef struct engine {
    const char *name;
    int id;
} engine;

static const engine engines[] = {
    {"relatable", 0}, {"sqlite-wal", 1}, {"sqlite-journal", 2}, {"lmdb", 3}};

static void run_engine(const config *c, int id, result *r)
{
    switch (id) {
    case 0: run_relatable(c, r); break;
    case 1: run_sqlite(c, 1, r); break;
    case 2: run_sqlite(c, 0, r); break;
    default: run_lmdb(c, r); break;
    }
}

/* Run one engine in a child; its result comes back through a pipe. */
static void run_child(const config *c, int id, result *r)
{
    int fd[2];
    pid_t pid;
    struct rusage ru;
    int status;
    memset(r, 0, sizeof *r);
    if (pipe(fd) != 0 || (pid = fork()) < 0) {
        snprintf(r->note, sizeof r->note, "fork failed");
        return;
    }
    if (pid == 0) {
        result mine;
        memset(&mine, 0, sizeof mine);
        close(fd[0]);
        run_engine(c, id, &mine);
        if (write(fd[1], &mine, sizeof mine) != (ssize_t)sizeof mine)
            _exit(1);
        _exit(0);
    }
    close(fd[1]);
    if (read(fd[0], r, sizeof *r) != (ssize_t)sizeof *r)
        snprintf(r->note, sizeof r->note, "the engine's process died");
    close(fd[0]);
    wait4(pid, &status, 0, &ru);
    r->peak_rss_kb = ru.ru_maxrss;
}

/* The raw latency of one 4 KiB write + fdatasync on this disk. */
static double fdatasync_us(const char *dir)
{
    char path[600], block[4096] = {0};
    double lat[200];
    int fd;
    snprintf(path, sizeof path, "%s/fsync-probe", dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    for (int i = 0; i < 200; i++) {
        double t0 = now();
        if (pwrite(fd, block, sizeof block, (off_t)(i % 16) * 4096) < 0 || fdatasync(fd) != 0)
            break;
        lat[i] = now() - t0;
    }
    close(fd);
    unlink(path);
    qsort(lat, 200, sizeof *lat, cmp_double);
    return lat[100] * 1e6;
}

/* The median of n values (n >= 1); the values are reordered. */
static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Each engine's rounds in one result: every figure its median, ok only if
 * every round was, counts from the first round (all must agree), the
 * note from the first round that has one. */
static void merge_rounds(result runs[][4], int nruns, int e, result *out)
{
    double v[MAX_RUNS];
    *out = runs[0][e];
    for (int r = 0; r < nruns; r++) {
        out->ok = out->ok && runs[r][e].ok;
        if (!out->note[0])
            memcpy(out->note, runs[r][e].note, sizeof out->note);
    }
#define MEDIAN_OF(field, type)                                                                 \
    do {                                                                                       \
        for (int r = 0; r < nruns; r++)                                                        \
            v[r] = (double)runs[r][e].field;                                                   \
        out->field = (type)median_of(v, nruns);                                                \
    } while (0)
    for (int p = 0; p < NPHASES; p++)
        MEDIAN_OF(secs[p], double);
    MEDIAN_OF(commit_median_us, double);
    MEDIAN_OF(commit_p99_us, double);
    MEDIAN_OF(beside_commits_per_s, double);
    MEDIAN_OF(size_before_compact, uint64_t);
    MEDIAN_OF(size_after_compact, uint64_t);
    MEDIAN_OF(peak_rss_kb, long);
#undef MEDIAN_OF
}

/* ratio[e][p]: the median over the rounds of engine e's time for phase p
 * divided by relatable's in the same round (0: no round had both). */
static void round_ratios(result runs[][4], int nruns, double ratio[4][NPHASES])
{
    for (int e = 0; e < 4; e++)
        for (int p = 0; p < NPHASES; p++) {
            double v[MAX_RUNS];
            int n = 0;
            for (int r = 0; r < nruns; r++)
                if (runs[r][e].ok && runs[r][0].ok && runs[r][0].secs[p] > 0 &&
                    runs[r][e].secs[p] >= 0)
                    v[n++] = runs[r][e].secs[p] / runs[r][0].secs[p];
            ratio[e][p] = n ? median_of(v, n) : 0;
        }
}

/* One line per phase: every round's ratio to relatable, per engine. */
static void print_round_ratios(result runs[][4], int nruns, const int *use)
{
    int width = 6 * nruns > 22 ? 6 * nruns : 22;
    printf("\nratios per round (engine time / relatable time in the same round)\n%-20s", "phase");
    for (int e = 1; e < 4; e++)
        if (use[e])
            printf(" %*s", width, engines[e].name);
    printf("\n");
    for (int p = 0; p < NPHASES; p++) {
        printf("%-20s", phase_names[p]);
        for (int e = 1; e < 4; e++) {
            char s[6 * MAX_RUNS + 1] = "";
            size_t at = 0;
            if (!use[e])
                continue;
            for (int r = 0; r < nruns && runs[r][e].ok && runs[r][0].ok && runs[r][0].secs[p] > 0 &&
                            runs[r][e].secs[p] >= 0; r++)
                at += (size_t)snprintf(s + at, sizeof s - at, "%s%.2f", r ? " " : "",
                                       runs[r][e].secs[p] / runs[r][0].secs[p]);
            printf(" %*s", width, s);
        }
        printf("\n");
    }
}

static void print_report(const config *c, const int *use, const result *res,
                         double ratio[4][NPHASES])
{
    const result *base = &res[0];
    printf("\nrelatable benchmark: %ld rows, %d projects, %d updates, %d durable commits\n",
           c->n, NPROJECTS, NUPDATES, NSINGLE);
    printf("times in seconds; (x) = engine time / relatable time, above 1 means relatable is faster\n\n");
    printf("%-20s", "phase");
    for (int e = 0; e < 4; e++)
        if (use[e])
            printf(" %22s", engines[e].name);
    printf("\n");
    for (int p = 0; p < NPHASES; p++) {
        printf("%-20s", phase_names[p]);
        for (int e = 0; e < 4; e++) {
            if (!use[e])
                continue;
            if (!res[e].ok)
                printf(" %22s", "failed");
            else if (res[e].secs[p] < 0)
                printf(" %22s", "not run");
            else if (e == 0 || !base->ok || ratio[e][p] <= 0)
                printf(" %13.3f        ", res[e].secs[p]);
            else
                printf(" %13.3f (%5.2fx)", res[e].secs[p], ratio[e][p]);
        }
        printf("\n");
    }
    printf("%-20s", "commit median us");
    for (int e = 0; e < 4; e++)
        if (use[e])
            printf(" %22.0f", res[e].commit_median_us);
    printf("\n%-20s", "commit p99 us");
    for (int e = 0; e < 4; e++)
        if (use[e])
            printf(" %22.0f", res[e].commit_p99_us);
    printf("\n%-20s", "commits/s in 9");
    for (int e = 0; e < 4; e++)
        if (use[e] && res[e].secs[8] < 0)
            printf(" %22s", "-");
        else if (use[e])
            printf(" %22.0f", res[e].beside_commits_per_s);
    printf("\n%-20s", "file MB after 7");
    for (int e = 0; e < 4; e++)
        if (use[e])
            printf(" %22.1f", (double)res[e].size_before_compact / 1e6);
    printf("\n%-20s", "compacted MB");
    for (int e = 0; e < 4; e++)
        if (use[e])
            printf(" %22.1f", (double)res[e].size_after_compact / 1e6);
    printf("\n%-20s", "peak RSS MB");
    for (int e = 0; e < 4; e++)
        if (use[e])
            printf(" %22.1f", (double)res[e].peak_rss_kb / 1024);
    printf("\n%-20s", "counts (3/4/rows)");
    for (int e = 0; e < 4; e++)
        if (use[e]) {
            char s[64];
            snprintf(s, sizeof s, "%llu/%llu/%llu", (unsigned long long)res[e].scan_count,
                     (unsigned long long)res[e].project_total,
                     (unsigned long long)res[e].live_after);
            printf(" %22s", s);
        }
    printf("\nraw fdatasync of one 4 KiB block: median %.0f us\n", fdatasync_us(c->dir));
    for (int e = 0; e < 4; e++)
        if (use[e] && res[e].note[0])
            printf("note (%s): %s\n", engines[e].name, res[e].note);
}

/* Whether every engine's counts match relatable's, in every round. */
static int counts_agree(result runs[][4], int nruns, const int *use)
{
    for (int r = 0; r < nruns; r++)
        for (int e = 1; e < 4; e++)
            if (use[e] && use[0] && runs[r][e].ok && runs[r][0].ok &&
                (runs[r][e].scan_count != runs[r][0].scan_count ||
                 runs[r][e].project_total != runs[r][0].project_total ||
                 runs[r][e].live_after != runs[r][0].live_after))
                return 0;
    return 1;
}

int main(int argc, char **argv)
{
    static result runs[MAX_RUNS][4];
    config c = {1000000, "build/bench"};
    int use[4] = {1, 1, 1, 1}, opt, agree, nruns = 1;
    result res[4];
    double ratio[4][NPHASES];
    while ((opt = getopt(argc, argv, "n:d:e:r:")) != -1) {
        if (opt == 'n')
            c.n = atol(optarg);
        else if (opt == 'd')
            snprintf(c.dir, sizeof c.dir, "%s", optarg);
        else if (opt == 'e')
            for (int e = 0; e < 4; e++)
                use[e] = strstr(optarg, engines[e].name) != NULL;
        else if (opt == 'r')
            nruns = atoi(optarg);
        else {
            fprintf(stderr, "usage: bench [-n ROWS] [-d DIR] [-e ENGINES] [-r RUNS]\n");
            return 2;
        }
    }
    if (c.n < 10) {
        fprintf(stderr, "bench: -n must be at least 10\n");
        return 2;
    }
    if (nruns < 1 || nruns > MAX_RUNS) {
        fprintf(stderr, "bench: -r must be 1 to %d\n", MAX_RUNS);
        return 2;
    }
    mkdir(c.dir, 0755);
    for (int r = 0; r < nruns; r++)
        for (int e = 0; e < 4; e++)
            if (use[e]) {
                fprintf(stderr, "round %d of %d: running %s...\n", r + 1, nruns, engines[e].name);
                run_child(&c, e, &runs[r][e]);
            }
    for (int e = 0; e < 4; e++)
        merge_rounds(runs, nruns, e, &res[e]);
    round_ratios(runs, nruns, ratio);
    print_report(&c, use, res, ratio);
    if (nruns > 1)
        print_round_ratios(runs, nruns, use);
    agree = counts_agree(runs, nruns, use);
    printf("counts agree across engines: %s\n", agree ? "yes" : "NO");
    return agree ? 0 : 1;
}
