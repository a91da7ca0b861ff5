/*
** schema/index.c: secondary indexes. An index is a B+tree (btree.c) whose
** keys are the encoded values of its columns followed by the row's id key
** (so every key is distinct) and whose values are empty.
**
** Key encoding, one component per column, compared as bytes (docs/format.md,
** "Index keys"):
**     NULL      0x05
**     INTEGER   the id-key form of the value (rl__id_key), whose first
**               byte (0x77 to 0x88) is no other type's
**     REAL      0x20, then 8 bytes big-endian: the IEEE bits with the sign
**               bit flipped (positive) or all bits inverted (negative)
**     CHAR, TEXT, BLOB
**               0x30, the bytes with every 0x00 written 0x00 0xFF, then
**               0x00 0x01; a value longer than RL__IX_MAX_BYTES is cut
**               there and ends 0x00 0x02 instead (its order among values
**               sharing that prefix is then the id's)
** so byte order is value order, NULLs first. A column holds one type, so
** the order between types only has to put NULLs first.
**
** Invariants:
**   1. An index holds exactly one key per row of its table.
**   2. A unique index never holds two keys whose values are equal and all
**      non-NULL (rows with a NULL in the index are not constrained).
*/
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

#define TAG_NULL 0x05
#define TAG_REAL 0x20
#define TAG_BYTES 0x30

static int enc_bytes(rl__buf *b, const uint8_t *p, size_t n)
{
    size_t keep = n > RL__IX_MAX_BYTES ? RL__IX_MAX_BYTES : n;
    if (rl__buf_reserve(b, 2 * keep + 3) != RL_OK)
        return RL_NOMEM;
    b->p[b->n++] = TAG_BYTES;
    for (size_t i = 0; i < keep; i++) {
        b->p[b->n++] = p[i];
        if (p[i] == 0)
            b->p[b->n++] = 0xff;
    }
    b->p[b->n++] = 0;
    b->p[b->n++] = keep < n ? 2 : 1;
    return RL_OK;
}

int rl__ix_encode_value(rl__buf *b, const rl_value *v)
{
    uint64_t bits;
    if (rl__buf_reserve(b, 16) != RL_OK)
        return RL_NOMEM;
    switch (v->type) {
    case RL_TNULL:
        b->p[b->n++] = TAG_NULL;
        return RL_OK;
    case RL_TINTEGER:
        b->n += rl__id_key(v->v.i, b->p + b->n);
        return RL_OK;
    case RL_TREAL:
        memcpy(&bits, &v->v.r, 8);
        if (isnan(v->v.r))
            bits = UINT64_C(0x7ff8000000000000); /* one NaN, after +inf */
        bits = (bits >> 63) ? ~bits : bits ^ (UINT64_C(1) << 63);
        b->p[b->n++] = TAG_REAL;
        for (int i = 7; i >= 0; i--)
            b->p[b->n++] = (uint8_t)(bits >> (8 * i));
        return RL_OK;
    default:
        return enc_bytes(b, v->v.b.p, v->v.b.n);
    }
}

/* The values part of a row's key in index ix (vals: the whole row). */
static int values_key(const rl__index *ix, const rl_value *vals, rl__buf *b, int *has_null)
{
    *has_null = 0;
    b->n = 0;
    for (int k = 0; k < ix->ncols; k++) {
        const rl_value *v = &vals[ix->cols[k]];
        *has_null |= v->type == RL_TNULL;
        if (rl__ix_encode_value(b, v) != RL_OK)
            return RL_NOMEM;
    }
    return RL_OK;
}

/* values_key plus the id: the row's full key. */
static int row_key(const rl__index *ix, const rl_value *vals, rl__buf *b)
{
    int has_null;
    if (values_key(ix, vals, b, &has_null) != RL_OK || rl__buf_reserve(b, RL__ID_KEY_MAX) != RL_OK)
        return RL_NOMEM;
    b->n += rl__id_key(vals[0].v.i, b->p + b->n);
    return RL_OK;
}

int rl__ix_first_with_prefix(rl__stx *s, uint64_t root, const uint8_t *prefix, size_t n,
                             int64_t skip_id, int64_t *id)
{
    rl__bt_iter it;
    const uint8_t *k, *v;
    size_t kn, vn;
    int rc = rl__bt_seek(s->bt, root, prefix, n, &it);
    while (rc == RL_OK && (rc = rl__bt_next(&it, &k, &kn, &v, &vn, NULL)) == RL_OK) {
        if (kn < n || memcmp(k, prefix, n) != 0) {
            rc = RL_NOTFOUND;
            break;
        }
        if (rl__key_id(k + n, kn - n, id) != RL_OK) {
            rc = RL__CORRUPT(s->err, "an index key of %zu bytes has no id", kn);
            break;
        }
        if (*id != skip_id)
            break;
    }
    rl__bt_iter_close(&it);
    return rc == RL_DONE ? RL_NOTFOUND : rc;
}

int rl__ix_check_unique(rl__stx *s, int table, const rl_value *vals, int64_t self_id)
{
    const rl__table *tb = &s->cat->tables[table];
    rl__buf *b = &s->key_buf;
    int rc = RL_OK;
    for (int x = 0; x < tb->nindexes && rc == RL_OK; x++) {
        const rl__index *ix = &tb->indexes[x];
        int has_null = 0;
        int64_t other;
        if (!ix->unique)
            continue;
        rc = values_key(ix, vals, b, &has_null) == RL_OK
                 ? RL_OK
                 : RL__FAIL(s->err, RL_NOMEM, "no memory for an index key");
        if (rc != RL_OK || has_null)
            continue;
        rc = rl__ix_first_with_prefix(s, ix->root, b->p, b->n, self_id, &other);
        if (rc == RL_OK)
            rc = RL__FAIL(s->err, RL_DUPLICATE, "%s: row %lld already has these values of "
                          "unique index %s", tb->name, (long long)other, ix->name);
        else if (rc == RL_NOTFOUND)
            rc = RL_OK;
    }
    return rc;
}

/* A key that should be there is missing, or one that should not is there:
 * the index and its table disagree, which only damage explains. */
static int in_step(rl__stx *s, const rl__table *tb, const rl__index *ix, int rc)
{
    if (rc == RL_DUPLICATE || rc == RL_NOTFOUND)
        return RL__CORRUPT(s->err, "index %s of %s is out of step with its table", ix->name,
                           tb->name);
    return rc;
}

int rl__ix_replace_row(rl__stx *s, int table, const rl_value *old, const rl_value *vals)
{
    const rl__table *tb = &s->cat->tables[table];
    rl__buf *a = &s->old_key_buf, *b = &s->key_buf;
    int rc = RL_OK;
    for (int x = 0; x < tb->nindexes && rc == RL_OK; x++) {
        const rl__index *ix = &tb->indexes[x];
        if (row_key(ix, old, a) != RL_OK || row_key(ix, vals, b) != RL_OK) {
            rc = RL__FAIL(s->err, RL_NOMEM, "no memory for an index key");
            break;
        }
        if (a->n == b->n && memcmp(a->p, b->p, a->n) == 0)
            continue; /* the indexed values did not change */
        rc = rl__bt_delete(s->bt, ix->root, a->p, a->n);
        if (rc == RL_OK)
            rc = rl__bt_put(s->bt, ix->root, b->p, b->n, NULL, 0, 0);
        rc = in_step(s, tb, ix, rc);
    }
    return rc;
}

/* Add (add != 0) or remove the keys of one row in every index of table. */
int rl__ix_update_row(rl__stx *s, int table, const rl_value *vals, int add)
{
    const rl__table *tb = &s->cat->tables[table];
    rl__buf *b = &s->key_buf;
    int rc = RL_OK;
    for (int x = 0; x < tb->nindexes && rc == RL_OK; x++) {
        const rl__index *ix = &tb->indexes[x];
        if (row_key(ix, vals, b) != RL_OK)
            rc = RL__FAIL(s->err, RL_NOMEM, "no memory for an index key");
        else if (add)
            rc = rl__bt_put(s->bt, ix->root, b->p, b->n, NULL, 0, 0);
        else
            rc = rl__bt_delete(s->bt, ix->root, b->p, b->n);
        rc = in_step(s, tb, ix, rc);
    }
    return rc;
}

/* Keys collected for a build: where each is in one buffer (offset in the
 * low 48 bits, length above), and its first 8 bytes as a big-endian number
 * (zeros past its end), which decides most comparisons without touching
 * the buffer. */
typedef struct keyref {
    uint64_t prefix, at;
} keyref;

#define KEYREF_OFF(r) ((r)->at & ((UINT64_C(1) << 48) - 1))
#define KEYREF_LEN(r) ((size_t)((r)->at >> 48))

static keyref keyref_make(const uint8_t *k, size_t off, size_t len)
{
    keyref r = {0, (uint64_t)off | (uint64_t)len << 48};
    for (size_t i = 0; i < 8; i++)
        r.prefix = r.prefix << 8 | (i < len ? k[i] : 0);
    return r;
}

static int keyref_cmp(const uint8_t *base, const keyref *x, const keyref *y)
{
    size_t xl = KEYREF_LEN(x), yl = KEYREF_LEN(y), n = xl < yl ? xl : yl;
    int c;
    if (x->prefix != y->prefix)
        return x->prefix < y->prefix ? -1 : 1;
    c = n > 8 ? memcmp(base + KEYREF_OFF(x) + 8, base + KEYREF_OFF(y) + 8, n - 8) : 0;
    return c ? c : (xl > yl) - (xl < yl);
}

/* Merge sort (qsort has no context argument for base). */
static void sort_keys(const uint8_t *base, keyref *r, size_t n, keyref *tmp)
{
    if (n < 2)
        return;
    sort_keys(base, r, n / 2, tmp);
    sort_keys(base, r + n / 2, n - n / 2, tmp);
    for (size_t i = 0, j = n / 2, k = 0; k < n; k++)
        tmp[k] = (j >= n || (i < n / 2 && keyref_cmp(base, &r[i], &r[j]) <= 0)) ? r[i++] : r[j++];
    memcpy(r, tmp, n * sizeof *r);
}

/* Keys being gathered for a build: their bytes end to end and a keyref
 * for each. */
typedef struct gathered {
    rl__buf all;
    keyref *refs;
    size_t n, cap;
} gathered;

static int gathered_add(rl__stx *s, gathered *g, const uint8_t *k, size_t kn)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 1024;
        keyref *grown = realloc(g->refs, cap * sizeof *grown);
        if (!grown)
            return RL__FAIL(s->err, RL_NOMEM, "no memory to build an index");
        g->refs = grown;
        g->cap = cap;
    }
    if (rl__buf_reserve(&g->all, kn) != RL_OK)
        return RL__FAIL(s->err, RL_NOMEM, "no memory to build an index");
    g->refs[g->n++] = keyref_make(k, g->all.n, kn);
    memcpy(g->all.p + g->all.n, k, kn);
    g->all.n += kn;
    return RL_OK;
}

static void gathered_free(gathered *g)
{
    free(g->refs);
    rl__buf_free(&g->all);
}

/* Every row's key of index ix, in id order. */
static int gather_keys(rl__stx *s, int table, const rl__index *ix, gathered *g)
{
    rl__scan sc;
    rl_row row = {0};
    rl__buf b = {0};
    int rc = rl__scan_open(s, table, &sc);
    row.cat = s->cat;
    while (rc == RL_OK && (rc = rl__scan_next(&sc)) == RL_OK) {
        rc = rl__tbl_row_borrow(s, table, sc.id, sc.rec, sc.n, sc.chained, &row);
        if (rc == RL_OK && row_key(ix, row.vals, &b) != RL_OK)
            rc = RL__FAIL(s->err, RL_NOMEM, "no memory to build an index");
        if (rc == RL_OK)
            rc = gathered_add(s, g, b.p, b.n);
    }
    rl__scan_close(&sc);
    rl__row_clear(&row);
    rl__buf_free(&b);
    return rc == RL_DONE ? RL_OK : rc;
}

/* Every key index ix holds, in key order, read from the index itself:
 * a rebuild needs neither the table nor a sort. Keys out of order are
 * damage (the builder must get them ascending). */
static int gather_own_keys(rl__stx *s, const rl__index *ix, gathered *g)
{
    rl__bt_iter it;
    const uint8_t *k, *v;
    size_t kn, vn;
    int rc = rl__bt_seek(s->bt, ix->root, NULL, 0, &it);
    while (rc == RL_OK && (rc = rl__bt_next(&it, &k, &kn, &v, &vn, NULL)) == RL_OK) {
        rc = gathered_add(s, g, k, kn);
        if (rc == RL_OK && g->n > 1 &&
            keyref_cmp(g->all.p, &g->refs[g->n - 2], &g->refs[g->n - 1]) >= 0)
            rc = RL__CORRUPT(s->err, "index %s: keys out of order", ix->name);
    }
    rl__bt_iter_close(&it);
    return rc == RL_DONE ? RL_OK : rc;
}

size_t rl__ix_component_len(const uint8_t *p, size_t n)
{
    size_t i;
    if (n == 0)
        return 0;
    switch (p[0]) {
    case TAG_NULL:
        return 1;
    case TAG_REAL:
        return n >= 9 ? 9 : 0;
    case TAG_BYTES:
        for (i = 1; i + 1 < n; i++) {
            if (p[i] != 0)
                continue;
            if (p[i + 1] != 0xff)
                return i + 2;
            i++;
        }
        return 0;
    default: /* an INTEGER, if p[0] starts an id key */
        i = p[0] >= 0x80 ? (size_t)(p[0] - 0x80) : (size_t)(0x7f - p[0]);
        return i <= 8 && 1 + i <= n ? 1 + i : 0;
    }
}

/* The length of a key's value part (before the id) and whether it holds a
 * NULL; 0 if the key is damaged. */
static size_t value_part(const rl__index *ix, const uint8_t *k, size_t n, int *has_null)
{
    size_t off = 0;
    *has_null = 0;
    for (int c = 0; c < ix->ncols; c++) {
        size_t len = rl__ix_component_len(k + off, n - off);
        if (len == 0)
            return 0;
        *has_null |= k[off] == TAG_NULL;
        off += len;
    }
    return off;
}

/* Two adjacent sorted keys of a unique index clash: same values, no NULL. */
static int clash(const rl__index *ix, const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int na, nb;
    size_t la = value_part(ix, a, an, &na), lb = value_part(ix, b, bn, &nb);
    return la && !na && la == lb && memcmp(a, b, la) == 0;
}

/* Fill index x's emptied tree with g's keys, sorted: the builder fills
 * every node but for the room an index leaves free. */
static int build_from(rl__stx *s, int table, int index, const gathered *g)
{
    const rl__table *tb = &s->cat->tables[table];
    const rl__index *ix = &tb->indexes[index];
    const uint8_t *base = g->all.p;
    rl__bt_builder *b = NULL;
    int rc = RL_OK;
    for (size_t i = 1; ix->unique && i < g->n; i++)
        if (clash(ix, base + KEYREF_OFF(&g->refs[i - 1]), KEYREF_LEN(&g->refs[i - 1]),
                  base + KEYREF_OFF(&g->refs[i]), KEYREF_LEN(&g->refs[i])))
            return RL__FAIL(s->err, RL_DUPLICATE, "%s: two rows share the values of unique "
                            "index %s", tb->name, ix->name);
    if (g->n == 0)
        return RL_OK;
    rc = rl__bt_build_begin(s->bt, ix->root, &b);
    if (rc == RL_OK)
        rl__bt_build_leave_free(b, RL__INDEX_LEAF_FREE);
    for (size_t i = 0; rc == RL_OK && i < g->n; i++)
        rc = rl__bt_build_add(b, base + KEYREF_OFF(&g->refs[i]), KEYREF_LEN(&g->refs[i]), NULL, 0, 0);
    if (rc == RL_OK)
        return rl__bt_build_end(b);
    rl__bt_build_abort(b);
    return rc;
}

int rl__ix_build(rl__stx *s, int table, int index)
{
    gathered g = {0};
    int rc = gather_keys(s, table, &s->cat->tables[table].indexes[index], &g);
    if (rc == RL_OK && g.n > 1) { /* in key order, so the leaves come out full */
        keyref *tmp = malloc(g.n * sizeof *tmp);
        if (!tmp)
            rc = RL__FAIL(s->err, RL_NOMEM, "no memory to build an index");
        else
            sort_keys(g.all.p, g.refs, g.n, tmp);
        free(tmp);
    }
    if (rc == RL_OK)
        rc = build_from(s, table, index, &g);
    gathered_free(&g);
    return rc;
}

int rl__ix_rebuild(rl__stx *s, int table, int index)
{
    const rl__index *ix = &s->cat->tables[table].indexes[index];
    gathered g = {0};
    int rc = gather_own_keys(s, ix, &g);
    if (rc == RL_OK)
        rc = rl__bt_clear(s->bt, ix->root);
    if (rc == RL_OK) /* the new nodes take the lowest logical numbers */
        rc = rl__blk_map_tidy(s->bt);
    if (rc == RL_OK)
        rc = build_from(s, table, index, &g);
    gathered_free(&g);
    return rc;
}

int rl__ix_child_index(const rl__catalog *cat, int child, int col)
{
    const rl__table *tb = &cat->tables[child];
    for (int x = 0; x < tb->nindexes; x++)
        if (tb->indexes[x].cols[0] == col)
            return x;
    return -1;
}

/* Append a line to a report. */
static void report(rl__buf *r, int *problems, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(rl__buf *r, int *problems, const char *fmt, ...)
{
    va_list ap;
    int n;
    (*problems)++;
    if (rl__buf_reserve(r, 300) != RL_OK)
        return;
    va_start(ap, fmt);
    n = vsnprintf((char *)r->p + r->n, 299, fmt, ap);
    va_end(ap);
    if (n > 0)
        r->n += (size_t)(n < 298 ? n : 298);
    r->p[r->n++] = '\n';
    r->p[r->n] = '\0';
}

int rl__ix_verify(rl__stx *s, int table, rl__buf *out, int *problems)
{
    const rl__table *tb = &s->cat->tables[table];
    rl__tstate st;
    rl__scan sc;
    rl__buf key = {0};
    rl_row row = {0};
    rl__bt_space tsp;
    uint64_t rows = 0;
    int rc = rl__tbl_state(s, table, &st);
    row.cat = s->cat;
    if (rc == RL_OK) /* every node of the rows' tree, cell by cell */
        rc = rl__bt_check(s->bt, st.tree, &tsp);
    if (rc == RL_OK)
        rc = rl__scan_open(s, table, &sc);
    if (rc != RL_OK)
        return rc;
    while ((rc = rl__scan_next(&sc)) == RL_OK) {
        rows++;
        rc = rl__tbl_row_from_record(s, table, sc.id, sc.rec, sc.n, sc.chained, &row);
        for (int x = 0; rc == RL_OK && x < tb->nindexes; x++) {
            if (row_key(&tb->indexes[x], row.vals, &key) != RL_OK) {
                rc = RL_NOMEM;
                break;
            }
            if (rl__bt_get(s->bt, tb->indexes[x].root, key.p, key.n, NULL, NULL) != RL_OK)
                report(out, problems, "index %s lacks row %lld of %s", tb->indexes[x].name,
                       (long long)sc.id, tb->name);
        }
        if (rc != RL_OK)
            break;
    }
    rl__scan_close(&sc);
    if (rc == RL_DONE)
        rc = RL_OK;
    if (rc == RL_OK && rows != st.live)
        report(out, problems, "table %s holds %llu rows but counts %llu", tb->name,
               (unsigned long long)rows, (unsigned long long)st.live);
    if (rc == RL_OK && tsp.entries != rows)
        report(out, problems, "table %s: its tree's leaves hold %llu cells, a scan %llu rows",
               tb->name, (unsigned long long)tsp.entries, (unsigned long long)rows);
    for (int x = 0; rc == RL_OK && x < tb->nindexes; x++) {
        rl__bt_space sp;
        rc = rl__bt_check(s->bt, tb->indexes[x].root, &sp);
        if (rc == RL_OK && sp.entries != rows)
            report(out, problems, "index %s holds %llu keys for %llu rows of %s",
                   tb->indexes[x].name, (unsigned long long)sp.entries,
                   (unsigned long long)rows, tb->name);
    }
    rl__row_clear(&row);
    rl__buf_free(&key);
    return rc;
}
