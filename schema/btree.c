/*
** schema/btree.c: B+trees of byte-string keys and values, one node per
** single block (blocks/block.c). Tables keep their rows in one (key: the
** id, value: the record); indexes keep (values, id) keys. This file owns
** the node format, searches and changes of one key, and an iterator's
** seek; stepping iterators along the leaves is in btree_iter.c, walks
** over whole trees and the bulk builder are in btree_bulk.c.
**
** Node payload, a slotted page (docs/format.md, "B+tree node"):
**     0   u8   kind: 1 leaf, 2 interior
**     1   u8   layout of the cells (every node of a tree has its root's)
**     2   u16  n, the number of cells
**     4   u16  start: offset of the lowest cell byte (cells fill the page
**              from its end downwards)
**     6   u16  frag: bytes of dead cells between start and the end
**     8   u16 x n  slots: offsets of the cells, in key order
** Cell layouts (the flag bit is the caller's; child: keys >= key):
**   RL__BT_BYTES  leaf: varint key length, varint (value length << 1 |
**                 flag), key, value; interior: varint key length, key,
**                 u48 child
**   RL__BT_IDS    keys are id keys (rl__id_key), whose first byte gives
**                 their length: leaf: key, varint (value length << 1 |
**                 flag), value; interior: key, u48 child (tables)
**   RL__BT_KEYS   no values: leaf: varint key length, key; interior as
**                 RL__BT_BYTES
**   RL__BT_INDEX(k) keys of k index values and an id (index.c), whose
**                 encodings give their lengths, and no values: leaf: key;
**                 interior: key, u48 child (indexes of k columns)
** The block header's next link holds, in a leaf, the next leaf (0: the
** last), so a tree's leaves are a chain of blocks in key order; in an
** interior node, the first child (keys below cell 0's key).
** Keys compare as unsigned bytes, then by length.
**
** Nodes link LOGICAL numbers, so copying a node on write never touches its
** parent: the block map absorbs it.
** Invariants:
**   1. Keys ascend within a node and along the leaf chain; all leaves are
**      at the same depth; an interior node has at least one cell.
**   2. A cell is at most rl__bt_max_cell(): four fit in every node.
**   3. A key appended after the last cell of a full node starts the new
**      right node instead of splitting in halves, so keys inserted in
**      order fill nodes completely. An index leaf that gets the last key
**      of a run of equal values splits right after it (split_after_run),
**      so keys appended run by run fill their leaves too.
**   4. Deletes leave nodes underfull (never merged); vacuum rebuilds.
**   5. The root never moves: a tree is named by its root's logical number
**      for its whole life.
*/
#include <stdlib.h>
#include <string.h>

#include "btree_int.h"


static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t put_var(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

uint32_t rl__bt_max_cell(uint32_t payload)
{
    return (payload - NODE_HDR) / 4 - 2;
}

/* Whether the keys of a layout give their own length (cells then hold
 * none), and whether its leaf cells have values. */
static int self_sized(uint8_t layout)
{
    return layout == RL__BT_IDS || layout >= RL__BT_INDEX(1);
}

static int has_values(uint8_t layout)
{
    return layout == RL__BT_BYTES || layout == RL__BT_IDS;
}

/* The length of the self-sized key at p, with avail bytes there: an id
 * key, or an index key's values and id; 0 if no such key fits. */
static inline size_t self_key_len(uint8_t layout, const uint8_t *p, size_t avail)
{
    size_t off = 0, n;
    if (layout == RL__BT_IDS) {
        n = avail ? id_key_len(p[0]) : 0;
        return n <= avail ? n : 0;
    }
    for (unsigned part = 0; part <= (unsigned)(layout - RL__BT_INDEX(0)); part++) { /* values, then the id */
        uint8_t first = off < avail ? p[off] : 0;
        if (first >= 0x77 && first <= 0x88) /* an INTEGER or the id: inline */
            n = first >= 0x80 ? first - 0x7fu : 0x80u - first;
        else
            n = rl__ix_component_len(p + off, avail - off);
        if (n == 0 || n > avail - off)
            return 0;
        off += n;
    }
    return off;
}

/* Whether a cell can go into a tree of this layout. */
static int cell_fits_layout(uint8_t layout, const cell *c)
{
    if (self_sized(layout) && self_key_len(layout, c->key, c->klen) != c->klen)
        return 0;
    return has_values(layout) || (c->vlen == 0 && !c->flag);
}

size_t rl__bt_cell_size(const node *nd, const cell *c)
{
    size_t head = self_sized(nd->layout) ? 0 : varint_len(c->klen);
    if (nd->kind != KIND_LEAF)
        return head + c->klen + CHILD_SIZE;
    if (!has_values(nd->layout))
        return head + c->klen;
    return head + c->klen + varint_len((uint64_t)c->vlen << 1) + c->vlen;
}

static void cell_write(const node *nd, const cell *c, uint8_t *p)
{
    int leaf = nd->kind == KIND_LEAF;
    uint64_t vl = ((uint64_t)c->vlen << 1) | (c->flag != 0);
    if (!self_sized(nd->layout))
        p += put_var(p, c->klen);
    if (leaf && nd->layout == RL__BT_BYTES)
        p += put_var(p, vl);
    memcpy(p, c->key, c->klen);
    p += c->klen;
    if (!leaf) {
        rl__put48(p, c->child);
        return;
    }
    if (nd->layout == RL__BT_IDS)
        p += put_var(p, vl);
    if (has_values(nd->layout) && c->vlen)
        memcpy(p, c->val, c->vlen);
}

/* RL_OK if c can be a leaf cell of a tree of this layout: its key in the
 * layout's form, and its leaf cell and the interior cell its key may
 * become both no larger than a cell may be (INV 2). */
int rl__bt_entry_check(rl__blk_txn *t, uint8_t layout, const cell *c)
{
    node leaf = {.kind = KIND_LEAF, .layout = layout};
    node inner = {.kind = KIND_INTERIOR, .layout = layout};
    size_t max = rl__bt_max_cell(rl__blk_payload_of(t));
    size_t ls = rl__bt_cell_size(&leaf, c), is = rl__bt_cell_size(&inner, c);
    if (c->klen > RL__BT_MAX_KEY || ls > max || is > max)
        return RL__FAIL(rl__blk_txn_err(t), RL_TOOBIG, "a B+tree cell of %zu bytes (key %zu)",
                        ls > is ? ls : is, c->klen);
    if (!cell_fits_layout(layout, c))
        return RL__FAIL(rl__blk_txn_err(t), RL_MISUSE,
                        "a B+tree entry that does not fit its tree's layout %u", layout);
    return RL_OK;
}

/* ---- reading a node ------------------------------------------------------ */

static uint32_t slot(const node *nd, uint32_t i)
{
    return rl__get16(nd->ref.data + NODE_HDR + 2 * i);
}

/* Decode cell i; RL_CORRUPT if it does not fit in the page. */
int rl__bt_cell_read(const node *nd, uint32_t i, cell *c)
{
    size_t off = slot(nd, i), end = nd->size;
    uint64_t kl, vl = 0;
    const uint8_t *d = nd->ref.data;
    int leaf = nd->kind == KIND_LEAF, ids = nd->layout == RL__BT_IDS;
    int has_value = leaf && has_values(nd->layout);
    if (off < nd->start || off >= end)
        return RL_CORRUPT;
    if (self_sized(nd->layout) ? (kl = self_key_len(nd->layout, d + off, end - off)) == 0
                               : rl__get_varint(d, end, &off, &kl) != RL_OK)
        return RL_CORRUPT;
    if (has_value && !ids && rl__get_varint(d, end, &off, &vl) != RL_OK)
        return RL_CORRUPT;
    if (kl > end - off)
        return RL_CORRUPT;
    c->key = d + off;
    c->klen = (size_t)kl;
    off += kl;
    if (has_value && ids && rl__get_varint(d, end, &off, &vl) != RL_OK)
        return RL_CORRUPT;
    if (leaf ? (vl >> 1) > end - off : CHILD_SIZE > end - off)
        return RL_CORRUPT;
    c->val = d + off;
    c->vlen = (size_t)(vl >> 1);
    c->child = leaf ? 0 : rl__get48(d + off);
    c->flag = (int)(vl & 1);
    return RL_OK;
}


int rl__bt_corrupt(rl__blk_txn *t, uint64_t logical, const char *why)
{
    return RL__CORRUPT(rl__blk_txn_err(t), "B+tree node %llu: %s",
                       (unsigned long long)logical, why);
}

int rl__bt_node_open(rl__blk_txn *t, uint64_t logical, int write, node *nd)
{
    int rc = rl__blk_block_get(t, logical, write, &nd->ref);
    if (rc != RL_OK)
        return rc;
    node_header_load(nd, nd->ref.data, nd->ref.cap);
    if (nd->ref.type != RL__TYPE_BTREE || (nd->kind != KIND_LEAF && nd->kind != KIND_INTERIOR) ||
        nd->layout > RL__BT_INDEX(RL__BT_INDEX_MAX) ||
        NODE_HDR + 2 * nd->n > nd->start || nd->start > nd->size ||
        nd->frag > nd->size - nd->start ||
        (nd->kind == KIND_INTERIOR && (nd->n == 0 || link_of(nd) == 0))) {
        rl__blk_block_put(&nd->ref);
        return rl__bt_corrupt(t, logical, "damaged header");
    }
    return RL_OK;
}

void rl__bt_header_store(node *nd)
{
    nd->ref.wdata[0] = nd->kind;
    nd->ref.wdata[1] = nd->layout;
    rl__put16(nd->ref.wdata + 2, (uint16_t)nd->n);
    rl__put16(nd->ref.wdata + 4, (uint16_t)nd->start);
    rl__put16(nd->ref.wdata + 6, (uint16_t)nd->frag);
    rl__blk_block_set_used(&nd->ref, nd->size);
}

/* A new empty node of the tree whose root is root (0: the new node is a
 * root itself); every node's owner is its tree's root. */
int rl__bt_node_new(rl__blk_txn *t, uint8_t kind, uint8_t layout, uint64_t root,
                    uint64_t *logical, node *nd)
{
    int rc = rl__blk_block_alloc(t, RL__TYPE_BTREE, root, logical, &nd->ref);
    if (rc != RL_OK)
        return rc;
    nd->kind = kind;
    nd->layout = layout;
    nd->n = 0;
    nd->size = nd->ref.cap;
    nd->start = nd->size;
    nd->frag = 0;
    rl__bt_header_store(nd);
    return RL_OK;
}


int rl__bt_key_at(const node *nd, uint32_t i, const uint8_t **key, size_t *klen)
{
    size_t off = slot(nd, i), end = nd->size;
    uint64_t kl;
    const uint8_t *d = nd->ref.data;
    if (off < nd->start || off >= end)
        return RL_CORRUPT;
    if (nd->layout == RL__BT_IDS) { /* the common case, inline: 1 + n bytes */
        uint8_t first = d[off];
        kl = first >= 0x80 ? first - 0x7fu : 0x80u - first;
        if (kl > RL__ID_KEY_MAX || kl > end - off)
            return RL_CORRUPT;
    } else if (self_sized(nd->layout)) {
        if ((kl = self_key_len(nd->layout, d + off, end - off)) == 0)
            return RL_CORRUPT;
    } else if (d[off] < 0x80) { /* keys are short: one byte of length */
        kl = d[off++];
    } else if (rl__get_varint(d, end, &off, &kl) != RL_OK) {
        return RL_CORRUPT;
    }
    if (nd->kind == KIND_LEAF && nd->layout == RL__BT_BYTES) { /* step over the value length */
        size_t skip = 0;
        while (off + skip < end && skip < 10 && (d[off + skip] & 0x80))
            skip++;
        off += skip + 1;
        if (off > end)
            return RL_CORRUPT;
    }
    if (kl > end - off)
        return RL_CORRUPT;
    *key = d + off;
    *klen = (size_t)kl;
    return RL_OK;
}

/* First cell with key >= k; *exact when equal. RL_CORRUPT on a bad cell. */
/* Compare cell i's key with k (RL_CORRUPT if the cell is damaged). An
 * index key is self-sized and no whole key is a prefix of another (each
 * of its parts ends itself), so comparing k's bytes with the cell's
 * decides unless they are all equal: only then is the cell's key parsed
 * for its length. (Bytes compared past the cell's key would mean it was
 * a proper prefix of k, which well-formed keys never are; damaged ones
 * can only get a wrong order, and never leave the page.) */
static int probe(const node *nd, uint32_t i, const uint8_t *k, size_t kn, int *cmp)
{
    const uint8_t *key;
    size_t klen, off = slot(nd, i);
    if (nd->layout >= RL__BT_INDEX(1) && off >= nd->start && off < nd->size) {
        size_t avail = nd->size - off;
        int c = memcmp(nd->ref.data + off, k, kn < avail ? kn : avail);
        if (c != 0) {
            *cmp = c;
            return RL_OK;
        }
    }
    if (rl__bt_key_at(nd, i, &key, &klen) != RL_OK)
        return RL_CORRUPT;
    *cmp = key_cmp(key, klen, k, kn);
    return RL_OK;
}

/* The 8 bytes at p as a big-endian number. */
static inline uint64_t load_be64(const uint8_t *p)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
#else
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
#endif
}

/* An id key of kl <= 8 bytes as one number that orders like its bytes:
 * its first byte (which gives its length) in the top byte, the bytes
 * after it below. Keys with the same first byte have the same length, so
 * the numbers compare as the keys do. avail: bytes readable from key. */
static inline uint64_t id_key_number(const uint8_t *key, size_t kl, size_t avail)
{
    const uint64_t top = UINT64_C(0xff) << 56;
    uint64_t x = 0;
    if (avail >= 8) {
        x = load_be64(key);
        return (x & top) | (x & ~top) >> (8 * (8 - kl));
    }
    for (size_t i = 1; i < kl; i++)
        x = x << 8 | key[i];
    return (uint64_t)key[0] << 56 | x;
}

/* lower_bound in a tree of id keys (tables) for an id key k of at most 8
 * bytes: a key is read as one number (id_key_number), not compared with
 * memcmp. A 9-byte key in the node differs from k in its first byte,
 * which alone then decides. */
static int lower_bound_ids(const node *nd, const uint8_t *k, size_t kn, uint32_t *at, int *exact)
{
    uint64_t want = id_key_number(k, kn, kn);
    uint32_t lo = 0, hi = nd->n;
    *exact = 0;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        size_t off = slot(nd, mid), kl;
        uint64_t have;
        if (off < nd->start || off >= nd->size)
            return RL_CORRUPT;
        kl = id_key_len(nd->ref.data[off]);
        if (kl == 0 || kl > nd->size - off)
            return RL_CORRUPT;
        have = kl > 8 ? (uint64_t)nd->ref.data[off] << 56
                      : id_key_number(nd->ref.data + off, kl, nd->size - off);
        if (have < want)
            lo = mid + 1;
        else {
            hi = mid;
            *exact = have == want;
        }
    }
    *at = lo;
    return RL_OK;
}

static int lower_bound(const node *nd, const uint8_t *k, size_t kn, uint32_t *at, int *exact)
{
    uint32_t lo = 0, hi = nd->n;
    if (nd->layout == RL__BT_IDS && kn >= 1 && kn <= 8 && id_key_len(k[0]) == kn)
        return lower_bound_ids(nd, k, kn, at, exact);
    *exact = 0;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int cmp;
        if (probe(nd, mid, k, kn, &cmp) != RL_OK)
            return RL_CORRUPT;
        if (cmp < 0)
            lo = mid + 1;
        else {
            hi = mid;
            *exact = cmp == 0;
        }
    }
    *at = lo;
    return RL_OK;
}

/* The child of an interior node that covers key k. */
static int child_for(rl__blk_txn *t, uint64_t logical, const node *nd, const uint8_t *k,
                     size_t kn, uint64_t *child)
{
    uint32_t i;
    int exact;
    cell c;
    if (lower_bound(nd, k, kn, &i, &exact) != RL_OK)
        return rl__bt_corrupt(t, logical, "damaged cell");
    if (exact)
        i++;
    if (i == 0) {
        *child = link_of(nd);
        return RL_OK;
    }
    if (rl__bt_cell_read(nd, i - 1, &c) != RL_OK)
        return rl__bt_corrupt(t, logical, "damaged cell");
    *child = c.child;
    return RL_OK;
}

/* Whether nd's cells are sound as a whole: each one decodes inside the
 * cell area, the keys ascend, and the cells' bytes and frag add up to
 * the area exactly (frag counts every dead byte). Searches check only
 * what they read; rl_check asks this. */
int rl__bt_node_cells_ok(const node *nd)
{
    size_t bytes = 0;
    cell c, prev = {0};
    for (uint32_t i = 0; i < nd->n; i++, prev = c) {
        if (rl__bt_cell_read(nd, i, &c) != RL_OK || slot(nd, i) < nd->start ||
            (i > 0 && key_cmp(prev.key, prev.klen, c.key, c.klen) >= 0))
            return 0;
        bytes += rl__bt_cell_size(nd, &c);
    }
    return bytes + nd->frag == nd->size - nd->start;
}

/* ---- changing a node ---------------------------------------------------------- */

/* Rewrite the cells compactly at the end of the page (frag becomes 0). */
static int defragment(node *nd)
{
    uint8_t *tmp = malloc(nd->size);
    uint32_t at = nd->size;
    if (!tmp)
        return RL_NOMEM;
    for (uint32_t i = 0; i < nd->n; i++) {
        cell c;
        size_t sz;
        rl__bt_cell_read(nd, i, &c);
        sz = rl__bt_cell_size(nd, &c);
        at -= (uint32_t)sz;
        cell_write(nd, &c, tmp + at);
        rl__put16(nd->ref.wdata + NODE_HDR + 2 * i, (uint16_t)at);
    }
    memcpy(nd->ref.wdata + at, tmp + at, nd->size - at);
    free(tmp);
    nd->start = at;
    nd->frag = 0;
    return RL_OK;
}

static uint32_t free_space(const node *nd)
{
    return nd->start - (NODE_HDR + 2 * nd->n);
}

/* Insert c as cell i if it fits (after defragmenting if that helps);
 * *fitted = 0 when the node is too full. */
int rl__bt_insert_cell(node *nd, uint32_t i, const cell *c, int *fitted)
{
    size_t sz = rl__bt_cell_size(nd, c);
    *fitted = 0;
    if (free_space(nd) < sz + 2) {
        if (free_space(nd) + nd->frag < sz + 2)
            return RL_OK;
        if (defragment(nd) != RL_OK)
            return RL_NOMEM;
    }
    nd->start -= (uint32_t)sz;
    cell_write(nd, c, nd->ref.wdata + nd->start);
    memmove(nd->ref.wdata + NODE_HDR + 2 * (i + 1), nd->ref.wdata + NODE_HDR + 2 * i,
            2 * (size_t)(nd->n - i));
    rl__put16(nd->ref.wdata + NODE_HDR + 2 * i, (uint16_t)nd->start);
    nd->n++;
    rl__bt_header_store(nd);
    *fitted = 1;
    return RL_OK;
}

void rl__bt_remove_cell(node *nd, uint32_t i)
{
    cell c;
    rl__bt_cell_read(nd, i, &c);
    if (slot(nd, i) == nd->start)
        nd->start += (uint32_t)rl__bt_cell_size(nd, &c);
    else
        nd->frag += (uint32_t)rl__bt_cell_size(nd, &c);
    memmove(nd->ref.wdata + NODE_HDR + 2 * i, nd->ref.wdata + NODE_HDR + 2 * (i + 1),
            2 * (size_t)(nd->n - i - 1));
    nd->n--;
    if (nd->n == 0) {
        nd->start = nd->size;
        nd->frag = 0;
    }
    rl__bt_header_store(nd);
}

/* Replace cell i by c, which has the same key, within the old cell's
 * bytes when c is no larger: no slot moves and nothing is defragmented
 * (an update that leaves a row's size alone, the common case, touches one
 * cell). The new cell ends where the old one ended; the bytes before it
 * become frag, or room, when the old cell was the lowest. *fitted = 0
 * (nothing changed) when c is larger. */
static void overwrite_cell(node *nd, uint32_t i, const cell *c, int *fitted)
{
    cell old;
    size_t off = slot(nd, i), osz, sz = rl__bt_cell_size(nd, c);
    *fitted = 0;
    if (rl__bt_cell_read(nd, i, &old) != RL_OK || (osz = rl__bt_cell_size(nd, &old)) < sz)
        return;
    cell_write(nd, c, nd->ref.wdata + off + (osz - sz));
    rl__put16(nd->ref.wdata + NODE_HDR + 2 * i, (uint16_t)(off + (osz - sz)));
    if (off == nd->start)
        nd->start += (uint32_t)(osz - sz);
    else
        nd->frag += (uint32_t)(osz - sz);
    rl__bt_header_store(nd);
    *fitted = 1;
}

/* Fill an empty node with cells[from, to) (they fit by construction). */
static void fill(node *nd, const cell *cells, uint32_t from, uint32_t to)
{
    int fitted;
    for (uint32_t i = from; i < to; i++)
        rl__bt_insert_cell(nd, nd->n, &cells[i], &fitted);
}

/* Where to cut n + 1 cells (sizes sz[]) between two nodes: about half the
 * bytes each, or everything but the last when it was appended (INV 3). */
static uint32_t split_point(const size_t *sz, uint32_t total, int appended, int leaf)
{
    size_t all = 0, acc = 0;
    uint32_t m;
    if (appended)
        return leaf ? total - 1 : total - 2;
    for (uint32_t i = 0; i < total; i++)
        all += sz[i] + 2;
    for (m = 0; m < total - 1 && acc + sz[m] + 2 <= all / 2; m++)
        acc += sz[m] + 2;
    if (m == 0)
        m = 1;
    if (!leaf && m >= total - 1)
        m = total - 2;
    return m;
}

/* The length of index key k's values (all its parts but the id); 0 if
 * damaged. */
static size_t index_values_len(uint8_t layout, const uint8_t *k, size_t kn)
{
    size_t off = 0;
    for (unsigned part = 1; part <= (unsigned)(layout - RL__BT_INDEX(0)); part++) {
        size_t n = rl__ix_component_len(k + off, kn - off);
        if (n == 0)
            return 0;
        off += n;
    }
    return off;
}

static int same_values(uint8_t layout, const cell *a, const cell *b)
{
    size_t n = index_values_len(layout, a->key, a->klen);
    return n != 0 && n == index_values_len(layout, b->key, b->klen) && memcmp(a->key, b->key, n) == 0;
}

/* Where to cut an index leaf that gets cells[i] as the last key of a run
 * of equal values (the key before it has its values, the key after it
 * does not): right after it, as PostgreSQL does. Such a key is most often
 * one of many appended run by run, like (project, id) as ids grow, and
 * each side then fills up with its own runs, where halves would each stay
 * half empty. 0 when that does not apply or a side would not fit. */
static uint32_t split_after_run(const node *nd, const cell *cells, const size_t *sz, uint32_t i,
                                uint32_t total)
{
    size_t left = NODE_HDR, right = NODE_HDR;
    uint32_t m = i + 1 < total ? i + 1 : i; /* at the end: the new key alone on the right */
    if (nd->kind != KIND_LEAF || nd->layout < RL__BT_INDEX(1) || i == 0 ||
        !same_values(nd->layout, &cells[i - 1], &cells[i]) ||
        (i + 1 < total && same_values(nd->layout, &cells[i], &cells[i + 1])))
        return 0;
    for (uint32_t k = 0; k < total; k++)
        *(k < m ? &left : &right) += sz[k] + 2;
    return left <= nd->size && right <= nd->size ? m : 0;
}

/* Split the full node nd while inserting c at position i. The new right
 * node is *right; *sep (copied into sepbuf) separates them in the parent. */
static int split_insert(rl__blk_txn *t, uint64_t root, node *nd, uint32_t i, const cell *c,
                        uint64_t *right,
                        uint8_t *sepbuf, size_t *seplen)
{
    int leaf = nd->kind == KIND_LEAF;
    if (leaf && i == nd->n && link_of(nd) == 0) { /* appended (INV 3): nd stays as it is */
        node r;
        int fitted, rc = rl__bt_node_new(t, nd->kind, nd->layout, root, right, &r);
        if (rc != RL_OK)
            return rc;
        set_link(nd, *right);
        rl__bt_insert_cell(&r, 0, c, &fitted); /* a cell fits in an empty node (INV 2) */
        *seplen = c->klen;
        memcpy(sepbuf, c->key, c->klen);
        rl__blk_block_put(&r.ref);
        return RL_OK;
    }
    uint32_t total = nd->n + 1, m;
    uint8_t *copy = malloc(nd->size);
    cell *cells = malloc(total * sizeof *cells);
    size_t *sz = calloc(total, sizeof *sz);
    node r;
    int rc = (copy && cells && sz) ? RL_OK
                                   : RL__FAIL(rl__blk_txn_err(t), RL_NOMEM, "no memory to split");
    if (rc == RL_OK) {
        node old = *nd;
        memcpy(copy, nd->ref.data, nd->size);
        old.ref.data = copy; /* cells point into this copy from now on */
        for (uint32_t k = 0, j = 0; k < total; k++) {
            if (k == i)
                cells[k] = *c;
            else
                rl__bt_cell_read(&old, j++, &cells[k]);
            sz[k] = rl__bt_cell_size(nd, &cells[k]);
        }
        m = split_after_run(nd, cells, sz, i, total);
        if (m == 0)
            m = split_point(sz, total, i == nd->n && (!leaf || link_of(nd) == 0), leaf);
        rc = rl__bt_node_new(t, nd->kind, nd->layout, root, right, &r);
    }
    if (rc == RL_OK) {
        *seplen = cells[m].klen;
        memcpy(sepbuf, cells[m].key, cells[m].klen);
        if (leaf) {
            set_link(&r, link_of(nd));
            set_link(nd, *right);
            fill(&r, cells, m, total);
        } else { /* cell m moves up; its child is right's first child */
            set_link(&r, cells[m].child);
            fill(&r, cells, m + 1, total);
        }
        nd->n = 0;
        nd->start = nd->size;
        nd->frag = 0;
        fill(nd, cells, 0, m);
        rl__blk_block_put(&r.ref);
    }
    free(copy);
    free(cells);
    free(sz);
    return rc;
}

/* ---- whole-tree operations -------------------------------------------------------- */

int rl__bt_create(rl__blk_txn *t, int layout, uint64_t *root)
{
    node nd;
    int rc = layout >= RL__BT_BYTES && layout <= RL__BT_INDEX(RL__BT_INDEX_MAX)
                 ? rl__bt_node_new(t, KIND_LEAF, (uint8_t)layout, 0, root, &nd)
                 : RL__FAIL(rl__blk_txn_err(t), RL_MISUSE, "no B+tree layout %d", layout);
    if (rc == RL_OK)
        rl__blk_block_put(&nd.ref);
    return rc;
}

/* Walk from root to the leaf for key; path[] gets the interior nodes. The
 * leaf is left open (read-only) in *lnd for the caller to put back. */
static int descend(rl__blk_txn *t, uint64_t root, const uint8_t *k, size_t kn,
                   uint64_t *path, int *depth, uint64_t *leaf, node *lnd)
{
    uint64_t at = root;
    uint8_t layout = 0;
    for (*depth = 0;; (*depth)++) {
        node nd;
        int rc;
        if (*depth == MAX_DEPTH)
            return rl__bt_corrupt(t, root, "tree too deep (a cycle?)");
        rc = rl__bt_node_open(t, at, 0, &nd);
        if (rc != RL_OK)
            return rc;
        if (*depth == 0)
            layout = nd.layout;
        else if (nd.layout != layout) {
            rl__blk_block_put(&nd.ref);
            return rl__bt_corrupt(t, at, "node of another cell layout than its tree's root");
        }
        if (nd.kind == KIND_LEAF) {
            *lnd = nd;
            *leaf = at;
            return RL_OK;
        }
        if (path)
            path[*depth] = at;
        rc = child_for(t, at, &nd, k, kn, &at);
        rl__blk_block_put(&nd.ref);
        if (rc != RL_OK)
            return rc;
    }
}

/* Can k be in leaf nd and in no other leaf of its tree? When nd holds
 * keys on both sides of k (or k itself), as leaves split the keys in
 * order, and when nd is the last leaf and k comes after all of it (so
 * a run of appends keeps to the last leaf). */
static int leaf_owns(const node *nd, const uint8_t *k, size_t kn)
{
    const uint8_t *first, *last;
    size_t fn, ln;
    /* rl__bt_key_at, not probe: a second caller would keep probe from
     * being inlined into lower_bound, which costs every search. */
    return nd->n > 0 && rl__bt_key_at(nd, 0, &first, &fn) == RL_OK &&
           key_cmp(first, fn, k, kn) <= 0 && rl__bt_key_at(nd, nd->n - 1, &last, &ln) == RL_OK &&
           (key_cmp(last, ln, k, kn) >= 0 || nd->ref.next == 0);
}

/* The finger's leaf, open in nd, when the finger still holds and the leaf
 * owns k; *hit = 0 (nothing open) otherwise. */
static int finger_leaf(rl__blk_txn *t, const rl__bt_finger *f, uint64_t root,
                       const uint8_t *k, size_t kn, node *nd, int *hit)
{
    int rc;
    *hit = 0;
    if (!f || !f->leaf || f->root != root || f->epoch != rl__blk_txn_epoch(t))
        return RL_OK;
    rc = rl__bt_node_open(t, f->leaf, 0, nd);
    if (rc != RL_OK)
        return rc;
    if (nd->kind == KIND_LEAF && leaf_owns(nd, k, kn))
        *hit = 1;
    else
        rl__blk_block_put(&nd->ref);
    return RL_OK;
}

static void finger_set(rl__blk_txn *t, rl__bt_finger *f, uint64_t root, uint64_t leaf)
{
    if (f) {
        f->root = root;
        f->leaf = leaf;
        f->epoch = rl__blk_txn_epoch(t);
    }
}

/* The leaf for k: the finger's when it owns k (no descent), else by
 * descent, which the finger then remembers. */
static int find_leaf(rl__blk_txn *t, rl__bt_finger *f, uint64_t root, const uint8_t *k,
                     size_t kn, uint64_t *leaf, node *nd)
{
    int depth, hit, rc = finger_leaf(t, f, root, k, kn, nd, &hit);
    if (rc != RL_OK || hit) {
        *leaf = f ? f->leaf : 0;
        return rc;
    }
    rc = descend(t, root, k, kn, NULL, &depth, leaf, nd);
    if (rc == RL_OK)
        finger_set(t, f, root, *leaf);
    return rc;
}

/* A leaf cell's value into val. */
static int copy_value(rl__blk_txn *t, const cell *c, rl__buf *val)
{
    val->n = 0;
    if (rl__buf_reserve(val, c->vlen + 1) != RL_OK)
        return RL__FAIL(rl__blk_txn_err(t), RL_NOMEM, "no memory");
    memcpy(val->p, c->val, c->vlen);
    val->n = c->vlen;
    return RL_OK;
}

int rl__bt_get_near(rl__blk_txn *t, rl__bt_finger *f, uint64_t root, const uint8_t *k, size_t kn,
                    rl__buf *val, int *flag)
{
    uint64_t leaf;
    node nd;
    uint32_t i;
    int exact, rc = find_leaf(t, f, root, k, kn, &leaf, &nd);
    cell c;
    if (rc != RL_OK)
        return rc;
    if (lower_bound(&nd, k, kn, &i, &exact) != RL_OK || (exact && rl__bt_cell_read(&nd, i, &c) != RL_OK))
        rc = rl__bt_corrupt(t, leaf, "damaged cell");
    else if (!exact)
        rc = RL_NOTFOUND;
    else if (flag)
        *flag = c.flag;
    if (rc == RL_OK && val)
        rc = copy_value(t, &c, val);
    rl__blk_block_put(&nd.ref);
    return rc;
}

/* Insert c as cell i of the writable node nd, splitting nd when c does
 * not fit (then *right and sep are set). */
static int place_cell(rl__blk_txn *t, uint64_t root, node *nd, uint32_t i, const cell *c,
                      uint64_t *right, uint8_t *sep, size_t *seplen)
{
    int fitted = 0, rc = rl__bt_insert_cell(nd, i, c, &fitted);
    if (rc == RL_OK && !fitted)
        rc = split_insert(t, root, nd, i, c, right, sep, seplen);
    return rc;
}

/* Insert cell c into node logical; on a split, *right and sep are set. */
static int insert_into(rl__blk_txn *t, uint64_t root, uint64_t logical, const cell *c,
                       uint64_t *right, uint8_t *sep, size_t *seplen)
{
    node nd;
    uint32_t i = 0;
    int exact, rc = rl__bt_node_open(t, logical, 1, &nd);
    if (rc != RL_OK)
        return rc;
    *right = 0;
    if (lower_bound(&nd, c->key, c->klen, &i, &exact) != RL_OK)
        rc = rl__bt_corrupt(t, logical, "damaged cell");
    if (rc == RL_OK)
        rc = place_cell(t, root, &nd, i, c, right, sep, seplen);
    rl__blk_block_put(&nd.ref);
    return rc;
}

/* Put c into the leaf open in nd at slot i, which the caller found
 * searching for c's key, replacing the cell there when replace (in the
 * old cell's bytes when c is no larger); nd is made writable (its copy
 * holds the same cells) and put back. On a split, *right and sep are set.
 * One search and one lookup of the leaf for the whole put. */
static int put_in_leaf(rl__blk_txn *t, uint64_t root, node *nd, uint32_t i, int replace,
                       const cell *c, uint64_t *right, uint8_t *sep, size_t *seplen)
{
    int fitted = 0, rc = rl__blk_block_upgrade(t, &nd->ref);
    *right = 0;
    if (rc == RL_OK && replace)
        overwrite_cell(nd, i, c, &fitted);
    if (rc == RL_OK && replace && !fitted)
        rl__bt_remove_cell(nd, i);
    if (rc == RL_OK && !fitted)
        rc = place_cell(t, root, nd, i, c, right, sep, seplen);
    rl__blk_block_put(&nd->ref);
    return rc;
}

/* The root split: move its cells to a new left child and make the root an
 * interior node over that child and sep's right node. The root keeps its
 * logical number (INV 5), so nobody has to learn a new one. */
static int grow_root(rl__blk_txn *t, uint64_t root, const cell *sep)
{
    node r, left;
    uint64_t lnum;
    int fitted, rc = rl__bt_node_open(t, root, 1, &r);
    if (rc != RL_OK)
        return rc;
    rc = rl__bt_node_new(t, r.kind, r.layout, root, &lnum, &left);
    if (rc != RL_OK) {
        rl__blk_block_put(&r.ref);
        return rc;
    }
    memcpy(left.ref.wdata, r.ref.data, r.size);
    left.n = r.n;
    left.start = r.start;
    left.frag = r.frag;
    rl__bt_header_store(&left);
    set_link(&left, link_of(&r));
    r.kind = KIND_INTERIOR;
    r.n = 0;
    r.start = r.size;
    r.frag = 0;
    rl__bt_header_store(&r);
    set_link(&r, lnum);
    rl__bt_insert_cell(&r, 0, sep, &fitted);
    rl__blk_block_put(&left.ref);
    rl__blk_block_put(&r.ref);
    return RL_OK;
}

/* Remove key from leaf, open read-only in nd, which this puts back
 * (*found = 0 if absent), copying its value into val and its flag into
 * *flag first when they are not NULL. */
static int remove_key(rl__blk_txn *t, uint64_t leaf, node nd, const uint8_t *k, size_t kn,
                      int *found, rl__buf *val, int *flag)
{
    uint32_t i = 0;
    cell c;
    int exact, rc = RL_OK;
    if (lower_bound(&nd, k, kn, &i, &exact) != RL_OK ||
        (exact && (val || flag) && rl__bt_cell_read(&nd, i, &c) != RL_OK))
        rc = rl__bt_corrupt(t, leaf, "damaged cell");
    else if (exact && flag)
        *flag = c.flag;
    if (rc == RL_OK && exact && val)
        rc = copy_value(t, &c, val);
    *found = exact;
    if (rc == RL_OK && exact && (rc = rl__blk_block_upgrade(t, &nd.ref)) == RL_OK)
        rl__bt_remove_cell(&nd, i); /* the writable copy holds the same cells */
    rl__blk_block_put(&nd.ref);
    return rc;
}

/* Would c go into leaf nd, at the slot of an equal key when replacing,
 * without a split? */
static int fits_without_split(const node *nd, uint32_t i, int replacing, const cell *c)
{
    size_t room = free_space(nd) + nd->frag;
    if (replacing) {
        cell old;
        if (rl__bt_cell_read(nd, i, &old) != RL_OK)
            return 0;
        room += rl__bt_cell_size(nd, &old) + 2;
    }
    return room >= rl__bt_cell_size(nd, c) + 2;
}

int rl__bt_put_near(rl__blk_txn *t, rl__bt_finger *f, uint64_t root, const uint8_t *k,
                    size_t kn, const uint8_t *v, size_t vn, unsigned how)
{
    uint64_t path[MAX_DEPTH], leaf = 0, right;
    uint8_t sep[RL__BT_MAX_KEY];
    size_t seplen = 0;
    int replace = (how & RL__BT_REPLACE) != 0;
    cell c = {k, kn, v, vn, 0, (how & RL__BT_FLAG) != 0};
    uint32_t i = 0;
    node nd;
    int depth = 0, exact = 0, hit, rc;
    if (kn > RL__BT_MAX_KEY)
        return RL__FAIL(rl__blk_txn_err(t), RL_TOOBIG, "a B+tree key of %zu bytes", kn);
    rc = finger_leaf(t, f, root, k, kn, &nd, &hit);
    if (rc != RL_OK)
        return rc;
    for (;;) {
        if (hit) {
            leaf = f->leaf;
        } else { /* the whole way down, keeping the path for a split */
            rc = descend(t, root, k, kn, path, &depth, &leaf, &nd);
            if (rc != RL_OK)
                return rc;
            finger_set(t, f, root, leaf);
        }
        rc = rl__bt_entry_check(t, nd.layout, &c); /* read-only first: a duplicate copies nothing */
        if (rc == RL_OK && lower_bound(&nd, k, kn, &i, &exact) != RL_OK)
            rc = rl__bt_corrupt(t, leaf, "damaged cell");
        if (rc == RL_OK && exact && !replace)
            rc = RL_DUPLICATE;
        if (rc != RL_OK) {
            rl__blk_block_put(&nd.ref);
            return rc;
        }
        if (!hit || fits_without_split(&nd, i, exact, &c))
            break;
        rl__blk_block_put(&nd.ref); /* a split needs the path: descend after all */
        hit = 0;
    }
    rc = put_in_leaf(t, root, &nd, i, exact, &c, &right, sep, &seplen);
    while (rc == RL_OK && right != 0 && depth > 0) { /* carry the split up */
        cell up = {sep, seplen, NULL, 0, right, 0};
        uint8_t sep2[RL__BT_MAX_KEY];
        size_t sep2len = 0;
        rc = insert_into(t, root, path[--depth], &up, &right, sep2, &sep2len);
        memcpy(sep, sep2, sep2len);
        seplen = sep2len;
    }
    if (rc == RL_OK && right != 0) {
        cell up = {sep, seplen, NULL, 0, right, 0};
        rc = grow_root(t, root, &up);
    }
    return rc;
}

int rl__bt_put(rl__blk_txn *t, uint64_t root, const uint8_t *k, size_t kn, const uint8_t *v,
               size_t vn, unsigned how)
{
    return rl__bt_put_near(t, NULL, root, k, kn, v, vn, how);
}

int rl__bt_get(rl__blk_txn *t, uint64_t root, const uint8_t *k, size_t kn, rl__buf *val,
               int *flag)
{
    return rl__bt_get_near(t, NULL, root, k, kn, val, flag);
}

int rl__bt_take_near(rl__blk_txn *t, rl__bt_finger *f, uint64_t root, const uint8_t *k,
                     size_t kn, rl__buf *val, int *flag)
{
    uint64_t leaf;
    node nd;
    int found = 0, rc = find_leaf(t, f, root, k, kn, &leaf, &nd);
    if (rc == RL_OK)
        rc = remove_key(t, leaf, nd, k, kn, &found, val, flag);
    return rc == RL_OK && !found ? RL_NOTFOUND : rc;
}

int rl__bt_take(rl__blk_txn *t, uint64_t root, const uint8_t *k, size_t kn, rl__buf *val,
                int *flag)
{
    return rl__bt_take_near(t, NULL, root, k, kn, val, flag);
}

int rl__bt_delete(rl__blk_txn *t, uint64_t root, const uint8_t *k, size_t kn)
{
    return rl__bt_take(t, root, k, kn, NULL, NULL);
}

/* ---- iterators (the rest is in btree_iter.c) ----------------------------------------- */

int rl__bt_seek(rl__blk_txn *t, uint64_t root, const uint8_t *k, size_t kn, rl__bt_iter *it)
{
    uint64_t leaf;
    node nd;
    int depth, exact, rc;
    it->t = t; /* field by field: last[] is only read once has_last is set */
    it->leaf = it->steps = 0;
    it->idx = 0;
    memset(&it->ref, 0, sizeof it->ref);
    it->has_last = 0;
    it->last_len = 0;
    rc = descend(t, root, k ? k : (const uint8_t *)"", k ? kn : 0, NULL, &depth, &leaf, &nd);
    if (rc != RL_OK)
        return rc;
    if (lower_bound(&nd, k ? k : (const uint8_t *)"", k ? kn : 0, &it->idx, &exact) != RL_OK) {
        rl__blk_block_put(&nd.ref);
        return rl__bt_corrupt(t, leaf, "damaged cell");
    }
    it->ref = nd.ref;
    it->leaf = leaf;
    return RL_OK;
}
