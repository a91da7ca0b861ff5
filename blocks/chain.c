/*
** blocks/chain.c: chains, linked lists of blocks holding one byte stream.
**
** A chain is named by the logical number of its head block. Every block
** of a chain carries the chain's type, its own logical number, the head's
** logical number (owner) and the next logical number (0 ends the chain).
** The head's payload starts with a 24-byte chain header:
**     length u64 (bytes in the stream), tail u64 (logical), count u64.
** Invariants:
**   1. Every block but the tail is full: the head holds payload - 24 bytes
**      of stream, the others payload bytes; so an offset names one block.
**   2. Walking a chain visits exactly `count` blocks; the tail's next is 0.
**      A walk that disagrees is RL_CORRUPT (this also stops cycles).
**   3. Blocks are changed only through rl__blk_writable (copy-on-write);
**      a copied block's new physical number goes into the map, so no
**      predecessor is rewritten.
** Entry points take db->mu.
*/
#include "blk_int.h"

typedef struct chain_info {
    uint64_t head;
    uint8_t type;
    uint64_t len, tail, count;
} chain_info;

/* Where block idx of a chain keeps its stream bytes, and how many fit. */
static uint32_t data_off(uint64_t idx)
{
    return RL__HDR_SIZE + (idx == 0 ? RL__CHAIN_HDR : 0);
}

static uint32_t data_cap(const rl__blk_db *db, uint64_t idx)
{
    return db->payload - (idx == 0 ? RL__CHAIN_HDR : 0);
}

/* A pinned, checked page of block `logical` of the chain `head`. */
static int chain_page(rl__blk_txn *t, uint64_t head, uint8_t type,
                      uint64_t logical, rl__blk_page **out)
{
    rl__blk_bhdr h;
    uint64_t phys;
    int rc = rl__map_lookup(t, logical, &phys);
    if (rc == RL_OK)
        rc = rl__cache_get(t, phys, out);
    if (rc != RL_OK)
        return rc;
    rl__fmt_bhdr_decode((*out)->buf, &h);
    if (h.logical != logical || h.owner != head || (type && h.type != type) ||
        h.txn > t->root.txn || h.type < RL__BLK_TYPE_CHAIN) {
        rl__cache_unpin(*out);
        return RL__CORRUPT(&t->err, "block %llu (logical %llu) does not belong to chain %llu",
                           (unsigned long long)phys, (unsigned long long)logical,
                           (unsigned long long)head);
    }
    return RL_OK;
}

/* A pinned page of the block we may change, copying it first if needed. */
static int chain_page_w(rl__blk_txn *t, const chain_info *ci, uint64_t logical,
                        rl__blk_page **out)
{
    rl__blk_page *p;
    uint64_t phys, np;
    int rc = chain_page(t, ci->head, ci->type, logical, &p);
    if (rc != RL_OK)
        return rc;
    phys = p->phys;
    rl__cache_unpin(p); /* rl__blk_writable pins it (or its copy) again */
    rc = rl__blk_writable(t, phys, 1, &np, out);
    if (rc != RL_OK)
        return rc;
    if (np != phys) {
        rc = rl__map_set(t, logical, np);
        if (rc != RL_OK)
            rl__cache_unpin(*out);
    }
    return rc;
}

static int head_read(rl__blk_txn *t, uint64_t head, chain_info *ci)
{
    rl__blk_page *p;
    const uint8_t *d;
    rl__blk_bhdr h;
    int rc = chain_page(t, head, 0, head, &p);
    if (rc != RL_OK)
        return rc;
    rl__fmt_bhdr_decode(p->buf, &h);
    d = p->buf + RL__HDR_SIZE;
    ci->head = head;
    ci->type = h.type;
    ci->len = rl__get64(d);
    ci->tail = rl__get64(d + 8);
    ci->count = rl__get64(d + 16);
    rl__cache_unpin(p);
    if (h.used < RL__CHAIN_HDR || ci->count == 0 ||
        ci->count > t->root.logical_limit || ci->tail >= t->root.logical_limit ||
        ci->len > data_cap(t->db, 0) + (ci->count - 1) * (uint64_t)t->db->payload)
        return RL__CORRUPT(&t->err, "chain %llu: invalid chain header",
                           (unsigned long long)head);
    return RL_OK;
}

static int head_write(rl__blk_txn *t, const chain_info *ci)
{
    rl__blk_page *p;
    uint8_t *d;
    int rc = chain_page_w(t, ci, ci->head, &p);
    if (rc != RL_OK)
        return rc;
    d = p->buf + RL__HDR_SIZE;
    rl__put64(d, ci->len);
    rl__put64(d + 8, ci->tail);
    rl__put64(d + 16, ci->count);
    rl__cache_unpin(p);
    return RL_OK;
}

/* Invariant 2 for block idx of the page p: only the tail ends the chain,
 * and the stream bytes it claims fit its used count. */
static int link_check(rl__blk_txn *t, const chain_info *ci, rl__blk_page *p,
                      uint64_t idx)
{
    rl__blk_bhdr h;
    rl__fmt_bhdr_decode(p->buf, &h);
    if ((h.next == 0) != (idx + 1 == ci->count))
        return RL__CORRUPT(&t->err, "chain %llu: block %llu of %llu has %s link",
                           (unsigned long long)ci->head, (unsigned long long)idx,
                           (unsigned long long)ci->count, h.next ? "an extra" : "no");
    return RL_OK;
}

/* The next link of block idx, checked against the walk's invariant 2. */
static int next_of(rl__blk_txn *t, const chain_info *ci, uint64_t logical,
                   uint64_t idx, uint64_t *next)
{
    rl__blk_page *p;
    rl__blk_bhdr h;
    int rc = chain_page(t, ci->head, ci->type, logical, &p);
    if (rc != RL_OK)
        return rc;
    rl__fmt_bhdr_decode(p->buf, &h);
    rc = link_check(t, ci, p, idx);
    rl__cache_unpin(p);
    *next = h.next;
    return rc;
}

/* A cursor on a chain: the block holding stream offset `start`. */
typedef struct walk {
    uint64_t logical, idx, start;
} walk;

/* Move w forward until off lies in its block or w is at the tail. */
static int walk_to(rl__blk_txn *t, const chain_info *ci, walk *w, uint64_t off)
{
    while (off >= w->start + data_cap(t->db, w->idx) && w->idx + 1 < ci->count) {
        uint64_t next;
        int rc = next_of(t, ci, w->logical, w->idx, &next);
        if (rc != RL_OK)
            return rc;
        w->start += data_cap(t->db, w->idx);
        w->logical = next;
        w->idx++;
    }
    return RL_OK;
}

/* Link a new empty block after the tail. */
static int append_block(rl__blk_txn *t, chain_info *ci)
{
    rl__blk_page *p;
    rl__blk_bhdr h;
    uint64_t logical;
    int rc = rl__blk_new(t, ci->type, ci->head, &logical, &p);
    if (rc != RL_OK)
        return rc;
    rl__cache_unpin(p);
    rc = chain_page_w(t, ci, ci->tail, &p);
    if (rc != RL_OK)
        return rc;
    rl__fmt_bhdr_decode(p->buf, &h);
    h.next = logical;
    rl__fmt_bhdr_encode(p->buf, &h);
    rl__cache_unpin(p);
    ci->tail = logical;
    ci->count++;
    return RL_OK;
}

/* Copy k bytes into block w at stream offset off; grow its used count. */
static int put_bytes(rl__blk_txn *t, const chain_info *ci, const walk *w,
                     uint64_t off, const uint8_t *src, uint32_t k)
{
    rl__blk_page *p;
    rl__blk_bhdr h;
    uint32_t within = (uint32_t)(off - w->start);
    int rc = chain_page_w(t, ci, w->logical, &p);
    if (rc != RL_OK)
        return rc;
    memcpy(p->buf + data_off(w->idx) + within, src, k);
    rl__fmt_bhdr_decode(p->buf, &h);
    if (h.used < data_off(w->idx) - RL__HDR_SIZE + within + k)
        h.used = data_off(w->idx) - RL__HDR_SIZE + within + k;
    rl__fmt_bhdr_encode(p->buf, &h);
    rl__cache_unpin(p);
    return RL_OK;
}

/* A walk positioned as close to off as the head alone allows: at the
 * tail when off lies in it (invariant 1), else at the head. */
static walk walk_start(const rl__blk_db *db, const chain_info *ci, uint64_t off)
{
    walk w = {ci->head, 0, 0};
    uint64_t tail_start = ci->count == 1
                              ? 0
                              : data_cap(db, 0) + (ci->count - 2) * (uint64_t)db->payload;
    if (off >= tail_start) {
        w.logical = ci->tail;
        w.idx = ci->count - 1;
        w.start = tail_start;
    }
    return w;
}

static int chain_write(rl__blk_txn *t, uint64_t head, uint64_t off,
                       const uint8_t *src, size_t n, rl__blk_pos *where)
{
    chain_info ci;
    walk w;
    uint64_t count0;
    int rc = head_read(t, head, &ci);
    if (rc != RL_OK)
        return rc;
    if (off > ci.len)
        return RL__FAIL(&t->err, RL_RANGE, "chain %llu: write at %llu past its end %llu",
                        (unsigned long long)head, (unsigned long long)off,
                        (unsigned long long)ci.len);
    count0 = ci.count;
    w = walk_start(t->db, &ci, off);
    rc = walk_to(t, &ci, &w, off);
    while (rc == RL_OK && n > 0) {
        uint32_t cap = data_cap(t->db, w.idx), k;
        if (off == w.start + cap) { /* this block is full: go on */
            if (w.idx + 1 == ci.count)
                rc = append_block(t, &ci);
            if (rc == RL_OK)
                rc = walk_to(t, &ci, &w, off);
            continue;
        }
        if (where) {
            where->logical = w.logical;
            where->off = (uint32_t)(off - w.start);
            where = NULL;
        }
        k = (uint32_t)(n < w.start + cap - off ? n : w.start + cap - off);
        rc = put_bytes(t, &ci, &w, off, src, k);
        off += k;
        src += k;
        n -= k;
    }
    if (rc != RL_OK)
        return rc;
    if (off <= ci.len && ci.count == count0)
        return RL_OK; /* length, tail and count unchanged: head untouched */
    if (off > ci.len)
        ci.len = off;
    return head_write(t, &ci);
}

/* Copy n bytes between buf and the chain from position *pos on, following
 * links; *pos ends just past the last byte. write != 0 copies into the
 * chain (copy-on-write). Only bytes already in the stream are touched. */
static int chain_pio(rl__blk_txn *t, uint64_t head, rl__blk_pos *pos,
                     uint8_t *buf, size_t n, int write)
{
    const chain_info ci = {head, 0, 0, 0, 0};
    while (n > 0) {
        rl__blk_page *p;
        rl__blk_bhdr h;
        uint32_t skip = pos->logical == head ? RL__CHAIN_HDR : 0, have, k;
        int rc = write ? chain_page_w(t, &ci, pos->logical, &p)
                       : chain_page(t, head, 0, pos->logical, &p);
        if (rc != RL_OK)
            return rc;
        rl__fmt_bhdr_decode(p->buf, &h);
        have = h.used >= skip ? h.used - skip : 0;
        if (pos->off >= have && h.next != 0 && pos->off == t->db->payload - skip) {
            rl__cache_unpin(p); /* at the end of a full block: step over */
            pos->logical = h.next;
            pos->off = 0;
            continue;
        }
        if (pos->off >= have) {
            rl__cache_unpin(p);
            return RL__FAIL(&t->err, RL_RANGE, "chain %llu: position %llu:%u is past its end",
                            (unsigned long long)head, (unsigned long long)pos->logical,
                            pos->off);
        }
        k = have - pos->off < n ? have - pos->off : (uint32_t)n;
        if (write)
            memcpy(p->buf + RL__HDR_SIZE + skip + pos->off, buf, k);
        else
            memcpy(buf, p->buf + RL__HDR_SIZE + skip + pos->off, k);
        rl__cache_unpin(p);
        pos->off += k;
        buf += k;
        n -= k;
    }
    return RL_OK;
}

static int chain_read(rl__blk_txn *t, uint64_t head, uint64_t off, uint8_t *dst,
                      size_t n)
{
    chain_info ci;
    walk w = {head, 0, 0};
    int rc = head_read(t, head, &ci);
    if (rc != RL_OK)
        return rc;
    if (off > ci.len || n > ci.len - off)
        return RL__FAIL(&t->err, RL_RANGE, "chain %llu: read of %zu bytes at %llu past its end %llu",
                        (unsigned long long)head, n, (unsigned long long)off,
                        (unsigned long long)ci.len);
    while (n > 0) {
        rl__blk_page *p;
        uint32_t cap, k;
        rc = walk_to(t, &ci, &w, off);
        if (rc == RL_OK)
            rc = chain_page(t, head, ci.type, w.logical, &p);
        if (rc != RL_OK)
            return rc;
        rc = link_check(t, &ci, p, w.idx);
        if (rc != RL_OK) {
            rl__cache_unpin(p);
            return rc;
        }
        cap = data_cap(t->db, w.idx);
        k = (uint32_t)(n < w.start + cap - off ? n : w.start + cap - off);
        memcpy(dst, p->buf + data_off(w.idx) + (off - w.start), k);
        rl__cache_unpin(p);
        off += k;
        dst += k;
        n -= k;
    }
    return RL_OK;
}

/* Free one block (physical and logical); *next receives its link. */
static int free_block(rl__blk_txn *t, const chain_info *ci, uint64_t logical,
                      uint64_t *next)
{
    rl__blk_page *p;
    rl__blk_bhdr h;
    int rc = chain_page(t, ci->head, ci->type, logical, &p);
    if (rc != RL_OK)
        return rc;
    rl__fmt_bhdr_decode(p->buf, &h);
    *next = h.next;
    rc = rl__free_page(t, p, h.txn);
    if (rc == RL_OK)
        rc = rl__map_free_logical(t, logical);
    return rc;
}

/* Free `count` blocks starting at logical. */
static int free_run(rl__blk_txn *t, const chain_info *ci, uint64_t logical,
                    uint64_t count)
{
    int rc = RL_OK;
    for (uint64_t i = 0; i < count && rc == RL_OK; i++) {
        uint64_t next = 0;
        if (logical == 0)
            return RL__CORRUPT(&t->err, "chain %llu ends early",
                               (unsigned long long)ci->head);
        rc = free_block(t, ci, logical, &next);
        logical = next;
    }
    if (rc == RL_OK && logical != 0)
        return RL__CORRUPT(&t->err, "chain %llu is longer than its header says",
                           (unsigned long long)ci->head);
    return rc;
}

/* Make block w the tail holding `keep` stream bytes. */
static int cut_after(rl__blk_txn *t, chain_info *ci, const walk *w, uint64_t keep,
                     uint64_t *dropped_first)
{
    rl__blk_page *p;
    rl__blk_bhdr h;
    int rc = chain_page_w(t, ci, w->logical, &p);
    if (rc != RL_OK)
        return rc;
    rl__fmt_bhdr_decode(p->buf, &h);
    *dropped_first = h.next;
    h.next = 0;
    h.used = data_off(w->idx) - RL__HDR_SIZE + (uint32_t)keep;
    rl__fmt_bhdr_encode(p->buf, &h);
    rl__cache_unpin(p);
    return RL_OK;
}

static int chain_truncate(rl__blk_txn *t, uint64_t head, uint64_t len)
{
    chain_info ci;
    walk w = {head, 0, 0};
    uint64_t dropped = 0, old_count;
    int rc = head_read(t, head, &ci);
    if (rc != RL_OK)
        return rc;
    if (len > ci.len)
        return RL__FAIL(&t->err, RL_RANGE, "chain %llu: truncate to %llu past its end %llu",
                        (unsigned long long)head, (unsigned long long)len,
                        (unsigned long long)ci.len);
    /* The new tail is the block holding byte len-1 (the head if len is 0). */
    rc = walk_to(t, &ci, &w, len ? len - 1 : 0);
    if (rc == RL_OK)
        rc = cut_after(t, &ci, &w, len - w.start, &dropped);
    old_count = ci.count;
    ci.count = w.idx + 1;
    ci.tail = w.logical;
    ci.len = len;
    if (rc == RL_OK)
        rc = free_run(t, &ci, dropped, old_count - ci.count);
    return rc == RL_OK ? head_write(t, &ci) : rc;
}

static int chain_create(rl__blk_txn *t, uint8_t type, uint64_t *head)
{
    rl__blk_page *p;
    int rc = rl__blk_new(t, type, 0, head, &p);
    if (rc != RL_OK)
        return rc;
    rl__fmt_bhdr_set_used(p->buf, RL__CHAIN_HDR);
    rl__put64(p->buf + RL__HDR_SIZE + 8, *head); /* tail */
    rl__put64(p->buf + RL__HDR_SIZE + 16, 1);    /* count */
    rl__cache_unpin(p);
    return RL_OK;
}

/* ---- entry points: argument checks and the lock ---------------------------- */

static int enter(rl__blk_txn *t, int write)
{
    if (!t)
        return RL_MISUSE;
    pthread_mutex_lock(&t->db->mu);
    rl__err_clear(&t->err);
    if (write && !t->write) {
        pthread_mutex_unlock(&t->db->mu);
        return RL__FAIL(&t->err, RL_READONLY, "write in a read transaction");
    }
    return RL_OK;
}

static int leave(rl__blk_txn *t, int rc)
{
    pthread_mutex_unlock(&t->db->mu);
    return rc;
}

int rl__blk_chain_create(rl__blk_txn *t, uint8_t type, uint64_t *head)
{
    int rc = enter(t, 1);
    if (rc != RL_OK)
        return rc;
    if (type < RL__BLK_TYPE_CHAIN)
        return leave(t, RL__FAIL(&t->err, RL_INVALID, "chain type %u is reserved", type));
    return leave(t, chain_create(t, type, head));
}

/* The chain's header, under the lock. */
static int info_of(rl__blk_txn *t, uint64_t head, chain_info *ci)
{
    int rc = enter(t, 0);
    if (rc != RL_OK)
        return rc;
    return leave(t, head_read(t, head, ci));
}

int rl__blk_chain_length(rl__blk_txn *t, uint64_t head, uint64_t *len)
{
    chain_info ci;
    int rc = info_of(t, head, &ci);
    if (rc == RL_OK)
        *len = ci.len;
    return rc;
}

int rl__blk_chain_blocks(rl__blk_txn *t, uint64_t head, uint64_t *count)
{
    chain_info ci;
    int rc = info_of(t, head, &ci);
    if (rc == RL_OK)
        *count = ci.count;
    return rc;
}

int rl__blk_chain_read(rl__blk_txn *t, uint64_t head, uint64_t off, void *buf,
                       size_t n)
{
    int rc = enter(t, 0);
    if (rc != RL_OK)
        return rc;
    return leave(t, chain_read(t, head, off, buf, n));
}

int rl__blk_chain_write(rl__blk_txn *t, uint64_t head, uint64_t off,
                        const void *buf, size_t n)
{
    int rc = enter(t, 1);
    if (rc != RL_OK)
        return rc;
    return leave(t, chain_write(t, head, off, buf, n, NULL));
}

int rl__blk_chain_append(rl__blk_txn *t, uint64_t head, const void *buf, size_t n)
{
    return rl__blk_chain_append_pos(t, head, buf, n, NULL);
}

int rl__blk_chain_append_pos(rl__blk_txn *t, uint64_t head, const void *buf,
                             size_t n, rl__blk_pos *where)
{
    chain_info ci;
    int rc = enter(t, 1);
    if (rc != RL_OK)
        return rc;
    rc = head_read(t, head, &ci);
    if (rc == RL_OK)
        rc = chain_write(t, head, ci.len, buf, n, where);
    return leave(t, rc);
}

int rl__blk_chain_pread(rl__blk_txn *t, uint64_t head, rl__blk_pos *pos,
                        void *buf, size_t n)
{
    int rc = enter(t, 0);
    if (rc != RL_OK)
        return rc;
    return leave(t, chain_pio(t, head, pos, buf, n, 0));
}

int rl__blk_chain_pwrite(rl__blk_txn *t, uint64_t head, rl__blk_pos *pos,
                         const void *buf, size_t n)
{
    int rc = enter(t, 1);
    if (rc != RL_OK)
        return rc;
    return leave(t, chain_pio(t, head, pos, (uint8_t *)(uintptr_t)buf, n, 1));
}

int rl__blk_chain_truncate(rl__blk_txn *t, uint64_t head, uint64_t len)
{
    int rc = enter(t, 1);
    if (rc != RL_OK)
        return rc;
    return leave(t, chain_truncate(t, head, len));
}

int rl__blk_chain_free(rl__blk_txn *t, uint64_t head)
{
    chain_info ci;
    int rc = enter(t, 1);
    if (rc != RL_OK)
        return rc;
    rc = head_read(t, head, &ci);
    if (rc == RL_OK)
        rc = free_run(t, &ci, head, ci.count);
    return leave(t, rc);
}
