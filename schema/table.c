/*
** schema/table.c: rows. Each table has a state block and a B+tree keyed by
** id (rl__id_key) whose leaf cells hold the rows' records.
**
** State block payload (docs/format.md, "Table state"):
**     0 magic u32 "RLTS", 4 version u32 (1), 8 B+tree root u64,
**     16 next id i64, 24 rows u64, 32 rows deleted since the last vacuum u64.
**
** A cell's value is the row's record (schema/record.c); when the record
** is too large for a cell, the cell's flag is set and its value is the u64
** logical number of a RECORD chain holding it.
** A value longer than RL__INLINE_MAX bytes lives in its own VALUE chain.
** Delete removes the row's cell at once (its space serves later rows of
** that leaf); vacuum (schema/vacuum.c) rebuilds the tree with full leaves.
**
** Invariants:
**   1. rows = cells in the tree; every chain a record names belongs to
**      that record alone and is freed with it.
**   2. Every call validates all its input before it writes anything, so a
**      rejected row leaves the transaction as it was.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

#define STATE_MAGIC 0x53544c52u /* "RLTS" */
#define STATE_VERSION 1u
#define STATE_SIZE 40

/* Order-preserving, short id keys: a prefix byte, then the id's low n
 * bytes big-endian. For id >= 0, the prefix is 0x80 + n with n the bytes
 * the id needs (0 for id 0); for id < 0 it is 0x7f - n with n the bytes
 * ~id needs. More bytes sort further from zero on each side, so byte order
 * is numeric order: ids below 2^24 take 4 bytes. */
size_t rl__id_key(int64_t id, uint8_t key[RL__ID_KEY_MAX])
{
    uint64_t mag = id >= 0 ? (uint64_t)id : ~(uint64_t)id;
    size_t n = mag ? (size_t)(71 - __builtin_clzll(mag)) / 8 : 0; /* bytes mag needs */
    key[0] = (uint8_t)(id >= 0 ? 0x80 + n : 0x7f - n);
    for (size_t i = 0; i < n; i++)
        key[1 + i] = (uint8_t)((uint64_t)id >> (8 * (n - 1 - i)));
    return n + 1;
}

int rl__key_id(const uint8_t *key, size_t kn, int64_t *id)
{
    size_t n = kn - 1;
    uint64_t v;
    if (kn < 1 || kn > RL__ID_KEY_MAX || key[0] != (key[0] >= 0x80 ? 0x80 + n : 0x7f - n))
        return RL_CORRUPT;
    v = key[0] >= 0x80 ? 0 : UINT64_MAX; /* sign-extend negative ids */
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | key[1 + i];
    *id = (int64_t)v;
    return RL_OK;
}

/* ---- the state block ------------------------------------------------------------ */

static void state_encode(uint8_t *p, const rl__tstate *st)
{
    rl__put32(p, STATE_MAGIC);
    rl__put32(p + 4, STATE_VERSION);
    rl__put64(p + 8, st->tree);
    rl__put64(p + 16, (uint64_t)st->next_id);
    rl__put64(p + 24, st->live);
    rl__put64(p + 32, st->dead);
}

static int state_put(rl__stx *s, uint64_t logical, const rl__tstate *st)
{
    rl__blk_ref ref;
    int rc = rl__blk_block_get(s->bt, logical, 1, &ref);
    if (rc != RL_OK)
        return rc;
    state_encode(ref.wdata, st);
    rl__blk_block_set_used(&ref, STATE_SIZE);
    rl__blk_block_put(&ref);
    return RL_OK;
}

int rl__tbl_state_flush(rl__stx *s)
{
    int rc;
    if (!s->state_dirty)
        return RL_OK;
    rc = state_put(s, s->state_logical, &s->state);
    if (rc == RL_OK)
        s->state_dirty = 0;
    return rc;
}

/* Keep no state any more (a table is created or dropped), writing the
 * kept one first unless its block is going (drop_logical). */
static int state_forget(rl__stx *s, uint64_t drop_logical)
{
    int rc = RL_OK;
    if (s->state_table >= 0 && s->state_logical != drop_logical)
        rc = rl__tbl_state_flush(s);
    s->state_dirty = 0;
    s->state_table = -1;
    return rc;
}

int rl__tbl_state(rl__stx *s, int table, rl__tstate *st)
{
    const rl__table *tb = rl__tbl_of(s, table);
    rl__blk_ref ref;
    int rc;
    if (s->state_table == table && s->state_logical == tb->state) {
        *st = s->state;
        return RL_OK;
    }
    rc = rl__tbl_state_flush(s);
    if (rc != RL_OK)
        return rc;
    rc = rl__blk_block_get(s->bt, tb->state, 0, &ref);
    if (rc != RL_OK)
        return rc;
    if (ref.type != RL__TYPE_STATE || ref.used < STATE_SIZE ||
        rl__get32(ref.data) != STATE_MAGIC || rl__get32(ref.data + 4) != STATE_VERSION)
        rc = RL__CORRUPT(s->err, "table %s: damaged state block %llu", tb->name,
                         (unsigned long long)tb->state);
    st->tree = rl__get64(ref.data + 8);
    st->next_id = (int64_t)rl__get64(ref.data + 16);
    st->live = rl__get64(ref.data + 24);
    st->dead = rl__get64(ref.data + 32);
    rl__blk_block_put(&ref);
    if (rc == RL_OK) {
        s->state_table = table;
        s->state_logical = tb->state;
        s->state = *st;
    }
    return rc;
}

int rl__tbl_state_write(rl__stx *s, int table, const rl__tstate *st)
{
    const rl__table *tb = rl__tbl_of(s, table);
    int kept = s->state_table == table && s->state_logical == tb->state;
    int rc = RL_OK;
    if (!(kept && s->state_dirty)) {
        /* The first change since the block was last written goes through
         * at once, so that copying the block fails here if it fails; the
         * next ones wait for rl__tbl_state_flush. */
        if (!kept)
            rc = rl__tbl_state_flush(s);
        if (rc == RL_OK)
            rc = state_put(s, tb->state, st);
        if (rc != RL_OK)
            return rc;
    }
    s->state_table = table; /* the kept copy follows the block */
    s->state_logical = tb->state;
    s->state = *st;
    s->state_dirty = 1;
    return RL_OK;
}

/* ---- the catalog copy a schema change works on ------------------------------------- */

static int cat_private(rl__stx *s)
{
    rl__catalog *copy;
    int rc;
    if (s->cat_private)
        return RL_OK;
    rc = rl__cat_clone(s->cat, &copy, s->err);
    if (rc != RL_OK)
        return rc;
    s->cat = copy; /* the shared one stays referenced by the caller */
    s->cat_private = 1;
    return RL_OK;
}

/* The indexes every table gets from its columns: a unique index per
 * RL_UNIQUE column, an index per foreign key (so deleting a referenced row
 * finds the rows that reference it without a scan). */
static int auto_indexes(rl__stx *s, int table)
{
    const rl__table *tb = rl__tbl_of(s, table);
    int rc = RL_OK;
    for (int c = 1; c < tb->ncols && rc == RL_OK; c++) {
        char name[2 * RL__MAX_NAME + 16];
        const rl_column *col = &rl__tbl_of(s, table)->cols[c];
        if (col->flags & RL_UNIQUE) {
            snprintf(name, sizeof name, "%s_%s_unique", tb->name, col->name);
            rc = rl__tbl_create_index(s, name, table, &c, 1, 1);
        }
        if (rc == RL_OK && col->references && !(col->flags & RL_UNIQUE)) {
            snprintf(name, sizeof name, "%s_%s_fk", tb->name, col->name);
            rc = rl__tbl_create_index(s, name, table, &c, 1, 0);
        }
        tb = rl__tbl_of(s, table); /* the catalog may have moved */
    }
    return rc;
}

int rl__tbl_create(rl__stx *s, const char *name, const rl_column *cols, int ncols)
{
    rl__tstate st = {0, 1, 0, 0};
    rl__blk_ref ref;
    uint64_t state;
    rl__catalog *probe;
    int rc = state_forget(s, 0); /* a new state block, perhaps at a dropped one's number */
    if (rc == RL_OK)
        rc = rl__cat_clone(s->cat, &probe, s->err); /* validate before writing */
    if (rc == RL_OK) {
        rc = rl__cat_add(probe, name, cols, ncols, 1, s->err);
        rl__cat_free(probe);
    }
    if (rc == RL_OK)
        rc = cat_private(s);
    if (rc == RL_OK)
        rc = rl__bt_create(s->bt, RL__BT_IDS, &st.tree);
    if (rc == RL_OK)
        rc = rl__blk_block_alloc(s->bt, RL__TYPE_STATE, 0, &state, &ref);
    if (rc != RL_OK)
        return rc;
    state_encode(ref.wdata, &st);
    rl__blk_block_set_used(&ref, STATE_SIZE);
    rl__blk_block_put(&ref);
    rc = rl__cat_add(s->cat, name, cols, ncols, state, s->err);
    if (rc == RL_OK)
        rc = auto_indexes(s, s->cat->n - 1);
    return rc == RL_OK ? rl__cat_save(s->bt, s->cat) : rc;
}

int rl__tbl_create_index(rl__stx *s, const char *name, int table, const int *cols, int ncols,
                         int unique)
{
    uint64_t root = 0;
    int t2, x2, rc;
    if (rl__cat_find_index(s->cat, name, &t2, &x2) == 0)
        return RL__FAIL(s->err, RL_EXISTS, "index %s already exists", name);
    if (ncols < 1 || ncols > RL__BT_INDEX_MAX)
        return RL__FAIL(s->err, RL_INVALID, "index %s: %d columns (1..%d allowed)", name, ncols,
                        RL__BT_INDEX_MAX);
    rc = cat_private(s);
    if (rc == RL_OK)
        rc = rl__bt_create(s->bt, RL__BT_INDEX(ncols), &root);
    if (rc == RL_OK)
        rc = rl__cat_add_index(s->cat, table, name, cols, ncols, unique, root, s->err);
    if (rc == RL_OK)
        rc = rl__ix_build(s, table, rl__tbl_of(s, table)->nindexes - 1);
    if (rc != RL_OK && root) { /* leave the transaction as it was */
        int x;
        if (rl__cat_find_index(s->cat, name, &t2, &x) == 0)
            rl__cat_remove_index(s->cat, t2, x);
        rl__bt_free(s->bt, root);
    }
    return rc == RL_OK ? rl__cat_save(s->bt, s->cat) : rc;
}

int rl__tbl_drop_index(rl__stx *s, int table, int index)
{
    const rl__index *ix = &rl__tbl_of(s, table)->indexes[index];
    const rl_column *col = &rl__tbl_of(s, table)->cols[ix->cols[0]];
    int rc;
    if (ix->ncols == 1 && col->references && rl__ix_child_index(s->cat, table, ix->cols[0]) == index)
        return RL__FAIL(s->err, RL_INVALID, "index %s serves the foreign key %s.%s", ix->name,
                        rl__tbl_of(s, table)->name, col->name);
    rc = cat_private(s);
    if (rc == RL_OK)
        rc = rl__bt_free(s->bt, rl__tbl_of(s, table)->indexes[index].root);
    if (rc != RL_OK)
        return rc;
    rl__cat_remove_index(s->cat, table, index);
    return rl__cat_save(s->bt, s->cat);
}

/* The cell of id into val and *chained; RL_NOTFOUND (with a message) if none. */
static int find_row(rl__stx *s, int table, const rl__tstate *st, int64_t id, rl__buf *val,
                    int *chained)
{
    uint8_t key[RL__ID_KEY_MAX];
    size_t kn = rl__id_key(id, key);
    int rc = rl__bt_get_near(s->bt, &s->rows, st->tree, key, kn, val, chained);
    if (rc == RL_NOTFOUND)
        return RL__FAIL(s->err, RL_NOTFOUND, "table %s has no row with id %lld",
                        rl__tbl_of(s, table)->name, (long long)id);
    return rc;
}

int rl__tbl_get(rl__stx *s, int table, int64_t id, rl_row *row)
{
    rl__tstate st;
    rl__bt_iter it;
    uint8_t key[RL__ID_KEY_MAX];
    size_t kn = rl__id_key(id, key), fkn, vn;
    const uint8_t *fk, *v;
    int chained = 0, rc = rl__tbl_state(s, table, &st);
    if (rc != RL_OK)
        return rc;
    rc = rl__bt_seek(s->bt, st.tree, key, kn, &it); /* the record is read in its leaf */
    if (rc == RL_OK)
        rc = rl__bt_next(&it, &fk, &fkn, &v, &vn, &chained);
    if (rc == RL_DONE || (rc == RL_OK && (fkn != kn || memcmp(fk, key, kn) != 0)))
        rc = RL__FAIL(s->err, RL_NOTFOUND, "table %s has no row with id %lld",
                      rl__tbl_of(s, table)->name, (long long)id);
    if (rc == RL_OK)
        rc = rl__tbl_row_from_record(s, table, id, v, vn, chained, row);
    rl__bt_iter_close(&it);
    return rc;
}

/* ---- checking values ------------------------------------------------------------- */

/* Check one user value against its column; *out is what gets stored. */
static int check_value(rl__stx *s, const rl__table *tb, int c, const rl_value *v,
                       rl_value *out)
{
    const rl_column *col = &tb->cols[c];
    *out = *v;
    if (v->type == RL_TNULL)
        return (col->flags & RL_NOT_NULL)
                   ? RL__FAIL(s->err, RL_NOTNULL, "%s.%s is NOT NULL", tb->name, col->name)
                   : RL_OK;
    if (col->type == RL_TREAL && v->type == RL_TINTEGER) {
        out->type = RL_TREAL;
        out->v.r = (double)v->v.i;
        return RL_OK;
    }
    if (col->type == RL_TCHAR || col->type == RL_TTEXT) {
        if (v->type != RL_TTEXT && v->type != RL_TCHAR)
            goto wrong;
        out->type = col->type;
    } else if (v->type != col->type) {
        goto wrong;
    }
    if (v->type >= RL_TCHAR && v->v.b.n > 0 && !v->v.b.p)
        return RL__FAIL(s->err, RL_INVALID, "%s.%s: %zu bytes at a NULL pointer", tb->name,
                        col->name, v->v.b.n);
    if (col->type == RL_TCHAR && v->v.b.n > col->size)
        return RL__FAIL(s->err, RL_TOOBIG, "%s.%s is CHAR(%u); the value has %zu bytes",
                        tb->name, col->name, col->size, v->v.b.n);
    return RL_OK;
wrong:
    return RL__FAIL(s->err, RL_TYPE, "%s.%s takes %s, not %s", tb->name, col->name,
                    col->type == RL_TINTEGER ? "INTEGER" : col->type == RL_TREAL ? "REAL"
                    : col->type == RL_TCHAR ? "CHAR" : col->type == RL_TTEXT ? "TEXT" : "BLOB",
                    v->type == RL_TINTEGER ? "an integer" : v->type == RL_TREAL ? "a real"
                    : v->type == RL_TBLOB ? "a blob" : "text");
}

/* Does table `table` have a row with this id? */
static int row_exists(rl__stx *s, int table, int64_t id, int *exists)
{
    rl__tstate st;
    uint8_t key[RL__ID_KEY_MAX];
    size_t kn = rl__id_key(id, key);
    int rc = rl__tbl_state(s, table, &st);
    if (rc == RL_OK)
        rc = rl__bt_get(s->bt, st.tree, key, kn, NULL, NULL);
    *exists = rc == RL_OK;
    return rc == RL_NOTFOUND ? RL_OK : rc;
}

/* Check a whole row (vals[0] is the id); out[] gets the values to store.
 * self_id is the row's own id, for a row that references its own table. */
static int check_row(rl__stx *s, int table, const rl_value *vals, int nvals,
                     rl_value *out, int64_t self_id)
{
    const rl__table *tb = rl__tbl_of(s, table);
    int rc = RL_OK;
    if (nvals != tb->ncols)
        return RL__FAIL(s->err, RL_INVALID, "table %s has %d columns (id included); %d values given",
                        tb->name, tb->ncols, nvals);
    if (vals[0].type != RL_TNULL && vals[0].type != RL_TINTEGER)
        return RL__FAIL(s->err, RL_TYPE, "%s.id takes an integer", tb->name);
    out[0] = vals[0];
    for (int c = 1; c < tb->ncols && rc == RL_OK; c++)
        rc = check_value(s, tb, c, &vals[c], &out[c]);
    for (int c = 1; c < tb->ncols && rc == RL_OK; c++) {
        int exists = 0;
        if (tb->ref_table[c] < 0 || out[c].type == RL_TNULL)
            continue;
        if (tb->ref_table[c] == table && out[c].v.i == self_id)
            continue;
        rc = row_exists(s, tb->ref_table[c], out[c].v.i, &exists);
        if (rc == RL_OK && !exists)
            rc = RL__FAIL(s->err, RL_FOREIGNKEY, "%s.%s = %lld: %s has no such row", tb->name,
                          tb->cols[c].name, (long long)out[c].v.i, tb->cols[c].references);
    }
    return rc;
}

/* ---- writing records -------------------------------------------------------------- */

/* Put large values into chains (chains[c] = head, 0 when inline). */
static int store_large(rl__stx *s, const rl__table *tb, const rl_value *vals, uint64_t *chains)
{
    int rc = RL_OK;
    for (int c = 1; c < tb->ncols && rc == RL_OK; c++) {
        chains[c] = 0;
        if (vals[c].type < RL_TCHAR || vals[c].v.b.n <= RL__INLINE_MAX)
            continue;
        rc = rl__blk_chain_create(s->bt, RL__TYPE_VALUE, &chains[c]);
        if (rc == RL_OK)
            rc = rl__blk_chain_append(s->bt, chains[c], vals[c].v.b.p, vals[c].v.b.n);
    }
    return rc;
}

/* Something done to one chain of a table (freeing it, counting it). */
typedef int (*chain_fn)(rl__stx *s, uint64_t head, void *arg);

/* Call fn for every chain a stored record names: its large values, then
 * the chain holding the record itself. */
static int each_chain(rl__stx *s, int table, const uint8_t *v, size_t vn, int chained,
                      chain_fn fn, void *arg)
{
    const rl__table *tb = rl__tbl_of(s, table);
    rl__field fs[RL__STACK_COLS];
    rl__field *f = tb->ncols <= RL__STACK_COLS ? fs : malloc((size_t)tb->ncols * sizeof *f);
    rl__buf spill = {0};
    const uint8_t *rec;
    size_t n;
    uint64_t chain = 0;
    int rc = f ? rl__rec_unwrap(s, v, vn, chained, &spill, &rec, &n, &chain)
               : RL__FAIL(s->err, RL_NOMEM, "no memory");
    if (rc == RL_OK)
        rc = rl__rec_decode(tb, rec, n, f, s->err);
    for (int c = 1; c < tb->ncols && rc == RL_OK; c++)
        if (f[c].type >= RL_TCHAR && f[c].chain)
            rc = fn(s, f[c].chain, arg);
    if (rc == RL_OK && chain)
        rc = fn(s, chain, arg);
    if (f != fs)
        free(f);
    rl__buf_free(&spill);
    return rc;
}

static int free_chain(rl__stx *s, uint64_t head, void *arg)
{
    (void)arg;
    return rl__blk_chain_free(s->bt, head);
}

static int count_chain(rl__stx *s, uint64_t head, void *blocks)
{
    uint64_t n = 0;
    int rc = rl__blk_chain_blocks(s->bt, head, &n);
    *(uint64_t *)blocks += n;
    return rc;
}

/* Free every chain a stored record names. */
static int free_chains(rl__stx *s, int table, const uint8_t *v, size_t vn, int chained)
{
    return each_chain(s, table, v, vn, chained, free_chain, NULL);
}

/* Store the row vals (id in vals[0]) in the tree. */
void rl__stx_release(rl__stx *s)
{
    rl__buf_free(&s->rec_buf);
    rl__buf_free(&s->old_rec_buf);
    rl__buf_free(&s->key_buf);
    rl__buf_free(&s->old_key_buf);
}

#define SMALL_ROW 32 /* rows of up to this many columns use stack arrays */

static int write_row(rl__stx *s, int table, rl__tstate *st, const rl_value *vals, int replace)
{
    const rl__table *tb = rl__tbl_of(s, table);
    uint64_t small[SMALL_ROW] = {0}, rchain = 0;
    uint64_t *chains = tb->ncols <= SMALL_ROW ? small : calloc((size_t)tb->ncols, sizeof *chains);
    rl__buf *rec = &s->rec_buf;
    uint8_t key[RL__ID_KEY_MAX], head[8];
    size_t kn = rl__id_key(vals[0].v.i, key);
    unsigned how = replace ? RL__BT_REPLACE : 0;
    int rc = chains ? store_large(s, tb, vals, chains)
                    : RL__FAIL(s->err, RL_NOMEM, "no memory for a row");
    rec->n = 0;
    if (rc == RL_OK && rl__rec_encode(tb, vals, chains, rec) != RL_OK)
        rc = RL__FAIL(s->err, RL_NOMEM, "no memory for a row");
    if (rc == RL_OK && rec->n + kn + 4 > rl__bt_max_cell(rl__blk_payload_of(s->bt))) {
        /* Too large for a cell: the record goes to its own chain. */
        rc = rl__blk_chain_create(s->bt, RL__TYPE_RECORD, &rchain);
        if (rc == RL_OK)
            rc = rl__blk_chain_append(s->bt, rchain, rec->p, rec->n);
        rl__put64(head, rchain);
    }
    if (rc == RL_OK)
        rc = rchain ? rl__bt_put_near(s->bt, &s->rows, st->tree, key, kn, head, 8, how | RL__BT_FLAG)
                    : rl__bt_put_near(s->bt, &s->rows, st->tree, key, kn, rec->p, rec->n, how);
    if (chains != small)
        free(chains);
    return rc;
}

int rl__tbl_insert(rl__stx *s, int table, const rl_value *vals, int nvals, int64_t *id)
{
    const rl__table *tb = rl__tbl_of(s, table);
    rl_value small[SMALL_ROW];
    rl_value *row = nvals <= SMALL_ROW ? small : calloc((size_t)nvals, sizeof *row);
    rl__tstate st;
    uint8_t key[RL__ID_KEY_MAX];
    size_t kn;
    int64_t new_id = 0;
    int rc = row ? rl__tbl_state(s, table, &st) : RL__FAIL(s->err, RL_NOMEM, "no memory");
    if (rc == RL_OK && nvals >= 1 && vals[0].type == RL_TNULL && st.next_id == INT64_MAX)
        rc = RL__FAIL(s->err, RL_FULL, "table %s: no ids left", tb->name);
    if (rc == RL_OK && nvals >= 1)
        new_id = vals[0].type == RL_TINTEGER ? vals[0].v.i : st.next_id;
    if (rc == RL_OK)
        rc = check_row(s, table, vals, nvals, row, new_id);
    kn = rl__id_key(new_id, key);
    if (rc == RL_OK && vals[0].type == RL_TINTEGER &&
        rl__bt_get(s->bt, st.tree, key, kn, NULL, NULL) == RL_OK)
        rc = RL__FAIL(s->err, RL_DUPLICATE, "table %s already has a row with id %lld",
                      tb->name, (long long)new_id);
    if (rc == RL_OK) {
        row[0] = rl_int(new_id);
        rc = rl__ix_check_unique(s, table, row, new_id);
    }
    if (rc == RL_OK) {
        rc = write_row(s, table, &st, row, 0);
        if (rc == RL_DUPLICATE)
            rc = RL__FAIL(s->err, RL_DUPLICATE, "table %s already has a row with id %lld",
                          tb->name, (long long)new_id);
    }
    if (rc == RL_OK)
        rc = rl__ix_update_row(s, table, row, 1);
    if (rc == RL_OK) {
        if (new_id >= st.next_id)
            st.next_id = new_id == INT64_MAX ? INT64_MAX : new_id + 1;
        st.live++;
        rc = rl__tbl_state_write(s, table, &st);
    }
    if (rc == RL_OK && id)
        *id = new_id;
    if (row != small)
        free(row);
    return rc;
}

/* ---- foreign keys on delete ----------------------------------------------------------- */

#define MAX_CASCADE 64
#define PREFIX_MAX 32 /* room for an encoded integer (and the encoder's reserve) */

/* The key prefix of rows whose first indexed column holds id; p has
 * PREFIX_MAX bytes. */
static size_t ref_prefix(int64_t id, uint8_t *p)
{
    rl__buf b = {p, 0, PREFIX_MAX};
    rl_value v = rl_int(id);
    rl__ix_encode_value(&b, &v);
    return b.n;
}

/* Call fn for the first row of child (found through the index on col)
 * that references id, until there is none; fn must make that row stop
 * referencing it. */
typedef int (*ref_fn)(rl__stx *s, int child, int col, int64_t child_id, int depth);

static int each_ref(rl__stx *s, int table, int child, int col, int64_t id, int depth, ref_fn fn)
{
    int64_t skip = child == table ? id : INT64_MIN; /* a self-reference goes with the row */
    int x = rl__ix_child_index(s->cat, child, col), rc = RL_OK;
    uint8_t prefix[PREFIX_MAX];
    size_t n = ref_prefix(id, prefix);
    int64_t cid = 0, prev = 0;
    int first = 1;
    if (x < 0)
        return RL__CORRUPT(s->err, "the foreign key %s.%s has no index",
                           rl__tbl_of(s, child)->name, rl__tbl_of(s, child)->cols[col].name);
    while (rc == RL_OK) {
        rc = rl__ix_first_with_prefix(s, rl__tbl_of(s, child)->indexes[x].root, prefix, n,
                                      skip, &cid);
        if (rc == RL_NOTFOUND)
            return RL_OK;
        if (rc == RL_OK && !first && cid == prev)
            return RL__CORRUPT(s->err, "row %lld of %s still references %lld",
                               (long long)cid, rl__tbl_of(s, child)->name, (long long)id);
        if (rc == RL_OK)
            rc = fn(s, child, col, cid, depth);
        prev = cid;
        first = 0;
    }
    return rc;
}

static int delete_row(rl__stx *s, int table, int64_t id, int depth);

static int cascade_fn(rl__stx *s, int child, int col, int64_t cid, int depth)
{
    (void)col;
    return delete_row(s, child, cid, depth + 1);
}

static int set_null_fn(rl__stx *s, int child, int col, int64_t cid, int depth)
{
    rl_row row = {0};
    int rc;
    (void)depth;
    row.cat = s->cat;
    rc = rl__tbl_get(s, child, cid, &row);
    if (rc == RL_OK) {
        row.vals[col] = rl_null();
        rc = rl__tbl_update(s, child, cid, row.vals, row.ncols);
    }
    rl__row_clear(&row);
    return rc;
}

/* Check pass: may (table, id) be deleted? Follows cascades without
 * writing, so a RESTRICT anywhere refuses the delete before it starts. */
static int may_delete(rl__stx *s, int table, int64_t id, int depth)
{
    int rc = RL_OK;
    if (depth > MAX_CASCADE)
        return RL__FAIL(s->err, RL_FOREIGNKEY, "cascade deeper than %d tables", MAX_CASCADE);
    for (int c = 0; c < s->cat->n && rc == RL_OK; c++)
        for (int k = 1; k < rl__tbl_of(s, c)->ncols && rc == RL_OK; k++) {
            const rl_column *col = &rl__tbl_of(s, c)->cols[k];
            int x = rl__ix_child_index(s->cat, c, k);
            uint8_t prefix[PREFIX_MAX];
            size_t n;
            int64_t cid = INT64_MIN;
            if (rl__tbl_of(s, c)->ref_table[k] != table || col->on_delete == RL_FK_SET_NULL || x < 0)
                continue;
            n = ref_prefix(id, prefix);
            for (;;) { /* every referencing row, in id order */
                rl__bt_iter it;
                const uint8_t *key, *v;
                size_t kn, vn;
                int found = 0;
                rc = rl__bt_seek(s->bt, rl__tbl_of(s, c)->indexes[x].root, prefix, n, &it);
                while (rc == RL_OK && (rc = rl__bt_next(&it, &key, &kn, &v, &vn, NULL)) == RL_OK) {
                    int64_t got;
                    if (kn < n || memcmp(key, prefix, n) != 0 ||
                        rl__key_id(key + n, kn - n, &got) != RL_OK) {
                        rc = RL_DONE;
                        break;
                    }
                    if (got > cid) {
                        cid = got;
                        found = 1;
                        break;
                    }
                }
                rl__bt_iter_close(&it);
                if (rc == RL_DONE)
                    rc = RL_OK;
                if (rc != RL_OK || !found)
                    break;
                if (c == table && cid == id)
                    continue; /* a row that references itself goes with it */
                if (col->on_delete == RL_FK_RESTRICT)
                    return RL__FAIL(s->err, RL_FOREIGNKEY,
                                    "%s %lld is referenced by %s %lld (%s.%s)",
                                    rl__tbl_of(s, table)->name, (long long)id, rl__tbl_of(s, c)->name,
                                    (long long)cid, rl__tbl_of(s, c)->name, col->name);
                rc = may_delete(s, c, cid, depth + 1);
            }
        }
    return rc;
}

/* Write pass: make every row that references (table, id) let go of it. */
static int release_refs(rl__stx *s, int table, int64_t id, int depth)
{
    int rc = RL_OK;
    for (int c = 0; c < s->cat->n && rc == RL_OK; c++)
        for (int k = 1; k < rl__tbl_of(s, c)->ncols && rc == RL_OK; k++) {
            const rl_column *col = &rl__tbl_of(s, c)->cols[k];
            if (rl__tbl_of(s, c)->ref_table[k] != table)
                continue;
            if (col->on_delete == RL_FK_SET_NULL)
                rc = each_ref(s, table, c, k, id, depth, set_null_fn);
            else if (col->on_delete == RL_FK_CASCADE)
                rc = each_ref(s, table, c, k, id, depth, cascade_fn);
        }
    return rc;
}

static int is_referenced(const rl__catalog *cat, int table)
{
    for (int c = 0; c < cat->n; c++)
        for (int k = 1; k < cat->tables[c].ncols; k++)
            if (cat->tables[c].ref_table[k] == table)
                return 1;
    return 0;
}

/* ---- deleting and replacing rows ----------------------------------------------------------- */

/* Remove row id (no foreign-key checks: the callers did them). */
static int remove_row(rl__stx *s, int table, int64_t id)
{
    rl__tstate st;
    rl__buf *val = &s->old_rec_buf;
    rl_row old = {0};
    uint8_t key[RL__ID_KEY_MAX];
    size_t kn = rl__id_key(id, key);
    int chained = 0, rc = rl__tbl_state(s, table, &st);
    old.cat = s->cat;
    if (rc == RL_OK) /* the cell goes, its record stays in val */
        rc = rl__bt_take_near(s->bt, &s->rows, st.tree, key, kn, val, &chained);
    if (rc == RL_NOTFOUND)
        rc = RL__FAIL(s->err, RL_NOTFOUND, "table %s has no row with id %lld", rl__tbl_of(s, table)->name,
                      (long long)id);
    if (rc == RL_OK && rl__tbl_of(s, table)->nindexes > 0) {
        rc = rl__tbl_row_borrow(s, table, id, val->p, val->n, chained, &old); /* val stays */
        if (rc == RL_OK)
            rc = rl__ix_update_row(s, table, old.vals, 0);
    }
    if (rc == RL_OK)
        rc = free_chains(s, table, val->p, val->n, chained);
    if (rc == RL_OK) {
        st.live--;
        st.dead++;
        rc = rl__tbl_state_write(s, table, &st);
    }
    rl__row_clear(&old);
    return rc;
}

static int delete_row(rl__stx *s, int table, int64_t id, int depth)
{
    int rc = RL_OK;
    if (depth > MAX_CASCADE)
        return RL__FAIL(s->err, RL_FOREIGNKEY, "cascade deeper than %d tables", MAX_CASCADE);
    if (is_referenced(s->cat, table))
        rc = release_refs(s, table, id, depth);
    return rc == RL_OK ? remove_row(s, table, id) : rc;
}

int rl__tbl_delete(rl__stx *s, int table, int64_t id)
{
    rl__tstate st;
    rl__buf val = {0};
    int chained, rc = RL_OK;
    if (is_referenced(s->cat, table)) { /* the row first, then what refers to it */
        rc = rl__tbl_state(s, table, &st);
        if (rc == RL_OK)
            rc = find_row(s, table, &st, id, &val, &chained);
        rl__buf_free(&val);
        if (rc == RL_OK)
            rc = may_delete(s, table, id, 0);
    }
    return rc == RL_OK ? delete_row(s, table, id, 0) : rc;
}

int rl__tbl_update(rl__stx *s, int table, int64_t id, const rl_value *vals, int nvals)
{
    const rl__table *tb = rl__tbl_of(s, table);
    rl_value small[SMALL_ROW];
    rl_value *row = nvals <= SMALL_ROW ? small : calloc((size_t)nvals, sizeof *row);
    rl__tstate st;
    rl__buf *val = &s->old_rec_buf;
    rl_row old = {0};
    int chained = 0;
    int rc = row ? rl__tbl_state(s, table, &st) : RL__FAIL(s->err, RL_NOMEM, "no memory");
    old.cat = s->cat;
    if (rc == RL_OK && nvals >= 1 && !(vals[0].type == RL_TNULL ||
                                       (vals[0].type == RL_TINTEGER && vals[0].v.i == id)))
        rc = RL__FAIL(s->err, RL_INVALID, "%s: update of id %lld cannot change the id",
                      tb->name, (long long)id);
    if (rc == RL_OK)
        rc = check_row(s, table, vals, nvals, row, id);
    if (rc == RL_OK)
        rc = find_row(s, table, &st, id, val, &chained);
    if (rc == RL_OK) {
        row[0] = rl_int(id);
        rc = rl__ix_check_unique(s, table, row, id);
    }
    if (rc == RL_OK && tb->nindexes > 0) {
        rc = rl__tbl_row_borrow(s, table, id, val->p, val->n, chained, &old); /* val stays */
        if (rc == RL_OK)
            rc = rl__ix_replace_row(s, table, old.vals, row);
    }
    if (rc == RL_OK)
        rc = free_chains(s, table, val->p, val->n, chained);
    if (rc == RL_OK)
        rc = write_row(s, table, &st, row, 1);
    if (rc == RL_OK) {
        st.dead++;
        rc = rl__tbl_state_write(s, table, &st);
    }
    rl__row_clear(&old);
    if (row != small)
        free(row);
    return rc;
}

/* ---- whole tables ------------------------------------------------------------------- */

/* Call fn for every chain of every row of the table. */
static int all_chains(rl__stx *s, int table, chain_fn fn, void *arg)
{
    rl__scan sc;
    int rc = rl__scan_open(s, table, &sc);
    while (rc == RL_OK && (rc = rl__scan_next(&sc)) == RL_OK)
        rc = each_chain(s, table, sc.rec, sc.n, sc.chained, fn, arg);
    rl__scan_close(&sc);
    return rc == RL_DONE ? RL_OK : rc;
}

/* Every id of the table, in order (for deletes that follow references). */
static int all_ids(rl__stx *s, int table, int64_t **ids, size_t *n)
{
    rl__scan sc;
    size_t cap = 64;
    int rc = rl__scan_open(s, table, &sc);
    *n = 0;
    *ids = malloc(cap * sizeof **ids);
    if (!*ids)
        rc = RL__FAIL(s->err, RL_NOMEM, "no memory");
    while (rc == RL_OK && (rc = rl__scan_next(&sc)) == RL_OK) {
        if (*n == cap) {
            int64_t *grown = realloc(*ids, 2 * cap * sizeof **ids);
            if (!grown) {
                rc = RL__FAIL(s->err, RL_NOMEM, "no memory");
                break;
            }
            *ids = grown;
            cap *= 2;
        }
        (*ids)[(*n)++] = sc.id;
    }
    rl__scan_close(&sc);
    return rc == RL_DONE ? RL_OK : rc;
}

int rl__tbl_truncate(rl__stx *s, int table)
{
    rl__tstate st;
    int rc;
    if (is_referenced(s->cat, table)) { /* row by row, as the references say */
        int64_t *ids = NULL;
        size_t n = 0;
        rc = all_ids(s, table, &ids, &n);
        for (size_t i = 0; i < n && rc == RL_OK; i++)
            rc = may_delete(s, table, ids[i], 0);
        for (size_t i = 0; i < n && rc == RL_OK; i++) {
            rc = delete_row(s, table, ids[i], 0);
            if (rc == RL_NOTFOUND) /* gone already, by a cascade */
                rc = RL_OK;
        }
        free(ids);
        return rc;
    }
    rc = all_chains(s, table, free_chain, NULL);
    for (int x = 0; x < rl__tbl_of(s, table)->nindexes && rc == RL_OK; x++)
        rc = rl__bt_clear(s->bt, rl__tbl_of(s, table)->indexes[x].root);
    if (rc == RL_OK)
        rc = rl__tbl_state(s, table, &st);
    if (rc == RL_OK)
        rc = rl__bt_free(s->bt, st.tree);
    if (rc == RL_OK)
        rc = rl__bt_create(s->bt, RL__BT_IDS, &st.tree);
    st.live = st.dead = 0;
    return rc == RL_OK ? rl__tbl_state_write(s, table, &st) : rc;
}

/* Blocks of the value and record chains of the table's rows. */
int rl__tbl_chain_blocks(rl__stx *s, int table, uint64_t *blocks)
{
    *blocks = 0;
    return all_chains(s, table, count_chain, blocks);
}

int rl__tbl_drop(rl__stx *s, int table)
{
    rl__tstate st;
    const rl__table *tb = rl__tbl_of(s, table);
    int rc;
    for (int i = 0; i < s->cat->n; i++)
        for (int c = 1; i != table && c < s->cat->tables[i].ncols; c++)
            if (s->cat->tables[i].ref_table[c] == table)
                return RL__FAIL(s->err, RL_FOREIGNKEY, "table %s is referenced by %s.%s",
                                tb->name, s->cat->tables[i].name,
                                s->cat->tables[i].cols[c].name);
    rc = all_chains(s, table, free_chain, NULL);
    for (int x = 0; x < tb->nindexes && rc == RL_OK; x++)
        rc = rl__bt_free(s->bt, tb->indexes[x].root);
    if (rc == RL_OK)
        rc = rl__tbl_state(s, table, &st);
    if (rc == RL_OK)
        rc = rl__bt_free(s->bt, st.tree);
    if (rc == RL_OK)
        rc = state_forget(s, tb->state); /* the tables after it move down */
    if (rc == RL_OK)
        rc = rl__blk_block_free(s->bt, tb->state);
    if (rc == RL_OK)
        rc = cat_private(s);
    if (rc != RL_OK)
        return rc;
    rl__cat_remove(s->cat, table);
    return rl__cat_save(s->bt, s->cat);
}
