/*
** blocks/blocks.h: the narrow interface of the block layer. Upper layers
** (schema/) reach the file only through the names declared here.
**
** The block layer turns one file into equal-size blocks and offers:
**   - a database handle (rl__blk_db) over one file, created atomically;
**   - read and write transactions over a copy-on-write snapshot;
**   - chains: linked lists of blocks addressed by LOGICAL numbers, read
**     and written as one byte stream;
**   - a few "meta" words in the root slot where upper layers anchor their
**     own structures (for example the schema chain).
** It knows nothing about tables. The file format is in docs/format.md.
**
** Result codes are the public RL_* codes of relatable.h; details go into
** the rl__err of the handle.
*/
#ifndef RL_BLOCKS_H
#define RL_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "../relatable.h"

/* ---- little-endian helpers: every integer on disk goes through these ------ */

static inline void rl__put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void rl__put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void rl__put64(uint8_t *p, uint64_t v)
{
    rl__put32(p, (uint32_t)v);
    rl__put32(p + 4, (uint32_t)(v >> 32));
}
static inline void rl__put48(uint8_t *p, uint64_t v)
{
    rl__put32(p, (uint32_t)v);
    rl__put16(p + 4, (uint16_t)(v >> 32));
}
static inline uint16_t rl__get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t rl__get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static inline uint64_t rl__get48(const uint8_t *p)
{
    return (uint64_t)rl__get32(p) | ((uint64_t)rl__get16(p + 4) << 32);
}
static inline uint64_t rl__get64(const uint8_t *p)
{
    return (uint64_t)rl__get32(p) | ((uint64_t)rl__get32(p + 4) << 32);
}

/* ---- errors ------------------------------------------------------------ */

/* A result code with a human message and the place it was raised. */
typedef struct rl__err {
    int code;
    char msg[256];
    const char *file; /* source file that raised it (static string) */
    int line;
} rl__err;

/* Record an error; returns code so that callers can `return rl__err_set()`. */
int rl__err_set(rl__err *e, int code, const char *file, int line,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Clear e to RL_OK. */
void rl__err_clear(rl__err *e);

#define RL__FAIL(e, code, ...) rl__err_set((e), (code), __FILE__, __LINE__, __VA_ARGS__)
/* The one way to report a damaged file: records where it was detected. */
#define RL__CORRUPT(e, ...) rl__err_set((e), RL_CORRUPT, __FILE__, __LINE__, __VA_ARGS__)

/* ---- I/O interface -------------------------------------------------------
** Everything the block layer does to the file goes through this table, so
** tests can count, fail or "crash" any operation. Each returns 0 or an
** errno value. rl__io_posix() fills it with the real POSIX calls.
*/
typedef struct rl__io rl__io;
struct rl__io {
    int (*read)(rl__io *io, void *buf, size_t n, uint64_t off, size_t *got);
    int (*write)(rl__io *io, const void *buf, size_t n, uint64_t off);
    int (*sync)(rl__io *io);
    int (*truncate)(rl__io *io, uint64_t size);
    int (*size)(rl__io *io, uint64_t *size);
    /* Lock or unlock [off, off+len): type is 'r', 'w' or 'u'; wait != 0
     * blocks until granted. Returns EAGAIN when busy and wait == 0. */
    int (*lock)(rl__io *io, uint64_t off, uint64_t len, int type, int wait);
    /* Is [off, off+len) locked by another open file description? *held is
     * the start of one such lock, or UINT64_MAX when there is none. */
    int (*probe)(rl__io *io, uint64_t off, uint64_t len, uint64_t *held);
    void (*close)(rl__io *io);
    /* Optional (NULL: read is used): read nbufs runs of each bytes from
     * off on, one after the other, into bufs[0..nbufs); *got is the bytes
     * read in all (short at the end of the file). */
    int (*readv)(rl__io *io, uint8_t *const *bufs, size_t nbufs, size_t each, uint64_t off,
                 size_t *got);
    /* Optional (NULL: write is used for each): write nbufs runs of each
     * bytes from bufs[0..nbufs), one after the other, from off on; all of
     * them, or an errno. */
    int (*writev)(rl__io *io, const uint8_t *const *bufs, size_t nbufs, size_t each,
                  uint64_t off);
    int fd;   /* the descriptor, for implementations that use one */
    void *ctx; /* free for wrappers */
};

/* Open path (flags as for open(2)) into a heap rl__io. Returns errno. */
int rl__io_posix_open(const char *path, int flags, int mode, rl__io **out);

/* A factory the caller may supply to wrap or replace the POSIX I/O. */
typedef int (*rl__io_open_fn)(void *arg, const char *path, int flags,
                              int mode, rl__io **out);

/* ---- database ------------------------------------------------------------ */

typedef struct rl__blk_db rl__blk_db;
typedef struct rl__blk_txn rl__blk_txn;

/* Durability of commits (docs/format.md, "Commit protocol"). */
typedef enum rl__durability {
    RL__DURABLE_FULL = 0,   /* a commit that returned survives power loss */
    RL__DURABLE_NORMAL = 1, /* power loss may lose the last commit */
    RL__DURABLE_OFF = 2     /* no sync at all: safe only against app crashes */
} rl__durability;

#define RL__BLK_CREATE 0x1   /* create the file if it does not exist */
#define RL__BLK_READONLY 0x2 /* never write the file */
#define RL__BLK_EXCL 0x4     /* with CREATE: fail with RL_EXISTS if it exists */

typedef struct rl__blk_options {
    unsigned flags;            /* RL__BLK_* */
    uint32_t block_size;       /* for a new file: power of two 512..65536; 0 = 4096 */
    rl__durability durability; /* default FULL */
    size_t cache_bytes;        /* block cache budget; 0 = default (8 MiB) */
    rl__io_open_fn io_open;    /* NULL = POSIX */
    void *io_arg;
    /* A write transaction that finds another writer: 0 waits as long as it
     * takes, > 0 gives up after that many milliseconds, < 0 at once
     * (RL_BUSY either way). */
    int busy_timeout_ms;
} rl__blk_options;

/* Counters a test or a benchmark can read (rl__blk_stats). */
typedef struct rl__blk_stats {
    uint64_t blocks_written; /* block writes issued to the file */
    uint64_t blocks_read;    /* block reads that missed the cache */
    uint64_t syncs;          /* fsync/fdatasync calls */
    uint64_t root_writes;    /* root slot writes */
    uint64_t commits;
    uint64_t cow_copies; /* committed blocks copied to a new place */
    uint64_t blocks_moved; /* live blocks compaction moved down the file */
} rl__blk_stats;

#define RL__BLK_META_WORDS 8 /* words of upper-layer roots in a root slot */

/*
 * Open (or create) the database at path. opt may be NULL for defaults.
 * On success *out owns the file; close it with rl__blk_close. On failure
 * *out is NULL and err explains. RL_CORRUPT for a damaged file,
 * RL_CANTOPEN / RL_IOERR for the system, RL_INVALID for bad options.
 */
int rl__blk_open(const char *path, const rl__blk_options *opt,
                 rl__blk_db **out, rl__err *err);

/* Close the database. All transactions must have ended. NULL is a no-op. */
void rl__blk_close(rl__blk_db *db);

uint32_t rl__blk_block_size(const rl__blk_db *db);
/* Payload bytes of a block (block size minus the block header). */
uint32_t rl__blk_payload_size(const rl__blk_db *db);
void rl__blk_get_stats(rl__blk_db *db, rl__blk_stats *out);
/* The last error recorded on the handle (valid until the next call). */
const rl__err *rl__blk_last_error(const rl__blk_db *db);

/* ---- transactions ---------------------------------------------------------
** A read transaction sees the snapshot of the newest commit at its start,
** for its whole life. One write transaction at a time (per process, and
** across processes through a lock on the file); a second writer waits.
** Every transaction ends with rl__blk_commit or rl__blk_rollback, which
** free it. Rolling back a read transaction simply ends it.
*/
int rl__blk_begin(rl__blk_db *db, int write, rl__blk_txn **out);
/* Make a write transaction durable (per the durability setting). On any
 * failure the transaction is rolled back and freed all the same. */
int rl__blk_commit(rl__blk_txn *t);
/* Discard everything t wrote. NULL is a no-op. */
void rl__blk_rollback(rl__blk_txn *t);
/* The id of the snapshot t reads (read txn) or will commit as (write txn). */
uint64_t rl__blk_txn_id(const rl__blk_txn *t);
/* Changes whenever the transaction allocates or frees a logical block
 * number (never in a read transaction): what an upper layer remembers
 * about which blocks exist (a B+tree finger) holds while it stays put. */
uint64_t rl__blk_txn_epoch(const rl__blk_txn *t);
int rl__blk_txn_is_write(const rl__blk_txn *t);
rl__err *rl__blk_txn_err(rl__blk_txn *t);
/* Payload bytes of a block, and the file's length in blocks, as t sees it. */
uint32_t rl__blk_payload_of(const rl__blk_txn *t);
uint64_t rl__blk_block_count(const rl__blk_txn *t);
/* The database a transaction belongs to. */
rl__blk_db *rl__blk_txn_db(rl__blk_txn *t);

/* Ask the next few commits to move every live block they can off the end
 * of the file (no budget, no threshold), so the file shrinks to its live
 * blocks: freed blocks become reusable only at a later commit (the reuse
 * rule), so this takes a few commits. */
void rl__blk_compact_soon(rl__blk_db *db);
/* Commit again and again, with nothing but compaction, while the file has
 * enough free space to give back (or, when whole, until it holds only live
 * blocks): the caller has just committed a vacuum, whose new trees went to
 * the end of the file, and the commits that follow should not pay for
 * moving them down. Stops early when commits stop making progress (an old
 * reader keeps the freed blocks). Takes the writer lock per commit without
 * waiting for it: RL_BUSY at once when another writer holds it (whose
 * commits then compact). RL_BUSY and I/O errors leave the file as valid
 * and as compact as the last commit that succeeded. */
int rl__blk_compact_now(rl__blk_db *db, int whole);
/* Thread the free logical numbers in ascending order, so that the blocks
 * made next (a vacuum's new trees) take the lowest, and drop the block
 * map's unused tail (map.c); rl__blk_compact_soon's next commit does it
 * again, once the old trees are freed. */
int rl__blk_map_tidy(rl__blk_txn *t);

/* The integrity walk of a read transaction's snapshot (check.c): every
 * block reachable once or free, never both, never neither; checksums,
 * headers and links. *report (malloc'd, or NULL when all is well) lists
 * the problems, one a line; *problems counts them. RL_OK unless the walk
 * itself could not run (RL_NOMEM). */
int rl__blk_check(rl__blk_txn *t, char **report, int *problems);

/* Upper-layer root words, i in [0, RL__BLK_META_WORDS). */
uint64_t rl__blk_meta_get(rl__blk_txn *t, unsigned i);
int rl__blk_meta_set(rl__blk_txn *t, unsigned i, uint64_t value);

/* ---- chains ----------------------------------------------------------------
** A chain is a linked list of blocks, named by the logical number of its
** head block, holding a byte stream. Block types below RL__BLK_TYPE_USER
** belong to the block layer; upper layers tag their chains with their own
** types (RL__BLK_TYPE_USER and above) so rdump can tell them apart.
*/
#define RL__BLK_TYPE_MAP 1      /* block-map node */
#define RL__BLK_TYPE_FREELIST 2 /* freelist chain */
#define RL__BLK_TYPE_CHAIN 3    /* generic chain (tests, examples) */
#define RL__BLK_TYPE_USER 16

/* Create an empty chain of the given type; its head is stored in *head. */
int rl__blk_chain_create(rl__blk_txn *t, uint8_t type, uint64_t *head);
/* Length in bytes of the chain's stream. */
int rl__blk_chain_length(rl__blk_txn *t, uint64_t head, uint64_t *len);
/* Number of blocks in the chain, from its header. */
int rl__blk_chain_blocks(rl__blk_txn *t, uint64_t head, uint64_t *count);
/* Read n bytes at off; RL_RANGE if off + n passes the end. */
int rl__blk_chain_read(rl__blk_txn *t, uint64_t head, uint64_t off,
                       void *buf, size_t n);
/* Write n bytes at off (off <= length), extending the chain as needed. */
int rl__blk_chain_write(rl__blk_txn *t, uint64_t head, uint64_t off,
                        const void *buf, size_t n);
/* Append n bytes at the end. */
int rl__blk_chain_append(rl__blk_txn *t, uint64_t head, const void *buf,
                         size_t n);
/* A place in a chain: a block (logical number) and a byte offset among
 * that block's stream bytes. Stable until the chain is truncated or freed. */
typedef struct rl__blk_pos {
    uint64_t logical;
    uint32_t off;
} rl__blk_pos;

/* Append n bytes; *where (may be NULL) receives the place of the first
 * byte. Costs the tail block and the head, never a walk. */
int rl__blk_chain_append_pos(rl__blk_txn *t, uint64_t head, const void *buf,
                             size_t n, rl__blk_pos *where);
/* Read or overwrite n bytes from *pos on, following the chain's links; on
 * success *pos is just past the last byte (it may name the end of a full
 * block; the next call steps over). RL_RANGE when the bytes run past the
 * end of the stream. Neither changes the stream's length. The position of
 * the head block's first byte is {head, 0}. */
int rl__blk_chain_pread(rl__blk_txn *t, uint64_t head, rl__blk_pos *pos,
                        void *buf, size_t n);
int rl__blk_chain_pwrite(rl__blk_txn *t, uint64_t head, rl__blk_pos *pos,
                         const void *buf, size_t n);
/* Cut the stream to len bytes (len <= length), freeing emptied blocks. */
int rl__blk_chain_truncate(rl__blk_txn *t, uint64_t head, uint64_t len);
/* Free every block of the chain; head is invalid afterwards. */
int rl__blk_chain_free(rl__blk_txn *t, uint64_t head);

/* ---- single blocks -------------------------------------------------------
** For structures that link blocks themselves (B+tree nodes), with the
** block header's next link at their disposal. A reference
** pins the block in the cache: data (and wdata, for writing) point at its
** payload of cap bytes until rl__blk_block_put. Put every reference back
** before the transaction ends. The type is the caller's (>= RL__BLK_TYPE_USER
** by convention).
*/
typedef struct rl__blk_ref {
    const uint8_t *data; /* payload */
    uint8_t *wdata;      /* payload, for a write reference; else NULL */
    uint32_t used;       /* payload bytes in use (the caller's count) */
    uint32_t cap;        /* payload size */
    uint64_t logical;
    uint64_t owner;      /* the structure it belongs to (block alloc) */
    uint64_t next;       /* the header's next link: the caller's to use */
    uint8_t type;
    void *page_;          /* private */
} rl__blk_ref;

/* A new zeroed block; *ref is a write reference to it. Its owner is
 * owner (a structure's first block: rdump and rl_check group by it), or
 * itself when owner is 0. */
int rl__blk_block_alloc(rl__blk_txn *t, uint8_t type, uint64_t owner, uint64_t *logical,
                        rl__blk_ref *ref);
/* A reference to block logical; write != 0 copies it first if needed. */
int rl__blk_block_get(rl__blk_txn *t, uint64_t logical, int write, rl__blk_ref *ref);
/* Make a read reference a write reference (as if got with write != 0),
 * without looking the block up again; on failure ref is unchanged. */
int rl__blk_block_upgrade(rl__blk_txn *t, rl__blk_ref *ref);
/* Record how many payload bytes a write reference's block uses. */
void rl__blk_block_set_used(rl__blk_ref *ref, uint32_t used);
/* Set the header's next link of a write reference's block (a logical
 * number, 0 = none): structures made of single blocks chain them with it. */
void rl__blk_block_set_next(rl__blk_ref *ref, uint64_t next);
/* Give a reference back. NULL or an empty reference is a no-op. */
void rl__blk_block_put(rl__blk_ref *ref);
/* Free a single block. */
int rl__blk_block_free(rl__blk_txn *t, uint64_t logical);

#endif /* RL_BLOCKS_H */
