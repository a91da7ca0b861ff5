/*
** schema/btree.c: B+trees from u64 keys to u64 values, one node per single
** block (blocks/block.c). Used as the primary-key index: id -> the place of
** the row's record.
**
** Node payload (docs/format.md, "B+tree node"):
**     0  u8   kind: 1 leaf, 2 interior
**     1  u8   0
**     2  u16  n, the number of entries
**     4  u32  0
**     8  u64  leaf: logical number of the next leaf (0 = last);
**             interior: the first child (keys below entry 0's key)
**     16 n x 16 bytes: (key u64, value u64) in a leaf, (key u64, child u64)
**             in an interior node, whose child holds keys >= key.
** Nodes link LOGICAL numbers, so copying a node on write never touches its
** parent: the block map absorbs it.
** Invariants:
**   1. Keys ascend within a node and along the leaf chain.
**   2. Every leaf is at the same depth; interior nodes hold >= 1 entry.
**   3. Appending the largest key to a full rightmost leaf starts a new leaf
**      instead of splitting in halves (interior nodes likewise), so ids
**      inserted in order fill nodes completely.
** Leaves emptied by deletes stay in place until vacuum rebuilds the tree.
*/
#include <stdlib.h>
#include <string.h>

#include "schema.h"

#define KIND_LEAF 1
#define KIND_INTERIOR 2
#define NODE_HDR 16
#define ENTRY 16
#define MAX_DEPTH 16

typedef struct node {
    rl__blk_ref ref;
    uint8_t kind;
    uint32_t n, cap;
} node;

static uint64_t key_at(const node *nd, uint32_t i)
{
    return rl__get64(nd->ref.data + NODE_HDR + ENTRY * i);
}

static uint64_t val_at(const node *nd, uint32_t i)
{
    return rl__get64(nd->ref.data + NODE_HDR + ENTRY * i + 8);
}

static uint64_t link_of(const node *nd)
{
    return rl__get64(nd->ref.data + 8);
}

static void set_entry(node *nd, uint32_t i, uint64_t key, uint64_t val)
{
    rl__put64(nd->ref.wdata + NODE_HDR + ENTRY * i, key);
    rl__put64(nd->ref.wdata + NODE_HDR + ENTRY * i + 8, val);
}

static void set_count(node *nd, uint32_t n)
{
    nd->n = n;
    rl__put16(nd->ref.wdata + 2, (uint16_t)n);
    rl__blk_block_set_used(&nd->ref, NODE_HDR + ENTRY * n);
}

static int node_open(rl__blk_txn *t, uint64_t logical, int write, node *nd)
{
    int rc = rl__blk_block_get(t, logical, write, &nd->ref);
    if (rc != RL_OK)
        return rc;
    nd->kind = nd->ref.data[0];
    nd->n = rl__get16(nd->ref.data + 2);
    nd->cap = (nd->ref.cap - NODE_HDR) / ENTRY;
    if (nd->ref.type != RL__TYPE_BTREE || (nd->kind != KIND_LEAF && nd->kind != KIND_INTERIOR) ||
        nd->n > nd->cap || (nd->kind == KIND_INTERIOR && (nd->n == 0 || link_of(nd) == 0))) {
        rl__blk_block_put(&nd->ref);
        return RL__CORRUPT(rl__blk_txn_err(t), "B+tree node %llu is damaged",
                           (unsigned long long)logical);
    }
    return RL_OK;
}

static int node_new(rl__blk_txn *t, uint8_t kind, uint64_t *logical, node *nd)
{
    int rc = rl__blk_block_alloc(t, RL__TYPE_BTREE, logical, &nd->ref);
    if (rc != RL_OK)
        return rc;
    nd->kind = kind;
    nd->ref.wdata[0] = kind;
    nd->cap = (nd->ref.cap - NODE_HDR) / ENTRY;
    set_count(nd, 0);
    return RL_OK;
}

/* First entry with key >= k. */
static uint32_t lower_bound(const node *nd, uint64_t k)
{
    uint32_t lo = 0, hi = nd->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (key_at(nd, mid) < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The child of an interior node that covers k; *slot is its entry + 1
 * (0 for the first child). */
static uint64_t child_for(const node *nd, uint64_t k, uint32_t *slot)
{
    uint32_t i = lower_bound(nd, k);
    if (i < nd->n && key_at(nd, i) == k)
        i++;
    *slot = i;
    return i == 0 ? link_of(nd) : val_at(nd, i - 1);
}

int rl__bt_create(rl__blk_txn *t, uint64_t *root)
{
    node nd;
    int rc = node_new(t, KIND_LEAF, root, &nd);
    if (rc == RL_OK)
        rl__blk_block_put(&nd.ref);
    return rc;
}

/* Walk from root to the leaf for key; path[] gets the interior nodes. */
static int descend(rl__blk_txn *t, uint64_t root, uint64_t key, uint64_t *path,
                   int *depth, uint64_t *leaf)
{
    uint64_t at = root;
    for (*depth = 0;; (*depth)++) {
        node nd;
        uint32_t slot;
        int rc;
        if (*depth == MAX_DEPTH)
            return RL__CORRUPT(rl__blk_txn_err(t), "B+tree %llu is too deep (a cycle?)",
                               (unsigned long long)root);
        rc = node_open(t, at, 0, &nd);
        if (rc != RL_OK)
            return rc;
        if (nd.kind == KIND_LEAF) {
            rl__blk_block_put(&nd.ref);
            *leaf = at;
            return RL_OK;
        }
        if (path)
            path[*depth] = at;
        at = child_for(&nd, key, &slot);
        rl__blk_block_put(&nd.ref);
    }
}

int rl__bt_get(rl__blk_txn *t, uint64_t root, uint64_t key, uint64_t *val)
{
    uint64_t leaf;
    node nd;
    uint32_t i;
    int depth, rc = descend(t, root, key, NULL, &depth, &leaf);
    if (rc == RL_OK)
        rc = node_open(t, leaf, 0, &nd);
    if (rc != RL_OK)
        return rc;
    i = lower_bound(&nd, key);
    rc = (i < nd.n && key_at(&nd, i) == key) ? RL_OK : RL_NOTFOUND;
    if (rc == RL_OK)
        *val = val_at(&nd, i);
    rl__blk_block_put(&nd.ref);
    return rc;
}

/* Insert (key, val) at position i of a node with room. */
static void insert_at(node *nd, uint32_t i, uint64_t key, uint64_t val)
{
    memmove(nd->ref.wdata + NODE_HDR + ENTRY * (i + 1), nd->ref.wdata + NODE_HDR + ENTRY * i,
            ENTRY * (size_t)(nd->n - i));
    set_entry(nd, i, key, val);
    set_count(nd, nd->n + 1);
}

/* Split the full node nd while inserting (key, val) at entry i: the n + 1
 * entries are laid out in order, the left node keeps the first m, and the
 * rest go to a new right node *right. In a leaf the right node starts with
 * entry m and *sep is its key; in an interior node entry m moves up as
 * *sep and its child becomes the right node's first child. */
static int split_insert(rl__blk_txn *t, node *nd, uint32_t i, uint64_t key, uint64_t val,
                        uint64_t *right, uint64_t *sep)
{
    int leaf = nd->kind == KIND_LEAF;
    uint32_t total = nd->n + 1, m, from;
    uint8_t *all = malloc((size_t)total * ENTRY);
    node r;
    int rc;
    if (!all)
        return RL__FAIL(rl__blk_txn_err(t), RL_NOMEM, "no memory to split a B+tree node");
    memcpy(all, nd->ref.data + NODE_HDR, (size_t)i * ENTRY);
    rl__put64(all + (size_t)i * ENTRY, key);
    rl__put64(all + (size_t)i * ENTRY + 8, val);
    memcpy(all + (size_t)(i + 1) * ENTRY, nd->ref.data + NODE_HDR + (size_t)i * ENTRY,
           (size_t)(nd->n - i) * ENTRY);
    /* INV 3: a key appended after the last entry starts the new node
     * (an interior node keeps one entry there, as it must have one). */
    if (leaf)
        m = (i == nd->n && link_of(nd) == 0) ? nd->n : total / 2;
    else
        m = i == nd->n ? nd->n - 1 : total / 2;
    rc = node_new(t, nd->kind, right, &r);
    if (rc != RL_OK) {
        free(all);
        return rc;
    }
    *sep = rl__get64(all + (size_t)m * ENTRY);
    from = leaf ? m : m + 1;
    memcpy(r.ref.wdata + NODE_HDR, all + (size_t)from * ENTRY, (size_t)(total - from) * ENTRY);
    set_count(&r, total - from);
    if (leaf) {
        rl__put64(r.ref.wdata + 8, link_of(nd));
        rl__put64(nd->ref.wdata + 8, *right);
    } else {
        rl__put64(r.ref.wdata + 8, rl__get64(all + (size_t)m * ENTRY + 8));
    }
    memcpy(nd->ref.wdata + NODE_HDR, all, (size_t)m * ENTRY);
    set_count(nd, m);
    rl__blk_block_put(&r.ref);
    free(all);
    return RL_OK;
}

/* Insert (key, val) into node logical; on a split, set *right and *sep. */
static int insert_into(rl__blk_txn *t, uint64_t logical, uint64_t key, uint64_t val,
                       uint64_t *right, uint64_t *sep)
{
    node nd;
    uint32_t i;
    int rc = node_open(t, logical, 1, &nd);
    if (rc != RL_OK)
        return rc;
    i = lower_bound(&nd, key);
    *right = 0;
    if (nd.n < nd.cap)
        insert_at(&nd, i, key, val);
    else
        rc = split_insert(t, &nd, i, key, val, right, sep);
    rl__blk_block_put(&nd.ref);
    return rc;
}

static int grow_root(rl__blk_txn *t, uint64_t *root, uint64_t sep, uint64_t right)
{
    node nr;
    uint64_t nroot;
    int rc = node_new(t, KIND_INTERIOR, &nroot, &nr);
    if (rc != RL_OK)
        return rc;
    rl__put64(nr.ref.wdata + 8, *root);
    insert_at(&nr, 0, sep, right);
    rl__blk_block_put(&nr.ref);
    *root = nroot;
    return RL_OK;
}

int rl__bt_put(rl__blk_txn *t, uint64_t *root, uint64_t key, uint64_t val, int replace)
{
    uint64_t path[MAX_DEPTH], leaf, right, sep;
    node nd;
    uint32_t i;
    int depth, rc = descend(t, *root, key, path, &depth, &leaf);
    if (rc == RL_OK)
        rc = node_open(t, leaf, 0, &nd);
    if (rc != RL_OK)
        return rc;
    i = lower_bound(&nd, key);
    if (i < nd.n && key_at(&nd, i) == key) {
        rl__blk_block_put(&nd.ref);
        if (!replace)
            return RL_DUPLICATE;
        rc = node_open(t, leaf, 1, &nd);
        if (rc == RL_OK) {
            set_entry(&nd, i, key, val);
            rl__blk_block_put(&nd.ref);
        }
        return rc;
    }
    rl__blk_block_put(&nd.ref);
    rc = insert_into(t, leaf, key, val, &right, &sep);
    while (rc == RL_OK && right != 0 && depth > 0) /* carry the split up */
        rc = insert_into(t, path[--depth], sep, right, &right, &sep);
    if (rc == RL_OK && right != 0)
        rc = grow_root(t, root, sep, right);
    return rc;
}

int rl__bt_delete(rl__blk_txn *t, uint64_t root, uint64_t key)
{
    uint64_t leaf;
    node nd;
    uint32_t i;
    int depth, rc = descend(t, root, key, NULL, &depth, &leaf);
    if (rc == RL_OK)
        rc = node_open(t, leaf, 0, &nd);
    if (rc != RL_OK)
        return rc;
    i = lower_bound(&nd, key);
    rc = (i < nd.n && key_at(&nd, i) == key) ? RL_OK : RL_NOTFOUND;
    rl__blk_block_put(&nd.ref);
    if (rc != RL_OK)
        return rc;
    rc = node_open(t, leaf, 1, &nd);
    if (rc != RL_OK)
        return rc;
    memmove(nd.ref.wdata + NODE_HDR + ENTRY * i, nd.ref.data + NODE_HDR + ENTRY * (i + 1),
            ENTRY * (size_t)(nd.n - i - 1));
    set_count(&nd, nd.n - 1);
    rl__blk_block_put(&nd.ref);
    return RL_OK;
}

/* Visit every node under logical (depth-first), counting or freeing. */
static int walk(rl__blk_txn *t, uint64_t logical, int depth, int free_them,
                uint64_t *nodes, uint64_t *entries)
{
    node nd;
    uint64_t children[1024];
    uint32_t nch = 0;
    int rc;
    if (depth == MAX_DEPTH)
        return RL__CORRUPT(rl__blk_txn_err(t), "B+tree too deep at node %llu",
                           (unsigned long long)logical);
    rc = node_open(t, logical, 0, &nd);
    if (rc != RL_OK)
        return rc;
    (*nodes)++;
    if (nd.kind == KIND_LEAF)
        *entries += nd.n;
    else if (nd.n + 1 <= sizeof children / sizeof *children) {
        children[nch++] = link_of(&nd);
        for (uint32_t i = 0; i < nd.n; i++)
            children[nch++] = val_at(&nd, i);
    } else {
        rc = RL__CORRUPT(rl__blk_txn_err(t), "B+tree node %llu has too many children",
                         (unsigned long long)logical);
    }
    rl__blk_block_put(&nd.ref);
    for (uint32_t i = 0; i < nch && rc == RL_OK; i++)
        rc = walk(t, children[i], depth + 1, free_them, nodes, entries);
    if (rc == RL_OK && free_them)
        rc = rl__blk_block_free(t, logical);
    return rc;
}

int rl__bt_free(rl__blk_txn *t, uint64_t root)
{
    uint64_t nodes = 0, entries = 0;
    return walk(t, root, 0, 1, &nodes, &entries);
}

int rl__bt_stats(rl__blk_txn *t, uint64_t root, uint64_t *nodes, uint64_t *entries)
{
    *nodes = *entries = 0;
    return walk(t, root, 0, 0, nodes, entries);
}
