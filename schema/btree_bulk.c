/*
** schema/btree_bulk.c: whole B+trees at once: walking every node (to free
** a tree, empty it, or count its space, checking the leaf chain on the
** way) and building a tree from entries in ascending key order, filling
** every node (vacuum and index builds). Node format and the one-key
** operations are in btree.c; what the two share is in btree_int.h.
** Invariants: a walk visits each node once or reports damage (a child
** named twice breaks the leaf chain); a builder's entries ascend strictly.
*/
#include <stdlib.h>
#include <string.h>

#include "btree_int.h"

/* The children of an interior node (first child, then one per cell) in
 * a new array; a leaf has none. The node's reference is put back. */
static int children_of(rl__blk_txn *t, uint64_t logical, node *nd, uint64_t **out,
                       uint32_t *n)
{
    int rc = RL_OK;
    *out = NULL;
    *n = 0;
    if (nd->kind == KIND_INTERIOR) {
        *out = malloc((nd->n + 1) * sizeof **out);
        if (!*out)
            rc = RL__FAIL(rl__blk_txn_err(t), RL_NOMEM, "no memory");
        for (uint32_t i = 0; rc == RL_OK && i <= nd->n; i++) {
            cell c;
            if (i == 0)
                (*out)[(*n)++] = link_of(nd);
            else if (rl__bt_cell_read(nd, i - 1, &c) == RL_OK)
                (*out)[(*n)++] = c.child;
            else
                rc = rl__bt_corrupt(t, logical, "damaged cell");
        }
    }
    rl__blk_block_put(&nd->ref);
    return rc;
}

/* A walk over a whole tree. */
typedef struct walker {
    rl__blk_txn *t;
    uint64_t root;      /* every node's owner */
    int free_them;      /* free every node after its children */
    int check_cells;    /* check every node's cells (rl__bt_check) */
    int layout;         /* every node's: the root's (-1: not seen yet) */
    rl__bt_space sp;    /* what it counted */
    uint64_t next_leaf; /* where the last leaf's chain link leads */
} walker;

static int leaf_in_chain(walker *w, uint64_t logical, const node *nd)
{
    if (w->sp.leaves > 0 && w->next_leaf != logical) /* also: a child named twice */
        return rl__bt_corrupt(w->t, logical, "the leaf chain does not lead to this leaf");
    w->next_leaf = link_of(nd);
    w->sp.leaves++;
    w->sp.entries += nd->n;
    w->sp.leaf_used += NODE_HDR + 2 * nd->n + (nd->size - nd->start - nd->frag);
    return RL_OK;
}

/* Visit every node under logical depth-first, leaves in key order. */
static int walk(walker *w, uint64_t logical, uint32_t depth)
{
    node nd;
    uint64_t *children;
    uint32_t nch;
    int rc;
    if (depth == MAX_DEPTH)
        return rl__bt_corrupt(w->t, logical, "tree too deep (a cycle?)");
    rc = rl__bt_node_open(w->t, logical, 0, &nd);
    if (rc != RL_OK)
        return rc;
    if (nd.ref.owner != w->root) {
        rl__blk_block_put(&nd.ref);
        return rl__bt_corrupt(w->t, logical, "node belongs to another tree");
    }
    if (w->layout < 0)
        w->layout = nd.layout;
    if (nd.layout != w->layout) {
        rl__blk_block_put(&nd.ref);
        return rl__bt_corrupt(w->t, logical, "node of another cell layout than its tree's root");
    }
    if (w->check_cells && !rl__bt_node_cells_ok(&nd)) {
        rl__blk_block_put(&nd.ref);
        return rl__bt_corrupt(w->t, logical, "cells out of order or not adding up");
    }
    w->sp.nodes++;
    w->sp.capacity += nd.size;
    w->sp.used += NODE_HDR + 2 * nd.n + (nd.size - nd.start - nd.frag);
    if (depth + 1 > w->sp.depth)
        w->sp.depth = depth + 1;
    if (nd.kind == KIND_LEAF && (rc = leaf_in_chain(w, logical, &nd)) != RL_OK) {
        rl__blk_block_put(&nd.ref);
        return rc;
    }
    rc = children_of(w->t, logical, &nd, &children, &nch);
    for (uint32_t i = 0; i < nch && rc == RL_OK; i++)
        rc = walk(w, children[i], depth + 1);
    free(children);
    if (rc == RL_OK && w->free_them)
        rc = rl__blk_block_free(w->t, logical);
    return rc;
}

/* Walk the tree under root (or only root's children: skip_root), then
 * check that the leaf chain ends where the walk did. */
static int walk_tree(walker *w, uint64_t root, int skip_root)
{
    uint64_t *children;
    uint32_t nch;
    node nd;
    int rc;
    if (!skip_root)
        rc = walk(w, root, 0);
    else if ((rc = rl__bt_node_open(w->t, root, 0, &nd)) == RL_OK) {
        w->layout = nd.layout;
        rc = children_of(w->t, root, &nd, &children, &nch);
        for (uint32_t i = 0; i < nch && rc == RL_OK; i++)
            rc = walk(w, children[i], 1);
        free(children);
    }
    if (rc == RL_OK && w->next_leaf != 0)
        rc = rl__bt_corrupt(w->t, root, "the leaf chain goes on past the tree's last leaf");
    return rc;
}

int rl__bt_free(rl__blk_txn *t, uint64_t root)
{
    walker w = {t, root, 1, 0, -1, {0}, 0};
    return walk_tree(&w, root, 0);
}

int rl__bt_clear(rl__blk_txn *t, uint64_t root)
{
    walker w = {t, root, 1, 0, -1, {0}, 0};
    node nd;
    int rc = walk_tree(&w, root, 1);
    if (rc == RL_OK)
        rc = rl__bt_node_open(t, root, 1, &nd);
    if (rc != RL_OK)
        return rc;
    nd.kind = KIND_LEAF;
    nd.n = 0;
    nd.start = nd.size;
    nd.frag = 0;
    rl__bt_header_store(&nd);
    set_link(&nd, 0);
    rl__blk_block_put(&nd.ref);
    return RL_OK;
}

/* Count the tree's space, checking every node's cells too if check. */
static int space_walk(rl__blk_txn *t, uint64_t root, int check, rl__bt_space *sp)
{
    walker w = {t, root, 0, check, -1, {0}, 0};
    int rc = walk_tree(&w, root, 0);
    *sp = w.sp;
    return rc;
}

int rl__bt_stats(rl__blk_txn *t, uint64_t root, rl__bt_space *sp)
{
    return space_walk(t, root, 0, sp);
}

int rl__bt_check(rl__blk_txn *t, uint64_t root, rl__bt_space *sp)
{
    return space_walk(t, root, 1, sp);
}

/* The bytes a builder leaves free in each leaf for percent (half at most). */
static uint32_t leaf_reserve_of(uint32_t payload, unsigned percent)
{
    return (uint32_t)((uint64_t)(payload - NODE_HDR) * (percent < 50 ? percent : 50) / 100);
}

uint64_t rl__bt_full_leaves(uint32_t payload, unsigned free_percent, const rl__bt_space *sp)
{
    /* cells do not split: a full leaf holds whole cells of the average size */
    uint64_t cells = sp->leaf_used - NODE_HDR * sp->leaves, fit;
    uint64_t room = (uint64_t)(payload - NODE_HDR) - leaf_reserve_of(payload, free_percent);
    if (sp->entries == 0 || cells == 0)
        return 1;
    fit = room * sp->entries / cells;
    return fit ? (sp->entries + fit - 1) / fit : sp->entries;
}

/* ---- building from sorted entries ------------------------------------------------- */

struct rl__bt_builder {
    rl__blk_txn *t;
    uint64_t root;
    uint8_t layout;           /* the tree's (its root's) */
    uint32_t levels;          /* levels with an open node */
    uint64_t open[MAX_DEPTH]; /* the open node of each level (0: leaves) */
    node nodes[MAX_DEPTH];
    uint32_t leaf_reserve; /* bytes each leaf is closed with free, at least */
    size_t last_len; /* the last key added (levels > 0: one was) */
    uint8_t last[RL__BT_MAX_KEY];
};

/* Open a new node of the builder at level (a leaf at 0), whose first child
 * is first_child for an interior node. */
static int build_open(rl__bt_builder *b, uint32_t level, uint64_t first_child)
{
    node *nd = &b->nodes[level];
    int rc = rl__bt_node_new(b->t, level ? KIND_INTERIOR : KIND_LEAF, b->layout, b->root,
                      &b->open[level], nd);
    if (rc == RL_OK && level > 0)
        set_link(nd, first_child);
    if (rc == RL_OK && level >= b->levels)
        b->levels = level + 1;
    return rc;
}

/* Whether c would eat into the room the builder leaves free in the open
 * leaf nd (never in an empty one). */
static int leaf_reserved(const rl__bt_builder *b, const node *nd, const cell *c)
{
    uint32_t free_now = nd->start - (NODE_HDR + 2 * nd->n);
    return nd->n > 0 && free_now < rl__bt_cell_size(nd, c) + 2 + b->leaf_reserve;
}

/* Append c to the open node of level, closing it for a new one (and
 * sending the new one's first key up) when c does not fit. */
static int build_add(rl__bt_builder *b, uint32_t level, const cell *c)
{
    node *nd = &b->nodes[level];
    uint64_t closed;
    uint8_t sep[RL__BT_MAX_KEY];
    cell up;
    int fitted = 0, rc;
    if (level == MAX_DEPTH - 1)
        return RL__FAIL(rl__blk_txn_err(b->t), RL_FULL, "B+tree too deep");
    if (level >= b->levels && (rc = build_open(b, level, 0)) != RL_OK)
        return rc;
    if (level > 0 || !leaf_reserved(b, nd, c)) {
        rc = rl__bt_insert_cell(nd, nd->n, c, &fitted);
        if (rc != RL_OK || fitted)
            return rc == RL_NOMEM ? RL__FAIL(rl__blk_txn_err(b->t), RL_NOMEM, "no memory") : rc;
    }
    closed = b->open[level];
    memcpy(sep, c->key, c->klen); /* c may point into the node being closed */
    up.key = sep;
    up.klen = c->klen;
    up.val = NULL;
    up.vlen = 0;
    up.flag = 0;
    if (level == 0) { /* the new leaf takes c; its first key goes up */
        node old = *nd;
        rc = build_open(b, 0, 0);
        if (rc != RL_OK)
            return rc;
        set_link(&old, b->open[0]);
        rl__blk_block_put(&old.ref);
        rl__bt_insert_cell(nd, 0, c, &fitted);
    } else { /* the old node's last key goes up, its child starts the new
                node, which takes c: no interior node is ever left empty */
        node old = *nd;
        cell last;
        if (rl__bt_cell_read(&old, old.n - 1, &last) != RL_OK) {
            rl__blk_block_put(&old.ref);
            return rl__bt_corrupt(b->t, closed, "damaged cell");
        }
        memcpy(sep, last.key, last.klen);
        up.klen = last.klen;
        up.child = last.child; /* for now: the new node's first child */
        rl__bt_remove_cell(&old, old.n - 1);
        rl__blk_block_put(&old.ref);
        rc = build_open(b, level, up.child);
        if (rc != RL_OK)
            return rc;
        rl__bt_insert_cell(nd, 0, c, &fitted);
    }
    up.child = b->open[level];
    if (level + 1 >= b->levels && (rc = build_open(b, level + 1, closed)) != RL_OK)
        return rc;
    return build_add(b, level + 1, &up);
}

int rl__bt_build_begin(rl__blk_txn *t, uint64_t root, rl__bt_builder **out)
{
    rl__bt_builder *b = calloc(1, sizeof *b);
    node nd;
    int rc = b ? rl__bt_node_open(t, root, 0, &nd) : RL__FAIL(rl__blk_txn_err(t), RL_NOMEM, "no memory");
    if (rc == RL_OK) {
        if (nd.kind != KIND_LEAF || nd.n != 0)
            rc = rl__bt_corrupt(t, root, "a tree to build is not empty");
        rl__blk_block_put(&nd.ref);
    }
    if (rc != RL_OK) {
        free(b);
        return rc;
    }
    b->t = t;
    b->root = root;
    b->layout = nd.layout;
    *out = b;
    return RL_OK;
}

int rl__bt_build_add(rl__bt_builder *b, const uint8_t *k, size_t kn, const uint8_t *v,
                     size_t vn, unsigned how)
{
    cell c = {k, kn, v, vn, 0, (how & RL__BT_FLAG) != 0};
    int rc = rl__bt_entry_check(b->t, b->layout, &c);
    if (rc != RL_OK)
        return rc;
    /* keys out of order come from a damaged source (a tree's leaf chain) */
    if (b->levels > 0 && key_cmp(k, kn, b->last, b->last_len) <= 0)
        return RL__FAIL(rl__blk_txn_err(b->t), RL_CORRUPT,
                        "B+tree entries to build come out of key order (the source is damaged)");
    rc = build_add(b, 0, &c);
    if (rc == RL_OK) {
        memcpy(b->last, k, kn);
        b->last_len = kn;
    }
    return rc;
}

/* Put back every open node's reference. */
static void build_close(rl__bt_builder *b)
{
    for (uint32_t l = 0; l < b->levels; l++)
        rl__blk_block_put(&b->nodes[l].ref);
    b->levels = 0;
}

int rl__bt_build_end(rl__bt_builder *b)
{
    node top, root;
    uint64_t top_logical;
    int rc;
    if (b->levels == 0) {
        free(b);
        return RL_OK; /* nothing added: the root stays an empty leaf */
    }
    top = b->nodes[b->levels - 1];
    top_logical = b->open[b->levels - 1];
    rc = rl__bt_node_open(b->t, b->root, 1, &root);
    if (rc == RL_OK) { /* the top node's contents move into the root (INV 5) */
        memcpy(root.ref.wdata, top.ref.data, top.size);
        root.kind = top.kind;
        root.n = top.n;
        root.start = top.start;
        root.frag = top.frag;
        rl__bt_header_store(&root);
        set_link(&root, link_of(&top));
        rl__blk_block_put(&root.ref);
    }
    build_close(b);
    if (rc == RL_OK)
        rc = rl__blk_block_free(b->t, top_logical);
    free(b);
    return rc;
}

void rl__bt_build_leave_free(rl__bt_builder *b, unsigned percent)
{
    b->leaf_reserve = leaf_reserve_of(rl__blk_payload_of(b->t), percent);
}

void rl__bt_build_abort(rl__bt_builder *b)
{
    if (b)
        build_close(b);
    free(b);
}

