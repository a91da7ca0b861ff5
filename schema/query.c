/*
** schema/query.c: queries. A query binds its condition to a table (column
** names to numbers, values to the column types), chooses a plan, and then
** yields rows one by one:
**   ID      the rows named by id = v or id IN (...), looked up by key;
**   INDEX   keys of one index between two bounds (one pair per IN value),
**           each row fetched by id;
**   SCAN    the table's rows in id order.
** Every row a plan yields is checked against the whole condition, so a
** plan only has to yield a superset. With no bound to use, an ORDER BY on
** a column with a one-column index walks that index (NULLs first). ORDER BY is free when the plan's
** order is the one asked (SCAN for id, INDEX for its first column, both
** ascending, one-column index); otherwise the matching rows are sorted in
** memory. Rows that tie on the order come in id order, whatever the plan.
**
** Conditions use SQL's three-valued logic: a comparison with NULL is
** UNKNOWN, NOT UNKNOWN is UNKNOWN, and a row matches only when TRUE.
*/
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "schema.h"

enum { T_FALSE = 0, T_TRUE = 1, T_UNKNOWN = 2 };
enum { PLAN_SCAN, PLAN_ID, PLAN_INDEX };

/* ---- conditions ---------------------------------------------------------------- */

void rl__cond_free(rl_cond *c)
{
    if (!c)
        return;
    rl__cond_free(c->a);
    rl__cond_free(c->b);
    for (int i = 0; i < c->nvals; i++)
        if (c->vals[i].type >= RL_TCHAR)
            free((void *)c->vals[i].v.b.p);
    free(c->vals);
    free(c->column);
    free(c);
}

rl_cond *rl__cond_new(int kind, const char *column, int op, const rl_value *vals, int n)
{
    rl_cond *c = malloc(sizeof *c); /* not calloc: glibc's skips its thread cache */
    if (!c)
        return NULL;
    c->kind = kind;
    c->op = op;
    c->col = 0;
    c->nvals = 0; /* counts the values copied so far, for rl__cond_free */
    c->a = c->b = NULL;
    c->column = column ? strdup(column) : NULL;
    c->vals = n > 0 ? malloc((size_t)n * sizeof *c->vals) : NULL;
    if ((column && !c->column) || (n > 0 && !c->vals)) {
        rl__cond_free(c);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        c->vals[i] = vals[i];
        if (vals[i].type >= RL_TCHAR) {
            void *copy = malloc(vals[i].v.b.n + 1);
            if (!copy) {
                c->vals[i].type = RL_TNULL;
                c->nvals = i;
                rl__cond_free(c);
                return NULL;
            }
            if (vals[i].v.b.n)
                memcpy(copy, vals[i].v.b.p, vals[i].v.b.n);
            c->vals[i].v.b.p = copy;
        }
        c->nvals = i + 1;
    }
    return c;
}

static const char *type_name(rl_type t)
{
    static const char *const names[] = {"NULL", "INTEGER", "REAL", "CHAR", "TEXT", "BLOB"};
    return t <= RL_TBLOB ? names[t] : "?";
}

/* Make value v comparable with a column of type ct (in place). */
static int coerce(rl__stx *s, const rl__table *tb, int col, rl_value *v)
{
    rl_type ct = tb->cols[col].type;
    if (v->type == RL_TNULL)
        return RL_OK;
    if (ct == RL_TREAL && v->type == RL_TINTEGER) {
        v->type = RL_TREAL;
        v->v.r = (double)v->v.i;
        return RL_OK;
    }
    if (ct == RL_TINTEGER && v->type == RL_TINTEGER)
        return RL_OK;
    if ((ct == RL_TCHAR || ct == RL_TTEXT) && (v->type == RL_TTEXT || v->type == RL_TCHAR)) {
        v->type = ct;
        return RL_OK;
    }
    if (ct == v->type)
        return RL_OK;
    return RL__FAIL(s->err, RL_TYPE, "%s.%s is %s: it cannot be compared with %s", tb->name,
                    tb->cols[col].name, type_name(ct), type_name(v->type));
}

static int find_column(const rl__table *tb, const char *name)
{
    for (int c = 0; name && c < tb->ncols; c++)
        if (strcasecmp(tb->cols[c].name, name) == 0)
            return c;
    return -1;
}

/* Bind c to table: a private copy with column numbers and coerced values. */
static int bind(rl__stx *s, const rl__table *tb, const rl_cond *c, rl_cond **out)
{
    rl_cond *b;
    int rc = RL_OK;
    *out = NULL;
    if (!c)
        return RL__FAIL(s->err, RL_NOMEM, "a condition is NULL (out of memory when built?)");
    b = rl__cond_new(c->kind, c->column, c->op, c->vals, c->nvals);
    if (!b)
        return RL__FAIL(s->err, RL_NOMEM, "no memory for a condition");
    if (c->column) {
        b->col = find_column(tb, c->column);
        if (b->col < 0)
            rc = RL__FAIL(s->err, RL_NOCOLUMN, "table %s has no column %s", tb->name, c->column);
        for (int i = 0; rc == RL_OK && i < b->nvals; i++)
            rc = coerce(s, tb, b->col, &b->vals[i]);
        if (rc == RL_OK && (c->kind == RL__Q_CONTAINS || c->kind == RL__Q_ICONTAINS) &&
            tb->cols[b->col].type < RL_TCHAR)
            rc = RL__FAIL(s->err, RL_TYPE, "%s.%s is %s: substring needs CHAR, TEXT or BLOB",
                          tb->name, tb->cols[b->col].name, type_name(tb->cols[b->col].type));
    }
    if (rc == RL_OK && c->a)
        rc = bind(s, tb, c->a, &b->a);
    if (rc == RL_OK && c->b)
        rc = bind(s, tb, c->b, &b->b);
    if (rc != RL_OK) {
        rl__cond_free(b);
        return rc;
    }
    *out = b;
    return RL_OK;
}

/* -1, 0, 1 comparing two non-NULL values of one column type. */
static int value_cmp(const rl_value *x, const rl_value *y)
{
    if (x->type == RL_TINTEGER && y->type == RL_TINTEGER)
        return (x->v.i > y->v.i) - (x->v.i < y->v.i);
    if (x->type == RL_TREAL || y->type == RL_TREAL) {
        double a = x->type == RL_TREAL ? x->v.r : (double)x->v.i;
        double b = y->type == RL_TREAL ? y->v.r : (double)y->v.i;
        if (isnan(a) || isnan(b))
            return isnan(a) - isnan(b); /* NaN after every number, equal to itself */
        return (a > b) - (a < b);
    }
    {
        size_t n = x->v.b.n < y->v.b.n ? x->v.b.n : y->v.b.n;
        int c = n ? memcmp(x->v.b.p, y->v.b.p, n) : 0;
        return c ? (c > 0) - (c < 0) : (x->v.b.n > y->v.b.n) - (x->v.b.n < y->v.b.n);
    }
}

static int ascii_lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

static int has_substring(const rl_value *v, const rl_value *pat, int fold)
{
    const uint8_t *h = v->v.b.p, *p = pat->v.b.p;
    size_t hn = v->v.b.n, pn = pat->v.b.n;
    if (pn == 0)
        return 1;
    if (!fold)
        return hn >= pn && memmem(h, hn, p, pn) != NULL;
    for (size_t i = 0; i + pn <= hn; i++) {
        size_t k = 0;
        while (k < pn && (fold ? ascii_lower(h[i + k]) == ascii_lower(p[k]) : h[i + k] == p[k]))
            k++;
        if (k == pn)
            return 1;
    }
    return 0;
}

static int eval(const rl_cond *c, const rl_value *row)
{
    const rl_value *v = c->column ? &row[c->col] : NULL;
    int x, y, cmp;
    switch (c->kind) {
    case RL__Q_AND:
        if ((x = eval(c->a, row)) == T_FALSE)
            return T_FALSE;
        y = eval(c->b, row);
        return x == T_FALSE || y == T_FALSE ? T_FALSE : (x == T_TRUE && y == T_TRUE ? T_TRUE : T_UNKNOWN);
    case RL__Q_OR:
        if ((x = eval(c->a, row)) == T_TRUE)
            return T_TRUE;
        y = eval(c->b, row);
        return x == T_TRUE || y == T_TRUE ? T_TRUE : (x == T_FALSE && y == T_FALSE ? T_FALSE : T_UNKNOWN);
    case RL__Q_NOT:
        x = eval(c->a, row);
        return x == T_UNKNOWN ? T_UNKNOWN : !x;
    case RL__Q_ISNULL:
        return v->type == RL_TNULL;
    case RL__Q_NOTNULL:
        return v->type != RL_TNULL;
    default:
        break;
    }
    if (v->type == RL_TNULL)
        return T_UNKNOWN;
    if (c->kind == RL__Q_CONTAINS || c->kind == RL__Q_ICONTAINS)
        return has_substring(v, &c->vals[0], c->kind == RL__Q_ICONTAINS);
    if (c->kind == RL__Q_IN) {
        int unknown = 0;
        for (int i = 0; i < c->nvals; i++) {
            if (c->vals[i].type == RL_TNULL)
                unknown = 1;
            else if (value_cmp(v, &c->vals[i]) == 0)
                return T_TRUE;
        }
        return unknown ? T_UNKNOWN : T_FALSE;
    }
    if (c->vals[0].type == RL_TNULL)
        return T_UNKNOWN;
    cmp = value_cmp(v, &c->vals[0]);
    switch (c->op) {
    case RL_EQ: return cmp == 0;
    case RL_NE: return cmp != 0;
    case RL_LT: return cmp < 0;
    case RL_LE: return cmp <= 0;
    case RL_GT: return cmp > 0;
    default: return cmp >= 0;
    }
}

/* ---- planning ---------------------------------------------------------------------- */

/* A bound of an index range: encoded component, inclusive or not. */
typedef struct bound {
    rl__buf key;
    int set, incl;
} bound;

struct rl__query {
    rl__stx *s;
    int table;
    rl_cond *where;
    int *proj, nproj;
    int plan, index; /* PLAN_*, and the index for PLAN_INDEX */
    int col;         /* the column the plan searches on */
    rl_value *keys;  /* ID / IN values, sorted */
    int nkeys, ki;
    bound lo, hi;    /* PLAN_INDEX range (when not IN) */
    int in_list;     /* PLAN_INDEX over keys[] */
    int sc_open, it_open;
    rl_order *order;
    int norder;
    rl_row *sorted;
    size_t nsorted, pos;
    uint64_t skip, left; /* offset still to skip; rows still to give (0: no limit) */
    int limited;
    int covered; /* PLAN_INDEX whose bounds are the whole condition */
    rl_cond **conj; /* the condition's top-level conjuncts, in order */
    int *conj_last;  /* the last column each reads */
    int nconj;
    int from_start; /* PLAN_INDEX for ORDER BY alone: every key, NULLs too */
    rl_row full;
    /* What rl__q_explain words, kept instead of words: a query opened per
     * row of a join or per value of a loop should not format a sentence. */
    const rl_cond *key_cond;        /* the = or IN a PLAN_ID or in_list takes */
    const rl_cond *lo_cond, *hi_cond; /* a PLAN_INDEX range's bounds */
    int sorts;                      /* ORDER BY needs a sort */
    uint64_t limit, offset;         /* as asked */
    /* Not zeroed at open (they are large): each is set up before it is
     * read, sc and it when opened (sc_open, it_open), explain on demand. */
    rl__scan sc;
    rl__bt_iter it;
    char explain[512];
};

/* Does conjunct c restrict col usefully? Returns its kind of bound. */
static void collect_bounds(const rl_cond *c, int col, const rl_cond **eq, const rl_cond **in,
                           const rl_cond **lo, const rl_cond **hi)
{
    if (!c)
        return;
    if (c->kind == RL__Q_AND) {
        collect_bounds(c->a, col, eq, in, lo, hi);
        collect_bounds(c->b, col, eq, in, lo, hi);
        return;
    }
    if (c->col != col || !c->column)
        return;
    if (c->kind == RL__Q_IN && c->nvals > 0 && !*in)
        *in = c;
    if (c->kind != RL__Q_CMP || c->vals[0].type == RL_TNULL)
        return;
    if (c->op == RL_EQ && !*eq)
        *eq = c;
    else if ((c->op == RL_GT || c->op == RL_GE) && !*lo)
        *lo = c;
    else if ((c->op == RL_LT || c->op == RL_LE) && !*hi)
        *hi = c;
}

static int cmp_values_sort(const void *a, const void *b)
{
    const rl_value *x = a, *y = b;
    if (x->type == RL_TNULL || y->type == RL_TNULL)
        return (y->type == RL_TNULL) - (x->type == RL_TNULL);
    return value_cmp(x, y);
}

/* Copy the IN or = values of c into q->keys, sorted, NULLs dropped. */
static int take_keys(rl__query *q, const rl_cond *c)
{
    q->keys = malloc((size_t)c->nvals * sizeof *q->keys);
    if (!q->keys)
        return RL__FAIL(q->s->err, RL_NOMEM, "no memory for a plan");
    for (int i = 0; i < c->nvals; i++)
        if (c->vals[i].type != RL_TNULL)
            q->keys[q->nkeys++] = c->vals[i]; /* bytes stay owned by q->where */
    qsort(q->keys, (size_t)q->nkeys, sizeof *q->keys, cmp_values_sort);
    for (int i = 1, j = 1; i < q->nkeys; i++) { /* IN (1, 1) yields row 1 once */
        if (value_cmp(&q->keys[i], &q->keys[j - 1]) != 0)
            q->keys[j++] = q->keys[i];
        if (i == q->nkeys - 1)
            q->nkeys = j;
    }
    return RL_OK;
}

static int encode_bound(rl__query *q, bound *bd, const rl_cond *c)
{
    bd->set = 1;
    bd->incl = c->op == RL_GE || c->op == RL_LE;
    bd->key.n = 0;
    return rl__ix_encode_value(&bd->key, &c->vals[0]) == RL_OK
               ? RL_OK
               : RL__FAIL(q->s->err, RL_NOMEM, "no memory for a plan");
}

static const char *op_text(int op)
{
    static const char *const t[] = {"", "=", "<>", "<", "<=", ">", ">="};
    return op >= RL_EQ && op <= RL_GE ? t[op] : "?";
}

/* Is c exactly a bound on col that an index range captures (so every key
 * in the range matches and no row needs checking)? */
static int is_bound(const rl_cond *c, int col)
{
    if (!c || !c->column || c->col != col)
        return 0;
    if (c->kind == RL__Q_IN) {
        for (int i = 0; i < c->nvals; i++)
            if (c->vals[i].type == RL_TNULL || c->vals[i].type >= RL_TCHAR)
                return 0;
        return c->nvals > 0;
    }
    /* Strings may be cut in keys (RL__IX_MAX_BYTES): only numbers are exact. */
    return c->kind == RL__Q_CMP && c->op != RL_NE && c->vals[0].type != RL_TNULL &&
           c->vals[0].type < RL_TCHAR;
}

static int covers(const rl_cond *c, int col)
{
    if (c && c->kind == RL__Q_AND)
        return is_bound(c->a, col) && is_bound(c->b, col) && c->a->kind == RL__Q_CMP &&
               c->b->kind == RL__Q_CMP && c->a->op != RL_EQ && c->b->op != RL_EQ &&
               ((c->a->op >= RL_GT) != (c->b->op >= RL_GT));
    return is_bound(c, col);
}

/* With no bound worth using, an ORDER BY on one column may still come
 * from a one-column index on it: rows stream in order, nothing is sorted. */
static int order_index(rl__query *q, const int *ocols)
{
    const rl__table *tb = &q->s->cat->tables[q->table];
    if (q->norder != 1 || q->order[0].desc || !ocols || ocols[0] == 0)
        return -1;
    for (int x = 0; x < tb->nindexes; x++)
        if (tb->indexes[x].ncols == 1 && tb->indexes[x].cols[0] == ocols[0])
            return x;
    return -1;
}

/* Choose the plan: the id, then an index's first column, else a scan. */
static int plan(rl__query *q, const int *ocols)
{
    const rl__table *tb = &q->s->cat->tables[q->table];
    const rl_cond *eq = NULL, *in = NULL, *lo = NULL, *hi = NULL;
    int best = -1, best_score = 0, rc = RL_OK;
    collect_bounds(q->where, 0, &eq, &in, &lo, &hi);
    if (eq || in) {
        q->plan = PLAN_ID;
        q->col = 0;
        q->key_cond = eq ? eq : in;
        return take_keys(q, q->key_cond);
    }
    for (int x = 0; x < tb->nindexes; x++) {
        const rl_cond *e = NULL, *i = NULL, *l = NULL, *h = NULL;
        int score;
        collect_bounds(q->where, tb->indexes[x].cols[0], &e, &i, &l, &h);
        score = e ? 4 : i ? 3 : (l && h) ? 2 : (l || h) ? 1 : 0;
        if (score > best_score) {
            best = x;
            best_score = score;
        }
    }
    q->plan = PLAN_SCAN;
    if (best < 0 && (best = order_index(q, ocols)) >= 0) {
        q->plan = PLAN_INDEX;
        q->index = best;
        q->col = tb->indexes[best].cols[0];
        q->from_start = 1;
        return RL_OK;
    }
    if (best < 0)
        return RL_OK;
    q->plan = PLAN_INDEX;
    q->index = best;
    q->col = tb->indexes[best].cols[0];
    q->covered = covers(q->where, q->col);
    eq = in = lo = hi = NULL; /* forget the id's range bounds found above */
    collect_bounds(q->where, q->col, &eq, &in, &lo, &hi);
    if (eq || in) {
        q->in_list = 1;
        q->key_cond = eq ? eq : in;
        return take_keys(q, q->key_cond);
    }
    q->lo_cond = lo;
    q->hi_cond = hi;
    if (lo)
        rc = encode_bound(q, &q->lo, lo);
    if (rc == RL_OK && hi)
        rc = encode_bound(q, &q->hi, hi);
    return rc;
}

/* ---- producing candidate rows ------------------------------------------------------- */

static int cmp_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

/* Start iterating the index at the current IN key, or at the range's low end. */
static int index_seek(rl__query *q)
{
    const rl__index *ix = &q->s->cat->tables[q->table].indexes[q->index];
    if (q->in_list) {
        q->lo.key.n = 0;
        if (rl__ix_encode_value(&q->lo.key, &q->keys[q->ki]) != RL_OK)
            return RL__FAIL(q->s->err, RL_NOMEM, "no memory");
        q->lo.set = q->lo.incl = 1;
        q->hi.key.n = 0;
        if (rl__buf_reserve(&q->hi.key, q->lo.key.n) != RL_OK)
            return RL__FAIL(q->s->err, RL_NOMEM, "no memory");
        memcpy(q->hi.key.p, q->lo.key.p, q->lo.key.n);
        q->hi.key.n = q->lo.key.n;
        q->hi.set = q->hi.incl = 1;
    }
    if (q->it_open)
        rl__bt_iter_close(&q->it);
    q->it_open = 1;
    if (q->lo.set)
        return rl__bt_seek(q->s->bt, ix->root, q->lo.key.p, q->lo.key.n, &q->it);
    if (q->from_start) /* ORDER BY alone: every row, NULLs first */
        return rl__bt_seek(q->s->bt, ix->root, NULL, 0, &q->it);
    /* No low end: start after the NULLs of the column (they match no range). */
    return rl__bt_seek(q->s->bt, ix->root, (const uint8_t *)"\x06", 1, &q->it);
}

/* The next id from the index plan; RL_DONE at the end. */
static int index_next(rl__query *q, int64_t *id)
{
    for (;;) {
        const uint8_t *k, *v;
        size_t kn, vn, cl;
        int rc, c;
        if (!q->it_open) {
            if (q->in_list && q->ki >= q->nkeys)
                return RL_DONE;
            rc = index_seek(q);
            if (rc != RL_OK)
                return rc;
        }
        rc = rl__bt_next(&q->it, &k, &kn, &v, &vn, NULL);
        if (rc == RL_OK) {
            cl = rl__ix_component_len(k, kn);
            if (cl == 0)
                return RL__CORRUPT(q->s->err, "a damaged index key");
            if (q->lo.set && !q->lo.incl && cmp_bytes(k, cl, q->lo.key.p, q->lo.key.n) == 0)
                continue;
            c = q->hi.set ? cmp_bytes(k, cl, q->hi.key.p, q->hi.key.n) : -1;
            if (c < 0 || (c == 0 && q->hi.incl)) {
                /* Skip the rest of this key's components to reach the id. */
                size_t off = cl;
                const rl__index *ix = &q->s->cat->tables[q->table].indexes[q->index];
                for (int extra = 1; extra < ix->ncols && off < kn; extra++) {
                    size_t more = rl__ix_component_len(k + off, kn - off);
                    if (more == 0)
                        return RL__CORRUPT(q->s->err, "a damaged index key");
                    off += more;
                }
                if (rl__key_id(k + off, kn - off, id) != RL_OK)
                    return RL__CORRUPT(q->s->err, "an index key without an id");
                return RL_OK;
            }
            rc = RL_DONE;
        }
        if (rc != RL_DONE)
            return rc;
        rl__bt_iter_close(&q->it);
        q->it_open = 0;
        if (!q->in_list)
            return RL_DONE;
        q->ki++;
    }
}

/* The last column condition c reads (0: none). */
static int cond_last_col(const rl_cond *c)
{
    int last = c->column ? c->col : 0, sub;
    if (c->a && (sub = cond_last_col(c->a)) > last)
        last = sub;
    if (c->b && (sub = cond_last_col(c->b)) > last)
        last = sub;
    return last;
}

static int count_conjuncts(const rl_cond *c)
{
    return c->kind == RL__Q_AND ? count_conjuncts(c->a) + count_conjuncts(c->b) : 1;
}

static void list_conjuncts(rl_cond *c, rl__query *q)
{
    if (c->kind == RL__Q_AND) {
        list_conjuncts(c->a, q);
        list_conjuncts(c->b, q);
        return;
    }
    q->conj[q->nconj] = c;
    q->conj_last[q->nconj++] = cond_last_col(c);
}

/* Split the condition into its conjuncts, so that a scan decodes a row's
 * columns as far as each needs and stops at the first that fails. */
static int split_condition(rl__query *q)
{
    int n = count_conjuncts(q->where);
    q->conj = malloc((size_t)n * sizeof *q->conj);
    q->conj_last = malloc((size_t)n * sizeof *q->conj_last);
    if (!q->conj || !q->conj_last)
        return RL__FAIL(q->s->err, RL_NOMEM, "no memory for a query");
    list_conjuncts(q->where, q);
    return RL_OK;
}

/* A scan's next row that matches, into q->full: each conjunct is tested
 * on the columns decoded as far as it reads, and the rest of the row is
 * decoded only if it matches and whole is set (a count needs none). */
static int scan_step(rl__query *q, int whole)
{
    int all = q->s->cat->tables[q->table].ncols - 1, rc;
    if (!q->sc_open) {
        rc = rl__scan_open(q->s, q->table, &q->sc);
        if (rc != RL_OK)
            return rc;
        q->sc_open = 1;
    }
    for (;;) {
        rl__row_part part = RL__ROW_PART_NEW;
        int match = 1;
        rc = rl__scan_next(&q->sc); /* the leaf stays pinned until the next step */
        for (int i = 0; rc == RL_OK && match && i < q->nconj; i++) {
            rc = rl__tbl_row_borrow_upto(q->s, q->table, q->sc.id, q->sc.rec, q->sc.n,
                                         q->sc.chained, q->conj_last[i], &part, &q->full);
            match = rc == RL_OK && eval(q->conj[i], q->full.vals) == T_TRUE;
        }
        if (rc != RL_OK)
            return rc;
        if (match)
            return rl__tbl_row_borrow_upto(q->s, q->table, q->sc.id, q->sc.rec, q->sc.n,
                                           q->sc.chained, whole ? all : -1, &part, &q->full);
    }
}

/* The next row of the plan that matches the condition, into q->full
 * (with !whole, a scan may decode only the columns the condition reads). */
static int next_match(rl__query *q, int whole)
{
    if (q->plan == PLAN_SCAN)
        return scan_step(q, whole);
    for (;;) {
        int64_t id;
        int rc;
        if (q->plan == PLAN_ID) {
            if (q->ki >= q->nkeys)
                return RL_DONE;
            id = q->keys[q->ki++].v.i;
            rc = RL_OK;
        } else {
            rc = index_next(q, &id);
        }
        if (rc == RL_OK) {
            rc = rl__tbl_get(q->s, q->table, id, &q->full);
            if (rc == RL_NOTFOUND && q->plan == PLAN_ID) {
                rl__err_clear(q->s->err);
                continue; /* an id that is not there */
            }
            if (rc == RL_NOTFOUND)
                rc = RL__CORRUPT(q->s->err, "index %s names row %lld, which is gone",
                                 q->s->cat->tables[q->table].indexes[q->index].name,
                                 (long long)id);
        }
        if (rc != RL_OK)
            return rc;
        if (!q->where || eval(q->where, q->full.vals) == T_TRUE)
            return RL_OK;
    }
}

/* ---- ordering ---------------------------------------------------------------------------- */

static int order_cmp(const rl_order *o, int n, const int *cols, const rl_row *a, const rl_row *b)
{
    for (int i = 0; i < n; i++) {
        const rl_value *x = &a->vals[cols[i]], *y = &b->vals[cols[i]];
        int c = cmp_values_sort(x, y);
        if (c)
            return o[i].desc ? -c : c;
    }
    return (a->vals[0].v.i > b->vals[0].v.i) - (a->vals[0].v.i < b->vals[0].v.i);
}

/* qsort has no context argument: sort an index array with a small merge. */
static void sort_rows(rl_row *rows, size_t n, const rl_order *o, int no, const int *cols,
                      rl_row *tmp)
{
    if (n < 2)
        return;
    sort_rows(rows, n / 2, o, no, cols, tmp);
    sort_rows(rows + n / 2, n - n / 2, o, no, cols, tmp);
    for (size_t i = 0, j = n / 2, k = 0; k < n; k++)
        tmp[k] = (j >= n || (i < n / 2 && order_cmp(o, no, cols, &rows[i], &rows[j]) <= 0))
                     ? rows[i++]
                     : rows[j++];
    memcpy(rows, tmp, n * sizeof *rows);
}

/* Collect every match and sort it (when the plan's order is not the one
 * asked). */
static int sort_all(rl__query *q, const int *ocols)
{
    size_t cap = 64;
    rl_row *tmp;
    int rc;
    q->sorted = malloc(cap * sizeof *q->sorted);
    if (!q->sorted)
        return RL__FAIL(q->s->err, RL_NOMEM, "no memory to sort");
    while ((rc = next_match(q, 1)) == RL_OK) {
        if (rl__row_own(&q->full) != RL_OK)
            return RL__FAIL(q->s->err, RL_NOMEM, "no memory to sort");
        if (q->nsorted == cap) {
            rl_row *grown = realloc(q->sorted, 2 * cap * sizeof *grown);
            if (!grown)
                return RL__FAIL(q->s->err, RL_NOMEM, "no memory to sort");
            q->sorted = grown;
            cap *= 2;
        }
        q->sorted[q->nsorted++] = q->full; /* take the row's storage */
        memset(&q->full, 0, sizeof q->full);
        q->full.cat = q->s->cat;
    }
    if (rc != RL_DONE)
        return rc;
    tmp = malloc((q->nsorted + 1) * sizeof *tmp);
    if (!tmp)
        return RL__FAIL(q->s->err, RL_NOMEM, "no memory to sort");
    sort_rows(q->sorted, q->nsorted, q->order, q->norder, ocols, tmp);
    free(tmp);
    return RL_OK;
}

/* Does the plan already deliver the order asked? */
static int order_free(const rl__query *q, const int *ocols)
{
    if (q->norder == 0)
        return 1;
    if (q->norder != 1 || q->order[0].desc)
        return 0;
    if (q->plan == PLAN_SCAN)
        return ocols[0] == 0;
    /* Ties come out in id order only from a one-column index (its keys are
     * value, id), which keeps the order the same whatever the plan. */
    return q->plan == PLAN_INDEX && !q->in_list && ocols[0] == q->col &&
           q->s->cat->tables[q->table].indexes[q->index].ncols == 1;
}

/* ---- the query's life ------------------------------------------------------------------------- */

static int projection(rl__query *q, const rl_query *uq)
{
    const rl__table *tb = &q->s->cat->tables[q->table];
    int n = uq->columns ? uq->ncolumns : tb->ncols;
    if (uq->columns && (n < 1 || n > tb->ncols * 4))
        return RL__FAIL(q->s->err, RL_INVALID, "%d columns asked of %s", n, tb->name);
    q->proj = malloc((size_t)n * sizeof *q->proj);
    if (!q->proj)
        return RL__FAIL(q->s->err, RL_NOMEM, "no memory");
    q->nproj = n;
    for (int i = 0; i < n; i++) {
        q->proj[i] = uq->columns ? find_column(tb, uq->columns[i]) : i;
        if (q->proj[i] < 0)
            return RL__FAIL(q->s->err, RL_NOCOLUMN, "table %s has no column %s", tb->name,
                            uq->columns[i] ? uq->columns[i] : "(null)");
    }
    return RL_OK;
}

int rl__q_open(rl__stx *s, int table, const rl_query *uq, int plan_only, rl__query **out)
{
    rl__query *q = malloc(sizeof *q);
    int *ocols = NULL, rc;
    *out = NULL;
    if (!q)
        return RL__FAIL(s->err, RL_NOMEM, "no memory for a query");
    memset(q, 0, offsetof(rl__query, sc));
    q->s = s;
    q->table = table;
    q->full.cat = s->cat;
    q->skip = uq->offset;
    q->left = uq->limit;
    q->limited = uq->limit != 0;
    q->limit = uq->limit;
    q->offset = uq->offset;
    q->order = (rl_order *)uq->order;
    q->norder = uq->order ? uq->norder : 0;
    rc = uq->where ? bind(s, &s->cat->tables[table], uq->where, &q->where) : RL_OK;
    if (rc == RL_OK && q->where)
        rc = split_condition(q);
    if (rc == RL_OK)
        rc = projection(q, uq);
    if (rc == RL_OK && q->norder > 0) {
        ocols = malloc((size_t)q->norder * sizeof *ocols);
        if (!ocols)
            rc = RL__FAIL(s->err, RL_NOMEM, "no memory");
        for (int i = 0; rc == RL_OK && i < q->norder; i++) {
            ocols[i] = find_column(&s->cat->tables[table], q->order[i].column);
            if (ocols[i] < 0)
                rc = RL__FAIL(s->err, RL_NOCOLUMN, "table %s has no column %s",
                              s->cat->tables[table].name,
                              q->order[i].column ? q->order[i].column : "(null)");
        }
    }
    if (rc == RL_OK)
        rc = plan(q, ocols);
    if (rc == RL_OK && !order_free(q, ocols)) {
        q->sorts = 1;
        if (!plan_only)
            rc = sort_all(q, ocols);
    }
    q->order = NULL; /* the caller's array is not ours to keep */
    free(ocols);
    if (rc != RL_OK) {
        rl__q_close(q);
        return rc;
    }
    *out = q;
    return RL_OK;
}

/* The words for a PLAN_INDEX: which index, and the range or keys. */
static void explain_index(const rl__query *q, const rl__table *tb, char *e, size_t n)
{
    const char *ix = tb->indexes[q->index].name, *col = tb->cols[q->col].name;
    const rl_cond *lo = q->lo_cond, *hi = q->hi_cond;
    if (q->from_start)
        snprintf(e, n, "SCAN %s USING INDEX %s", tb->name, ix);
    else if (q->in_list)
        snprintf(e, n, "SEARCH %s USING INDEX %s (%s %s)", tb->name, ix, col,
                 q->key_cond->kind == RL__Q_IN ? "IN (...)" : "= ?");
    else
        snprintf(e, n, "SEARCH %s USING INDEX %s (%s%s%s%s%s%s%s)", tb->name, ix,
                 lo ? col : "", lo ? " " : "", lo ? op_text(lo->op) : "", lo ? " ?" : "",
                 lo && hi ? " AND " : "", hi ? col : "",
                 hi ? (hi->op == RL_LT ? " < ?" : " <= ?") : "");
}

const char *rl__q_explain(rl__query *q)
{
    const rl__table *tb = &q->s->cat->tables[q->table];
    char *e = q->explain;
    size_t n = sizeof q->explain, len;
    if (q->plan == PLAN_ID)
        snprintf(e, n, "SEARCH %s USING PRIMARY KEY (id %s)", tb->name,
                 q->key_cond->kind == RL__Q_IN ? "IN (...)" : "= ?");
    else if (q->plan == PLAN_SCAN)
        snprintf(e, n, "SCAN %s", tb->name);
    else
        explain_index(q, tb, e, n);
    len = strlen(e);
    if (q->sorts)
        snprintf(e + len, n - len, "; SORT");
    else if (q->norder > 0)
        snprintf(e + len, n - len, "; ORDER BY %s",
                 q->plan == PLAN_SCAN ? "PRIMARY KEY" : "INDEX");
    len = strlen(e);
    if (q->limit || q->offset)
        snprintf(e + len, n - len, "; LIMIT %llu OFFSET %llu", (unsigned long long)q->limit,
                 (unsigned long long)q->offset);
    return e;
}

/* Project q->full (or a sorted row) into row. */
static int project(rl__query *q, const rl_row *src, rl_row *row)
{
    rl_value *vals = malloc((size_t)q->nproj * sizeof *vals);
    if (!vals)
        return RL__FAIL(q->s->err, RL_NOMEM, "no memory for a row");
    for (int i = 0; i < q->nproj; i++)
        vals[i] = src->vals[q->proj[i]];
    free(row->vals);
    row->vals = vals;
    row->ncols = q->nproj;
    row->table = q->table;
    row->colmap = q->proj;
    return RL_OK;
}

int rl__q_next(rl__query *q, rl_row *row)
{
    for (;;) {
        const rl_row *src;
        int rc;
        if (q->limited && q->left == 0)
            return RL_DONE;
        if (q->sorted) {
            if (q->pos >= q->nsorted)
                return RL_DONE;
            src = &q->sorted[q->pos++];
        } else {
            rc = next_match(q, 1);
            if (rc == RL_OK && rl__row_own(&q->full) != RL_OK) /* the row outlives the step */
                rc = RL__FAIL(q->s->err, RL_NOMEM, "no memory for a row");
            if (rc != RL_OK)
                return rc;
            src = &q->full;
        }
        if (q->skip > 0) {
            q->skip--;
            continue;
        }
        if (q->limited)
            q->left--;
        return project(q, src, row);
    }
}

/* Is index key k at or below the plan's high bound? (-1: damaged) */
static int below_hi(const uint8_t *k, size_t kn, void *arg)
{
    const rl__query *q = arg;
    size_t cl = rl__ix_component_len(k, kn);
    int c;
    if (cl == 0)
        return -1;
    c = q->hi.set ? cmp_bytes(k, cl, q->hi.key.p, q->hi.key.n) : -1;
    return c < 0 || (c == 0 && q->hi.incl);
}

/* After the first key in range, the rest of the range at once: keys are
 * sorted, so a binary search per leaf finds where it ends. For = and IN
 * the range is the current value's (index_seek). */
static int count_rest(rl__query *q, uint64_t *n)
{
    int rc;
    if (!q->it_open)
        return RL_OK;
    rc = rl__bt_count_while(&q->it, below_hi, q, n);
    return rc == RL_CORRUPT ? RL__CORRUPT(q->s->err, "a damaged index key") : rc;
}

int rl__q_count(rl__query *q, uint64_t *n)
{
    rl_row row = {0};
    int rc;
    *n = 0;
    if (q->covered && !q->sorted && !q->limited && q->skip == 0) {
        int64_t id;
        while ((rc = index_next(q, &id)) == RL_OK) { /* the keys say it all */
            (*n)++;
            rc = count_rest(q, n);
            if (rc != RL_OK)
                return rc;
        }
        return rc == RL_DONE ? RL_OK : rc;
    }
    if (!q->sorted && !q->limited && q->skip == 0) {
        while ((rc = next_match(q, 0)) == RL_OK) /* no row leaves: nothing to copy */
            (*n)++;
        return rc == RL_DONE ? RL_OK : rc;
    }
    row.cat = q->s->cat;
    while ((rc = rl__q_next(q, &row)) == RL_OK)
        (*n)++;
    row.colmap = NULL;
    rl__row_clear(&row);
    return rc == RL_DONE ? RL_OK : rc;
}

void rl__q_close(rl__query *q)
{
    if (!q)
        return;
    if (q->sc_open)
        rl__scan_close(&q->sc);
    if (q->it_open)
        rl__bt_iter_close(&q->it);
    for (size_t i = 0; i < q->nsorted; i++)
        rl__row_clear(&q->sorted[i]);
    free(q->sorted);
    rl__row_clear(&q->full);
    rl__cond_free(q->where);
    free(q->conj);
    free(q->conj_last);
    rl__buf_free(&q->lo.key);
    rl__buf_free(&q->hi.key);
    free(q->keys);
    free(q->proj);
    free(q);
}
