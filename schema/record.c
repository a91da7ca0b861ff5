/*
** schema/record.c: the bytes of a row. A record in a table's heap chain is
**
**     flags u8 | body length (varint) | body
**
** and a body is
**
**     id (zigzag varint) | null bitmap of the user columns | values
**
** with one value per non-NULL user column, in column order:
**     INTEGER  zigzag varint
**     REAL     8 bytes, IEEE 754 binary64, little-endian
**     CHAR, TEXT, BLOB  varint (len << 1 | big), then len bytes when
**              big is 0, or the logical number of the value's own chain
**              (varint) when big is 1.
** Varints are LEB128: 7 bits a byte, low bits first, high bit = more.
** Decoding checks every length against the bytes it has: a body from a
** damaged file gives RL_CORRUPT, never a read past the buffer.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

int rl__buf_reserve(rl__buf *b, size_t extra)
{
    size_t cap = b->cap ? b->cap : 64;
    uint8_t *p;
    if (b->n + extra <= b->cap)
        return RL_OK;
    while (cap < b->n + extra)
        cap *= 2;
    p = realloc(b->p, cap);
    if (!p)
        return RL_NOMEM;
    b->p = p;
    b->cap = cap;
    return RL_OK;
}

void rl__buf_free(rl__buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Callers reserve 10 bytes first. */
void rl__put_varint(rl__buf *b, uint64_t v)
{
    while (v >= 0x80) {
        b->p[b->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->p[b->n++] = (uint8_t)v;
}

int rl__get_varint(const uint8_t *p, size_t n, size_t *off, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t c;
        if (*off >= n)
            return RL_CORRUPT;
        c = p[(*off)++];
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return RL_OK;
        }
    }
    return RL_CORRUPT;
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static int put_value(const rl_value *v, rl_type type, uint64_t chain, rl__buf *out)
{
    uint64_t bits;
    if (rl__buf_reserve(out, 20) != RL_OK)
        return RL_NOMEM;
    switch (type) {
    case RL_TINTEGER:
        rl__put_varint(out, zigzag(v->v.i));
        return RL_OK;
    case RL_TREAL:
        memcpy(&bits, &v->v.r, 8);
        for (int i = 0; i < 8; i++)
            out->p[out->n++] = (uint8_t)(bits >> (8 * i));
        return RL_OK;
    default:
        if (chain) {
            rl__put_varint(out, ((uint64_t)v->v.b.n << 1) | 1);
            rl__put_varint(out, chain);
            return RL_OK;
        }
        rl__put_varint(out, (uint64_t)v->v.b.n << 1);
        if (rl__buf_reserve(out, v->v.b.n) != RL_OK)
            return RL_NOMEM;
        if (v->v.b.n)
            memcpy(out->p + out->n, v->v.b.p, v->v.b.n);
        out->n += v->v.b.n;
        return RL_OK;
    }
}

int rl__rec_encode(const rl__table *tbl, const rl_value *vals, const uint64_t *chains,
                   rl__buf *out)
{
    int nuser = tbl->ncols - 1;
    size_t bitmap;
    if (rl__buf_reserve(out, 10 + (size_t)(nuser + 7) / 8) != RL_OK)
        return RL_NOMEM;
    bitmap = out->n;
    memset(out->p + bitmap, 0, (size_t)(nuser + 7) / 8);
    out->n += (size_t)(nuser + 7) / 8;
    for (int c = 1; c < tbl->ncols; c++) {
        if (vals[c].type == RL_TNULL) {
            out->p[bitmap + (size_t)(c - 1) / 8] |= (uint8_t)(1u << ((c - 1) % 8));
            continue;
        }
        if (put_value(&vals[c], tbl->cols[c].type, chains[c], out) != RL_OK)
            return RL_NOMEM;
    }
    return RL_OK;
}

/* rl__get_varint with the one-byte case (most lengths and small
 * integers) inline. */
static inline int get_varint(const uint8_t *p, size_t n, size_t *off, uint64_t *v)
{
    if (*off < n && p[*off] < 0x80) {
        *v = p[(*off)++];
        return RL_OK;
    }
    return rl__get_varint(p, n, off, v);
}

/* A REAL's 8 little-endian bytes at *off into *r. */
static inline int get_real(const uint8_t *body, size_t n, size_t *off, double *r)
{
    uint64_t x = 0;
    if (n - *off < 8)
        return RL_CORRUPT;
    for (int i = 0; i < 8; i++)
        x |= (uint64_t)body[*off + (size_t)i] << (8 * i);
    memcpy(r, &x, 8);
    *off += 8;
    return RL_OK;
}

static int get_value(const uint8_t *body, size_t n, size_t *off, rl_type type,
                     rl__field *f)
{
    uint64_t x;
    f->type = type;
    f->chain = 0;
    f->p = NULL;
    switch (type) {
    case RL_TINTEGER:
        if (get_varint(body, n, off, &x) != RL_OK)
            return RL_CORRUPT;
        f->i = unzigzag(x);
        return RL_OK;
    case RL_TREAL:
        return get_real(body, n, off, &f->r);
    default:
        if (get_varint(body, n, off, &x) != RL_OK)
            return RL_CORRUPT;
        f->n = x >> 1;
        if (x & 1)
            return get_varint(body, n, off, &f->chain) == RL_OK && f->chain ? RL_OK
                                                                             : RL_CORRUPT;
        if (f->n > n - *off)
            return RL_CORRUPT;
        f->p = body + *off;
        *off += f->n;
        return RL_OK;
    }
}

int rl__rec_decode_borrowed(const rl__table *tbl, const uint8_t *body, size_t n,
                            rl_value *vals, rl__err *err)
{
    size_t off = 0;
    return rl__rec_decode_cols(tbl, body, n, 1, tbl->ncols - 1, &off, vals, err);
}

/* One value of a record, straight into v (borrowing its bytes): the
 * decoder of a scan's rows, so it is get_value without the field in
 * between. RL_DONE for a value in a chain; RL_CORRUPT as get_value. */
static inline int get_borrowed(const uint8_t *body, size_t n, size_t *off, rl_type type,
                               rl_value *v)
{
    uint64_t x;
    v->type = type;
    if (type == RL_TREAL)
        return get_real(body, n, off, &v->v.r);
    if (get_varint(body, n, off, &x) != RL_OK)
        return RL_CORRUPT;
    if (type == RL_TINTEGER) {
        v->v.i = unzigzag(x);
        return RL_OK;
    }
    if (x & 1) { /* a chain: the caller decodes the record the long way */
        uint64_t chain;
        return get_varint(body, n, off, &chain) == RL_OK && chain ? RL_DONE : RL_CORRUPT;
    }
    if ((x >> 1) > n - *off)
        return RL_CORRUPT;
    v->v.b.n = (size_t)(x >> 1);
    v->v.b.p = body + *off;
    *off += (size_t)(x >> 1);
    return RL_OK;
}

int rl__rec_decode_cols(const rl__table *tbl, const uint8_t *body, size_t n, int first,
                        int last, size_t *at, rl_value *vals, rl__err *err)
{
    size_t off = *at;
    if (first == 1) {
        off = (size_t)(tbl->ncols - 1 + 7) / 8;
        if (n < off)
            return RL__CORRUPT(err, "table %s: record too short", tbl->name);
    }
    for (int c = first; c <= last; c++) {
        int rc;
        if (body[(size_t)(c - 1) / 8] & (1u << ((c - 1) % 8))) {
            vals[c].type = RL_TNULL;
            continue;
        }
        rc = get_borrowed(body, n, &off, tbl->cols[c].type, &vals[c]);
        if (rc == RL_DONE)
            return RL_DONE; /* a large value: the caller reads its chain */
        if (rc != RL_OK)
            return RL__CORRUPT(err, "table %s: a record's column %s is damaged", tbl->name,
                               tbl->cols[c].name);
    }
    if (last == tbl->ncols - 1 && off != n)
        return RL__CORRUPT(err, "table %s: a record has %zu stray bytes", tbl->name, n - off);
    *at = off;
    return RL_OK;
}

int rl__rec_decode(const rl__table *tbl, const uint8_t *body, size_t n,
                   rl__field *fields, rl__err *err)
{
    size_t off = 0, bitmap;
    int nuser = tbl->ncols - 1;
    if (n < (size_t)(nuser + 7) / 8)
        return RL__CORRUPT(err, "table %s: record too short", tbl->name);
    bitmap = off;
    off += (size_t)(nuser + 7) / 8;
    for (int c = 1; c < tbl->ncols; c++) {
        if (body[bitmap + (size_t)(c - 1) / 8] & (1u << ((c - 1) % 8))) {
            fields[c].type = RL_TNULL;
            continue;
        }
        if (get_value(body, n, &off, tbl->cols[c].type, &fields[c]) != RL_OK)
            return RL__CORRUPT(err, "table %s: a record's column %s is damaged", tbl->name,
                               tbl->cols[c].name);
    }
    if (off != n)
        return RL__CORRUPT(err, "table %s: a record has %zu stray bytes", tbl->name, n - off);
    return RL_OK;
}
