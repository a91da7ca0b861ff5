/*
** schema/join.c: joins along foreign keys. A join starts from the rows of
** a query (the base) and adds, level by level, rows of other tables linked
** by a foreign key to a table joined before:
**   many-to-one  the column is the earlier table's; the joined row is the
**                one it names, fetched by primary key;
**   one-to-many  the column is the joined table's; the joined rows are
**                those that name the earlier row, found through the
**                column's index (every foreign key has one).
** Nothing is ever found by a scan per row. Output rows hold every column
** of every level, named "table.column". The join is a nested loop: each
** level steps through its matches for the current rows above it, and
** backs up a level when it runs out. A left join gives one row of NULLs
** for its level when there is no match.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "schema.h"

typedef struct level {
    int table;
    int from_level; /* the earlier level the key links to */
    int col;        /* the foreign-key column */
    int many;       /* one-to-many: col is this table's, matched against from's id */
    int left;
    rl__query *q;   /* one-to-many: this table's rows that name the earlier row */
    int done;       /* many-to-one: the one row was given */
    int matched;    /* a row was given for the current earlier row */
    rl_row row;
} level;

struct rl__join {
    rl__stx *s;
    level *lv;
    int n;      /* levels, the base included */
    int started;
    int cur;    /* the level to step next */
    rl_value *vals;
    int nvals;
    const char **names; /* "table.column", nvals of them */
    int *offsets;       /* first output column of each level */
    char explain[512];
};

static int resolve(rl__stx *s, rl__join *j, int i, const rl_join *spec)
{
    const rl__catalog *cat = s->cat;
    level *l = &j->lv[i];
    const char *dot = spec->on ? strchr(spec->on, '.') : NULL;
    char tname[RL__MAX_NAME + 1];
    int owner, k;
    l->table = rl__cat_find(cat, spec->table);
    if (l->table < 0)
        return RL__FAIL(s->err, RL_NOTABLE, "join: no such table: %s",
                        spec->table ? spec->table : "(null)");
    if (!dot || dot - spec->on > RL__MAX_NAME)
        return RL__FAIL(s->err, RL_INVALID, "join %s: on must be \"table.column\"", spec->table);
    snprintf(tname, sizeof tname, "%.*s", (int)(dot - spec->on), spec->on);
    owner = rl__cat_find(cat, tname);
    if (owner < 0)
        return RL__FAIL(s->err, RL_NOTABLE, "join %s: no such table: %s", spec->table, tname);
    l->col = -1;
    for (k = 1; k < cat->tables[owner].ncols; k++)
        if (strcasecmp(cat->tables[owner].cols[k].name, dot + 1) == 0)
            l->col = k;
    if (l->col < 0 || cat->tables[owner].ref_table[l->col] < 0)
        return RL__FAIL(s->err, RL_NOCOLUMN, "join %s: %s is not a foreign key", spec->table,
                        spec->on);
    l->many = owner == l->table && i > 0;
    /* The earlier level: the referenced table (one-to-many) or the owner. */
    {
        int want = l->many ? cat->tables[owner].ref_table[l->col] : owner;
        if (!l->many && cat->tables[owner].ref_table[l->col] != l->table)
            return RL__FAIL(s->err, RL_INVALID, "join %s: %s does not reference %s", spec->table,
                            spec->on, spec->table);
        l->from_level = -1;
        for (int e = i - 1; e >= 0 && l->from_level < 0; e--)
            if (j->lv[e].table == want)
                l->from_level = e;
        if (l->from_level < 0)
            return RL__FAIL(s->err, RL_INVALID, "join %s: %s links to %s, which is not joined "
                            "before it", spec->table, spec->on, cat->tables[want].name);
    }
    l->left = spec->left != 0;
    {
        size_t len = strlen(j->explain);
        const rl__table *tb = &cat->tables[l->table];
        int x = l->many ? rl__ix_child_index(cat, l->table, l->col) : -1;
        snprintf(j->explain + len, sizeof j->explain - len, "; %sJOIN %s USING %s%s",
                 l->left ? "LEFT " : "", tb->name, l->many ? "INDEX " : "PRIMARY KEY",
                 l->many && x >= 0 ? tb->indexes[x].name : "");
    }
    return RL_OK;
}

/* Output columns: every column of every level, named "table.column". */
static int layout(rl__stx *s, rl__join *j)
{
    int total = 0;
    j->offsets = malloc((size_t)j->n * sizeof *j->offsets);
    if (!j->offsets)
        return RL__FAIL(s->err, RL_NOMEM, "no memory for a join");
    for (int i = 0; i < j->n; i++) {
        j->offsets[i] = total;
        total += s->cat->tables[j->lv[i].table].ncols;
    }
    j->nvals = total;
    j->vals = calloc((size_t)total, sizeof *j->vals);
    j->names = calloc((size_t)total, sizeof *j->names);
    if (!j->vals || !j->names)
        return RL__FAIL(s->err, RL_NOMEM, "no memory for a join");
    for (int i = 0; i < j->n; i++) {
        const rl__table *tb = &s->cat->tables[j->lv[i].table];
        for (int c = 0; c < tb->ncols; c++) {
            size_t len = strlen(tb->name) + strlen(tb->cols[c].name) + 2;
            char *name = malloc(len);
            if (!name)
                return RL__FAIL(s->err, RL_NOMEM, "no memory for a join");
            snprintf(name, len, "%s.%s", tb->name, tb->cols[c].name);
            j->names[j->offsets[i] + c] = name;
        }
    }
    return RL_OK;
}

int rl__join_open(rl__stx *s, int table, const rl_query *base, const rl_join *joins, int n,
                  int plan_only, rl__join **out)
{
    rl__join *j = calloc(1, sizeof *j);
    int rc;
    *out = NULL;
    if (!j)
        return RL__FAIL(s->err, RL_NOMEM, "no memory for a join");
    j->s = s;
    j->n = n + 1;
    j->lv = calloc((size_t)j->n, sizeof *j->lv);
    if (!j->lv) {
        free(j);
        return RL__FAIL(s->err, RL_NOMEM, "no memory for a join");
    }
    for (int i = 0; i < j->n; i++)
        j->lv[i].row.cat = s->cat;
    j->lv[0].table = table;
    {
        rl_query whole = *base; /* the base gives every column */
        whole.columns = NULL;
        whole.ncolumns = 0;
        rc = rl__q_open(s, table, &whole, plan_only, &j->lv[0].q);
    }
    if (rc == RL_OK)
        snprintf(j->explain, sizeof j->explain, "%s", rl__q_explain(j->lv[0].q));
    for (int i = 1; rc == RL_OK && i < j->n; i++)
        rc = resolve(s, j, i, &joins[i - 1]);
    if (rc == RL_OK)
        rc = layout(s, j);
    if (rc != RL_OK) {
        rl__join_close(j);
        return rc;
    }
    *out = j;
    return RL_OK;
}

const char *rl__join_explain(const rl__join *j)
{
    return j->explain;
}

/* The id or foreign-key value that links level l to its earlier level. */
static const rl_value *link_value(rl__join *j, const level *l)
{
    const level *from = &j->lv[l->from_level];
    if (from->row.ncols == 0)
        return NULL; /* the earlier level is a left join's row of NULLs */
    return l->many ? &from->row.vals[0] : &from->row.vals[l->col];
}

/* Start level i over for the current rows above it. */
static int open_level(rl__join *j, int i)
{
    level *l = &j->lv[i];
    const rl_value *key = link_value(j, l);
    l->done = 0;
    l->matched = 0;
    if (l->q) {
        rl__q_close(l->q);
        l->q = NULL;
    }
    if (l->many && key && key->type == RL_TINTEGER) {
        rl_query q;
        rl_cond *c = rl__cond_new(RL__Q_CMP, j->s->cat->tables[l->table].cols[l->col].name,
                                  RL_EQ, key, 1);
        int rc;
        if (!c)
            return RL__FAIL(j->s->err, RL_NOMEM, "no memory for a join");
        memset(&q, 0, sizeof q);
        q.table = j->s->cat->tables[l->table].name;
        q.where = c;
        rc = rl__q_open(j->s, l->table, &q, 0, &l->q);
        rl__cond_free(c);
        return rc;
    }
    return RL_OK;
}

/* The next row of level i for the rows above it; RL_DONE when none. */
static int step(rl__join *j, int i)
{
    level *l = &j->lv[i];
    int rc = RL_DONE;
    l->row.colmap = NULL;
    if (i == 0) {
        rc = rl__q_next(l->q, &l->row);
        l->row.colmap = NULL; /* the base query gives every column */
        return rc;
    }
    if (l->many && l->q) {
        rc = rl__q_next(l->q, &l->row);
        l->row.colmap = NULL;
    } else if (!l->many && !l->done) {
        const rl_value *key = link_value(j, l);
        l->done = 1;
        if (key && key->type == RL_TINTEGER) {
            rc = rl__tbl_get(j->s, l->table, key->v.i, &l->row);
            if (rc == RL_NOTFOUND) {
                rl__err_clear(j->s->err);
                rc = RL_DONE;
            }
        }
    }
    if (rc == RL_OK)
        l->matched = 1;
    if (rc == RL_DONE && l->left && !l->matched) { /* one row of NULLs */
        l->matched = 1;
        l->row.ncols = 0;
        return RL_OK;
    }
    return rc;
}

int rl__join_next(rl__join *j, rl_row *out)
{
    int i = j->started ? j->n - 1 : 0;
    j->started = 1;
    for (;;) {
        int rc = step(j, i);
        if (rc == RL_OK && i == j->n - 1)
            break;
        if (rc == RL_OK) {
            rc = open_level(j, ++i);
            if (rc != RL_OK)
                return rc;
            continue;
        }
        if (rc != RL_DONE)
            return rc;
        if (i == 0)
            return RL_DONE;
        i--;
    }
    for (int lv = 0; lv < j->n; lv++) {
        const level *l = &j->lv[lv];
        int nc = j->s->cat->tables[l->table].ncols;
        for (int c = 0; c < nc; c++)
            j->vals[j->offsets[lv] + c] = l->row.ncols ? l->row.vals[c] : rl_null();
    }
    free(out->vals);
    out->vals = malloc((size_t)j->nvals * sizeof *out->vals);
    if (!out->vals)
        return RL__FAIL(j->s->err, RL_NOMEM, "no memory for a row");
    memcpy(out->vals, j->vals, (size_t)j->nvals * sizeof *out->vals);
    out->ncols = j->nvals;
    out->table = j->lv[0].table;
    out->colmap = NULL;
    out->names = j->names;
    return RL_OK;
}

void rl__join_close(rl__join *j)
{
    if (!j)
        return;
    for (int i = 0; j->lv && i < j->n; i++) {
        rl__q_close(j->lv[i].q);
        j->lv[i].row.colmap = NULL;
        rl__row_clear(&j->lv[i].row);
    }
    for (int c = 0; j->names && c < j->nvals; c++)
        free((char *)j->names[c]);
    free(j->names);
    free(j->vals);
    free(j->offsets);
    free(j->lv);
    free(j);
}
