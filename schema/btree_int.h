/*
** schema/btree_int.h: what the B+tree's three files share (btree.c: nodes,
** cells, searches and changes of one key; btree_iter.c: iterators;
** btree_bulk.c: walks over whole trees and the bulk builder). Nothing outside them includes
** it; the format it describes is in btree.c's top comment.
*/
#ifndef RL_BTREE_INT_H
#define RL_BTREE_INT_H

#include <string.h>

#include "schema.h"

#define KIND_LEAF 1
#define KIND_INTERIOR 2
#define NODE_HDR 8
#define MAX_DEPTH 24
#define CHILD_SIZE 6 /* a child's logical number in an interior cell, u48 */

typedef struct node {
    rl__blk_ref ref;
    uint8_t kind, layout;
    uint32_t n, start, frag, size;
} node;

/* A cell laid out for writing: key, and value bytes or a child. */
typedef struct cell {
    const uint8_t *key;
    size_t klen;
    const uint8_t *val;
    size_t vlen;
    uint64_t child;
    int flag; /* leaf cells: the caller's bit */
} cell;

static inline uint64_t link_of(const node *nd)
{
    return nd->ref.next;
}

static inline void set_link(node *nd, uint64_t logical)
{
    rl__blk_block_set_next(&nd->ref, logical);
}

static inline int key_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

/* Decode into nd the node header of page d of cap bytes, the page nd->ref
 * holds (unchecked: rl__bt_node_open checks it when the node is opened). */
static inline void node_header_load(node *nd, const uint8_t *d, uint32_t cap)
{
    nd->kind = d[0];
    nd->layout = d[1];
    nd->n = rl__get16(d + 2);
    nd->start = rl__get16(d + 4);
    nd->frag = rl__get16(d + 6);
    nd->size = cap;
}

/* The length of the id key starting with byte first (rl__id_key); 0 if no
 * id key starts with it. */
static inline size_t id_key_len(uint8_t first)
{
    unsigned n = first >= 0x80 ? first - 0x80u : 0x7fu - first;
    return n <= 8 ? n + 1 : 0;
}

/* RL_CORRUPT naming node logical and why. */
int rl__bt_corrupt(rl__blk_txn *t, uint64_t logical, const char *why);
/* Open node logical (write: a writable copy), checking its header. */
int rl__bt_node_open(rl__blk_txn *t, uint64_t logical, int write, node *nd);
/* A new empty node of the tree whose root is root (0: it is a root). */
int rl__bt_node_new(rl__blk_txn *t, uint8_t kind, uint8_t layout, uint64_t root,
                    uint64_t *logical, node *nd);
/* Write nd's kind, layout and counts back into its page. */
void rl__bt_header_store(node *nd);
/* Just the key of cell i of nd (searches need no more; rl__bt_cell_read
 * checks the rest of the cell when it is used). RL_CORRUPT if it does not
 * fit. */
int rl__bt_key_at(const node *nd, uint32_t i, const uint8_t **key, size_t *klen);
/* Decode cell i; RL_CORRUPT if it does not fit in the page. */
int rl__bt_cell_read(const node *nd, uint32_t i, cell *c);
/* Whether nd's cells decode, ascend and fill the cell area with frag
 * exactly (the whole node's check; searches check what they read). */
int rl__bt_node_cells_ok(const node *nd);
/* The bytes c takes in nd, slot not counted. */
size_t rl__bt_cell_size(const node *nd, const cell *c);
/* Insert c as cell i if it fits (*fitted = 0 when the node is too full). */
int rl__bt_insert_cell(node *nd, uint32_t i, const cell *c, int *fitted);
void rl__bt_remove_cell(node *nd, uint32_t i);
/* RL_OK if c can be a leaf cell of a tree of this layout. */
int rl__bt_entry_check(rl__blk_txn *t, uint8_t layout, const cell *c);

#endif
