/*
** relatable.h: the one public header of relatable, an embedded relational
** database whose whole database is a single file.
**
** This header is the reference manual. Every call returns an int result
** code: RL_OK (0) on success, otherwise one of the codes below. Codes are
** never renumbered; new codes are only ever appended.
**
** Overview
**   rl_open / rl_close            a database file
**   rl_begin / rl_commit / rl_rollback
**                                 transactions: every read and write happens
**                                 inside one; readers see a stable snapshot
**   rl_create_table / rl_drop_table / rl_table_at / rl_columns
**                                 the schema, stored in the file
**   rl_insert / rl_get / rl_update / rl_delete / rl_count / rl_truncate
**                                 rows by primary key (O(log n))
**   rl_scan / rl_cursor_next      every row of a table, streamed
**   rl_vacuum                     reclaim the space of deleted rows
**   rl_row_*                      read values out of a row
**
** Every table has an INTEGER primary key column "id" at column index 0,
** assigned automatically (1, 2, 3, ...) unless an insert gives one; user
** columns follow at indexes 1..n.
**
** Ownership: strings and arrays passed in are copied when needed; rows
** returned by rl_get are the caller's (free with rl_row_free); rows from a
** cursor belong to the cursor and are valid until the next step; names
** returned by rl_table_at/rl_columns live as long as the transaction.
**
** Threads: an rl_db may be shared by threads; an rl_txn, rl_cursor or
** rl_row is used by one thread at a time.
*/
#include <stddef.h>
#include <stdint.h>
#ifndef RELATABLE_H
#define RELATABLE_H

#ifdef __cplusplus
extern "C" {
#endif

#define RL_VERSION_STRING "0.1.0"
#define RL_VERSION_NUMBER 100 /* major * 10000 + minor * 100 + patch */

/*
** The result code table. Each row: name, number, message. This one table
** produces the enum, rl_strerror() and rl_errname(). Append only.
*/
#define RL_ERROR_TABLE(X)                                                    \
    X(RL_OK, 0, "not an error")                                              \
    X(RL_ERROR, 1, "unspecified error")                                      \
    X(RL_IOERR, 2, "input/output error")                                     \
    X(RL_CORRUPT, 3, "the database file is damaged")                         \
    X(RL_NOMEM, 4, "out of memory")                                          \
    X(RL_BUSY, 5, "the database is locked by another writer")                \
    X(RL_FULL, 6, "the database or disk is full")                            \
    X(RL_READONLY, 7, "attempt to write a read-only database or transaction") \
    X(RL_MISUSE, 8, "the library was called incorrectly")                    \
    X(RL_INVALID, 9, "invalid argument")                                     \
    X(RL_NOTFOUND, 10, "not found")                                          \
    X(RL_EXISTS, 11, "already exists")                                       \
    X(RL_RANGE, 12, "value or offset out of range")                          \
    X(RL_TOOBIG, 13, "value too large")                                      \
    X(RL_CANTOPEN, 14, "unable to open the database file")                  \
    X(RL_NOTABLE, 15, "no such table")                                       \
    X(RL_NOCOLUMN, 16, "no such column")                                     \
    X(RL_TYPE, 17, "value of the wrong type")                                \
    X(RL_NOTNULL, 18, "NULL in a NOT NULL column")                           \
    X(RL_DUPLICATE, 19, "duplicate key")                                     \
    X(RL_FOREIGNKEY, 20, "foreign key constraint failed")                    \
    X(RL_DONE, 21, "no more rows")

/** Result codes. */
typedef enum rl_result {
#define RL__ENUM_ROW(name, num, msg) name = num,
    RL_ERROR_TABLE(RL__ENUM_ROW)
#undef RL__ENUM_ROW
} rl_result;

/**
 * rl_strerror - a fixed English sentence for a result code.
 * @code: any int; unknown codes give "unknown error code".
 * Returns a static string; never NULL.
 */
const char *rl_strerror(int code);

/**
 * rl_errname - the symbolic name of a result code ("RL_CORRUPT").
 * @code: any int; unknown codes give "RL_UNKNOWN".
 * Returns a static string; never NULL.
 */
const char *rl_errname(int code);

/** rl_version - the library version string, e.g. "0.1.0". */
const char *rl_version(void);

/* ==== Handles ========================================================== */

typedef struct rl_db rl_db;         /**< an open database file */
typedef struct rl_txn rl_txn;       /**< a read or write transaction */
typedef struct rl_row rl_row;       /**< one row's values */
typedef struct rl_cursor rl_cursor; /**< a stream of rows */

/* ==== Values ============================================================= */

/** Column and value types. RL_TNULL is only ever a value's type. */
typedef enum rl_type {
    RL_TNULL = 0,
    RL_TINTEGER = 1, /**< int64_t */
    RL_TREAL = 2,    /**< double, including NaN and infinities */
    RL_TCHAR = 3,    /**< CHAR(n): at most n bytes, stored exactly */
    RL_TTEXT = 4,    /**< UTF-8 text of any length (not checked) */
    RL_TBLOB = 5     /**< bytes of any length */
} rl_type;

/** A value passed to rl_insert / rl_update or read with rl_row_get. For
 * CHAR/TEXT/BLOB, b.p points at b.n bytes owned by whoever made the value. */
typedef struct rl_value {
    rl_type type;
    union {
        int64_t i;
        double r;
        struct {
            const void *p;
            size_t n;
        } b;
    } v;
} rl_value;

static inline rl_value rl_null(void)
{
    rl_value x;
    x.type = RL_TNULL;
    x.v.i = 0;
    return x;
}
static inline rl_value rl_int(int64_t i)
{
    rl_value x;
    x.type = RL_TINTEGER;
    x.v.i = i;
    return x;
}
static inline rl_value rl_real(double r)
{
    rl_value x;
    x.type = RL_TREAL;
    x.v.r = r;
    return x;
}
/** Text of n bytes (may hold NUL bytes); also used for CHAR(n) columns. */
static inline rl_value rl_textn(const char *s, size_t n)
{
    rl_value x;
    x.type = RL_TTEXT;
    x.v.b.p = s;
    x.v.b.n = n;
    return x;
}
/** A NUL-terminated string (NULL gives a NULL value). */
rl_value rl_text(const char *s);
static inline rl_value rl_blob(const void *p, size_t n)
{
    rl_value x;
    x.type = RL_TBLOB;
    x.v.b.p = p;
    x.v.b.n = n;
    return x;
}

/* ==== Opening ============================================================ */

#define RL_OPEN_CREATE 0x1   /**< create the file if it does not exist */
#define RL_OPEN_READONLY 0x2 /**< never write; write transactions fail */
#define RL_OPEN_EXCL 0x4     /**< with CREATE: fail with RL_EXISTS if it exists */

/** Durability of commits (docs/format.md, "Commit protocol"). */
#define RL_SYNC_FULL 0   /**< a commit that returned survives power loss */
#define RL_SYNC_NORMAL 1 /**< power loss may lose the last commit */
#define RL_SYNC_OFF 2    /**< no fsync: survives a program crash only */

typedef struct rl_options {
    unsigned flags;         /**< RL_OPEN_*; 0 means RL_OPEN_CREATE */
    uint32_t block_size;    /**< new files: power of two 512..65536; 0 = 4096 */
    int durability;         /**< RL_SYNC_*; default RL_SYNC_FULL */
    /** Block cache, shared by the handle's transactions; 0 = 8 MiB. A
     * block enters it the second time it is missed within a while, so
     * rows read once (random lookups) do not push out the tree's upper
     * nodes. Memory also holds each transaction's few pages of its own. */
    size_t cache_bytes;
    /** Vacuum a table automatically when its deleted rows pass this share
     * of its rows (and at least 1,000 rows). 0 = default 0.5; negative
     * turns automatic vacuum off. */
    double autovacuum_ratio;
    /** rl_begin(RL_WRITE) while another writer (thread, handle or
     * process) holds the database: 0 waits as long as it takes, > 0 gives
     * up after this many milliseconds, < 0 gives up at once; giving up is
     * RL_BUSY. Readers never wait for a writer. */
    int busy_timeout_ms;
} rl_options;

/**
 * rl_open - open (or create) the database file at path.
 * @path: file name.
 * @opt:  options, or NULL for defaults (create if missing).
 * @out:  receives the handle. Even when rl_open fails, *out is a handle
 *        (unless memory ran out: then NULL) whose rl_errmsg says why; close
 *        it with rl_close.
 * Returns RL_OK; RL_CANTOPEN (missing file, permissions), RL_CORRUPT (not a
 * relatable file, or damaged), RL_EXISTS, RL_INVALID (bad options),
 * RL_NOMEM, RL_IOERR.
 */
int rl_open(const char *path, const rl_options *opt, rl_db **out);

/**
 * rl_close - close a database. Every transaction must have ended.
 * Returns RL_OK, or RL_BUSY (the handle stays open) if one has not.
 * Closing NULL is a no-op.
 */
int rl_close(rl_db *db);

/** rl_errmsg - the message of the last failed call on db (or on one of its
 * transactions, cursors); "" if none. Valid until the next call. */
const char *rl_errmsg(rl_db *db);

/* ==== Transactions ======================================================= */

#define RL_READ 0
#define RL_WRITE 1

/**
 * rl_begin - start a transaction.
 * @mode: RL_READ (a snapshot; many at once) or RL_WRITE (one at a time:
 *        a second writer waits for the first).
 * Returns RL_OK, RL_READONLY (write on a read-only handle), RL_CORRUPT,
 * RL_IOERR, RL_NOMEM, RL_MISUSE.
 */
int rl_begin(rl_db *db, int mode, rl_txn **out);

/** rl_commit - make a write transaction's changes durable and visible, or
 * end a read transaction. The transaction is freed in every case; if the
 * commit fails nothing of it is kept. A transaction that vacuumed (itself,
 * or automatically at this commit) has its new trees moved down the file
 * by a few more commits before rl_commit returns, so the file shrinks now
 * and the commits that follow stay small; a reader still holding the old
 * trees leaves that to later commits. An error in those extra commits is
 * not the transaction's: it is committed, and RL_OK is returned. */
int rl_commit(rl_txn *t);

/** rl_rollback - discard the transaction and free it. NULL is a no-op. */
void rl_rollback(rl_txn *t);

/** rl_txn_id - a read's snapshot: the number of the commit it reads.
 * For a write, the number its commit will take. Commits number up from 1
 * (the empty database), so two reads with the same id see the same data.
 * 0 for a NULL or invalid transaction. */
uint64_t rl_txn_id(const rl_txn *t);

/* ==== Schema ============================================================= */

#define RL_NOT_NULL 0x1 /**< column flag: NULL is refused */
#define RL_UNIQUE 0x2   /**< column flag: no two rows share a non-NULL value */

/** What deleting a referenced row does to the rows that reference it. */
#define RL_FK_RESTRICT 0 /**< the delete fails with RL_FOREIGNKEY (default) */
#define RL_FK_CASCADE 1  /**< they are deleted too */
#define RL_FK_SET_NULL 2 /**< their column is set to NULL (column must allow it) */

/** A column definition for rl_create_table. */
typedef struct rl_column {
    const char *name; /**< 1..64 bytes: letters, digits, '_'; not "id" */
    rl_type type;     /**< RL_TINTEGER .. RL_TBLOB */
    uint32_t size;    /**< CHAR(n): n (1..65535); else 0 */
    unsigned flags;   /**< RL_NOT_NULL, RL_UNIQUE */
    /** Foreign key: the table whose id this INTEGER column holds, or NULL.
     * Inserts and updates must name an existing row (or NULL); such a
     * column is indexed automatically. */
    const char *references;
    int on_delete; /**< RL_FK_*: what deleting the referenced row does */
} rl_column;

/**
 * rl_create_table - create a table with an "id" primary key and ncols
 * columns. Returns RL_OK, RL_EXISTS, RL_INVALID (bad name, type, size,
 * duplicate column), RL_NOTABLE (references an unknown table),
 * RL_READONLY (read transaction).
 */
int rl_create_table(rl_txn *t, const char *name, const rl_column *cols, int ncols);

/** rl_drop_table - drop a table and free its space. RL_NOTABLE if missing,
 * RL_FOREIGNKEY if another table references it. */
int rl_drop_table(rl_txn *t, const char *name);

/**
 * rl_create_index - index columns of a table, built at once from its rows
 * and kept up to date from then on. Queries use it where it helps.
 * @name:    the index's name (unique in the database).
 * @columns: column names, in key order (1..16).
 * @unique:  nonzero: no two rows may share all these values (rows with a
 *           NULL among them are exempt).
 * Returns RL_OK, RL_EXISTS, RL_NOTABLE, RL_NOCOLUMN, RL_DUPLICATE (unique,
 * and the rows already break it), RL_INVALID, RL_READONLY.
 */
int rl_create_index(rl_txn *t, const char *name, const char *table, const char *const *columns,
                    int ncols, int unique);

/** rl_drop_index - drop an index (RL_NOTFOUND if none; RL_INVALID for the
 * index that serves a foreign key). */
int rl_drop_index(rl_txn *t, const char *name);

/** rl_index_at - index i (0-based) of a table: its name, whether unique,
 * and its columns (names valid for the transaction); RL_NOTFOUND past the
 * last. Tables index their RL_UNIQUE and foreign-key columns themselves. */
int rl_index_at(rl_txn *t, const char *table, int i, const char **name, int *unique,
                const char *const **columns, int *ncols);

/** rl_table_at - the name of table i (0-based, in creation order), or
 * RL_NOTFOUND past the last one. */
int rl_table_at(rl_txn *t, int i, const char **name);

/** rl_columns - a table's columns, id first (*ncols counts it). */
int rl_columns(rl_txn *t, const char *table, const rl_column **cols, int *ncols);

/* ==== Rows =============================================================== */

/**
 * rl_insert - insert a row.
 * @vals: one value per column, id first: vals[0] is rl_null() for the next
 *        id or rl_int(n) for id n (the sequence then moves past n).
 * @nvals: number of columns including id.
 * @id:   receives the row's id (may be NULL).
 * Returns RL_OK; RL_NOTABLE, RL_INVALID (wrong number of values), RL_TYPE,
 * RL_TOOBIG (value longer than CHAR(n)), RL_NOTNULL, RL_DUPLICATE (id
 * taken), RL_FOREIGNKEY, RL_READONLY. An insert refused for its input
 * changes nothing and leaves the transaction usable; after RL_IOERR,
 * RL_FULL or RL_NOMEM, roll the transaction back.
 */
int rl_insert(rl_txn *t, const char *table, const rl_value *vals, int nvals, int64_t *id);

/** rl_get - the row with this id; *row is the caller's (rl_row_free).
 * RL_NOTFOUND if there is none. */
int rl_get(rl_txn *t, const char *table, int64_t id, rl_row **row);

/** rl_update - replace the row's values (vals as for rl_insert; vals[0]
 * must be NULL or equal id). Same errors as rl_insert, and RL_NOTFOUND. */
int rl_update(rl_txn *t, const char *table, int64_t id, const rl_value *vals, int nvals);

/** rl_delete - delete the row (RL_NOTFOUND if none; RL_FOREIGNKEY if
 * another row references it). */
int rl_delete(rl_txn *t, const char *table, int64_t id);

/** rl_count - the number of rows, O(1). */
int rl_count(rl_txn *t, const char *table, uint64_t *n);

/** rl_truncate - delete every row (RL_FOREIGNKEY if any is referenced). */
int rl_truncate(rl_txn *t, const char *table);

/** rl_vacuum - rebuild a table (or all, when table is NULL) so that its
 * rows fill their blocks again, returning the rest to the freelist. Each
 * tree (the rows', each index's) is read first and rebuilt only if that
 * gives back at least 1/64 of its blocks, or it is small: vacuuming a
 * compact table costs a read of it. Its rl_commit then moves the new
 * trees down the file (see rl_commit). With table NULL that commit
 * compacts the whole file: it moves every live block it can off the end,
 * and the file shrinks to what it holds. */
int rl_vacuum(rl_txn *t, const char *table);

/** rl_scan - a cursor over every row of a table, in storage order. */
int rl_scan(rl_txn *t, const char *table, rl_cursor **c);

/** rl_cursor_next - step to the next row; *row belongs to the cursor and
 * stays valid until the next step or close. Returns RL_OK with a row,
 * RL_DONE after the last, or an error. */
int rl_cursor_next(rl_cursor *c, const rl_row **row);

/** rl_cursor_close - free the cursor. NULL is a no-op. */
void rl_cursor_close(rl_cursor *c);

/* ==== Queries ===============================================================
** A query names a table, an optional condition, the columns wanted, an
** order, and a window (offset, limit). Rows stream through a cursor. The
** planner uses the primary key or an index for =, IN and ranges on an
** index's first column, and for ORDER BY when that saves a sort; explain
** says which.
*/

typedef struct rl_cond rl_cond; /**< a condition on a table's rows */

/** Comparison operators for rl_cmp. */
#define RL_EQ 1
#define RL_NE 2
#define RL_LT 3
#define RL_LE 4
#define RL_GT 5
#define RL_GE 6

/*
 * Conditions are built by these calls and combined with rl_and, rl_or and
 * rl_not, which take ownership of their arguments; free the whole tree
 * with rl_cond_free. Values and strings are copied. On out-of-memory a
 * call returns NULL (and frees what it was given); a query given NULL
 * fails with RL_NOMEM. Columns are named; "id" is the primary key.
 * NULL never matches a comparison, as in SQL: `x <> 5` and `NOT x = 5`
 * are both false where x is NULL.
 */
rl_cond *rl_cmp(const char *column, int op, rl_value v);
/** The column's bytes contain text (CHAR, TEXT, BLOB). */
rl_cond *rl_contains(const char *column, const char *text);
/** Like rl_contains, ignoring ASCII case; other bytes (UTF-8) must match
 * exactly. */
rl_cond *rl_icontains(const char *column, const char *text);
rl_cond *rl_is_null(const char *column);
rl_cond *rl_not_null(const char *column);
/** The column equals one of n values. */
rl_cond *rl_in(const char *column, const rl_value *vals, int n);
rl_cond *rl_and(rl_cond *a, rl_cond *b);
rl_cond *rl_or(rl_cond *a, rl_cond *b);
rl_cond *rl_not(rl_cond *a);
void rl_cond_free(rl_cond *c);

/** One ORDER BY term. NULLs sort first ascending, last descending. */
typedef struct rl_order {
    const char *column;
    int desc; /**< nonzero: descending */
} rl_order;

/** A query; zero-initialise it and fill what you need. */
typedef struct rl_query {
    const char *table;
    const rl_cond *where;       /**< NULL: every row */
    const char *const *columns; /**< projection; NULL: every column */
    int ncolumns;
    const rl_order *order; /**< NULL: in the order the plan meets rows */
    int norder;
    uint64_t offset; /**< rows to skip */
    uint64_t limit;  /**< rows at most; 0: no limit */
} rl_query;

/**
 * rl_query_open - run a query; step through its rows with rl_cursor_next
 * (the rows have the projected columns, in the order asked) and close it
 * with rl_cursor_close. Rows are produced as the cursor steps, except
 * that an ORDER BY the plan cannot deliver sorts the matching rows in
 * memory first. The query and its condition may be freed after the call.
 * Returns RL_OK, RL_NOTABLE, RL_NOCOLUMN, RL_TYPE (a value that cannot be
 * compared with its column), RL_NOMEM, RL_INVALID.
 */
int rl_query_open(rl_txn *t, const rl_query *q, rl_cursor **c);

/** rl_query_count - how many rows the query yields (offset and limit
 * applied); O(1) for a whole table. */
int rl_query_count(rl_txn *t, const rl_query *q, uint64_t *n);

/** rl_explain - a one-line description of the plan into buf (n bytes,
 * always NUL-terminated), e.g. "SEARCH tasks USING INDEX tasks_project_fk
 * (project = ?)". */
int rl_explain(rl_txn *t, const rl_query *q, char *buf, size_t n);

/** One step of a join: a table and the foreign key that links it to a
 * table joined before it (or the base). */
typedef struct rl_join {
    const char *table; /**< the table joined in */
    /** "table.column": a foreign-key column of the joined table that
     * references an earlier table (one-to-many: the joined rows are those
     * that name the earlier row), or of an earlier table that references
     * the joined one (many-to-one: the one row it names). */
    const char *on;
    int left; /**< nonzero: a row with no match still comes out, this
               *   table's columns NULL (else it is left out) */
} rl_join;

/**
 * rl_join_open - rows of base (a query: its condition, order, offset and
 * limit apply to the base table's rows; its projection is ignored) joined
 * level by level along foreign keys. Each output row holds every column of
 * every table, named "table.column" (rl_row_col finds them). Joined rows
 * come by primary key or through the foreign key's index, never by a scan
 * per row; one-to-many matches come in id order.
 * Returns as rl_query_open, and RL_INVALID for a join whose key does not
 * link it to an earlier table.
 */
int rl_join_open(rl_txn *t, const rl_query *base, const rl_join *joins, int njoins,
                 rl_cursor **c);

/** rl_join_explain - the plan of a join, as rl_explain. */
int rl_join_explain(rl_txn *t, const rl_query *base, const rl_join *joins, int njoins,
                    char *buf, size_t n);

/* ==== Checking ============================================================= */

/**
 * rl_check - check the database as t sees it: in a read transaction, every
 * block of the file (reachable exactly once or free, never both or
 * neither; checksums, headers, links); every node of every table and index
 * B+tree (its cells decode, their keys ascend, cells and free bytes add up);
 * and every table's row count and every index against the table's rows.
 * @report: receives a malloc'd text, one problem a line ("" when none);
 *          the caller frees it. May be NULL.
 * Returns RL_OK when nothing is wrong, RL_CORRUPT when something is (or
 * when the walk meets damage), RL_NOMEM.
 */
int rl_check(rl_txn *t, char **report);

/* ==== Space ================================================================ */

/** What a table or an index occupies (rl_space_of). Byte counts are of
 * block payloads (docs/format.md). */
typedef struct rl_space {
    uint64_t entries;      /**< rows of a table, keys of an index */
    uint64_t blocks;       /**< every block it owns: the next three summed */
    uint64_t tree_blocks;  /**< B+tree nodes */
    uint64_t chain_blocks; /**< table: chains of large values and records */
    uint64_t other_blocks; /**< table: its state block */
    uint64_t leaf_blocks;  /**< B+tree leaves (among tree_blocks) */
    uint32_t depth;        /**< B+tree levels (1: the root is a leaf) */
    uint64_t bytes_used;   /**< B+tree node bytes in use */
    uint64_t bytes_free;   /**< B+tree node bytes free: what deletes leave
                                behind (relatable removes a row's cell at
                                once, there are no tombstones), reused by
                                later inserts near the same keys */
    uint64_t vacuum_frees; /**< B+tree blocks rl_vacuum of the table would
                                give back now (an estimate; vacuuming a
                                table rebuilds its indexes too) */
} rl_space;

/**
 * rl_space_of - what a table (index NULL) or one of its indexes occupies.
 * Walks the whole tree, and for a table every row that has large values:
 * as costly as a scan. RL_NOTABLE, or RL_NOTFOUND for an unknown index.
 */
int rl_space_of(rl_txn *t, const char *table, const char *index, rl_space *out);

/* ==== Reading a row ========================================================
** Columns are 0-based, id at 0. Out-of-range columns read as NULL.
*/
int rl_row_ncols(const rl_row *row);
/** The column's name (valid as long as the row). */
const char *rl_row_name(const rl_row *row, int col);
/** The index of a column by name, or -1. */
int rl_row_col(const rl_row *row, const char *name);
/** The value's type: RL_TNULL for NULL. */
rl_type rl_row_type(const rl_row *row, int col);
int rl_row_is_null(const rl_row *row, int col);
/** An INTEGER column's value (0 if NULL or not an integer). */
int64_t rl_row_int(const rl_row *row, int col);
/** A REAL column's value (0.0 if NULL or not a real). */
double rl_row_real(const rl_row *row, int col);
/** CHAR/TEXT/BLOB bytes (NULL if NULL); *len receives the length. The
 * bytes are followed by a NUL not counted in *len. */
const void *rl_row_bytes(const rl_row *row, int col, size_t *len);
/** The value as an rl_value pointing into the row. */
int rl_row_get(const rl_row *row, int col, rl_value *out);
/** rl_row_free - free a row from rl_get. NULL is a no-op. */
void rl_row_free(rl_row *row);

#ifdef __cplusplus
}
#endif
#endif /* RELATABLE_H */
