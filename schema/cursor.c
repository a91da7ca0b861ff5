/*
** schema/cursor.c: scans over a table's heap chain, record by record in
** storage order, skipping tombstones. A scan remembers its place in the
** chain and the stream offset it reached, so each step reads only the next
** record, and it stops at the length the heap had when it began.
*/
#include <string.h>

#include "schema.h"

int rl__scan_open(rl__stx *s, int table, rl__scan *sc)
{
    rl__tstate st;
    int rc;
    memset(sc, 0, sizeof *sc);
    sc->s = s;
    sc->table = table;
    rc = rl__tbl_state(s, table, &st);
    if (rc == RL_OK)
        rc = rl__blk_chain_length(s->bt, st.heap, &sc->length);
    sc->heap = st.heap;
    sc->pos.logical = st.heap;
    sc->pos.off = 0;
    return rc;
}

int rl__heap_read(rl__stx *s, uint64_t heap, rl__blk_pos *pos, uint8_t *flags,
                  rl__buf *body, uint64_t *size)
{
    uint64_t len = 0;
    uint8_t c = 0x80;
    int rc = rl__blk_chain_pread(s->bt, heap, pos, flags, 1);
    *size = 1;
    for (unsigned shift = 0; rc == RL_OK && (c & 0x80); shift += 7) {
        if (shift >= 64)
            return RL__CORRUPT(s->err, "record length is not a varint");
        rc = rl__blk_chain_pread(s->bt, heap, pos, &c, 1);
        len |= (uint64_t)(c & 0x7f) << shift;
        (*size)++;
    }
    if (rc == RL_OK && len > ((uint64_t)1 << 32))
        return RL__CORRUPT(s->err, "record of %llu bytes", (unsigned long long)len);
    body->n = 0;
    if (rc == RL_OK && rl__buf_reserve(body, (size_t)len + 1) != RL_OK)
        return RL__FAIL(s->err, RL_NOMEM, "no memory for a record");
    if (rc == RL_OK)
        rc = rl__blk_chain_pread(s->bt, heap, pos, body->p, (size_t)len);
    if (rc == RL_RANGE)
        return RL__CORRUPT(s->err, "record runs past the end of its table");
    body->n = (size_t)len;
    *size += len;
    return rc;
}

int rl__scan_next(rl__scan *sc, rl__blk_pos *where)
{
    for (;;) {
        rl__blk_pos start = sc->pos;
        uint8_t flags = 0;
        int rc;
        if (sc->offset >= sc->length)
            return RL_DONE;
        uint64_t size = 0;
        rc = rl__heap_read(sc->s, sc->heap, &sc->pos, &flags, &sc->body, &size);
        sc->offset += size;
        if (rc == RL_OK && sc->offset > sc->length)
            rc = RL__CORRUPT(sc->s->err, "record runs past the end of its table");
        if (rc != RL_OK)
            return rc;
        if (flags & RL__REC_TOMBSTONE)
            continue;
        if (where)
            *where = start;
        return RL_OK;
    }
}

void rl__scan_close(rl__scan *sc)
{
    rl__buf_free(&sc->body);
}
