/*
** schema/schema.h: the relational layer's interface to relatable.c.
**
** schema/ turns the block layer's chains and blocks into tables:
**   record.c   a row's values <-> the bytes of a record
**   btree.c    B+trees of byte-string keys and values in single blocks,
**              leaves linked in key order (btree_bulk.c: whole-tree walks
**              and the bulk builder)
**   catalog.c  table definitions, stored in the schema chain
**   table.c    rows: insert, get, update, delete, count, truncate,
**              TEXT/BLOB values in their own chains, foreign keys
**   vacuum.c   rebuilding a table's trees, and what a table occupies
**   index.c    secondary indexes: key encoding, upkeep, unique checks
**   query.c    conditions, plans, ordering, limits, projection
**   join.c     joins along foreign keys, by key and index lookups
**   cursor.c   scans over a table's rows in id order
** It reaches the file only through blocks/blocks.h.
**
** Storage of a table (docs/format.md, "Tables"): a state block (counts,
** next id, the tree's root) and a B+tree keyed by id whose leaves hold the
** records, so a lookup by id is one descent and a scan walks the leaf
** chain. A large value lives in its own chain; a record too large for a
** cell lives in a chain too.
*/
#ifndef RL_SCHEMA_H
#define RL_SCHEMA_H

#include <stdint.h>

#include "../blocks/blocks.h"
#include "../relatable.h"

/* Block types of this layer (docs/format.md). */
#define RL__TYPE_SCHEMA (RL__BLK_TYPE_USER + 0) /* the catalog chain */
#define RL__TYPE_STATE (RL__BLK_TYPE_USER + 1)  /* a table's state block */
#define RL__TYPE_RECORD (RL__BLK_TYPE_USER + 2) /* a record too big for a cell */
#define RL__TYPE_VALUE (RL__BLK_TYPE_USER + 3)  /* a large TEXT/BLOB value */
#define RL__TYPE_BTREE (RL__BLK_TYPE_USER + 4)  /* a B+tree node */

/* Meta words of the root slot used by this layer. */
#define RL__META_SCHEMA 0  /* logical number of the catalog chain, 0 = none */
#define RL__META_VERSION 1 /* catalog version: bumped by every schema change */

#define RL__MAX_NAME 64
#define RL__MAX_COLUMNS 2000
#define RL__MAX_CHAR 65535u

/* ---- catalog ---------------------------------------------------------------- */

/* A secondary index: a B+tree of keys (column values..., id). */
typedef struct rl__index {
    char *name;
    int ncols;
    int *cols;     /* column numbers of the table, in key order */
    int unique;    /* no two rows share all non-NULL values */
    uint64_t root; /* the B+tree's root (it never moves) */
    const char **colnames; /* ncols names, pointing into the table's columns */
} rl__index;

typedef struct rl__table {
    char *name;
    uint64_t state;  /* logical number of the state block */
    int ncols;       /* including id at 0 */
    rl_column *cols; /* ncols; names and references owned here */
    int *ref_table;  /* per column: index of the referenced table, or -1 */
    rl__index *indexes;
    int nindexes;
} rl__table;

/* An immutable set of table definitions, shared by reference count. */
typedef struct rl__catalog {
    rl__table *tables;
    int n;
    uint64_t version; /* RL__META_VERSION it was loaded at */
    int refs;         /* changed only under the owner's lock */
} rl__catalog;

int rl__cat_load(rl__blk_txn *t, rl__catalog **out);
/* Write cat into the schema chain and bump the catalog version. */
int rl__cat_save(rl__blk_txn *t, rl__catalog *cat);
/* A deep copy (refs = 1). */
int rl__cat_clone(const rl__catalog *cat, rl__catalog **out, rl__err *err);
void rl__cat_free(rl__catalog *cat);
/* Index of the table named name, or -1. */
int rl__cat_find(const rl__catalog *cat, const char *name);
/* Append a table definition to a private catalog (validates it). */
int rl__cat_add(rl__catalog *cat, const char *name, const rl_column *cols,
                int ncols, uint64_t state, rl__err *err);
/* Remove table i from a private catalog. */
void rl__cat_remove(rl__catalog *cat, int i);
/* Add an index to table i of a private catalog (validates it). */
int rl__cat_add_index(rl__catalog *cat, int i, const char *name, const int *cols, int ncols,
                      int unique, uint64_t root, rl__err *err);
void rl__cat_remove_index(rl__catalog *cat, int table, int index);
/* Find an index by name: *table and *index; -1 when there is none. */
int rl__cat_find_index(const rl__catalog *cat, const char *name, int *table, int *index);

/* ---- records ----------------------------------------------------------------- */

#define RL__REC_TOMBSTONE 0x1

/* A growable byte buffer. */
typedef struct rl__buf {
    uint8_t *p;
    size_t n, cap;
} rl__buf;
int rl__buf_reserve(rl__buf *b, size_t extra);
void rl__buf_free(rl__buf *b);
void rl__put_varint(rl__buf *b, uint64_t v);
/* Read a varint at p[*off..n); RL_CORRUPT if it runs off the end. */
int rl__get_varint(const uint8_t *p, size_t n, size_t *off, uint64_t *v);

/* Values longer than this many bytes go to their own chain. */
#define RL__INLINE_MAX 512

/* A decoded value of a record body: inline bytes point into the body; a
 * large value names its chain instead. */
typedef struct rl__field {
    rl_type type; /* RL_TNULL for NULL */
    int64_t i;
    double r;
    const uint8_t *p; /* inline bytes, or NULL when in a chain */
    uint64_t n;       /* byte length */
    uint64_t chain;   /* large value's chain head, or 0 */
} rl__field;


/* Append the record of a row (its user columns; the id is the key) to
 * out; large values must already be in chains, given per column in
 * chains[] (0 = inline). */
int rl__rec_encode(const rl__table *tbl, const rl_value *vals, const uint64_t *chains,
                   rl__buf *out);
/* Decode a record into fields[1..ncols); fields[0] is left alone. */
int rl__rec_decode(const rl__table *tbl, const uint8_t *body, size_t n,
                   rl__field *fields, rl__err *err);

/* Decode a record straight into vals[1..], TEXT, CHAR and BLOB values
 * pointing into body (the row's reads borrow them). RL_DONE when a value
 * lives in a chain (rl__rec_decode then); RL_CORRUPT as rl__rec_decode. */
int rl__rec_decode_borrowed(const rl__table *tbl, const uint8_t *body, size_t n,
                            rl_value *vals, rl__err *err);
/* The same for columns first..last only, from byte *at of body (first
 * 1: from the start), leaving *at after column last: a scan decodes the
 * columns its condition reads as it needs them, and vals past last are
 * untouched. */
int rl__rec_decode_cols(const rl__table *tbl, const uint8_t *body, size_t n, int first,
                        int last, size_t *at, rl_value *vals, rl__err *err);

/* ---- B+tree (byte-string keys and values) ---------------------------------- */

#define RL__BT_MAX_KEY 1024 /* longest key */

/* The largest cell (key + value + lengths) a node of this payload takes. */
uint32_t rl__bt_max_cell(uint32_t payload);
/* Cell layouts (docs/format.md, "B+tree node"): any keys and values;
 * keys that are id keys (rl__id_key), with values (tables); keys without
 * values; keys of k index values (rl__ix_encode_value) and an id, without
 * values (indexes of k columns, 1 <= k <= RL__BT_INDEX_MAX). */
enum { RL__BT_BYTES, RL__BT_IDS, RL__BT_KEYS };
#define RL__BT_INDEX(k) (RL__BT_KEYS + (k))
#define RL__BT_INDEX_MAX 16
/* A new empty tree whose cells have this layout. */
int rl__bt_create(rl__blk_txn *t, int layout, uint64_t *root);
/* Copy key's value into val and its cell flag into *flag (either may be
 * NULL); RL_NOTFOUND when absent. */
int rl__bt_get(rl__blk_txn *t, uint64_t root, const uint8_t *k, size_t kn, rl__buf *val,
               int *flag);
#define RL__BT_REPLACE 0x1 /* rl__bt_put: replace an existing key's value */
#define RL__BT_FLAG 0x2    /* rl__bt_put: set the cell's flag bit */
/* Insert (RL_DUPLICATE if present without RL__BT_REPLACE). The root keeps
 * its logical number for the tree's whole life. */
int rl__bt_put(rl__blk_txn *t, uint64_t root, const uint8_t *k, size_t kn, const uint8_t *v,
               size_t vn, unsigned how);
/* RL_NOTFOUND when key is absent. */
int rl__bt_delete(rl__blk_txn *t, uint64_t root, const uint8_t *k, size_t kn);
/* Delete, giving back the value and flag as rl__bt_get would: one descent. */
int rl__bt_take(rl__blk_txn *t, uint64_t root, const uint8_t *k, size_t kn, rl__buf *val,
                int *flag);
/* The leaf where a get, take or put of a tree last ended. The next one of
 * the same tree tries it first: a key between its first and last keys can
 * be in no other leaf, nor can a key after the last key of the tree's last
 * leaf, so keys in order (the table's deletes and appends in id order)
 * skip the descent. It holds while the transaction allocates and frees no
 * block (rl__blk_txn_epoch): splits and frees allocate or free. It belongs
 * to one transaction. All zero: none yet. */
typedef struct rl__bt_finger {
    uint64_t root, leaf, epoch;
} rl__bt_finger;
/* rl__bt_get, rl__bt_take and rl__bt_put with a finger (f may be NULL);
 * a put goes by the finger only when it needs no split. */
int rl__bt_put_near(rl__blk_txn *t, rl__bt_finger *f, uint64_t root, const uint8_t *k,
                    size_t kn, const uint8_t *v, size_t vn, unsigned how);
int rl__bt_get_near(rl__blk_txn *t, rl__bt_finger *f, uint64_t root, const uint8_t *k, size_t kn,
                    rl__buf *val, int *flag);
int rl__bt_take_near(rl__blk_txn *t, rl__bt_finger *f, uint64_t root, const uint8_t *k,
                     size_t kn, rl__buf *val, int *flag);
/* Free every node. */
int rl__bt_free(rl__blk_txn *t, uint64_t root);
/* Free every node but the root, which becomes an empty leaf. */
int rl__bt_clear(rl__blk_txn *t, uint64_t root);
/* What a walk of a whole tree counts (for checks, rl_space and rdump). */
typedef struct rl__bt_space {
    uint64_t nodes, leaves, entries;
    uint64_t used;      /* node payload bytes in use: headers, slots, live cells */
    uint64_t capacity;  /* node payload bytes in all */
    uint64_t leaf_used; /* used, counting leaves only */
    uint32_t depth;     /* levels: 1 for a tree that is one leaf */
} rl__bt_space;
int rl__bt_stats(rl__blk_txn *t, uint64_t root, rl__bt_space *sp);
/* rl__bt_stats that also checks every node's cells (rl_check): RL_CORRUPT
 * when a node's cells do not decode, ascend or add up with its frag. */
int rl__bt_check(rl__blk_txn *t, uint64_t root, rl__bt_space *sp);
/* Leaves a tree holding leaf_used bytes of leaves would need if rebuilt
 * as vacuum and index builds do: full, but for free_percent of each leaf
 * (rl__bt_build_leave_free). */
uint64_t rl__bt_full_leaves(uint32_t payload, unsigned free_percent, const rl__bt_space *sp);

/* Share of each leaf an index build leaves free: an index takes inserts
 * all over its key range, and a packed leaf splits at the first one. */
#define RL__INDEX_LEAF_FREE 5

/* Building a tree from entries in strictly ascending key order, filling
 * every node, with no descent per entry (vacuum, index builds). The tree
 * must be empty (as rl__bt_create and rl__bt_clear leave it); one node
 * per level stays referenced until end or abort, which free *b. */
typedef struct rl__bt_builder rl__bt_builder;
int rl__bt_build_begin(rl__blk_txn *t, uint64_t root, rl__bt_builder **b);
int rl__bt_build_add(rl__bt_builder *b, const uint8_t *k, size_t kn, const uint8_t *v,
                     size_t vn, unsigned how);
int rl__bt_build_end(rl__bt_builder *b);
void rl__bt_build_abort(rl__bt_builder *b);
/* Leave free about percent of each leaf the builder closes (0 by default):
 * room for the inserts that follow a rebuild, so that each does not split
 * a full leaf. Interior nodes are filled. */
void rl__bt_build_leave_free(rl__bt_builder *b, unsigned percent);

/* An iterator over the leaves, holding one leaf pinned. It keeps the last
 * key of the leaves it left, so a damaged leaf chain that goes back (a
 * loop) ends in RL_CORRUPT however the tree grows meanwhile. */
typedef struct rl__bt_iter {
    rl__blk_txn *t;
    uint64_t leaf, steps;
    uint32_t idx;
    rl__blk_ref ref;
    size_t last_len; /* 0 with !has_last: no leaf left yet */
    int has_last;
    uint8_t last[RL__BT_MAX_KEY];
} rl__bt_iter;
/* Position before the first key >= k (k NULL: the first key). */
int rl__bt_seek(rl__blk_txn *t, uint64_t root, const uint8_t *k, size_t kn, rl__bt_iter *it);
/* The next entry (flag may be NULL); pointers stay valid until the next
 * call. RL_DONE at the end. */
int rl__bt_next(rl__bt_iter *it, const uint8_t **k, size_t *kn, const uint8_t **v, size_t *vn,
                int *flag);
void rl__bt_iter_close(rl__bt_iter *it);
/* Count (into *n) and step over the entries from the iterator's place on
 * whose keys pred accepts, until the first it rejects (pred must accept a
 * prefix of the keys: 1 accept, 0 reject, -1 damaged key). A binary search
 * per leaf: no entry is read on its own. */
typedef int (*rl__bt_key_pred)(const uint8_t *k, size_t kn, void *arg);
int rl__bt_count_while(rl__bt_iter *it, rl__bt_key_pred pred, void *arg, uint64_t *n);

/* ---- tables ------------------------------------------------------------------------ */

/* The state of one table, kept in its state block. */
typedef struct rl__tstate {
    uint64_t tree;   /* B+tree root: id -> record */
    int64_t next_id; /* next automatic id */
    uint64_t live;   /* rows */
    uint64_t dead;   /* rows deleted or replaced since the last vacuum */
} rl__tstate;

/* A transaction of the schema layer: the block transaction and the
 * catalog it sees (a private copy once it changes the schema). */
typedef struct rl__stx {
    rl__blk_txn *bt;
    rl__catalog *cat;
    int cat_private;
    double autovacuum_ratio; /* < 0: off */
    rl__err *err;
    /* The last table state read or written (rl__tbl_state, state_write):
     * a read snapshot never changes, and a write transaction changes a
     * state block only through state_write, which keeps this copy in
     * step, so neither reads the block again for it. Kept by table and
     * state block; creating or dropping a table forgets it (state_table
     * < 0: none kept). state_dirty: the copy is newer than its block, which
     * rl__tbl_state_flush brings up to date (before another table's state
     * is kept, and before the commit): a run of inserts or deletes writes
     * the block twice, not once per row. */
    int read_only;
    int state_table;
    int state_dirty;
    uint64_t state_logical;
    rl__tstate state;
    /* Buffers reused by each row written, updated or deleted (its record,
     * the record it replaces, its index keys and the keys they replace),
     * so a row costs no allocation once they have grown; freed with the
     * transaction (rl__stx_release). None is used across a call that
     * could use it again. */
    rl__buf rec_buf, old_rec_buf, key_buf, old_key_buf;
    rl__bt_finger rows; /* the leaf of the last row put or deleted (rl__bt_*_near) */
} rl__stx;

/* Free what the transaction state holds (its scratch buffers). */
void rl__stx_release(rl__stx *s);

/* A row handed to the user: values point into buf (or, for a query's
 * projected row, into the query's own row). */
struct rl_row {
    rl__catalog *cat; /* holds the column names alive */
    int table;
    int ncols;
    rl_value *vals;
    rl__buf buf;
    const int *colmap; /* projected rows: the table column of each value */
    const char *const *names; /* joined rows: the name of each value */
};

/* The B+tree key of an id: short, and byte order is numeric order. */
#define RL__ID_KEY_MAX 9
size_t rl__id_key(int64_t id, uint8_t key[RL__ID_KEY_MAX]);
/* Decode a key made by rl__id_key; RL_CORRUPT if it is not one. */
int rl__key_id(const uint8_t *key, size_t kn, int64_t *id);

int rl__tbl_create(rl__stx *s, const char *name, const rl_column *cols, int ncols);
int rl__tbl_drop(rl__stx *s, int table);
int rl__tbl_state(rl__stx *s, int table, rl__tstate *st);
/* Change the table's state: the copy the transaction reads at once, the
 * block at once only if it was up to date (a copy-on-write error shows
 * here, not at commit), else at the next rl__tbl_state_flush. */
int rl__tbl_state_write(rl__stx *s, int table, const rl__tstate *st);
/* Write a kept state that is newer than its block (no-op when none). */
int rl__tbl_state_flush(rl__stx *s);
/* Blocks of the value and record chains of the table's rows. */
int rl__tbl_chain_blocks(rl__stx *s, int table, uint64_t *blocks);
static inline const rl__table *rl__tbl_of(rl__stx *s, int table)
{
    return &s->cat->tables[table];
}
int rl__tbl_insert(rl__stx *s, int table, const rl_value *vals, int nvals, int64_t *id);
int rl__tbl_get(rl__stx *s, int table, int64_t id, rl_row *row);
int rl__tbl_update(rl__stx *s, int table, int64_t id, const rl_value *vals, int nvals);
int rl__tbl_delete(rl__stx *s, int table, int64_t id);
int rl__tbl_truncate(rl__stx *s, int table);
/* Rebuild the table's tree and its indexes, full (indexes keep
 * RL__INDEX_LEAF_FREE), in new blocks; if_worth_it: only the trees whose
 * rebuild would give back at least 1/64 of their blocks (each is read
 * first to know). */
int rl__tbl_vacuum(rl__stx *s, int table, int if_worth_it);
/* What the table (index < 0) or its index number `index` occupies. */
int rl__tbl_space(rl__stx *s, int table, int index, rl_space *out);
/* Fill row from a stored record (chained: rec holds the record chain's
 * head); large values are read from their chains. */
int rl__tbl_row_from_record(rl__stx *s, int table, int64_t id, const uint8_t *rec, size_t n,
                            int chained, rl_row *row);
/* The same, but inline TEXT, CHAR and BLOB values point into rec, which
 * must outlive the row's use (a scan's leaf, until its next step). */
int rl__tbl_row_borrow(rl__stx *s, int table, int64_t id, const uint8_t *rec, size_t n,
                       int chained, rl_row *row);
#define RL__STACK_COLS 64 /* decode scratch for up to this many columns lives on the stack */
/* The record a table cell holds, in *rec (pointing into the value, or into
 * buf when it lives in a chain); *chain gets that chain, or 0. */
int rl__rec_unwrap(rl__stx *s, const uint8_t *v, size_t n, int chained, rl__buf *buf,
                   const uint8_t **rec, size_t *len, uint64_t *chain);
/* Where a row decoded part by part stands (rl__tbl_row_borrow_upto). */
typedef struct rl__row_part {
    int done;  /* the last column decoded (-1: none yet; 0: the id alone) */
    size_t at; /* the record's byte after it */
} rl__row_part;
#define RL__ROW_PART_NEW ((rl__row_part){-1, 0})
/* rl__tbl_row_borrow of the columns up to last, going on from where *part
 * says the row stands (RL__ROW_PART_NEW: a new row); columns past last
 * stay unread.
 * A record in a chain, or a value in one on the way, decodes the whole
 * row at once (part->done then says so). */
int rl__tbl_row_borrow_upto(rl__stx *s, int table, int64_t id, const uint8_t *rec, size_t n,
                            int chained, int last, rl__row_part *part, rl_row *row);
/* Copy every value that points outside the row into its buffer. */
int rl__row_own(rl_row *row);
void rl__row_clear(rl_row *row);

/* ---- secondary indexes (index.c) ------------------------------------------------- */

#define RL__IX_MAX_BYTES 512 /* longest CHAR/TEXT/BLOB prefix kept in a key */

/* Append the order-preserving encoding of one value to b. */
int rl__ix_encode_value(rl__buf *b, const rl_value *v);
/* Length of the encoded value at p (n bytes), or 0 if it is damaged. */
size_t rl__ix_component_len(const uint8_t *p, size_t n);
/* The first id after skip_id whose key in the tree starts with prefix;
 * RL_NOTFOUND when none. */
int rl__ix_first_with_prefix(rl__stx *s, uint64_t root, const uint8_t *prefix, size_t n,
                             int64_t skip_id, int64_t *id);
/* RL_DUPLICATE (with a message) if another row than self_id has the
 * values vals in one of the table's unique indexes. */
int rl__ix_check_unique(rl__stx *s, int table, const rl_value *vals, int64_t self_id);
/* Add or remove a row's keys (vals: the whole row, id first) in every
 * index of the table. */
int rl__ix_update_row(rl__stx *s, int table, const rl_value *vals, int add);
/* Move a row's keys from its old values to vals, skipping the indexes
 * whose values did not change. */
int rl__ix_replace_row(rl__stx *s, int table, const rl_value *old, const rl_value *vals);
/* Fill an empty index from the table's rows (RL_DUPLICATE for a unique
 * index the rows break). */
int rl__ix_build(rl__stx *s, int table, int index);
/* Rebuild index x from its own keys (vacuum): packed anew into the lowest
 * free logical numbers, the table unread. */
int rl__ix_rebuild(rl__stx *s, int table, int index);
/* The index of table child whose first column is col, or -1. */
int rl__ix_child_index(const rl__catalog *cat, int child, int col);
int rl__tbl_create_index(rl__stx *s, const char *name, int table, const int *cols, int ncols,
                         int unique);
/* Check that the table's row count and every index match its rows; each
 * problem adds a line to out and counts in *problems. */
int rl__ix_verify(rl__stx *s, int table, rl__buf *out, int *problems);
int rl__tbl_drop_index(rl__stx *s, int table, int index);

/* ---- queries (query.c) ------------------------------------------------------------ */

enum { RL__Q_CMP = 1, RL__Q_CONTAINS, RL__Q_ICONTAINS, RL__Q_ISNULL, RL__Q_NOTNULL, RL__Q_IN,
       RL__Q_AND, RL__Q_OR, RL__Q_NOT };

/* A condition: a comparison of a named column (bound to its number, col,
 * when a query binds it), or AND/OR/NOT of sub-conditions a and b. */
struct rl_cond {
    int kind, op;
    char *column;
    int col;
    rl_value *vals; /* owned, bytes included */
    int nvals;
    struct rl_cond *a, *b;
};

rl_cond *rl__cond_new(int kind, const char *column, int op, const rl_value *vals, int n);
void rl__cond_free(rl_cond *c);

typedef struct rl__query rl__query;
/* Bind, plan and (unless plan_only) prepare a query on table. */
int rl__q_open(rl__stx *s, int table, const rl_query *q, int plan_only, rl__query **out);
/* The next row (projected into row); RL_DONE after the last. */
int rl__q_next(rl__query *q, rl_row *row);
const char *rl__q_explain(rl__query *q);
/* How many rows the query yields (from the index alone when it can). */
int rl__q_count(rl__query *q, uint64_t *n);
void rl__q_close(rl__query *q);

/* ---- joins (join.c) ------------------------------------------------------------------- */

typedef struct rl__join rl__join;
int rl__join_open(rl__stx *s, int table, const rl_query *base, const rl_join *joins, int n,
                  int plan_only, rl__join **out);
int rl__join_next(rl__join *j, rl_row *out);
const char *rl__join_explain(const rl__join *j);
void rl__join_close(rl__join *j);

/* ---- cursors -------------------------------------------------------------------------- */

typedef struct rl__scan {
    rl__stx *s;
    int table;
    rl__bt_iter it;
    int64_t id;          /* the current row's id */
    const uint8_t *rec;  /* its stored record (valid until the next step) */
    size_t n;
    int chained;         /* the record is in a chain (rec holds its head) */
} rl__scan;

int rl__scan_open(rl__stx *s, int table, rl__scan *sc);
/* The next row, in id order; RL_DONE at the end. */
int rl__scan_next(rl__scan *sc);
void rl__scan_close(rl__scan *sc);

/* ---- for tests and tools --------------------------------------------------------------- */

/* rl_open over a caller's I/O table (NULL: POSIX): crash and fault
 * injection in tests, in-memory files in fuzzers (relatable.c). */
int rl__open_io(const char *path, const rl_options *opt, rl__io_open_fn io_open, void *io_arg,
                rl_db **out);

#endif /* RL_SCHEMA_H */
