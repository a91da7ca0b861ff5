/*
** schema/vacuum.c: giving a table's space back, and saying what it takes.
** A vacuum rebuilds the table's B+tree from its rows in id order with the
** bulk builder (every leaf full) and each index from its own keys, read in
** order (5% of each leaf left free, RL__INDEX_LEAF_FREE; neither the table
** nor a sort is needed: rl__ix_rebuild), into new blocks with the
** lowest free logical numbers (rl__blk_map_tidy first), then frees the
** old trees; its commit moves the new trees down the file (relatable.c,
** rl__blk_compact_now). rl_vacuum reads each tree first and rebuilds only
** those that would give back at least 1/REBUILD_MIN_GAIN of their blocks
** (or small ones); the automatic vacuum, which runs when half a table's
** rows went, does not ask.
** Invariants: a vacuum changes no row and no index entry, only where they
** live; the table's deleted-rows count is 0 after it, rebuilt or not.
*/
#include <string.h>

#include "schema.h"

#define SMALL_TREE 64       /* rl_vacuum rebuilds a tree of fewer nodes always ... */
#define REBUILD_MIN_GAIN 64 /* ... a larger one if it gives back 1/64 of them */

/* Blocks a rebuild of a tree would give back: it keeps about as many
 * interior nodes per leaf as the tree has now. */
static uint64_t rebuild_frees(rl__stx *s, const rl__bt_space *sp, unsigned free_percent)
{
    uint64_t full = rl__bt_full_leaves(rl__blk_payload_of(s->bt), free_percent, sp);
    uint64_t kept = (full * sp->nodes + sp->leaves - 1) / sp->leaves;
    return kept < sp->nodes ? sp->nodes - kept : 0;
}

/* Whether rebuilding the tree at root pays: it would give back at least
 * 1/REBUILD_MIN_GAIN of its blocks, or it is small. A tree built by the
 * last vacuum and grown by appends since is left as it is. */
static int worth_rebuilding(rl__stx *s, uint64_t root, unsigned free_percent, int *worth)
{
    rl__bt_space sp;
    int rc = rl__bt_stats(s->bt, root, &sp); /* reads every node: cheaper than writing them */
    *worth = rc == RL_OK &&
             (sp.nodes < SMALL_TREE || rebuild_frees(s, &sp, free_percent) * REBUILD_MIN_GAIN >= sp.nodes);
    return rc;
}

/* Rebuild the table's tree from its rows, in id order, into new blocks
 * with the lowest free logical numbers. */
static int rebuild_rows(rl__stx *s, int table, rl__tstate *st)
{
    rl__scan sc;
    rl__bt_builder *b = NULL;
    uint64_t tree = 0;
    int rc = rl__blk_map_tidy(s->bt); /* the new tree takes the lowest logical numbers */
    if (rc == RL_OK)
        rc = rl__bt_create(s->bt, RL__BT_IDS, &tree);
    if (rc == RL_OK)
        rc = rl__bt_build_begin(s->bt, tree, &b);
    if (rc != RL_OK)
        return rc;
    rc = rl__scan_open(s, table, &sc);
    while (rc == RL_OK && (rc = rl__scan_next(&sc)) == RL_OK) {
        uint8_t key[RL__ID_KEY_MAX];
        size_t kn = rl__id_key(sc.id, key); /* ascending: the builder fills every node */
        rc = rl__bt_build_add(b, key, kn, sc.rec, sc.n, sc.chained ? RL__BT_FLAG : 0);
    }
    rl__scan_close(&sc);
    if (rc == RL_DONE)
        rc = rl__bt_build_end(b);
    else
        rl__bt_build_abort(b);
    if (rc == RL_OK)
        rc = rl__bt_free(s->bt, st->tree);
    if (rc == RL_OK)
        st->tree = tree;
    return rc;
}

int rl__tbl_vacuum(rl__stx *s, int table, int if_worth_it)
{
    rl__tstate st;
    int worth = 1, rc = rl__tbl_state(s, table, &st);
    if (rc == RL_OK && if_worth_it)
        rc = worth_rebuilding(s, st.tree, 0, &worth);
    if (rc == RL_OK && worth)
        rc = rebuild_rows(s, table, &st);
    st.dead = 0;
    if (rc == RL_OK)
        rc = rl__tbl_state_write(s, table, &st);
    for (int x = 0; x < rl__tbl_of(s, table)->nindexes && rc == RL_OK; x++) {
        worth = 1;
        if (if_worth_it)
            rc = worth_rebuilding(s, rl__tbl_of(s, table)->indexes[x].root, RL__INDEX_LEAF_FREE, &worth);
        if (rc == RL_OK && worth)
            rc = rl__ix_rebuild(s, table, x);
    }
    return rc;
}

int rl__tbl_space(rl__stx *s, int table, int index, rl_space *out)
{
    const rl__table *tb = rl__tbl_of(s, table);
    rl__bt_space sp;
    rl__tstate st;
    int rc = RL_OK;
    memset(out, 0, sizeof *out);
    if (index < 0) {
        rc = rl__tbl_state(s, table, &st);
        if (rc == RL_OK)
            rc = rl__tbl_chain_blocks(s, table, &out->chain_blocks);
        out->other_blocks = 1;
    }
    if (rc == RL_OK)
        rc = rl__bt_stats(s->bt, index < 0 ? st.tree : tb->indexes[index].root, &sp);
    if (rc != RL_OK)
        return rc;
    out->entries = sp.entries;
    out->tree_blocks = sp.nodes;
    out->leaf_blocks = sp.leaves;
    out->depth = sp.depth;
    out->bytes_used = sp.used;
    out->bytes_free = sp.capacity - sp.used;
    out->blocks = out->tree_blocks + out->chain_blocks + out->other_blocks;
    out->vacuum_frees = rebuild_frees(s, &sp, index < 0 ? 0 : RL__INDEX_LEAF_FREE);
    return RL_OK;
}
