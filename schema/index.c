/*
** schema/index.c: secondary indexes. An index is a B+tree (btree.c) whose
** keys are the encoded values of its columns followed by the row's id key
** (so every key is distinct) and whose values are empty.
**
** Key encoding, one component per column, compared as bytes (docs/format.md,
** "Index keys"):
**     NULL      0x05
**     INTEGER   0x10, then the id-key form of the value (rl__id_key)
**     REAL      0x20, then 8 bytes big-endian: the IEEE bits with the sign
**               bit flipped (positive) or all bits inverted (negative)
**     CHAR, TEXT, BLOB
**               0x30, the bytes with every 0x00 written 0x00 0xFF, then
**               0x00 0x01; a value longer than RL__IX_MAX_BYTES is cut
**               there and ends 0x00 0x02 instead (its order among values
**               sharing that prefix is then the id's)
** so byte order is value order, NULLs first.
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
#define TAG_INT 0x10
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
        b->p[b->n++] = TAG_INT;
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
    rl__buf b = {0};
    int rc = RL_OK;
    for (int x = 0; x < tb->nindexes && rc == RL_OK; x++) {
        const rl__index *ix = &tb->indexes[x];
        int has_null = 0;
        int64_t other;
        if (!ix->unique)
            continue;
        rc = values_key(ix, vals, &b, &has_null) == RL_OK
                 ? RL_OK
                 : RL__FAIL(s->err, RL_NOMEM, "no memory for an index key");
        if (rc != RL_OK || has_null)
            continue;
        rc = rl__ix_first_with_prefix(s, ix->root, b.p, b.n, self_id, &other);
        if (rc == RL_OK)
            rc = RL__FAIL(s->err, RL_DUPLICATE, "%s: row %lld already has these values of "
                          "unique index %s", tb->name, (long long)other, ix->name);
        else if (rc == RL_NOTFOUND)
            rc = RL_OK;
    }
    rl__buf_free(&b);
    return rc;
}

/* Add (add != 0) or remove the keys of one row in every index of table. */
int rl__ix_update_row(rl__stx *s, int table, const rl_value *vals, int add)
{
    const rl__table *tb = &s->cat->tables[table];
    rl__buf b = {0};
    int rc = RL_OK;
    for (int x = 0; x < tb->nindexes && rc == RL_OK; x++) {
        const rl__index *ix = &tb->indexes[x];
        if (row_key(ix, vals, &b) != RL_OK)
            rc = RL__FAIL(s->err, RL_NOMEM, "no memory for an index key");
        else if (add)
            rc = rl__bt_put(s->bt, ix->root, b.p, b.n, NULL, 0, 0);
        else
            rc = rl__bt_delete(s->bt, ix->root, b.p, b.n);
        if (rc == RL_DUPLICATE || rc == RL_NOTFOUND)
            rc = RL__CORRUPT(s->err, "index %s of %s is out of step with its table", ix->name,
                             tb->name);
    }
    rl__buf_free(&b);
    return rc;
}

int rl__ix_build(rl__stx *s, int table, int index)
{
    const rl__table *tb = &s->cat->tables[table];
    const rl__index *ix = &tb->indexes[index];
    rl__scan sc;
    rl__buf b = {0};
    rl_row row = {0};
    int rc = rl__scan_open(s, table, &sc);
    row.cat = s->cat;
    while (rc == RL_OK && (rc = rl__scan_next(&sc)) == RL_OK) {
        rc = rl__tbl_row_from_record(s, table, sc.id, sc.rec, sc.n, sc.chained, &row);
        if (rc == RL_OK && row_key(ix, row.vals, &b) != RL_OK)
            rc = RL__FAIL(s->err, RL_NOMEM, "no memory for an index key");
        if (rc == RL_OK && ix->unique) {
            int has_null;
            int64_t other;
            values_key(ix, row.vals, &b, &has_null);
            if (!has_null &&
                rl__ix_first_with_prefix(s, ix->root, b.p, b.n, sc.id, &other) == RL_OK)
                rc = RL__FAIL(s->err, RL_DUPLICATE, "%s: rows %lld and %lld share the values "
                              "of unique index %s", tb->name, (long long)other,
                              (long long)sc.id, ix->name);
            if (rc == RL_OK)
                rc = row_key(ix, row.vals, &b) == RL_OK ? RL_OK : RL_NOMEM;
        }
        if (rc == RL_OK)
            rc = rl__bt_put(s->bt, ix->root, b.p, b.n, NULL, 0, 0);
    }
    rl__scan_close(&sc);
    rl__row_clear(&row);
    rl__buf_free(&b);
    return rc == RL_DONE ? RL_OK : rc;
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
    uint64_t rows = 0;
    int rc = rl__tbl_state(s, table, &st);
    row.cat = s->cat;
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
    for (int x = 0; rc == RL_OK && x < tb->nindexes; x++) {
        uint64_t nodes, entries;
        rc = rl__bt_stats(s->bt, tb->indexes[x].root, &nodes, &entries);
        if (rc == RL_OK && entries != rows)
            report(out, problems, "index %s holds %llu keys for %llu rows of %s",
                   tb->indexes[x].name, (unsigned long long)entries,
                   (unsigned long long)rows, tb->name);
    }
    rl__row_clear(&row);
    rl__buf_free(&key);
    return rc;
}
