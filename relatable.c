/*
** relatable.c: the public API. It owns the handles users hold (rl_db,
** rl_txn, rl_cursor, rl_row), checks their arguments, keeps the error
** message of each handle, shares the catalog between transactions, and
** hands the work to schema/ (tables, rows) and blocks/ (the file).
**
** Invariants:
**   1. db->cat is the catalog of the newest commit this handle knows, with
**      one reference held by the handle; every transaction and row holds
**      its own reference.
**   2. A write transaction that changes the schema works on a private
**      catalog, installed as db->cat only when its commit succeeds.
**   3. Handles carry a magic number, checked on entry, so that a NULL or
**      closed handle gives RL_MISUSE rather than a crash where that can be
**      detected (a freed handle cannot always be).
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "blocks/blocks.h"
#include "relatable.h"
#include "schema/schema.h"

#define DB_MAGIC 0x72646221u
#define TXN_MAGIC 0x72747821u
#define DEAD_MAGIC 0xdeadbeefu
#define DEFAULT_AUTOVACUUM 0.5

struct rl_db {
    uint32_t magic;
    rl__blk_db *blk;
    pthread_mutex_t mu; /* guards cat, err, ntxn */
    rl__catalog *cat;
    double autovacuum;
    int ntxn;
    rl__err err;
};

struct rl_txn {
    uint32_t magic;
    rl_db *db;
    rl__blk_txn *bt;
    rl__catalog *shared; /* the catalog the transaction began with */
    rl__stx s;
    int vacuumed; /* VACUUM_TABLE or VACUUM_ALL once it vacuumed */
};

enum { VACUUM_NONE, VACUUM_TABLE, VACUUM_ALL };

struct rl_cursor {
    rl_txn *t;
    rl__scan sc;    /* rl_scan */
    rl__query *q;   /* rl_query_open */
    rl__join *j;    /* rl_join_open */
    rl_row row;
};

/* ---- result codes ------------------------------------------------------------ */

const char *rl_strerror(int code)
{
    switch (code) {
#define RL__MSG_ROW(name, num, msg) case num: return msg;
        RL_ERROR_TABLE(RL__MSG_ROW)
#undef RL__MSG_ROW
    default:
        return "unknown error code";
    }
}

const char *rl_errname(int code)
{
    switch (code) {
#define RL__NAME_ROW(name, num, msg) case num: return #name;
        RL_ERROR_TABLE(RL__NAME_ROW)
#undef RL__NAME_ROW
    default:
        return "RL_UNKNOWN";
    }
}

const char *rl_version(void)
{
    return RL_VERSION_STRING;
}

rl_value rl_text(const char *s)
{
    return s ? rl_textn(s, strlen(s)) : rl_null();
}

/* ---- catalog references (invariant 1) --------------------------------------- */

static rl__catalog *cat_ref(rl__catalog *c)
{
    __atomic_fetch_add(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

static void cat_unref(rl__catalog *c)
{
    if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
        rl__cat_free(c);
}

/* ---- errors -------------------------------------------------------------------- */

/* Record a failure of a call on t in the handle's message; returns rc. */
static int txn_fail(rl_txn *t, int rc)
{
    rl__err *e = rl__blk_txn_err(t->bt);
    if (rc == RL_OK)
        return rc;
    pthread_mutex_lock(&t->db->mu);
    t->db->err = *e;
    if (e->code != rc || !e->msg[0]) {
        t->db->err.code = rc;
        snprintf(t->db->err.msg, sizeof t->db->err.msg, "%s", rl_strerror(rc));
    }
    pthread_mutex_unlock(&t->db->mu);
    return rc;
}

static int db_fail(rl_db *db, int rc, const char *msg)
{
    pthread_mutex_lock(&db->mu);
    db->err.code = rc;
    snprintf(db->err.msg, sizeof db->err.msg, "%s", msg);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

const char *rl_errmsg(rl_db *db)
{
    if (!db || db->magic != DB_MAGIC)
        return "not an open database handle";
    return db->err.msg;
}

/* ---- opening ---------------------------------------------------------------------- */

int rl_open(const char *path, const rl_options *opt, rl_db **out)
{
    return rl__open_io(path, opt, NULL, NULL, out);
}

int rl__open_io(const char *path, const rl_options *opt, rl__io_open_fn io_open, void *io_arg,
                rl_db **out)
{
    rl__blk_options bo;
    rl_db *db;
    int rc;
    if (!out)
        return RL_MISUSE;
    *out = db = calloc(1, sizeof *db);
    if (!db)
        return RL_NOMEM;
    db->magic = DB_MAGIC;
    pthread_mutex_init(&db->mu, NULL);
    memset(&bo, 0, sizeof bo);
    bo.flags = RL__BLK_CREATE;
    db->autovacuum = DEFAULT_AUTOVACUUM;
    if (opt) {
        bo.flags = opt->flags ? (opt->flags & RL_OPEN_CREATE ? RL__BLK_CREATE : 0) |
                                    (opt->flags & RL_OPEN_READONLY ? RL__BLK_READONLY : 0) |
                                    (opt->flags & RL_OPEN_EXCL ? RL__BLK_EXCL : 0)
                              : RL__BLK_CREATE;
        bo.block_size = opt->block_size;
        bo.durability = (rl__durability)opt->durability;
        bo.cache_bytes = opt->cache_bytes;
        bo.busy_timeout_ms = opt->busy_timeout_ms;
        if (opt->autovacuum_ratio != 0)
            db->autovacuum = opt->autovacuum_ratio;
    }
    if (!path)
        return db_fail(db, RL_INVALID, "path is NULL");
    bo.io_open = io_open;
    bo.io_arg = io_arg;
    rc = rl__blk_open(path, &bo, &db->blk, &db->err);
    return rc;
}

int rl_close(rl_db *db)
{
    if (!db)
        return RL_OK;
    if (db->magic != DB_MAGIC)
        return RL_MISUSE;
    pthread_mutex_lock(&db->mu);
    if (db->ntxn > 0) {
        pthread_mutex_unlock(&db->mu);
        return db_fail(db, RL_BUSY, "close with transactions still open");
    }
    pthread_mutex_unlock(&db->mu);
    db->magic = DEAD_MAGIC;
    rl__blk_close(db->blk);
    cat_unref(db->cat);
    pthread_mutex_destroy(&db->mu);
    free(db);
    return RL_OK;
}

/* ---- transactions ---------------------------------------------------------------- */

/* The catalog of t's snapshot, from the handle's cache or the file. */
static int txn_catalog(rl_txn *t)
{
    rl_db *db = t->db;
    uint64_t version = rl__blk_meta_get(t->bt, RL__META_VERSION);
    rl__catalog *fresh = NULL;
    int rc = RL_OK;
    pthread_mutex_lock(&db->mu);
    if (db->cat && db->cat->version == version) {
        t->shared = cat_ref(db->cat);
        pthread_mutex_unlock(&db->mu);
        return RL_OK;
    }
    pthread_mutex_unlock(&db->mu);
    rc = rl__cat_load(t->bt, &fresh);
    if (rc != RL_OK)
        return rc;
    pthread_mutex_lock(&db->mu);
    cat_unref(db->cat);
    db->cat = cat_ref(fresh);
    t->shared = fresh; /* the load's own reference */
    pthread_mutex_unlock(&db->mu);
    return RL_OK;
}

static void txn_free(rl_txn *t)
{
    rl__stx_release(&t->s);
    if (t->s.cat_private)
        cat_unref(t->s.cat);
    cat_unref(t->shared);
    pthread_mutex_lock(&t->db->mu);
    t->db->ntxn--;
    pthread_mutex_unlock(&t->db->mu);
    t->magic = DEAD_MAGIC;
    free(t);
}

uint64_t rl_txn_id(const rl_txn *t)
{
    if (!t || t->magic != TXN_MAGIC)
        return 0;
    return rl__blk_txn_id(t->bt);
}

int rl_begin(rl_db *db, int mode, rl_txn **out)
{
    rl_txn *t;
    int rc;
    if (!db || db->magic != DB_MAGIC || !out || (mode != RL_READ && mode != RL_WRITE))
        return RL_MISUSE;
    *out = NULL;
    t = calloc(1, sizeof *t);
    if (!t)
        return db_fail(db, RL_NOMEM, "no memory for a transaction");
    t->magic = TXN_MAGIC;
    t->db = db;
    rc = rl__blk_begin(db->blk, mode == RL_WRITE, &t->bt);
    if (rc != RL_OK) {
        free(t);
        pthread_mutex_lock(&db->mu);
        db->err = *rl__blk_last_error(db->blk);
        pthread_mutex_unlock(&db->mu);
        return rc;
    }
    pthread_mutex_lock(&db->mu);
    db->ntxn++;
    pthread_mutex_unlock(&db->mu);
    rc = txn_catalog(t);
    if (rc != RL_OK) {
        txn_fail(t, rc);
        rl__blk_rollback(t->bt);
        txn_free(t);
        return rc;
    }
    t->s.bt = t->bt;
    t->s.cat = t->shared;
    t->s.err = rl__blk_txn_err(t->bt);
    t->s.autovacuum_ratio = db->autovacuum;
    t->s.read_only = !rl__blk_txn_is_write(t->bt);
    t->s.state_table = -1;
    *out = t;
    return RL_OK;
}

/* Vacuum the tables whose tombstones passed the threshold. */
static int autovacuum(rl_txn *t)
{
    double ratio = t->s.autovacuum_ratio;
    int rc = RL_OK;
    if (ratio < 0)
        return RL_OK;
    for (int i = 0; i < t->s.cat->n && rc == RL_OK; i++) {
        rl__tstate st;
        rc = rl__tbl_state(&t->s, i, &st);
        if (rc == RL_OK && st.dead >= 1000 && (double)st.dead >= ratio * (double)(st.dead + st.live)) {
            rc = rl__tbl_vacuum(&t->s, i, 0); /* half its rows went: worth it */
            t->vacuumed = t->vacuumed ? t->vacuumed : VACUUM_TABLE;
        }
    }
    return rc;
}

/* A vacuum's new trees went to the end of the file (the old ones were live
 * until its commit): move them down now, with commits of compaction alone,
 * rather than at the cost of the commits that follow. The transaction is
 * committed whatever happens here: a failure leaves the file valid, only
 * larger, and later commits compact as usual. */
static void settle_after_vacuum(rl_db *db, int whole)
{
    (void)rl__blk_compact_now(db->blk, whole);
}

int rl_commit(rl_txn *t)
{
    rl_db *db;
    int rc = RL_OK;
    if (!t || t->magic != TXN_MAGIC)
        return RL_MISUSE;
    db = t->db;
    if (rl__blk_txn_is_write(t->bt))
        rc = autovacuum(t);
    if (rc == RL_OK)
        rc = rl__tbl_state_flush(&t->s);
    if (rc != RL_OK) {
        txn_fail(t, rc);
        rl__blk_rollback(t->bt);
        txn_free(t);
        return rc;
    }
    rc = rl__blk_commit(t->bt);
    if (rc != RL_OK) {
        pthread_mutex_lock(&db->mu);
        db->err = *rl__blk_last_error(db->blk);
        pthread_mutex_unlock(&db->mu);
    } else if (t->s.cat_private) { /* invariant 2 */
        pthread_mutex_lock(&db->mu);
        cat_unref(db->cat);
        db->cat = cat_ref(t->s.cat);
        pthread_mutex_unlock(&db->mu);
    }
    if (rc == RL_OK && t->vacuumed)
        settle_after_vacuum(db, t->vacuumed == VACUUM_ALL);
    txn_free(t);
    return rc;
}

void rl_rollback(rl_txn *t)
{
    if (!t || t->magic != TXN_MAGIC)
        return;
    rl__blk_rollback(t->bt);
    txn_free(t);
}

/* ---- argument checks shared by the calls below ---------------------------------------- */

static int txn_ok(rl_txn *t)
{
    return t && t->magic == TXN_MAGIC;
}

/* Start a call on t: clear its error; find the table (write: needs a
 * write transaction). Returns the table index in *table. */
static int enter(rl_txn *t, const char *table, int write, int *index)
{
    rl__err *e;
    if (!txn_ok(t))
        return RL_MISUSE;
    e = rl__blk_txn_err(t->bt);
    rl__err_clear(e);
    if (write && !rl__blk_txn_is_write(t->bt))
        return txn_fail(t, RL__FAIL(e, RL_READONLY, "a write in a read transaction"));
    if (index) {
        *index = rl__cat_find(t->s.cat, table);
        if (*index < 0)
            return txn_fail(t, RL__FAIL(e, RL_NOTABLE, "no such table: %s",
                                        table ? table : "(null)"));
    }
    return RL_OK;
}

/* ---- schema -------------------------------------------------------------------------- */

int rl_create_table(rl_txn *t, const char *name, const rl_column *cols, int ncols)
{
    int rc = enter(t, NULL, 1, NULL);
    if (rc != RL_OK)
        return rc;
    return txn_fail(t, rl__tbl_create(&t->s, name, cols, ncols));
}

int rl_drop_table(rl_txn *t, const char *name)
{
    int i, rc = enter(t, name, 1, &i);
    if (rc != RL_OK)
        return rc;
    return txn_fail(t, rl__tbl_drop(&t->s, i));
}

int rl_create_index(rl_txn *t, const char *name, const char *table, const char *const *columns,
                    int ncols, int unique)
{
    int cols[16], i, rc = enter(t, table, 1, &i);
    const rl__table *tb;
    if (rc != RL_OK)
        return rc;
    tb = &t->s.cat->tables[i];
    if (ncols < 1 || ncols > 16 || !columns)
        return txn_fail(t, RL__FAIL(t->s.err, RL_INVALID, "index %s: %d columns (1..16 allowed)",
                                    name ? name : "(null)", ncols));
    for (int k = 0; k < ncols; k++) {
        cols[k] = -1;
        for (int c = 1; columns[k] && c < tb->ncols; c++)
            if (strcasecmp(tb->cols[c].name, columns[k]) == 0)
                cols[k] = c;
        if (cols[k] < 0)
            return txn_fail(t, RL__FAIL(t->s.err, RL_NOCOLUMN, "table %s has no column %s",
                                        tb->name, columns[k] ? columns[k] : "(null)"));
    }
    return txn_fail(t, rl__tbl_create_index(&t->s, name, i, cols, ncols, unique));
}

int rl_drop_index(rl_txn *t, const char *name)
{
    int table, index, rc = enter(t, NULL, 1, NULL);
    if (rc != RL_OK)
        return rc;
    if (rl__cat_find_index(t->s.cat, name, &table, &index) != 0)
        return txn_fail(t, RL__FAIL(t->s.err, RL_NOTFOUND, "no such index: %s",
                                    name ? name : "(null)"));
    return txn_fail(t, rl__tbl_drop_index(&t->s, table, index));
}

int rl_index_at(rl_txn *t, const char *table, int i, const char **name, int *unique,
                const char *const **columns, int *ncols)
{
    const rl__table *tb;
    const rl__index *ix;
    int ti, rc = enter(t, table, 0, &ti);
    if (rc != RL_OK)
        return rc;
    tb = &t->s.cat->tables[ti];
    if (i < 0 || i >= tb->nindexes)
        return RL_NOTFOUND;
    ix = &tb->indexes[i];
    *name = ix->name;
    *unique = ix->unique;
    *ncols = ix->ncols;
    *columns = (const char *const *)ix->colnames;
    return RL_OK;
}

int rl_table_at(rl_txn *t, int i, const char **name)
{
    int rc = enter(t, NULL, 0, NULL);
    if (rc != RL_OK)
        return rc;
    if (i < 0 || i >= t->s.cat->n)
        return RL_NOTFOUND;
    *name = t->s.cat->tables[i].name;
    return RL_OK;
}

int rl_columns(rl_txn *t, const char *table, const rl_column **cols, int *ncols)
{
    int i, rc = enter(t, table, 0, &i);
    if (rc != RL_OK)
        return rc;
    *cols = t->s.cat->tables[i].cols;
    *ncols = t->s.cat->tables[i].ncols;
    return RL_OK;
}

/* ---- rows ------------------------------------------------------------------------------ */

int rl_insert(rl_txn *t, const char *table, const rl_value *vals, int nvals, int64_t *id)
{
    int i, rc = enter(t, table, 1, &i);
    if (rc != RL_OK)
        return rc;
    if (!vals && nvals > 0)
        return txn_fail(t, RL__FAIL(t->s.err, RL_INVALID, "vals is NULL"));
    return txn_fail(t, rl__tbl_insert(&t->s, i, vals, nvals, id));
}

static rl_row *row_new(rl_txn *t)
{
    rl_row *row = malloc(sizeof *row); /* not calloc, which skips glibc's thread cache */
    if (row)
        *row = (rl_row){.cat = cat_ref(t->s.cat)};
    return row;
}

int rl_get(rl_txn *t, const char *table, int64_t id, rl_row **out)
{
    rl_row *row;
    int i, rc = enter(t, table, 0, &i);
    if (rc != RL_OK)
        return rc;
    *out = NULL;
    row = row_new(t);
    if (!row)
        return txn_fail(t, RL__FAIL(t->s.err, RL_NOMEM, "no memory for a row"));
    rc = rl__tbl_get(&t->s, i, id, row);
    if (rc != RL_OK) {
        rl_row_free(row);
        return txn_fail(t, rc);
    }
    *out = row;
    return RL_OK;
}

int rl_update(rl_txn *t, const char *table, int64_t id, const rl_value *vals, int nvals)
{
    int i, rc = enter(t, table, 1, &i);
    if (rc != RL_OK)
        return rc;
    if (!vals && nvals > 0)
        return txn_fail(t, RL__FAIL(t->s.err, RL_INVALID, "vals is NULL"));
    return txn_fail(t, rl__tbl_update(&t->s, i, id, vals, nvals));
}

int rl_delete(rl_txn *t, const char *table, int64_t id)
{
    int i, rc = enter(t, table, 1, &i);
    if (rc != RL_OK)
        return rc;
    return txn_fail(t, rl__tbl_delete(&t->s, i, id));
}

int rl_count(rl_txn *t, const char *table, uint64_t *n)
{
    rl__tstate st;
    int i, rc = enter(t, table, 0, &i);
    if (rc != RL_OK)
        return rc;
    rc = rl__tbl_state(&t->s, i, &st);
    if (rc == RL_OK)
        *n = st.live;
    return txn_fail(t, rc);
}

int rl_truncate(rl_txn *t, const char *table)
{
    int i, rc = enter(t, table, 1, &i);
    if (rc != RL_OK)
        return rc;
    return txn_fail(t, rl__tbl_truncate(&t->s, i));
}

int rl_vacuum(rl_txn *t, const char *table)
{
    int i, rc = enter(t, table, 1, table ? &i : NULL);
    if (rc != RL_OK)
        return rc;
    if (table) {
        t->vacuumed = t->vacuumed ? t->vacuumed : VACUUM_TABLE;
        return txn_fail(t, rl__tbl_vacuum(&t->s, i, 1));
    }
    for (i = 0; i < t->s.cat->n && rc == RL_OK; i++)
        rc = rl__tbl_vacuum(&t->s, i, 1);
    t->vacuumed = VACUUM_ALL; /* the commit gives the whole file back */
    return txn_fail(t, rc);
}

int rl_space_of(rl_txn *t, const char *table, const char *index, rl_space *out)
{
    const rl__table *tb;
    int ti, x = -1, rc = enter(t, table, 0, &ti);
    if (rc != RL_OK)
        return rc;
    if (!out)
        return RL_MISUSE;
    tb = &t->s.cat->tables[ti];
    for (int i = 0; index && i < tb->nindexes && x < 0; i++)
        if (!strcmp(tb->indexes[i].name, index))
            x = i;
    if (index && x < 0)
        return txn_fail(t, RL__FAIL(t->s.err, RL_NOTFOUND, "table %s has no index %s",
                                    tb->name, index));
    return txn_fail(t, rl__tbl_space(&t->s, ti, x, out));
}

/* ---- checking ------------------------------------------------------------------------ */

int rl_check(rl_txn *t, char **report)
{
    rl__buf out = {0};
    int problems = 0, rc = enter(t, NULL, 0, NULL);
    if (rc != RL_OK)
        return rc;
    if (report)
        *report = NULL;
    if (rl__buf_reserve(&out, 1) != RL_OK)
        return txn_fail(t, RL__FAIL(t->s.err, RL_NOMEM, "no memory for a report"));
    out.p[0] = '\0';
    if (!rl__blk_txn_is_write(t->bt)) { /* blocks: a committed snapshot only */
        char *blocks = NULL;
        int nb = 0;
        rc = rl__blk_check(t->bt, &blocks, &nb);
        if (rc == RL_OK && blocks && rl__buf_reserve(&out, strlen(blocks) + 1) == RL_OK) {
            memcpy(out.p + out.n, blocks, strlen(blocks) + 1);
            out.n += strlen(blocks);
        }
        problems += nb;
        free(blocks);
    }
    for (int i = 0; i < t->s.cat->n && rc == RL_OK; i++)
        rc = rl__ix_verify(&t->s, i, &out, &problems);
    if (rc == RL_OK && problems)
        rc = RL__CORRUPT(t->s.err, "%d problem(s): %s", problems, (char *)out.p);
    if (report)
        *report = (char *)out.p;
    else
        rl__buf_free(&out);
    return txn_fail(t, rc);
}

/* ---- cursors ---------------------------------------------------------------------------- */

/* A cursor of t, zeroed; NULL if out of memory. */
static rl_cursor *cursor_new(rl_txn *t)
{
    rl_cursor *c = calloc(1, sizeof *c);
    if (c) {
        c->t = t;
        c->row.cat = t->s.cat; /* the cursor lives inside t: no reference */
    }
    return c;
}

int rl_scan(rl_txn *t, const char *table, rl_cursor **out)
{
    rl_cursor *c;
    int i, rc = enter(t, table, 0, &i);
    if (rc != RL_OK)
        return rc;
    *out = NULL;
    if (!(c = cursor_new(t)))
        return txn_fail(t, RL__FAIL(t->s.err, RL_NOMEM, "no memory for a cursor"));
    rc = rl__scan_open(&t->s, i, &c->sc);
    if (rc != RL_OK) {
        rl_cursor_close(c);
        return txn_fail(t, rc);
    }
    *out = c;
    return RL_OK;
}

int rl_cursor_next(rl_cursor *c, const rl_row **row)
{
    int rc;
    if (!c || !txn_ok(c->t))
        return RL_MISUSE;
    if (c->j) {
        rc = rl__join_next(c->j, &c->row);
        if (rc == RL_OK)
            *row = &c->row;
        return rc == RL_DONE ? RL_DONE : txn_fail(c->t, rc);
    }
    if (c->q) {
        rc = rl__q_next(c->q, &c->row);
        if (rc == RL_OK)
            *row = &c->row;
        return rc == RL_DONE ? RL_DONE : txn_fail(c->t, rc);
    }
    rc = rl__scan_next(&c->sc);
    if (rc == RL_OK)
        rc = rl__tbl_row_from_record(&c->t->s, c->sc.table, c->sc.id, c->sc.rec, c->sc.n,
                                     c->sc.chained, &c->row);
    if (rc == RL_OK)
        *row = &c->row;
    return rc == RL_DONE ? RL_DONE : txn_fail(c->t, rc);
}

void rl_cursor_close(rl_cursor *c)
{
    if (!c)
        return;
    if (c->j)
        rl__join_close(c->j);
    else if (c->q)
        rl__q_close(c->q);
    else
        rl__scan_close(&c->sc);
    rl__row_clear(&c->row);
    free(c);
}

/* ---- queries ------------------------------------------------------------------------------ */

rl_cond *rl_cmp(const char *column, int op, rl_value v)
{
    if (op < RL_EQ || op > RL_GE || !column)
        return NULL;
    return rl__cond_new(RL__Q_CMP, column, op, &v, 1);
}

static rl_cond *text_cond(int kind, const char *column, const char *text)
{
    rl_value v = rl_text(text ? text : "");
    return column ? rl__cond_new(kind, column, 0, &v, 1) : NULL;
}

rl_cond *rl_contains(const char *column, const char *text)
{
    return text_cond(RL__Q_CONTAINS, column, text);
}

rl_cond *rl_icontains(const char *column, const char *text)
{
    return text_cond(RL__Q_ICONTAINS, column, text);
}

rl_cond *rl_is_null(const char *column)
{
    return column ? rl__cond_new(RL__Q_ISNULL, column, 0, NULL, 0) : NULL;
}

rl_cond *rl_not_null(const char *column)
{
    return column ? rl__cond_new(RL__Q_NOTNULL, column, 0, NULL, 0) : NULL;
}

rl_cond *rl_in(const char *column, const rl_value *vals, int n)
{
    if (!column || n < 0 || (n > 0 && !vals))
        return NULL;
    return rl__cond_new(RL__Q_IN, column, 0, vals, n);
}

static rl_cond *combine(int kind, rl_cond *a, rl_cond *b)
{
    rl_cond *c = (a && (b || kind == RL__Q_NOT)) ? rl__cond_new(kind, NULL, 0, NULL, 0) : NULL;
    if (!c) {
        rl__cond_free(a);
        rl__cond_free(b);
        return NULL;
    }
    c->a = a;
    c->b = b;
    return c;
}

rl_cond *rl_and(rl_cond *a, rl_cond *b)
{
    return combine(RL__Q_AND, a, b);
}

rl_cond *rl_or(rl_cond *a, rl_cond *b)
{
    return combine(RL__Q_OR, a, b);
}

rl_cond *rl_not(rl_cond *a)
{
    return combine(RL__Q_NOT, a, NULL);
}

void rl_cond_free(rl_cond *c)
{
    rl__cond_free(c);
}

static int query_enter(rl_txn *t, const rl_query *q, int *table)
{
    if (!q)
        return txn_ok(t) ? txn_fail(t, RL__FAIL(rl__blk_txn_err(t->bt), RL_INVALID,
                                                 "the query is NULL"))
                         : RL_MISUSE;
    return enter(t, q->table, 0, table);
}

int rl_query_open(rl_txn *t, const rl_query *q, rl_cursor **out)
{
    rl_cursor *c;
    int i, rc = query_enter(t, q, &i);
    if (rc != RL_OK)
        return rc;
    *out = NULL;
    if (!(c = cursor_new(t)))
        return txn_fail(t, RL__FAIL(t->s.err, RL_NOMEM, "no memory for a cursor"));
    rc = rl__q_open(&t->s, i, q, 0, &c->q);
    if (rc != RL_OK) {
        free(c);
        return txn_fail(t, rc);
    }
    *out = c;
    return RL_OK;
}

int rl_query_count(rl_txn *t, const rl_query *q, uint64_t *n)
{
    rl__query *qq;
    int i, rc = query_enter(t, q, &i);
    if (rc != RL_OK)
        return rc;
    *n = 0;
    if (!q->where && !q->offset && !q->limit) {
        rl__tstate st;
        rc = rl__tbl_state(&t->s, i, &st);
        *n = st.live;
        return txn_fail(t, rc);
    }
    rc = rl__q_open(&t->s, i, q, 0, &qq);
    if (rc != RL_OK)
        return txn_fail(t, rc);
    rc = rl__q_count(qq, n);
    rl__q_close(qq);
    return txn_fail(t, rc);
}

int rl_explain(rl_txn *t, const rl_query *q, char *buf, size_t n)
{
    rl__query *qq;
    int i, rc = query_enter(t, q, &i);
    if (rc != RL_OK)
        return rc;
    if (!buf || n == 0)
        return txn_fail(t, RL__FAIL(t->s.err, RL_INVALID, "no buffer for the plan"));
    rc = rl__q_open(&t->s, i, q, 1, &qq);
    if (rc != RL_OK)
        return txn_fail(t, rc);
    snprintf(buf, n, "%s", rl__q_explain(qq));
    rl__q_close(qq);
    return RL_OK;
}

int rl_join_open(rl_txn *t, const rl_query *base, const rl_join *joins, int njoins,
                 rl_cursor **out)
{
    rl_cursor *c;
    int i, rc = query_enter(t, base, &i);
    if (rc != RL_OK)
        return rc;
    *out = NULL;
    if (njoins < 0 || (njoins > 0 && !joins) || njoins > 32)
        return txn_fail(t, RL__FAIL(t->s.err, RL_INVALID, "%d joins", njoins));
    if (!(c = cursor_new(t)))
        return txn_fail(t, RL__FAIL(t->s.err, RL_NOMEM, "no memory for a cursor"));
    rc = rl__join_open(&t->s, i, base, joins, njoins, 0, &c->j);
    if (rc != RL_OK) {
        free(c);
        return txn_fail(t, rc);
    }
    *out = c;
    return RL_OK;
}

int rl_join_explain(rl_txn *t, const rl_query *base, const rl_join *joins, int njoins,
                    char *buf, size_t n)
{
    rl__join *j;
    int i, rc = query_enter(t, base, &i);
    if (rc != RL_OK)
        return rc;
    if (!buf || n == 0 || njoins < 0 || (njoins > 0 && !joins) || njoins > 32)
        return txn_fail(t, RL__FAIL(t->s.err, RL_INVALID, "bad arguments to rl_join_explain"));
    rc = rl__join_open(&t->s, i, base, joins, njoins, 1, &j);
    if (rc != RL_OK)
        return txn_fail(t, rc);
    snprintf(buf, n, "%s", rl__join_explain(j));
    rl__join_close(j);
    return RL_OK;
}

/* ---- reading rows ------------------------------------------------------------------------ */

static const rl_value *cell(const rl_row *row, int col)
{
    static const rl_value null_value = {RL_TNULL, {0}};
    if (!row || col < 0 || col >= row->ncols)
        return &null_value;
    return &row->vals[col];
}

int rl_row_ncols(const rl_row *row)
{
    return row ? row->ncols : 0;
}

const char *rl_row_name(const rl_row *row, int col)
{
    if (!row || col < 0 || col >= row->ncols)
        return NULL;
    if (row->names)
        return row->names[col];
    return row->cat->tables[row->table].cols[row->colmap ? row->colmap[col] : col].name;
}

int rl_row_col(const rl_row *row, const char *name)
{
    for (int c = 0; row && name && c < row->ncols; c++)
        if (strcasecmp(rl_row_name(row, c), name) == 0)
            return c;
    return -1;
}

rl_type rl_row_type(const rl_row *row, int col)
{
    return cell(row, col)->type;
}

int rl_row_is_null(const rl_row *row, int col)
{
    return cell(row, col)->type == RL_TNULL;
}

int64_t rl_row_int(const rl_row *row, int col)
{
    const rl_value *v = cell(row, col);
    return v->type == RL_TINTEGER ? v->v.i : 0;
}

double rl_row_real(const rl_row *row, int col)
{
    const rl_value *v = cell(row, col);
    return v->type == RL_TREAL ? v->v.r : 0.0;
}

const void *rl_row_bytes(const rl_row *row, int col, size_t *len)
{
    const rl_value *v = cell(row, col);
    if (v->type < RL_TCHAR) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = v->v.b.n;
    return v->v.b.p;
}

int rl_row_get(const rl_row *row, int col, rl_value *out)
{
    if (!row || !out || col < 0 || col >= row->ncols)
        return RL_RANGE;
    *out = row->vals[col];
    return RL_OK;
}

void rl_row_free(rl_row *row)
{
    if (!row)
        return;
    rl__row_clear(row);
    cat_unref(row->cat);
    free(row);
}
