/*
** schema/btree_iter.c: B+tree iterators after rl__bt_seek (btree.c) has
** placed them: stepping along a tree's leaf chain cell by cell
** (rl__bt_next), counting the keys a predicate accepts with a binary
** search per leaf (rl__bt_count_while), and closing.
**
** An iterator holds a read reference to its current leaf and the index
** of the next cell. Leaving a leaf, it keeps that leaf's last key, and the
** next leaf's first key must follow it.
** Invariants:
**   1. Keys ascend along the leaf chain (btree.c, INV 1): a chain that goes
**      back, loops (more steps than the file has blocks), reaches an
**      interior node or another tree's leaf is reported RL_CORRUPT, never
**      followed.
**   2. A leaf's cells are checked as they are read; the page is never read
**      past its end.
*/
#include <string.h>

#include "btree_int.h"

/* The node view of the iterator's current leaf (its reference stays the
 * iterator's). */
static void iter_node(const rl__bt_iter *it, node *nd)
{
    nd->ref = it->ref;
    node_header_load(nd, it->ref.data, it->ref.cap);
}

/* Remember the last key of leaf nd, which the iterator is leaving. */
static int keep_last_key(rl__bt_iter *it, const node *nd)
{
    const uint8_t *key;
    size_t klen;
    if (nd->n == 0)
        return RL_OK; /* an empty leaf: the key before it still counts */
    if (rl__bt_key_at(nd, nd->n - 1, &key, &klen) != RL_OK || klen > RL__BT_MAX_KEY)
        return rl__bt_corrupt(it->t, it->leaf, "damaged cell");
    memcpy(it->last, key, klen);
    it->last_len = klen;
    it->has_last = 1;
    return RL_OK;
}

/* Whether leaf nd's keys come after every key the iterator has passed
 * (invariant 1): a chain that goes back is damaged. */
static int follows_last_key(const rl__bt_iter *it, const node *nd)
{
    const uint8_t *key;
    size_t klen;
    if (!it->has_last || nd->n == 0)
        return 1;
    return rl__bt_key_at(nd, 0, &key, &klen) == RL_OK &&
           key_cmp(key, klen, it->last, it->last_len) > 0;
}

/* Move the iterator from leaf nd (its current one) to the next leaf;
 * RL_DONE after the last. */
static int next_leaf(rl__bt_iter *it, node *nd)
{
    uint64_t next = link_of(nd);
    uint8_t layout = nd->layout;
    int rc = keep_last_key(it, nd);
    rl__blk_block_put(&it->ref);
    if (rc != RL_OK)
        return rc;
    if (next == 0)
        return RL_DONE;
    if (++it->steps > rl__blk_block_count(it->t))
        return rl__bt_corrupt(it->t, next, "leaf chain loops");
    rc = rl__bt_node_open(it->t, next, 0, nd);
    if (rc == RL_OK && (nd->kind != KIND_LEAF || nd->layout != layout)) {
        rl__blk_block_put(&nd->ref);
        rc = rl__bt_corrupt(it->t, next, "leaf chain reaches an interior node or another tree's leaf");
    } else if (rc == RL_OK && !follows_last_key(it, nd)) {
        rl__blk_block_put(&nd->ref);
        rc = rl__bt_corrupt(it->t, next, "leaf chain goes back in key order");
    }
    if (rc != RL_OK)
        return rc;
    it->ref = nd->ref;
    it->leaf = next;
    it->idx = 0;
    return RL_OK;
}

/* Whether pred accepts the last key of leaf nd (keys ascend, so then it
 * accepts all of them from it->idx on): 1 or 0; -1 if pred or the cell
 * reports damage. */
static int last_key_passes(rl__bt_iter *it, const node *nd, rl__bt_key_pred pred, void *arg)
{
    const uint8_t *key;
    size_t klen;
    int rc;
    if (rl__bt_key_at(nd, nd->n - 1, &key, &klen) != RL_OK) {
        rl__bt_corrupt(it->t, it->leaf, "damaged cell");
        return -1;
    }
    rc = pred(key, klen, arg);
    return rc < 0 ? -1 : rc != 0;
}

int rl__bt_count_while(rl__bt_iter *it, rl__bt_key_pred pred, void *arg, uint64_t *n)
{
    for (;;) {
        node nd;
        uint32_t lo, hi;
        int rc;
        if (!it->ref.page_)
            return RL_OK;
        iter_node(it, &nd);
        if (nd.kind != KIND_LEAF)
            return rl__bt_corrupt(it->t, it->leaf, "damaged cell");
        lo = it->idx;
        hi = nd.n;
        if (lo < hi) { /* the last key first: a leaf inside the range passes whole */
            rc = last_key_passes(it, &nd, pred, arg);
            if (rc < 0)
                return RL_CORRUPT;
            if (rc)
                lo = hi;
            else
                hi--; /* the last key is rejected: the search need not probe it again */
        }
        while (lo < hi) { /* the first key from idx on that pred rejects */
            uint32_t mid = lo + (hi - lo) / 2;
            const uint8_t *key;
            size_t klen;
            if (rl__bt_key_at(&nd, mid, &key, &klen) != RL_OK)
                return rl__bt_corrupt(it->t, it->leaf, "damaged cell");
            rc = pred(key, klen, arg);
            if (rc < 0)
                return RL_CORRUPT;
            if (rc)
                lo = mid + 1;
            else
                hi = mid;
        }
        *n += lo - it->idx;
        it->idx = lo;
        if (lo < nd.n)
            return RL_OK; /* a key out of range: the count ends here */
        rc = next_leaf(it, &nd);
        if (rc != RL_OK)
            return rc == RL_DONE ? RL_OK : rc;
    }
}

/* rl__bt_next's common case, a cell of a table's leaf, read straight
 * from the page (no node set up per cell): 1 when it was one and fits
 * (then returned through k..flag), 0 to take the general way, which also
 * reports damage. */
static int next_id_cell(rl__bt_iter *it, const uint8_t **k, size_t *kn, const uint8_t **v,
                        size_t *vn, int *flag)
{
    const uint8_t *d = it->ref.data;
    size_t size = it->ref.cap, at_cell, at, kl;
    uint64_t vl;
    if (d[0] != KIND_LEAF || d[1] != RL__BT_IDS || it->idx >= rl__get16(d + 2))
        return 0;
    at_cell = rl__get16(d + NODE_HDR + 2 * it->idx);
    if (at_cell < rl__get16(d + 4) || at_cell >= size || (kl = id_key_len(d[at_cell])) == 0 ||
        kl >= size - at_cell)
        return 0;
    at = at_cell + kl;
    if (d[at] < 0x80) /* one byte of length: a short value */
        vl = d[at++];
    else if (rl__get_varint(d, size, &at, &vl) != RL_OK)
        return 0;
    if ((vl >> 1) > size - at)
        return 0;
    *k = d + at_cell;
    *kn = kl;
    *v = d + at;
    *vn = (size_t)(vl >> 1);
    if (flag)
        *flag = (int)(vl & 1);
    it->idx++;
    return 1;
}

int rl__bt_next(rl__bt_iter *it, const uint8_t **k, size_t *kn, const uint8_t **v, size_t *vn,
                int *flag)
{
    if (it->ref.page_ && next_id_cell(it, k, kn, v, vn, flag))
        return RL_OK;
    for (;;) {
        node nd;
        cell c;
        int rc;
        if (!it->ref.page_)
            return RL_DONE;
        iter_node(it, &nd);
        if (it->idx < nd.n) {
            if (nd.kind != KIND_LEAF || rl__bt_cell_read(&nd, it->idx, &c) != RL_OK)
                return rl__bt_corrupt(it->t, it->leaf, "damaged cell");
            it->idx++;
            *k = c.key;
            *kn = c.klen;
            *v = c.val;
            *vn = c.vlen;
            if (flag)
                *flag = c.flag;
            return RL_OK;
        }
        rc = next_leaf(it, &nd);
        if (rc != RL_OK)
            return rc;
    }
}

void rl__bt_iter_close(rl__bt_iter *it)
{
    rl__blk_block_put(&it->ref);
}
