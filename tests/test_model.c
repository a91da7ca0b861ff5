/*
** tests/test_model.c: a randomised run of inserts, updates, deletes,
** commits, rollbacks and reopens on three related tables (foreign keys
** with cascades), checked after every step against an in-memory model of
** what was committed.
*/
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relatable.h"
#include "tests/apiutil.h"
#include "tests/testutil.h"

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
        cmocka_unit_test(test_random_three_tables),
    };
    tu_setup_dir("model");
    return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
