/*
** schema/row.c: rows decoded from stored records (schema/table.c owns
** the records' cells; schema/record.c their bytes). A row's values either
** borrow their bytes from the record (a scan's rows, valid until the scan
** moves on) or point into the row's own buffer, sized once per row so
** that the pointers stay put. A scan decodes a row part by part, as far
** as each conjunct of its condition reads (rl__row_part).
**
** Invariants:
**   1. A row's vals hold ncols values, each written by the decoder (no
**      value is left from an earlier row), or the row is not to be read
**      after a failed decode.
**   2. A value in a chain, or a record in one, is always copied: its bytes
**      are a temporary read.
*/
#include <stdlib.h>
#include <string.h>

#include "schema.h"

int rl__rec_unwrap(rl__stx *s, const uint8_t *v, size_t n, int chained, rl__buf *buf,
                   const uint8_t **rec, size_t *len, uint64_t *chain)
{
    uint64_t clen = 0;
    int rc;
    *chain = 0;
    if (!chained) {
        *rec = v;
        *len = n;
        return RL_OK;
    }
    if (n != 8)
        return RL__CORRUPT(s->err, "a chained record's cell holds %zu bytes", n);
    *chain = rl__get64(v);
    rc = rl__blk_chain_length(s->bt, *chain, &clen);
    buf->n = 0;
    if (rc == RL_OK && rl__buf_reserve(buf, (size_t)clen + 1) != RL_OK)
        rc = RL__FAIL(s->err, RL_NOMEM, "no memory for a %llu-byte record",
                      (unsigned long long)clen);
    if (rc == RL_OK)
        rc = rl__blk_chain_read(s->bt, *chain, 0, buf->p, (size_t)clen);
    *rec = buf->p;
    *len = (size_t)clen;
    return rc;
}

void rl__row_clear(rl_row *row)
{
    free(row->vals);
    rl__buf_free(&row->buf);
    row->vals = NULL;
    row->ncols = 0;
}

/* Append n bytes and a NUL to the row's buffer; *at gets their offset. */
static int row_bytes(rl_row *row, const void *p, size_t n, size_t *at)
{
    if (rl__buf_reserve(&row->buf, n + 1) != RL_OK)
        return RL_NOMEM;
    *at = row->buf.n;
    if (n)
        memcpy(row->buf.p + row->buf.n, p, n);
    row->buf.p[row->buf.n + n] = '\0';
    row->buf.n += n + 1;
    return RL_OK;
}

/* Read a large value's chain into the row's buffer. */
static int row_chain(rl__stx *s, rl_row *row, const rl__field *f, size_t *at)
{
    uint64_t len = 0;
    int rc = rl__blk_chain_length(s->bt, f->chain, &len);
    if (rc == RL_OK && len != f->n)
        return RL__CORRUPT(s->err, "value chain %llu holds %llu bytes, record says %llu",
                           (unsigned long long)f->chain, (unsigned long long)len,
                           (unsigned long long)f->n);
    if (rc == RL_OK && rl__buf_reserve(&row->buf, (size_t)len + 1) != RL_OK)
        return RL__FAIL(s->err, RL_NOMEM, "no memory for a %llu-byte value",
                        (unsigned long long)len);
    if (rc == RL_OK)
        rc = rl__blk_chain_read(s->bt, f->chain, 0, row->buf.p + row->buf.n, (size_t)len);
    if (rc != RL_OK)
        return rc;
    *at = row->buf.n;
    row->buf.p[row->buf.n + len] = '\0';
    row->buf.n += (size_t)len + 1;
    return RL_OK;
}

#define BORROWED SIZE_MAX /* at[c] of a value that points into the record */

/* The value array to decode a row into: the row's own when it has the
 * right size (a cursor's row, decoded again), else a new one. */
static inline rl_value *row_vals(rl_row *row, int ncols, int *reuse)
{
    rl_value *vals;
    *reuse = row->vals && row->ncols == ncols && !row->colmap;
    if (*reuse)
        return row->vals;
    /* Not calloc: glibc's calloc skips its per-thread cache, and a row's
     * values are all written by its decoder (or dropped on failure). */
    vals = malloc((size_t)ncols * sizeof *vals);
    return vals;
}

/* Give the decoded vals to row, or drop them after a failure (rc): a
 * reused array stays the row's, but its values are not to be read. */
static inline int row_take_vals(rl_row *row, rl_value *vals, int reuse, int ncols, int table, int rc)
{
    if (rc != RL_OK) {
        if (!reuse)
            free(vals);
        return rc;
    }
    if (!reuse)
        free(row->vals);
    row->vals = vals;
    row->ncols = ncols;
    row->table = table;
    return RL_OK;
}

/* A row whose values all point into the record v (no large value in a
 * chain; RL_DONE if there is one): the common case of a scan, decoded in
 * one pass. */
static inline int decode_borrowed(rl__stx *s, int table, int64_t id, const uint8_t *v, size_t vn,
                           int last, size_t *at, rl_row *row)
{
    const rl__table *tb = rl__tbl_of(s, table);
    int reuse;
    rl_value *vals = row_vals(row, tb->ncols, &reuse);
    int rc = vals ? rl__rec_decode_cols(tb, v, vn, 1, last, at, vals, s->err)
                  : RL__FAIL(s->err, RL_NOMEM, "no memory for a row");
    if (rc == RL_OK) {
        vals[0] = rl_int(id);
        row->buf.n = 0;
    }
    return row_take_vals(row, vals, reuse, tb->ncols, table, rc);
}

/* decode_borrowed, then every TEXT, CHAR and BLOB value copied into the
 * row's own buffer (sized once, so the values' pointers stay put), each
 * followed by a NUL. */
static int decode_copied(rl__stx *s, int table, int64_t id, const uint8_t *v, size_t vn,
                         rl_row *row)
{
    size_t need = 0, at = 0;
    int rc = decode_borrowed(s, table, id, v, vn, rl__tbl_of(s, table)->ncols - 1, &at, row);
    if (rc != RL_OK)
        return rc;
    for (int c = 1; c < row->ncols; c++)
        if (row->vals[c].type >= RL_TCHAR)
            need += row->vals[c].v.b.n + 1;
    if (need && rl__buf_reserve(&row->buf, need) != RL_OK)
        return RL__FAIL(s->err, RL_NOMEM, "no memory for a row");
    for (int c = 1; c < row->ncols; c++) {
        rl_value *x = &row->vals[c];
        uint8_t *to = row->buf.p + row->buf.n;
        if (x->type < RL_TCHAR)
            continue;
        if (x->v.b.n)
            memcpy(to, x->v.b.p, x->v.b.n);
        to[x->v.b.n] = '\0';
        x->v.b.p = to;
        row->buf.n += x->v.b.n + 1;
    }
    return RL_OK;
}

/* decode_row's general case: values in chains. */
static int decode_general(rl__stx *s, int table, int64_t id, const uint8_t *v, size_t vn,
                          int chained, rl_row *row, int borrow)
{
    const rl__table *tb = rl__tbl_of(s, table);
    rl__field fs[RL__STACK_COLS];
    size_t ats[RL__STACK_COLS];
    int small = tb->ncols <= RL__STACK_COLS;
    rl__field *f = small ? fs : calloc((size_t)tb->ncols, sizeof *f);
    size_t *at = small ? ats : calloc((size_t)tb->ncols, sizeof *at);
    int reuse;
    rl_value *vals = row_vals(row, tb->ncols, &reuse);
    rl__buf spill = {0};
    const uint8_t *rec = NULL;
    size_t n = 0;
    uint64_t chain;
    int rc = (f && at && vals) ? rl__rec_unwrap(s, v, vn, chained, &spill, &rec, &n, &chain)
                               : RL__FAIL(s->err, RL_NOMEM, "no memory for a row");
    if (rc == RL_OK)
        rc = rl__rec_decode(tb, rec, n, f, s->err);
    row->buf.n = 0;
    if (rc == RL_OK) { /* room for every value to copy, at once */
        size_t need = 0;
        for (int c = 1; c < tb->ncols; c++)
            if (f[c].type >= RL_TCHAR && !f[c].chain && !(borrow && !chained))
                need += (size_t)f[c].n + 1;
        if (need && rl__buf_reserve(&row->buf, need) != RL_OK)
            rc = RL__FAIL(s->err, RL_NOMEM, "no memory for a row");
    }
    if (rc == RL_OK)
        vals[0] = rl_int(id);
    for (int c = 1; c < tb->ncols && rc == RL_OK; c++) {
        vals[c].type = f[c].type;
        if (f[c].type == RL_TINTEGER)
            vals[c].v.i = f[c].i;
        else if (f[c].type == RL_TREAL)
            vals[c].v.r = f[c].r;
        else if (f[c].type != RL_TNULL && borrow && !chained && !f[c].chain) {
            vals[c].v.b.n = (size_t)f[c].n;
            vals[c].v.b.p = f[c].p;
            at[c] = BORROWED;
        } else if (f[c].type != RL_TNULL) {
            vals[c].v.b.n = (size_t)f[c].n;
            rc = f[c].chain ? row_chain(s, row, &f[c], &at[c])
                            : row_bytes(row, f[c].p, (size_t)f[c].n, &at[c]);
            if (rc == RL_NOMEM)
                rc = RL__FAIL(s->err, RL_NOMEM, "no memory for a row");
        }
    }
    for (int c = 1; c < tb->ncols && rc == RL_OK; c++) /* the buffer has stopped moving */
        if (vals[c].type >= RL_TCHAR && at[c] != BORROWED)
            vals[c].v.b.p = row->buf.p + at[c];
    if (!small) {
        free(f);
        free(at);
    }
    rl__buf_free(&spill);
    return row_take_vals(row, vals, reuse, tb->ncols, table, rc);
}

/* Decode a stored record into row; with borrow, inline TEXT, CHAR and
 * BLOB values point into v instead of being copied (not for a record that
 * lives in a chain: its bytes are a temporary copy). */
static int decode_row(rl__stx *s, int table, int64_t id, const uint8_t *v, size_t vn,
                      int chained, rl_row *row, int borrow)
{
    if (!chained) {
        size_t at = 0;
        int rc = borrow ? decode_borrowed(s, table, id, v, vn, rl__tbl_of(s, table)->ncols - 1,
                                          &at, row)
                        : decode_copied(s, table, id, v, vn, row);
        if (rc != RL_DONE)
            return rc;
    }
    return decode_general(s, table, id, v, vn, chained, row, borrow);
}

int rl__tbl_row_from_record(rl__stx *s, int table, int64_t id, const uint8_t *v, size_t vn,
                            int chained, rl_row *row)
{
    return decode_row(s, table, id, v, vn, chained, row, 0);
}

int rl__tbl_row_borrow(rl__stx *s, int table, int64_t id, const uint8_t *v, size_t vn,
                       int chained, rl_row *row)
{
    rl__row_part part = RL__ROW_PART_NEW;
    return rl__tbl_row_borrow_upto(s, table, id, v, vn, chained, rl__tbl_of(s, table)->ncols - 1,
                                   &part, row);
}

int rl__tbl_row_borrow_upto(rl__stx *s, int table, int64_t id, const uint8_t *v, size_t vn,
                            int chained, int last, rl__row_part *part, rl_row *row)
{
    const rl__table *tb = rl__tbl_of(s, table);
    int fresh = part->done < 0, rc;
    if (last <= part->done)
        return RL_OK;
    if (!chained) { /* going on from part->done, or a new row (its vals reused) */
        rc = fresh ? decode_borrowed(s, table, id, v, vn, last, &part->at, row)
                   : rl__rec_decode_cols(tb, v, vn, part->done + 1, last, &part->at, row->vals,
                                         s->err);
        if (rc != RL_DONE) {
            part->done = last;
            return rc;
        }
    }
    part->done = tb->ncols - 1;
    return decode_general(s, table, id, v, vn, chained, row, 1);
}

/* Does value v point into the first n bytes of the row's own buffer? */
static int in_buf(const rl_row *row, const rl_value *v, size_t n)
{
    uintptr_t p = (uintptr_t)v->v.b.p, b = (uintptr_t)row->buf.p;
    return row->buf.p && p >= b && p < b + n;
}

int rl__row_own(rl_row *row)
{
    size_t owned = row->buf.n, *at;
    int need = 0, rc = RL_OK;
    for (int c = 0; c < row->ncols; c++)
        need |= row->vals[c].type >= RL_TCHAR && !in_buf(row, &row->vals[c], owned);
    if (!need)
        return RL_OK;
    if (!(at = malloc((size_t)row->ncols * sizeof *at)))
        return RL_NOMEM;
    for (int c = 0; c < row->ncols && rc == RL_OK; c++) {
        const rl_value *v = &row->vals[c];
        at[c] = BORROWED;
        if (v->type >= RL_TCHAR && in_buf(row, v, owned))
            at[c] = (size_t)((uintptr_t)v->v.b.p - (uintptr_t)row->buf.p);
        else if (v->type >= RL_TCHAR)
            rc = row_bytes(row, v->v.b.p, v->v.b.n, &at[c]);
    }
    for (int c = 0; c < row->ncols && rc == RL_OK; c++) /* the buffer has stopped moving */
        if (at[c] != BORROWED)
            row->vals[c].v.b.p = row->buf.p + at[c];
    free(at);
    return rc;
}

