/*
** tests/test_query.c: queries against a brute-force filter of the same
** rows. Thousands of random conditions (every operator, IN, substring,
** IS NULL, AND/OR/NOT to depth 3) with random order, offset and limit, run
** with the indexes and again without them; plus explain and the edges of
** NULL logic.
*/
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "relatable.h"
#include "tests/apiutil.h"
#include "tests/testutil.h"

#define NROWS 600
#define NCOL 6 /* id a b c d e */
static const char *const colnames[NCOL] = {"id", "a", "b", "c", "d", "e"};
static const rl_column cols[] = {
    {"a", RL_TINTEGER, 0, 0, NULL, 0}, {"b", RL_TREAL, 0, 0, NULL, 0},
    {"c", RL_TTEXT, 0, 0, NULL, 0},    {"d", RL_TINTEGER, 0, 0, NULL, 0},
    {"e", RL_TCHAR, 8, 0, NULL, 0},
};
static const char *const words[] = {"Design", "design", "desk", "DES", "plan", "Plans",
                                    "x", "", "caf\xc3\xa9", "zeta"};

typedef struct mrow {
    rl_value v[NCOL];
} mrow;

static mrow rows[NROWS];

/* A new, empty database file under the test directory, with a write
 * transaction begun on it. */
static rl_db *new_db(const char *name, rl_txn **t)
{
    rl_db *db;
    unlink(tu_path(name));
    OK(NULL, rl_open(tu_path(name), NULL, &db));
    OK(db, rl_begin(db, RL_WRITE, t));
    return db;
}

static rl_value random_value(int col, uint64_t *rs)
{
    uint64_t r = tu_rand(rs);
    if (col != 0 && r % 7 == 0)
        return rl_null();
    switch (col) {
    case 0:
    case 1:
    case 4:
        return rl_int((int64_t)(r % 41) - 20);
    case 2:
        return rl_real((double)((int64_t)(r % 81) - 40) / 4);
    default:
        return rl_text(words[r % 10]);
    }
}

/* ---- the reference: a brute-force evaluator, independent of query.c ---- */

enum { F = 0, T = 1, U = 2 };

typedef struct qc {
    int kind; /* 0 cmp, 1 contains, 2 icontains, 3 null, 4 notnull, 5 in, 6 and, 7 or, 8 not */
    int col, op;
    rl_value v[4];
    int nv;
    struct qc *a, *b;
} qc;

static double num(const rl_value *v)
{
    return v->type == RL_TREAL ? v->v.r : (double)v->v.i;
}

static int cmpv(const rl_value *x, const rl_value *y)
{
    if (x->type >= RL_TCHAR) {
        size_t n = x->v.b.n < y->v.b.n ? x->v.b.n : y->v.b.n;
        int c = memcmp(x->v.b.p, y->v.b.p, n);
        return c ? (c > 0 ? 1 : -1) : (x->v.b.n > y->v.b.n) - (x->v.b.n < y->v.b.n);
    }
    return (num(x) > num(y)) - (num(x) < num(y));
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int contains(const rl_value *h, const rl_value *p, int fold)
{
    for (size_t i = 0; i + p->v.b.n <= h->v.b.n; i++) {
        size_t k = 0;
        while (k < p->v.b.n &&
               (fold ? lower(((const char *)h->v.b.p)[i + k]) == lower(((const char *)p->v.b.p)[k])
                     : ((const char *)h->v.b.p)[i + k] == ((const char *)p->v.b.p)[k]))
            k++;
        if (k == p->v.b.n)
            return 1;
    }
    return 0;
}

static int ref_eval(const qc *c, const mrow *r)
{
    const rl_value *x = &r->v[c->col];
    int p, q, cm;
    switch (c->kind) {
    case 6:
        p = ref_eval(c->a, r), q = ref_eval(c->b, r);
        return p == F || q == F ? F : p == T && q == T ? T : U;
    case 7:
        p = ref_eval(c->a, r), q = ref_eval(c->b, r);
        return p == T || q == T ? T : p == F && q == F ? F : U;
    case 8:
        p = ref_eval(c->a, r);
        return p == U ? U : !p;
    case 3:
        return x->type == RL_TNULL;
    case 4:
        return x->type != RL_TNULL;
    }
    if (x->type == RL_TNULL)
        return U;
    if (c->kind == 1 || c->kind == 2)
        return contains(x, &c->v[0], c->kind == 2);
    if (c->kind == 5) {
        int unknown = 0;
        for (int i = 0; i < c->nv; i++)
            if (c->v[i].type == RL_TNULL)
                unknown = 1;
            else if (cmpv(x, &c->v[i]) == 0)
                return T;
        return unknown ? U : F;
    }
    if (c->v[0].type == RL_TNULL)
        return U;
    cm = cmpv(x, &c->v[0]);
    switch (c->op) {
    case RL_EQ: return cm == 0;
    case RL_NE: return cm != 0;
    case RL_LT: return cm < 0;
    case RL_LE: return cm <= 0;
    case RL_GT: return cm > 0;
    default: return cm >= 0;
    }
}

/* A random condition, both as the reference's tree and as an rl_cond. */
static qc *random_cond(int depth, uint64_t *rs, rl_cond **out)
{
    qc *c = calloc(1, sizeof *c);
    uint64_t k = tu_rand(rs) % (depth > 0 ? 9 : 6);
    c->kind = (int)k;
    c->col = (int)(tu_rand(rs) % NCOL);
    if (k >= 6) {
        rl_cond *a, *b = NULL;
        c->a = random_cond(depth - 1, rs, &a);
        if (k != 8)
            c->b = random_cond(depth - 1, rs, &b);
        *out = k == 6 ? rl_and(a, b) : k == 7 ? rl_or(a, b) : rl_not(a);
        return c;
    }
    if ((k == 1 || k == 2) && (c->col == 0 || c->col == 1 || c->col == 2 || c->col == 4))
        c->col = 3 + 2 * (int)(tu_rand(rs) % 2) - (tu_rand(rs) % 2 ? 0 : 0); /* c or e */
    if (k == 1 || k == 2) {
        static const char *const pats[] = {"des", "DES", "an", "", "\xc3\xa9", "zz"};
        c->v[0] = rl_text(pats[tu_rand(rs) % 6]);
        *out = k == 1 ? rl_contains(colnames[c->col], (const char *)c->v[0].v.b.p)
                      : rl_icontains(colnames[c->col], (const char *)c->v[0].v.b.p);
    } else if (k == 3) {
        *out = rl_is_null(colnames[c->col]);
    } else if (k == 4) {
        *out = rl_not_null(colnames[c->col]);
    } else if (k == 5) {
        c->nv = 1 + (int)(tu_rand(rs) % 4);
        for (int i = 0; i < c->nv; i++)
            c->v[i] = random_value(c->col, rs);
        *out = rl_in(colnames[c->col], c->v, c->nv);
    } else {
        c->op = 1 + (int)(tu_rand(rs) % 6);
        c->v[0] = random_value(c->col, rs);
        if (c->col == 2 && tu_rand(rs) % 3 == 0 && c->v[0].type == RL_TREAL)
            c->v[0] = rl_int((int64_t)c->v[0].v.r); /* integers compare with REAL */
        *out = rl_cmp(colnames[c->col], c->op, c->v[0]);
    }
    return c;
}

static void qc_free(qc *c)
{
    if (c) {
        qc_free(c->a);
        qc_free(c->b);
        free(c);
    }
}

/* Order for the reference: like the library, NULLs first ascending, id last. */
static int g_ocol, g_desc;
static int ref_order(const void *x, const void *y)
{
    const mrow *a = *(mrow *const *)x, *b = *(mrow *const *)y;
    const rl_value *p = &a->v[g_ocol], *q = &b->v[g_ocol];
    int c = (p->type == RL_TNULL || q->type == RL_TNULL)
                ? (q->type == RL_TNULL) - (p->type == RL_TNULL)
                : cmpv(p, q);
    if (g_desc)
        c = -c;
    return c ? c : (a->v[0].v.i > b->v[0].v.i) - (a->v[0].v.i < b->v[0].v.i);
}

static void run_queries(rl_db *db, long nqueries, uint64_t seed, const char *label)
{
    uint64_t rs = seed;
    rl_txn *t;
    long used_index = 0;
    OK(db, rl_begin(db, RL_READ, &t));
    for (long qn = 0; qn < nqueries; qn++) {
        rl_cond *cond;
        qc *ref = random_cond((int)(tu_rand(&rs) % 4), &rs, &cond);
        rl_query q;
        rl_order ord;
        rl_cursor *cur;
        const rl_row *row;
        mrow *want[NROWS];
        size_t nwant = 0, got = 0;
        uint64_t count;
        char plan[512];
        const char *proj[] = {"id", "c"};
        for (int i = 0; i < NROWS; i++)
            if (ref_eval(ref, &rows[i]) == T)
                want[nwant++] = &rows[i];
        memset(&q, 0, sizeof q);
        q.table = "items";
        q.where = cond;
        g_ocol = 0;
        g_desc = 0;
        if (tu_rand(&rs) % 2) {
            g_ocol = (int)(tu_rand(&rs) % NCOL);
            g_desc = (int)(tu_rand(&rs) % 2);
            ord.column = colnames[g_ocol];
            ord.desc = g_desc;
            q.order = &ord;
            q.norder = 1;
        }
        qsort(want, nwant, sizeof *want, ref_order);
        if (tu_rand(&rs) % 3 == 0) {
            q.offset = tu_rand(&rs) % 20;
            q.limit = 1 + tu_rand(&rs) % 30;
        }
        if (tu_rand(&rs) % 2) {
            q.columns = proj;
            q.ncolumns = 2;
        }
        OK(db, rl_explain(t, &q, plan, sizeof plan));
        used_index += strstr(plan, "USING") != NULL;
        OK(db, rl_query_open(t, &q, &cur));
        while (rl_cursor_next(cur, &row) == RL_OK) {
            size_t at = q.offset + got;
            if (at >= nwant || (q.limit && got >= q.limit))
                fail_msg("query %ld (%s): more rows than expected", qn, plan);
            /* Without an order, the rows come in some order: compare as a set. */
            if (q.norder) {
                if (rl_row_int(row, 0) != want[at]->v[0].v.i)
                    fail_msg("query %ld (%s), order by %s%s: row %zu is id %lld, expected %lld",
                             qn, plan, colnames[g_ocol], g_desc ? " desc" : "", at,
                             (long long)rl_row_int(row, 0), (long long)want[at]->v[0].v.i);
            } else {
                int found = 0;
                for (size_t i = 0; i < nwant && !found; i++)
                    found = want[i]->v[0].v.i == rl_row_int(row, 0);
                assert_true(found);
            }
            if (q.columns)
                assert_string_equal(rl_row_name(row, 1), "c");
            got++;
        }
        rl_cursor_close(cur);
        {
            size_t expect = nwant > q.offset ? nwant - q.offset : 0;
            if (q.limit && expect > q.limit)
                expect = q.limit;
            if (got != expect)
                fail_msg("query %ld (%s): %zu rows, expected %zu", qn, plan, got, expect);
            OK(db, rl_query_count(t, &q, &count));
            assert_int_equal(count, expect);
        }
        rl_cond_free(cond);
        qc_free(ref);
    }
    rl_rollback(t);
    print_message("%s: %ld random queries agree with brute force (%ld used an index or key)\n",
                  label, nqueries, used_index);
}

static void test_random_queries(void **state)
{
    rl_db *db;
    rl_txn *t;
    uint64_t rs = 77;
    const char *ia[] = {"a"}, *ic[] = {"c"}, *ida[] = {"d", "a"}, *ib[] = {"b"}, *ie[] = {"e"};
    (void)state;
    db = new_db("query.rdb", &t);
    OK(db, rl_create_table(t, "items", cols, 5));
    for (int i = 0; i < NROWS; i++) {
        rows[i].v[0] = rl_int(i + 1);
        for (int c = 1; c < NCOL; c++)
            rows[i].v[c] = random_value(c, &rs);
        OK(db, rl_insert(t, "items", rows[i].v, NCOL, NULL));
    }
    OK(db, rl_create_index(t, "items_a", "items", ia, 1, 0));
    OK(db, rl_create_index(t, "items_c", "items", ic, 1, 0));
    OK(db, rl_create_index(t, "items_da", "items", ida, 2, 0));
    OK(db, rl_create_index(t, "items_b", "items", ib, 1, 0));
    OK(db, rl_create_index(t, "items_e", "items", ie, 1, 0));
    OK(db, rl_commit(t));
    run_queries(db, tu_scale(3000), 5, "with indexes");
    OK(db, rl_begin(db, RL_WRITE, &t));
    OK(db, rl_drop_index(t, "items_a"));
    OK(db, rl_drop_index(t, "items_c"));
    OK(db, rl_drop_index(t, "items_da"));
    OK(db, rl_drop_index(t, "items_b"));
    OK(db, rl_drop_index(t, "items_e"));
    OK(db, rl_commit(t));
    run_queries(db, tu_scale(3000), 5, "without indexes");
    OK(db, rl_close(db));
}

/* A query's row stays as it was until the next step, even when the same
 * transaction rewrites the leaf it came from in between (scans read rows
 * in place and copy only the rows they hand out). */
static void test_row_outlives_changes(void **state)
{
    rl_db *db;
    rl_txn *t;
    rl_query q;
    rl_cursor *cur;
    const rl_row *row;
    rl_cond *c;
    uint64_t n;
    (void)state;
    db = new_db("outlive.rdb", &t);
    OK(db, rl_create_table(t, "items", cols, 5));
    for (int i = 0; i < 20; i++)
        OK(db, rl_insert(t, "items",
                         (rl_value[]){rl_null(), rl_int(i), rl_real(i), rl_text("original text"),
                                      rl_int(i), rl_text("chars")},
                         6, NULL));
    memset(&q, 0, sizeof q);
    q.table = "items";
    q.where = c = rl_contains("c", "orig"); /* a scan */
    OK(db, rl_query_open(t, &q, &cur));
    OK(db, rl_cursor_next(cur, &row));
    for (int64_t id = 1; id <= 20; id++) /* same leaf, rewritten in place */
        OK(db, rl_update(t, "items", id,
                         (rl_value[]){rl_null(), rl_int(0), rl_real(0), rl_text("CHANGED changed"),
                                      rl_int(0), rl_text("other")},
                         6));
    assert_int_equal(rl_row_int(row, 0), 1);
    assert_string_equal(rl_row_bytes(row, 3, NULL), "original text"); /* NUL-terminated */
    assert_string_equal(rl_row_bytes(row, 5, NULL), "chars");
    rl_cursor_close(cur);
    OK(db, rl_query_count(t, &q, &n)); /* counts read in place */
    assert_int_equal(n, 0);
    rl_cond_free(c);
    rl_rollback(t);
    OK(db, rl_close(db));
}

/* A scan decodes the columns its condition reads first and the rest only
 * for a row it returns: rows whose large value (in a chain) lies before,
 * inside or after the condition's columns come back whole and counted. */
static void test_scan_reads_condition_columns_first(void **state)
{
    static const rl_column big_cols[] = {{"a", RL_TINTEGER, 0, 0, NULL, 0},
                                         {"big", RL_TTEXT, 0, 0, NULL, 0},
                                         {"c", RL_TINTEGER, 0, 0, NULL, 0},
                                         {"d", RL_TTEXT, 0, 0, NULL, 0}};
    static const char *const conds[] = {"a", "c", "d"};
    size_t big_len = 20000;
    char *big = malloc(big_len + 1);
    rl_db *db;
    rl_txn *t;
    (void)state;
    memset(big, 'x', big_len);
    big[big_len] = '\0';
    db = new_db("prefix.rdb", &t);
    OK(db, rl_create_table(t, "bigs", big_cols, 4));
    for (int i = 0; i < 40; i++) /* every third row's big is large */
        OK(db, rl_insert(t, "bigs",
                         (rl_value[]){rl_null(), rl_int(i % 2), rl_text(i % 3 ? "small" : big),
                                      rl_int(i % 2), rl_text(i % 2 ? "odd" : "even")},
                         5, NULL));
    for (int k = 0; k < 3; k++) {
        rl_cond *c = k < 2 ? rl_cmp(conds[k], RL_EQ, rl_int(1)) : rl_contains("d", "od");
        rl_query q = {0};
        rl_cursor *cur;
        const rl_row *row;
        uint64_t n = 0, seen = 0;
        q.table = "bigs";
        q.where = c;
        OK(db, rl_query_count(t, &q, &n));
        assert_int_equal(n, 20);
        OK(db, rl_query_open(t, &q, &cur));
        while (rl_cursor_next(cur, &row) == RL_OK) {
            int64_t id = rl_row_int(row, 0);
            size_t len = 0;
            const char *b = rl_row_bytes(row, 2, &len);
            assert_int_equal(rl_row_int(row, 1), 1);
            assert_int_equal(rl_row_int(row, 3), 1);
            assert_string_equal(rl_row_bytes(row, 4, NULL), "odd");
            assert_int_equal(len, (id - 1) % 3 ? 5 : big_len);
            assert_memory_equal(b, (id - 1) % 3 ? "small" : big, len);
            seen++;
        }
        rl_cursor_close(cur);
        assert_int_equal(seen, 20);
        rl_cond_free(c);
    }
    rl_rollback(t);
    OK(db, rl_close(db));
    free(big);
}

/* A bound on the id next to a bound on an indexed column: the index range
 * is the column's alone. (The planner once took the id's bound as the
 * column's: `c >= 'DES' AND id < 30` on a TEXT index found no rows.) */
static void test_id_bound_beside_index_bound(void **state)
{
    static const rl_column tcols[] = {{"c", RL_TTEXT, 0, 0, NULL, 0}, {"n", RL_TINTEGER, 0, 0, NULL, 0}};
    static const int id_ops[] = {RL_LT, RL_LE, RL_GT, RL_GE}, col_ops[] = {RL_LT, RL_GE};
    const char *ic[] = {"c"}, *in[] = {"n"};
    rl_db *db;
    rl_txn *t;
    char plan[256];
    (void)state;
    db = new_db("idbound.rdb", &t);
    OK(db, rl_create_table(t, "plain", tcols, 2));
    OK(db, rl_create_table(t, "indexed", tcols, 2));
    for (int i = 0; i < 60; i++) {
        rl_value v[3] = {rl_null(), rl_text(words[i % 10]), rl_int(i % 13 - 6)};
        OK(db, rl_insert(t, "plain", v, 3, NULL));
        OK(db, rl_insert(t, "indexed", v, 3, NULL));
    }
    OK(db, rl_create_index(t, "indexed_c", "indexed", ic, 1, 0));
    OK(db, rl_create_index(t, "indexed_n", "indexed", in, 1, 0));
    for (int k = 0; k < 2 * 4 * 2; k++) {
        int on_text = k / 8, id_op = id_ops[k / 2 % 4], col_op = col_ops[k % 2];
        rl_value bound = on_text ? rl_text("DES") : rl_int(-2);
        uint64_t want = 0, got = 0;
        rl_query q;
        rl_cond *c = rl_and(rl_cmp(on_text ? "c" : "n", col_op, bound), rl_cmp("id", id_op, rl_int(30)));
        memset(&q, 0, sizeof q);
        q.where = c;
        q.table = "plain";
        OK(db, rl_query_count(t, &q, &want));
        q.table = "indexed";
        OK(db, rl_explain(t, &q, plan, sizeof plan));
        assert_non_null(strstr(plan, on_text ? "USING INDEX indexed_c" : "USING INDEX indexed_n"));
        OK(db, rl_query_count(t, &q, &got));
        if (got != want || want == 0)
            fail_msg("%s with id op %d: %llu rows, expected %llu", plan, id_op,
                     (unsigned long long)got, (unsigned long long)want);
        rl_cond_free(c);
    }
    rl_rollback(t);
    rl_close(db);
}

/* rl_explain of q with condition c (freed here) reads want. */
static void expect_plan(rl_db *db, rl_txn *t, rl_query *q, rl_cond *c, const char *want)
{
    char plan[256];
    q->where = c;
    OK(db, rl_explain(t, q, plan, sizeof plan));
    assert_string_equal(plan, want);
    rl_cond_free(c);
    q->where = NULL;
}

static void test_explain_and_errors(void **state)
{
    rl_db *db;
    rl_txn *t;
    rl_query q;
    rl_cursor *cur;
    char plan[256];
    const char *ia[] = {"a"};
    rl_cond *c;
    (void)state;
    db = new_db("explain.rdb", &t);
    OK(db, rl_create_table(t, "items", cols, 5));
    OK(db, rl_create_index(t, "items_a", "items", ia, 1, 0));
    memset(&q, 0, sizeof q);
    q.table = "items";
    q.where = c = rl_cmp("id", RL_EQ, rl_int(3));
    OK(db, rl_explain(t, &q, plan, sizeof plan));
    assert_string_equal(plan, "SEARCH items USING PRIMARY KEY (id = ?)");
    rl_cond_free(c);
    q.where = c = rl_and(rl_cmp("a", RL_GE, rl_int(1)), rl_cmp("a", RL_LT, rl_int(9)));
    OK(db, rl_explain(t, &q, plan, sizeof plan));
    assert_string_equal(plan, "SEARCH items USING INDEX items_a (a >= ? AND a < ?)");
    rl_cond_free(c);
    q.where = c = rl_or(rl_cmp("a", RL_EQ, rl_int(1)), rl_cmp("d", RL_EQ, rl_int(2)));
    OK(db, rl_explain(t, &q, plan, sizeof plan));
    assert_string_equal(plan, "SCAN items"); /* an OR cannot use one index */
    rl_cond_free(c);
    q.where = NULL;
    q.order = (rl_order[]){{"a", 0}};
    q.norder = 1;
    q.where = c = rl_cmp("a", RL_GT, rl_int(0));
    OK(db, rl_explain(t, &q, plan, sizeof plan));
    assert_string_equal(plan, "SEARCH items USING INDEX items_a (a > ?); ORDER BY INDEX");
    rl_cond_free(c);
    q.order = (rl_order[]){{"c", 1}};
    q.where = NULL;
    q.limit = 5;
    OK(db, rl_explain(t, &q, plan, sizeof plan));
    assert_string_equal(plan, "SCAN items; SORT; LIMIT 5 OFFSET 0");
    q.order = (rl_order[]){{"a", 0}}; /* an index gives the order: no sort */
    OK(db, rl_explain(t, &q, plan, sizeof plan));
    assert_string_equal(plan, "SCAN items USING INDEX items_a; ORDER BY INDEX; LIMIT 5 OFFSET 0");
    /* Each remaining wording: the plan is kept and worded on demand. */
    q.order = (rl_order[]){{"id", 0}};
    q.limit = 0;
    q.offset = 7;
    OK(db, rl_explain(t, &q, plan, sizeof plan));
    assert_string_equal(plan, "SCAN items; ORDER BY PRIMARY KEY; LIMIT 0 OFFSET 7");
    q.order = NULL;
    q.norder = 0;
    q.offset = 0;
    expect_plan(db, t, &q, rl_in("id", (rl_value[]){rl_int(1), rl_int(2)}, 2),
                "SEARCH items USING PRIMARY KEY (id IN (...))");
    expect_plan(db, t, &q, rl_cmp("a", RL_EQ, rl_int(4)), "SEARCH items USING INDEX items_a (a = ?)");
    expect_plan(db, t, &q, rl_in("a", (rl_value[]){rl_int(1), rl_int(2)}, 2),
                "SEARCH items USING INDEX items_a (a IN (...))");
    expect_plan(db, t, &q, rl_cmp("a", RL_LE, rl_int(4)), "SEARCH items USING INDEX items_a (a <= ?)");
    /* Errors: unknown column, wrong type, NULL condition. */
    memset(&q, 0, sizeof q);
    q.table = "items";
    q.where = c = rl_cmp("zz", RL_EQ, rl_int(1));
    assert_int_equal(rl_query_open(t, &q, &cur), RL_NOCOLUMN);
    rl_cond_free(c);
    q.where = c = rl_cmp("a", RL_EQ, rl_text("x"));
    assert_int_equal(rl_query_open(t, &q, &cur), RL_TYPE);
    assert_non_null(strstr(rl_errmsg(db), "items.a is INTEGER"));
    rl_cond_free(c);
    q.where = c = rl_contains("a", "1");
    assert_int_equal(rl_query_open(t, &q, &cur), RL_TYPE);
    rl_cond_free(c);
    q.where = rl_and(NULL, rl_cmp("a", RL_EQ, rl_int(1))); /* NULL: out of memory */
    assert_null(q.where);
    assert_int_equal(rl_query_open(t, &q, &cur), RL_OK); /* NULL where: every row */
    rl_cursor_close(cur);
    q.table = "nope";
    assert_int_equal(rl_query_open(t, &q, &cur), RL_NOTABLE);
    rl_rollback(t);
    OK(db, rl_close(db));
}

/* ---- joins ---------------------------------------------------------------------------- */

static int64_t jcount(rl_db *db, rl_txn *t, const rl_query *q, const rl_join *j, int n,
                      int (*check)(const rl_row *, void *), void *arg)
{
    rl_cursor *cur;
    const rl_row *row;
    int64_t count = 0;
    OK(db, rl_join_open(t, q, j, n, &cur));
    while (rl_cursor_next(cur, &row) == RL_OK) {
        if (check && !check(row, arg))
            fail_msg("join row %lld fails its check", (long long)count);
        count++;
    }
    rl_cursor_close(cur);
    return count;
}

/* task joined with its project: the names line up with the key. */
static int task_project_ok(const rl_row *row, void *arg)
{
    int tp = rl_row_col(row, "tasks.project"), pid = rl_row_col(row, "projects.id");
    (void)arg;
    if (rl_row_is_null(row, tp))
        return rl_row_is_null(row, pid);
    return rl_row_int(row, tp) == rl_row_int(row, pid);
}

/* task -> project -> owner: the owner is the project's. */
static int chain_ok(const rl_row *row, void *arg)
{
    int po = rl_row_col(row, "projects.owner"), uid = rl_row_col(row, "users.id");
    (void)arg;
    if (!task_project_ok(row, NULL))
        return 0;
    if (rl_row_is_null(row, po))
        return rl_row_is_null(row, uid);
    return rl_row_int(row, po) == rl_row_int(row, uid);
}

static void test_joins(void **state)
{
    static const rl_column ucols[] = {{"name", RL_TTEXT, 0, 0, NULL, 0}};
    static const rl_column pcols[] = {{"owner", RL_TINTEGER, 0, 0, "users", 0},
                                      {"name", RL_TTEXT, 0, 0, NULL, 0}};
    static const rl_column tcols[] = {{"project", RL_TINTEGER, 0, 0, "projects", 0},
                                      {"title", RL_TTEXT, 0, 0, NULL, 0}};
    rl_db *db;
    rl_txn *t;
    rl_query q;
    char plan[512];
    uint64_t rs = 9;
    int64_t tasks_null = 0, tasks_total = 200, projects_without = 0, chain_inner = 0;
    int per_project[31] = {0};
    int owner_of[31] = {0};
    rl_cond *c;
    (void)state;
    db = new_db("join.rdb", &t);
    OK(db, rl_create_table(t, "users", ucols, 1));
    OK(db, rl_create_table(t, "projects", pcols, 2));
    OK(db, rl_create_table(t, "tasks", tcols, 2));
    for (int u = 1; u <= 10; u++)
        OK(db, rl_insert(t, "users", (rl_value[]){rl_null(), rl_text("u")}, 2, NULL));
    for (int p = 1; p <= 30; p++) {
        owner_of[p] = p % 4 == 0 ? 0 : 1 + (int)(tu_rand(&rs) % 10);
        OK(db, rl_insert(t, "projects",
                         (rl_value[]){rl_null(), owner_of[p] ? rl_int(owner_of[p]) : rl_null(),
                                      rl_text("p")}, 3, NULL));
    }
    for (int k = 1; k <= tasks_total; k++) {
        int p = (int)(tu_rand(&rs) % 31); /* 0: no project */
        OK(db, rl_insert(t, "tasks", (rl_value[]){rl_null(), p ? rl_int(p) : rl_null(),
                                                  rl_text("t")}, 3, NULL));
        tasks_null += p == 0;
        per_project[p]++;
        chain_inner += p != 0 && owner_of[p] != 0;
    }
    for (int p = 1; p <= 30; p++)
        projects_without += per_project[p] == 0;
    OK(db, rl_commit(t));
    OK(db, rl_begin(db, RL_READ, &t));
    memset(&q, 0, sizeof q);
    /* Many-to-one: each task with its project; NULL keys left out or kept. */
    q.table = "tasks";
    assert_int_equal(jcount(db, t, &q, (rl_join[]){{"projects", "tasks.project", 0}}, 1,
                            task_project_ok, NULL),
                     tasks_total - tasks_null);
    assert_int_equal(jcount(db, t, &q, (rl_join[]){{"projects", "tasks.project", 1}}, 1,
                            task_project_ok, NULL),
                     tasks_total);
    /* One-to-many: each project with each of its tasks. */
    q.table = "projects";
    assert_int_equal(jcount(db, t, &q, (rl_join[]){{"tasks", "tasks.project", 0}}, 1,
                            task_project_ok, NULL),
                     tasks_total - tasks_null);
    assert_int_equal(jcount(db, t, &q, (rl_join[]){{"tasks", "tasks.project", 1}}, 1,
                            task_project_ok, NULL),
                     tasks_total - tasks_null + projects_without);
    /* One project and its tasks, through the index. */
    q.where = c = rl_cmp("id", RL_EQ, rl_int(7));
    assert_int_equal(jcount(db, t, &q, (rl_join[]){{"tasks", "tasks.project", 0}}, 1,
                            task_project_ok, NULL),
                     per_project[7]);
    OK(db, rl_join_explain(t, &q, (rl_join[]){{"tasks", "tasks.project", 0}}, 1, plan,
                           sizeof plan));
    assert_string_equal(plan, "SEARCH projects USING PRIMARY KEY (id = ?); "
                              "JOIN tasks USING INDEX tasks_project_fk");
    rl_cond_free(c);
    q.where = NULL;
    /* Two levels: task -> project -> owner. */
    q.table = "tasks";
    assert_int_equal(jcount(db, t, &q, (rl_join[]){{"projects", "tasks.project", 0},
                                                   {"users", "projects.owner", 0}}, 2,
                            chain_ok, NULL),
                     chain_inner);
    assert_int_equal(jcount(db, t, &q, (rl_join[]){{"projects", "tasks.project", 1},
                                                   {"users", "projects.owner", 1}}, 2,
                            chain_ok, NULL),
                     tasks_total);
    OK(db, rl_join_explain(t, &q, (rl_join[]){{"projects", "tasks.project", 1},
                                              {"users", "projects.owner", 0}}, 2, plan,
                           sizeof plan));
    assert_string_equal(plan, "SCAN tasks; LEFT JOIN projects USING PRIMARY KEY; "
                              "JOIN users USING PRIMARY KEY");
    /* A key that links to no earlier table is refused. */
    {
        rl_cursor *cur;
        assert_int_equal(rl_join_open(t, &q, (rl_join[]){{"users", "projects.owner", 0}}, 1,
                                      &cur), RL_INVALID);
        assert_int_equal(rl_join_open(t, &q, (rl_join[]){{"users", "tasks.title", 0}}, 1, &cur),
                         RL_NOCOLUMN);
    }
    rl_rollback(t);
    OK(db, rl_close(db));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_queries),
        cmocka_unit_test(test_row_outlives_changes),
        cmocka_unit_test(test_scan_reads_condition_columns_first),
        cmocka_unit_test(test_explain_and_errors),
        cmocka_unit_test(test_id_bound_beside_index_bound),
        cmocka_unit_test(test_joins),
    };
    tu_setup_dir("query");
    return cmocka_run_group_tests_name("query", tests, NULL, NULL);
}
