/*
** tests/test_blocks.c: the block layer (blocks/): file creation and
** opening, chains, copy-on-write costs, snapshots, rollback, the freelist,
** the commit protocol (damaged files: test_blocks_damage.c).
**
** White-box where it must be: damage is made by hand with the encoders of
** blocks/blk_int.h, so each test names exactly which byte it breaks.
*/
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "blocks/blk_int.h"
#include "tests/testutil.h"

#include "tests/blkutil.h"

/* ---- helpers ------------------------------------------------------------ */

/* Every fstat, stat and lstat of this program, counted: the library's
 * calls bind to these (test_commits_never_stat_the_file). */
static unsigned long stat_calls;

int fstat(int fd, struct stat *st)
{
    stat_calls++;
    return fstatat(fd, "", st, AT_EMPTY_PATH);
}

int stat(const char *path, struct stat *st)
{
    stat_calls++;
    return fstatat(AT_FDCWD, path, st, 0);
}

int lstat(const char *path, struct stat *st)
{
    stat_calls++;
    return fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

/* How many directory entries next to path start with path's name. */
static int files_starting_with(const char *path)
{
    char dir[512];
    const char *base = strrchr(path, '/') + 1;
    struct dirent *d;
    DIR *dp;
    int n = 0;
    snprintf(dir, sizeof dir, "%.*s", (int)(base - path), path);
    dp = opendir(dir);
    assert_non_null(dp);
    while ((d = readdir(dp)) != NULL)
        n += strncmp(d->d_name, base, strlen(base)) == 0;
    closedir(dp);
    return n;
}

/* ---- tests -------------------------------------------------------------- */

/* CRC32C one bit at a time: the definition, to hold the fast routines to. */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
}

static void test_crc32c(void **state)
{
    static uint8_t buf[3 * 4096 + 16];
    static const size_t edges[] = {0,   1,   15,  16,   17,   255,  256,  257,  271,
                                   272, 511, 512, 767,  768,  769,  1536, 4088, 4092,
                                   4096, 12288};
    uint64_t rs = 99;
    int routines = 0;
    (void)state;
    assert_int_equal(rl__crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(rl__crc32c(0, "", 0), 0);
    /* Continuation equals one pass. */
    assert_int_equal(rl__crc32c(rl__crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    /* Each routine this CPU has, at every length and alignment where the
     * streams and folds split the input differently. */
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)tu_rand(&rs);
    for (int r = RL__CRC_SOFT; r <= RL__CRC_FOLD; r++) {
        uint32_t probe = 0;
        if (!rl__crc32c_with(r, &probe, "", 0))
            continue;
        routines++;
        for (int k = 0; k < 600; k++) {
            size_t off = tu_rand(&rs) % 16, n = tu_rand(&rs) % (sizeof buf - off);
            uint32_t seed = k % 3 ? (uint32_t)tu_rand(&rs) : 0, got = seed;
            if (k < (int)(sizeof edges / sizeof edges[0]))
                n = edges[k];
            rl__crc32c_with(r, &got, buf + off, n);
            if (got != crc_bitwise(seed, buf + off, n))
                fail_msg("crc32c routine %d differs at offset %zu, length %zu, seed %u", r, off,
                         n, seed);
        }
    }
    assert_true(routines >= 1);
}

static void test_error_table(void **state)
{
    (void)state;
    assert_int_equal(RL_OK, 0);
    assert_string_equal(rl_errname(RL_CORRUPT), "RL_CORRUPT");
    assert_string_equal(rl_strerror(RL_OK), "not an error");
    assert_string_equal(rl_errname(-77), "RL_UNKNOWN");
    assert_non_null(strstr(rl_strerror(RL_CORRUPT), "damaged"));
}

static void test_create_and_reopen(void **state)
{
    const char *path = tu_path("create.rdb");
    rl__blk_db *db;
    rl__blk_options o;
    rl__err err;
    uint64_t head;
    (void)state;
    db = new_db("create.rdb", 512);
    assert_int_equal(rl__blk_block_size(db), 512);
    /* The root area: the header's 4 KiB, and four 4 KiB slots each
     * followed by a commit area of 16 blocks of 512 bytes: 52 KiB. */
    assert_int_equal(rl__fmt_first_block(512), 104);
    assert_int_equal(tu_file_size(path), 104 * 512);
    head = make_chain(db, 1000, 7);
    rl__blk_close(db);
    /* Reopen without CREATE: block size comes from the file. */
    db = open_opts(path, 0, 0, RL__DURABLE_FULL, 0);
    assert_int_equal(rl__blk_block_size(db), 512);
    expect_chain(db, head, 1000, 7);
    rl__blk_close(db);
    /* Nothing else was left beside the database. */
    assert_int_equal(files_starting_with(path), 1);
    memset(&o, 0, sizeof o);
    o.flags = RL__BLK_CREATE | RL__BLK_EXCL;
    assert_int_equal(rl__blk_open(path, &o, &db, &err), RL_EXISTS);
    assert_null(db);
    o.flags = 0;
    assert_int_equal(rl__blk_open(tu_path("missing.rdb"), &o, &db, &err), RL_CANTOPEN);
    o.flags = RL__BLK_CREATE;
    o.block_size = 1000;
    assert_int_equal(rl__blk_open(tu_path("bad.rdb"), &o, &db, &err), RL_INVALID);
    assert_non_null(strstr(err.msg, "power of two"));
    assert_int_equal(tu_file_size(tu_path("bad.rdb")), 0);
}

static void roundtrip_one(uint32_t bs, size_t n, int idx)
{
    char name[64];
    rl__blk_db *db;
    rl__blk_txn *t;
    uint64_t head;
    uint8_t *want = malloc(n + 1), *got = malloc(n + 1);
    snprintf(name, sizeof name, "rt-%u-%d.rdb", bs, idx);
    db = new_db(name, bs);
    fill(want, n, n + bs);
    /* Written in uneven pieces, so writes straddle block borders. */
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__blk_chain_create(t, RL__BLK_TYPE_CHAIN, &head), RL_OK);
    for (size_t off = 0, k; off < n; off += k) {
        k = (off * 7 + 333) % 5000 + 1;
        if (k > n - off)
            k = n - off;
        assert_int_equal(rl__blk_chain_append(t, head, want + off, k), RL_OK);
    }
    assert_int_equal(rl__blk_commit(t), RL_OK);
    expect_chain(db, head, n, n + bs);
    rl__blk_close(db);
    db = open_db(tu_path(name), 0);
    expect_chain(db, head, n, n + bs);
    /* Piecewise reads at odd offsets agree too. */
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    for (size_t off = 0, k; off < n; off += k) {
        k = (off * 13 + 777) % 9000 + 1;
        if (k > n - off)
            k = n - off;
        assert_int_equal(rl__blk_chain_read(t, head, off, got, k), RL_OK);
        assert_memory_equal(got, want + off, k);
    }
    rl__blk_rollback(t);
    rl__blk_close(db);
    unlink(tu_path(name));
    free(want);
    free(got);
}

static void test_chain_roundtrip(void **state)
{
    static const uint32_t sizes[] = {512, 4096, 65536};
    (void)state;
    for (int s = 0; s < 3; s++) {
        uint32_t p = sizes[s] - RL__HDR_SIZE, c0 = p - RL__CHAIN_HDR;
        size_t lens[] = {0, 1, c0 - 1, c0, c0 + 1, c0 + p, (size_t)c0 + 3 * p + 7,
                         (size_t)tu_scale(3 * 1024 * 1024 + 17)};
        for (int i = 0; i < (int)(sizeof lens / sizeof *lens); i++)
            roundtrip_one(sizes[s], lens[i], i);
    }
}

/* Blocks written by one commit that changes one block of a long chain. */
static uint64_t writes_for_one_change(rl__blk_db *db, uint64_t head, uint64_t off)
{
    rl__blk_stats before, after;
    rl__blk_txn *t;
    uint8_t bytes[10] = "0123456789";
    rl__blk_get_stats(db, &before);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__blk_chain_write(t, head, off, bytes, sizeof bytes), RL_OK);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    rl__blk_get_stats(db, &after);
    return after.blocks_written - before.blocks_written;
}

static void test_cow_cost_is_constant(void **state)
{
    static const uint32_t sizes[] = {512, 4096};
    (void)state;
    for (int s = 0; s < 2; s++) {
        uint32_t bs = sizes[s], p = bs - RL__HDR_SIZE;
        size_t n = (size_t)(p - RL__CHAIN_HDR) + 999u * p; /* exactly 1000 blocks */
        rl__blk_db *db = new_db(s ? "cow4k.rdb" : "cow512.rdb", bs);
        uint64_t head = make_chain(db, n, 3), most = 0, total = 0, three = 0;
        /* Blocks all over the chain, 300 commits: the map delta takes the
         * moves until it fills (64), then the map nodes take them all. */
        for (int i = 0; i < 300; i++) {
            uint64_t w = writes_for_one_change(db, head, (uint64_t)p * (500 + (uint64_t)i * 9 % 480));
            most = w > most ? w : most;
            total += w;
            three += w == 3;
        }
        /* The block and one freelist block, both in the commit area (one
         * write with the slot), and the block changed two commits before,
         * carried home; the map only at a flush. */
        print_message("block size %u: 300 one-block commits wrote %llu blocks (%llu of them "
                      "3 blocks, the most %llu)\n",
                      bs, (unsigned long long)total, (unsigned long long)three,
                      (unsigned long long)most);
        assert_true(three >= 280);
        assert_true(total <= 300 * 3 + 8 * (1000 / (p / 8) + 3));
        rl__blk_close(db);
    }
}

/* Since Linux 6.13 a stat of the file marks its change time as seen, so
 * the next write dirties the inode and, on ext4, the next fdatasync
 * writes the inode too: about 50 us more per commit. Commits and the
 * begins that read the slots anew (another handle committed) must learn
 * the file's size without one, also when a commit grows the file. */
static void test_commits_never_stat_the_file(void **state)
{
    rl__blk_db *a = new_db("nostat.rdb", 512), *b = open_db(tu_path("nostat.rdb"), 512);
    uint64_t head = make_chain(a, 3000, 1), grew = 0, len = 0;
    uint8_t bytes[1500], got[1500];
    rl__blk_txn *r;
    (void)state;
    fill(bytes, sizeof bytes, 2);
    stat_calls = 0;
    for (int i = 0; i < 20; i++) {
        rl__blk_db *db = i % 2 ? b : a; /* each begin finds the other's commit */
        rl__blk_txn *t;
        uint64_t before = db->root.block_count;
        assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
        T_OK(t, rl__blk_chain_append(t, head, bytes, sizeof bytes));
        assert_int_equal(rl__blk_commit(t), RL_OK);
        grew += db->root.block_count > before;
    }
    assert_true(grew > 0);
    assert_int_equal(stat_calls, 0);
    assert_int_equal(rl__blk_begin(a, 0, &r), RL_OK);
    T_OK(r, rl__blk_chain_length(r, head, &len));
    T_OK(r, rl__blk_chain_read(r, head, len - sizeof bytes, got, sizeof got));
    rl__blk_rollback(r);
    assert_int_equal(len, 3000 + 20 * sizeof bytes);
    assert_memory_equal(got, bytes, sizeof bytes);
    rl__blk_close(a);
    rl__blk_close(b);
}

static void test_reader_keeps_snapshot(void **state)
{
    rl__blk_db *db = new_db("snap.rdb", 512);
    uint64_t head = make_chain(db, 20000, 1);
    rl__blk_txn *r, *w;
    uint8_t *buf = malloc(20000), *want = malloc(20000);
    (void)state;
    assert_int_equal(rl__blk_begin(db, 0, &r), RL_OK);
    /* Many commits rewrite the whole chain while the reader is open. */
    for (uint64_t round = 2; round < 30; round++) {
        fill(buf, 20000, round);
        assert_int_equal(rl__blk_begin(db, 1, &w), RL_OK);
        assert_int_equal(rl__blk_chain_write(w, head, 0, buf, 20000), RL_OK);
        assert_int_equal(rl__blk_commit(w), RL_OK);
    }
    fill(want, 20000, 1);
    assert_int_equal(rl__blk_chain_read(r, head, 0, buf, 20000), RL_OK);
    assert_memory_equal(buf, want, 20000);
    rl__blk_rollback(r);
    expect_chain(db, head, 20000, 29);
    free(buf);
    free(want);
    rl__blk_close(db);
}

static void test_rollback_restores_bytes(void **state)
{
    const char *path = tu_path("rollback.rdb");
    rl__blk_db *db;
    rl__blk_txn *t;
    uint8_t *before, *after, *big = malloc(2 << 20);
    size_t nb, na;
    uint64_t head, head2;
    (void)state;
    unlink(path);
    /* A tiny cache forces dirty blocks out to the file before rollback. */
    db = open_opts(path, 512, RL__BLK_CREATE, RL__DURABLE_FULL, 16 * 512);
    head = make_chain(db, 100000, 5);
    before = tu_read_file(path, &nb);
    fill(big, 2 << 20, 9);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__blk_chain_write(t, head, 500, big, 50000), RL_OK);
    assert_int_equal(rl__blk_chain_create(t, RL__BLK_TYPE_CHAIN, &head2), RL_OK);
    assert_int_equal(rl__blk_chain_append(t, head2, big, 2 << 20), RL_OK);
    assert_true(tu_file_size(path) > nb); /* dirty blocks did go out */
    rl__blk_rollback(t);
    after = tu_read_file(path, &na);
    assert_int_equal(na, nb);
    /* Every byte but the commit areas': the blocks the transaction took
     * there are unreachable (txn.c, A2), and the next commit overwrites them. */
    for (unsigned a = 0; a < RL__NSLOTS; a++) {
        uint64_t from = rl__fmt_area_first(512, a) * 512;
        memset(before + from, 0, rl__fmt_area_blocks(512) * 512);
        memset(after + from, 0, rl__fmt_area_blocks(512) * 512);
    }
    assert_memory_equal(before, after, nb);
    expect_chain(db, head, 100000, 5);
    rl__blk_close(db);
    free(before);
    free(after);
    free(big);
}

static void test_file_size_bounded(void **state)
{
    const char *path = tu_path("bounded.rdb");
    rl__blk_db *db = new_db("bounded.rdb", 512);
    uint64_t head = make_chain(db, 3000, 0), settled = 0, largest = 0;
    long rounds = tu_scale(10000);
    uint8_t buf[3000];
    (void)state;
    for (long i = 1; i <= rounds; i++) {
        rl__blk_txn *t;
        fill(buf, sizeof buf, (uint64_t)i);
        assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
        assert_int_equal(rl__blk_chain_write(t, head, 0, buf, sizeof buf), RL_OK);
        assert_int_equal(rl__blk_commit(t), RL_OK);
        if (i == 20)
            settled = tu_file_size(path);
        if (i > 20 && tu_file_size(path) > largest)
            largest = tu_file_size(path);
    }
    print_message("%ld rewrites: file settled at %llu bytes, largest %llu\n", rounds,
                  (unsigned long long)settled, (unsigned long long)largest);
    assert_true(largest <= settled);
    expect_chain(db, head, 3000, (uint64_t)rounds);
    rl__blk_close(db);
}

static void freelist_shape(const char *path, uint32_t bs, rl__blk_root *r, uint64_t *chain_len,
                           uint64_t *listed)
{
    uint8_t *b = malloc(bs);
    uint64_t phys;
    assert_int_equal(read_slot(path, newest_slot(path, bs), bs, r, NULL, NULL), RL_OK);
    *chain_len = *listed = 0;
    for (phys = r->freelist_head; phys != 0; (*chain_len)++) {
        rl__blk_bhdr h;
        tu_read_at(path, phys * bs, b, bs);
        rl__fmt_bhdr_decode(b, &h);
        assert_int_equal(h.type, RL__BLK_TYPE_FREELIST);
        for (uint32_t off = 0; off < h.used; off += RL__FREE_ENTRY) {
            uint64_t first, count, txn;
            rl__fmt_free_decode(b + RL__HDR_SIZE + off, &first, &count, &txn);
            *listed += count;
        }
        phys = h.next;
    }
    free(b);
}

static void free_entry_runs_long(uint8_t *b, void *arg)
{
    uint64_t first, count, txn;
    rl__fmt_free_decode(b + RL__HDR_SIZE, &first, &count, &txn);
    rl__fmt_free_encode(b + RL__HDR_SIZE, first, *(uint64_t *)arg, txn);
}

/* The freelist is saved as runs of adjacent blocks: freeing a large chain
 * takes one freelist block, not one entry per block; the runs reload, are
 * reused, and a run that reaches past the file is damage. */
static void test_freelist_runs(void **state)
{
    const char *path = tu_path("runs.rdb");
    rl__blk_db *db = new_db("runs.rdb", 512);
    uint64_t head = make_chain(db, 2000000, 9), chain_len, listed, big = RL__FREE_RUN_MAX;
    rl__blk_txn *t;
    rl__blk_root r;
    char *report;
    int problems;
    (void)state;
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__blk_chain_free(t, head), RL_OK);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    rl__blk_close(db);
    freelist_shape(path, 512, &r, &chain_len, &listed);
    print_message("%llu free blocks in %llu freelist block(s)\n", (unsigned long long)listed,
                  (unsigned long long)chain_len);
    assert_true(r.free_count > 4000); /* 2 MB in 512-byte blocks */
    assert_int_equal(listed, r.free_count);
    assert_true(chain_len <= 2); /* one entry per block would take 150 */
    report = check_report(path, &problems);
    if (problems)
        fail_msg("%s", report);
    free(report);
    /* Reloaded from the file, the runs are reused: a new chain fills the
     * free blocks instead of growing the file. */
    db = open_db(path, 0);
    {
        uint64_t size = tu_file_size(path);
        head = make_chain(db, 1000000, 10);
        expect_chain(db, head, 1000000, 10);
        assert_true(tu_file_size(path) <= size);
    }
    rl__blk_close(db);
    report = check_report(path, &problems);
    if (problems)
        fail_msg("%s", report);
    free(report);
    /* A run longer than the file: open's write path and the check say so. */
    freelist_shape(path, 512, &r, &chain_len, &listed);
    assert_true(r.freelist_head != 0);
    patch_block(path, 512, r.freelist_head, free_entry_runs_long, &big);
    put_newest_root(path, 512, &r);
    report = check_report(path, &problems);
    assert_true(problems >= 1);
    assert_true(strstr(report, "past the file") || strstr(report, "more blocks than the file"));
    free(report);
    db = open_db(path, 0); /* readers do not need the freelist; a writer does */
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    rl__blk_rollback(t);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_CORRUPT);
    rl__blk_close(db);
}

/* A handle sees every commit another handle made since its last look,
 * however many there were: begin's one-slot probe (whether the slot the
 * next commit would take still holds the commit four before it) must
 * send it to read all four slots whenever anything changed. */
static void test_other_handle_commits_seen(void **state)
{
    rl__blk_db *a = new_db("probe.rdb", 512), *b = open_db(tu_path("probe.rdb"), 0);
    static const int bursts[] = {1, 1, 3, 4, 5, 8, 1, 2, 7};
    uint64_t value = 0;
    rl__blk_txn *t;
    (void)state;
    for (int i = 0; i < 10; i++) { /* past the file's first commits */
        assert_int_equal(rl__blk_begin(a, 1, &t), RL_OK);
        T_OK(t, rl__blk_meta_set(t, 0, ++value));
        assert_int_equal(rl__blk_commit(t), RL_OK);
    }
    for (unsigned k = 0; k < sizeof bursts / sizeof bursts[0]; k++) {
        rl__blk_db *writer = k % 3 == 2 ? b : a, *reader = writer == a ? b : a;
        for (int i = 0; i < bursts[k]; i++) {
            assert_int_equal(rl__blk_begin(writer, 1, &t), RL_OK);
            assert_int_equal(rl__blk_meta_get(t, 0), value);
            T_OK(t, rl__blk_meta_set(t, 0, ++value));
            assert_int_equal(rl__blk_commit(t), RL_OK);
        }
        for (int twice = 0; twice < 2; twice++) { /* a read, then a write, begin */
            assert_int_equal(rl__blk_begin(reader, twice, &t), RL_OK);
            assert_int_equal(rl__blk_meta_get(t, 0), value);
            rl__blk_rollback(t);
        }
    }
    rl__blk_close(a);
    rl__blk_close(b);
}

static void test_misuse_errors(void **state)
{
    const char *path = tu_path("misuse.rdb");
    rl__blk_db *db = new_db("misuse.rdb", 512);
    uint64_t head = make_chain(db, 100, 1);
    rl__blk_txn *t;
    uint8_t buf[200];
    (void)state;
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    assert_int_equal(rl__blk_chain_append(t, head, buf, 1), RL_READONLY);
    assert_int_equal(rl__blk_meta_set(t, 0, 1), RL_READONLY);
    assert_int_equal(rl__blk_chain_read(t, head, 50, buf, 51), RL_RANGE);
    assert_int_equal(rl__blk_chain_read(t, head, 101, buf, 0), RL_RANGE);
    assert_int_equal(rl__blk_chain_read(t, head, 100, buf, 0), RL_OK);
    rl__blk_rollback(t);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__blk_chain_write(t, head, 101, buf, 1), RL_RANGE);
    assert_int_equal(rl__blk_chain_truncate(t, head, 101), RL_RANGE);
    assert_int_equal(rl__blk_chain_create(t, RL__BLK_TYPE_MAP, &head), RL_INVALID);
    assert_int_equal(rl__blk_meta_set(t, RL__BLK_META_WORDS, 1), RL_INVALID);
    assert_int_equal(rl__blk_meta_set(t, 3, 42), RL_OK);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    rl__blk_close(db);
    db = open_opts(path, 0, RL__BLK_READONLY, RL__DURABLE_FULL, 0);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_READONLY);
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    assert_int_equal(rl__blk_meta_get(t, 3), 42);
    rl__blk_rollback(t);
    rl__blk_close(db);
    rl__blk_close(NULL);
    rl__blk_rollback(NULL);
}

static void test_truncate_and_free(void **state)
{
    const char *path = tu_path("trunc.rdb");
    rl__blk_db *db = new_db("trunc.rdb", 512);
    uint64_t head = make_chain(db, 200000, 6), big, root = rl__fmt_first_block(512) * 512;
    rl__blk_txn *t;
    (void)state;
    big = tu_file_size(path);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__blk_chain_truncate(t, head, 1000), RL_OK);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    expect_chain(db, head, 1000, 6);
    /* Later commits drop the freed tail (INV 2) and move live blocks
     * off the end of the file. */
    idle_commits(db, 10);
    print_message("file: %llu bytes with 200000 in a chain, %llu after truncating to 1000\n",
                  (unsigned long long)big, (unsigned long long)tu_file_size(path));
    assert_true(tu_file_size(path) - root < (big - root) / 10);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__blk_chain_truncate(t, head, 0), RL_OK);
    assert_int_equal(rl__blk_chain_append(t, head, "abc", 3), RL_OK);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__blk_chain_free(t, head), RL_OK);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    idle_commits(db, 10);
    rl__blk_close(db);
    /* Everything freed: what stays is the root area, the map leaves that
     * hold the free logical numbers, the freelist, and fewer than
     * compact.c's MIN_READY free blocks left where they are. */
    print_message("after freeing everything: %llu bytes\n",
                  (unsigned long long)tu_file_size(path));
    assert_true(tu_file_size(path) - root < (big - root) / 10);
}

static void test_durability_syncs(void **state)
{
    static const struct {
        rl__durability d;
        uint64_t small, large;
    } cases[] = {{RL__DURABLE_FULL, 1, 2}, {RL__DURABLE_NORMAL, 1, 1}, {RL__DURABLE_OFF, 0, 0}};
    (void)state;
    for (int i = 0; i < 3; i++) {
        const char *path = tu_path("dur.rdb");
        rl__blk_db *db;
        rl__blk_stats a, b, c;
        unlink(path);
        db = open_opts(path, 4096, RL__BLK_CREATE, cases[i].d, 0);
        rl__blk_get_stats(db, &a);
        make_chain(db, 1000, 1);
        rl__blk_get_stats(db, &b);
        make_chain(db, 4 << 20, 2); /* 1000+ blocks: too many to list */
        rl__blk_get_stats(db, &c);
        assert_int_equal(b.syncs - a.syncs, cases[i].small);
        assert_int_equal(c.syncs - b.syncs, cases[i].large);
        assert_int_equal(c.root_writes - a.root_writes, 2);
        rl__blk_close(db);
        db = open_db(path, 0);
        rl__blk_close(db);
    }
}

/* A database past 4 GiB: the root claims a high block count (the blocks
 * below stay a sparse hole), so new blocks land past the 4 GiB mark. */
static void test_past_4gib(void **state)
{
    const char *path = tu_path("big.rdb");
    rl__blk_db *db = new_db("big.rdb", 4096);
    uint8_t region[RL__REGION];
    rl__blk_root r;
    rl__err err;
    uint64_t head;
    int slot;
    (void)state;
    rl__blk_close(db);
    slot = newest_slot(path, 4096);
    assert_int_equal(read_slot(path, slot, 4096, &r, NULL, NULL), RL_OK);
    r.block_count = (UINT64_C(5) << 30) / 4096;
    rl__fmt_slot_encode(region, &r, NULL, 0);
    tu_write_at(path, rl__fmt_slot_offset(4096, (unsigned)slot), region, RL__REGION);
    /* A slot claiming more blocks than the file holds is not trusted. */
    assert_int_equal(open_rc(path, &err), RL_CORRUPT);
    assert_non_null(strstr(err.msg, "claims"));
    assert_int_equal(truncate(path, (off_t)(r.block_count * 4096)), 0);
    db = open_db(path, 0);
    head = make_chain(db, 300000, 11);
    /* the chain's first blocks went to a commit area */
    assert_true(phys_of(db, head + 50) * 4096 > (UINT64_C(4) << 30));
    rl__blk_close(db);
    assert_true(tu_file_size(path) > (UINT64_C(5) << 30));
    db = open_db(path, 0);
    expect_chain(db, head, 300000, 11);
    rl__blk_close(db);
    unlink(path);
}


static void test_positioned_chain_io(void **state)
{
    rl__blk_db *db = new_db("pos.rdb", 512);
    rl__blk_pos where[50], pos;
    rl__blk_txn *t;
    uint64_t head;
    uint8_t rec[300], got[300];
    (void)state;
    /* Records of 300 bytes straddle 512-byte blocks; each one's place is
     * remembered at append and read back from it directly. */
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__blk_chain_create(t, RL__BLK_TYPE_USER, &head), RL_OK);
    for (int i = 0; i < 50; i++) {
        fill(rec, sizeof rec, (uint64_t)i);
        T_OK(t, rl__blk_chain_append_pos(t, head, rec, sizeof rec, &where[i]));
    }
    assert_int_equal(where[0].logical, head);
    assert_int_equal(where[0].off, 0);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    for (int i = 49; i >= 0; i--) {
        pos = where[i];
        fill(rec, sizeof rec, (uint64_t)i);
        T_OK(t, rl__blk_chain_pread(t, head, &pos, got, sizeof got));
        assert_memory_equal(rec, got, sizeof got);
        if (i < 49) { /* reading on lands exactly on the next record */
            rl__blk_pos next = where[i + 1];
            uint8_t a[8], b[8];
            T_OK(t, rl__blk_chain_pread(t, head, &pos, a, 8));
            T_OK(t, rl__blk_chain_pread(t, head, &next, b, 8));
            assert_memory_equal(a, b, 8);
        }
    }
    /* Overwrite record 7 in place, then read it from a new snapshot. */
    memset(rec, 0xAB, sizeof rec);
    pos = where[7];
    T_OK(t, rl__blk_chain_pwrite(t, head, &pos, rec, sizeof rec));
    /* Past the end of the stream: RL_RANGE, nothing changed. */
    pos = where[49];
    T_OK(t, rl__blk_chain_pread(t, head, &pos, got, sizeof got));
    assert_int_equal(rl__blk_chain_pread(t, head, &pos, got, 1), RL_RANGE);
    assert_int_equal(rl__blk_chain_pwrite(t, head, &pos, got, 1), RL_RANGE);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    pos = where[7];
    T_OK(t, rl__blk_chain_pread(t, head, &pos, got, sizeof got));
    assert_memory_equal(rec, got, sizeof got);
    rl__blk_rollback(t);
    rl__blk_close(db);
}

/* A read reference made a write reference: the block is copied on write
 * like one got for writing, a reader keeps what it saw, and a read
 * transaction cannot do it. */
static void test_block_upgrade(void **state)
{
    rl__blk_db *db = new_db("upgrade.rdb", 512);
    rl__blk_txn *t, *r;
    rl__blk_ref ref;
    uint64_t a;
    (void)state;
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    T_OK(t, rl__blk_block_alloc(t, RL__BLK_TYPE_USER + 1, 0, &a, &ref));
    memcpy(ref.wdata, "old", 3);
    rl__blk_block_set_used(&ref, 3);
    T_OK(t, rl__blk_block_upgrade(t, &ref)); /* already writable: nothing to do */
    rl__blk_block_put(&ref);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    assert_int_equal(rl__blk_begin(db, 0, &r), RL_OK);
    T_OK(r, rl__blk_block_get(r, a, 0, &ref));
    assert_int_equal(rl__blk_block_upgrade(r, &ref), RL_READONLY);
    assert_null(ref.wdata);
    rl__blk_block_put(&ref);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    T_OK(t, rl__blk_block_get(t, a, 0, &ref));
    assert_null(ref.wdata);
    T_OK(t, rl__blk_block_upgrade(t, &ref));
    assert_non_null(ref.wdata);
    assert_memory_equal(ref.data, "old", 3);
    memcpy(ref.wdata, "new", 3);
    rl__blk_block_put(&ref);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    T_OK(r, rl__blk_block_get(r, a, 0, &ref)); /* the reader's snapshot */
    assert_memory_equal(ref.data, "old", 3);
    rl__blk_block_put(&ref);
    rl__blk_rollback(r);
    assert_int_equal(rl__blk_begin(db, 0, &r), RL_OK);
    T_OK(r, rl__blk_block_get(r, a, 0, &ref));
    assert_memory_equal(ref.data, "new", 3);
    rl__blk_block_put(&ref);
    rl__blk_rollback(r);
    rl__blk_close(db);
}

static void test_single_blocks(void **state)
{
    rl__blk_db *db = new_db("single.rdb", 512);
    rl__blk_txn *t, *r;
    rl__blk_ref ref, ref2;
    uint64_t a, b;
    (void)state;
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    T_OK(t, rl__blk_block_alloc(t, RL__BLK_TYPE_USER + 1, 0, &a, &ref));
    assert_int_equal(ref.cap, 512 - RL__HDR_SIZE);
    assert_int_equal(ref.used, 0);
    memcpy(ref.wdata, "first", 5);
    rl__blk_block_set_used(&ref, 5);
    rl__blk_block_put(&ref);
    T_OK(t, rl__blk_block_alloc(t, RL__BLK_TYPE_USER + 1, a, &b, &ref));
    rl__blk_block_put(&ref);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    /* A reader keeps "first" while a writer changes the block. */
    assert_int_equal(rl__blk_begin(db, 0, &r), RL_OK);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    T_OK(t, rl__blk_block_get(t, a, 1, &ref));
    memcpy(ref.wdata, "second", 6);
    rl__blk_block_set_used(&ref, 6);
    rl__blk_block_put(&ref);
    T_OK(t, rl__blk_block_free(t, b));
    assert_int_equal(rl__blk_commit(t), RL_OK);
    T_OK(r, rl__blk_block_get(r, a, 0, &ref));
    assert_int_equal(ref.used, 5);
    assert_memory_equal(ref.data, "first", 5);
    assert_null(ref.wdata);
    rl__blk_block_put(&ref);
    assert_int_equal(rl__blk_block_get(r, a, 1, &ref), RL_READONLY);
    rl__blk_rollback(r);
    assert_int_equal(rl__blk_begin(db, 0, &r), RL_OK);
    T_OK(r, rl__blk_block_get(r, a, 0, &ref));
    assert_memory_equal(ref.data, "second", 6);
    rl__blk_block_put(&ref);
    /* A freed block or a chain head is not a single block. */
    assert_int_equal(rl__blk_block_get(r, b, 0, &ref2), RL_CORRUPT);
    rl__blk_rollback(r);
    rl__blk_close(db);
}

/* Reads leave the file's access time alone: the library sets O_NOATIME
 * (the test's process owns the file), else a relatime mount would stamp
 * an access time older than a day on the first read. */
static void test_reads_leave_access_time_alone(void **state)
{
    const char *path = tu_path("atime.rdb");
    struct timespec times[2] = {{0, 0}, {0, UTIME_OMIT}};
    struct stat st;
    rl__blk_db *db;
    rl__blk_txn *t;
    uint64_t id;
    rl__blk_ref ref;
    (void)state;
    unlink(path);
    db = open_opts(path, 512, RL__BLK_CREATE, RL__DURABLE_OFF, 16 * 512);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    T_OK(t, rl__blk_block_alloc(t, RL__BLK_TYPE_USER, 0, &id, &ref));
    rl__blk_block_put(&ref);
    T_OK(t, rl__blk_commit(t));
    rl__blk_close(db);
    times[0].tv_sec = time(NULL) - 3 * 86400;
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    db = open_opts(path, 512, 0, RL__DURABLE_OFF, 16 * 512);
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    T_OK(t, rl__blk_block_get(t, id, 0, &ref));
    rl__blk_block_put(&ref);
    rl__blk_rollback(t);
    rl__blk_close(db);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_atim.tv_sec, times[0].tv_sec);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_reads_leave_access_time_alone),
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_create_and_reopen),
        cmocka_unit_test(test_chain_roundtrip),
        cmocka_unit_test(test_cow_cost_is_constant),
        cmocka_unit_test(test_commits_never_stat_the_file),
        cmocka_unit_test(test_reader_keeps_snapshot),
        cmocka_unit_test(test_rollback_restores_bytes),
        cmocka_unit_test(test_file_size_bounded),
        cmocka_unit_test(test_freelist_runs),
        cmocka_unit_test(test_other_handle_commits_seen),
        cmocka_unit_test(test_block_upgrade),
        cmocka_unit_test(test_misuse_errors),
        cmocka_unit_test(test_truncate_and_free),
        cmocka_unit_test(test_durability_syncs),
        cmocka_unit_test(test_past_4gib),
        cmocka_unit_test(test_positioned_chain_io),
        cmocka_unit_test(test_single_blocks),
    };
    tu_setup_dir("blocks");
    return cmocka_run_group_tests_name("blocks", tests, NULL, NULL);
}
