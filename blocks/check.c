/*
** blocks/check.c: the block layer's integrity walk. From a snapshot's root
** it visits every block the root can reach (map nodes, the blocks the map
** names, or its delta names instead, freelist blocks) and every block the
** freelist says is free, and
** reports, one line each:
**   - a block reached twice, or both reached and free;
**   - a block in the file neither reached nor free (a leak);
**   - a block whose header, checksum or links are wrong;
**   - a freelist whose entry count disagrees with the root;
**   - a delta entry for a logical number the map does not hold;
** and, as a note that is not a problem, a newer root slot that opening
** passed over (rl__file_read_root).
** It reads blocks without the cache, never trusts a link before checking
** its range, and stops after a bounded amount of work, so a damaged file
** gives a report, never a crash or a hang.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "blk_int.h"

#define MAX_LINES 64 /* problems listed one by one; the rest only counted */

enum { SEEN_NONE = 0, SEEN_MAP, SEEN_DATA, SEEN_FREELIST, SEEN_FREE };

typedef struct walk {
    rl__blk_txn *t;
    uint8_t *seen; /* per physical block: SEEN_* */
    uint8_t *buf;
    char *out;
    size_t n, cap;
    int problems;
    uint32_t delta_seen; /* delta entries met by the map walk (D1) */
} walk;

static void say(walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(walk *w, const char *fmt, ...)
{
    va_list ap;
    int len;
    if (w->problems++ >= MAX_LINES)
        return;
    if (w->cap - w->n < 256) {
        size_t cap = w->cap ? 2 * w->cap : 4096;
        char *p = realloc(w->out, cap);
        if (!p)
            return;
        w->out = p;
        w->cap = cap;
    }
    va_start(ap, fmt);
    len = vsnprintf(w->out + w->n, w->cap - w->n - 1, fmt, ap);
    va_end(ap);
    if (len > 0)
        w->n += (size_t)len < w->cap - w->n - 2 ? (size_t)len : w->cap - w->n - 2;
    w->out[w->n++] = '\n';
    w->out[w->n] = '\0';
}

static const char *kind_name(int k)
{
    static const char *const names[] = {"unseen", "a map node", "a data block",
                                        "a freelist block", "free"};
    return names[k];
}

/* Block j of commit area a may be reached as kind: a mapped block or a
 * freelist block, among the blocks the root says the area uses. */
static int area_block_ok(walk *w, uint64_t phys, int a, uint32_t j, int kind)
{
    if (kind == SEEN_MAP || kind == SEEN_FREE) {
        say(w, "block %llu lies in commit area %d and cannot be %s", (unsigned long long)phys,
            a, kind_name(kind));
        return 0;
    }
    if (j >= w->t->root.area_used[a]) {
        say(w, "block %llu (%s) lies in commit area %d past the %u blocks it uses",
            (unsigned long long)phys, kind_name(kind), a, w->t->root.area_used[a]);
        return 0;
    }
    return 1;
}

/* Mark phys as kind; 0 if it is out of range or already marked. The
 * commit areas lie below first_block, and seen[] covers them too. */
static int mark(walk *w, uint64_t phys, int kind)
{
    uint32_t j;
    int a = rl__fmt_area_of(w->t->db->block_size, phys, &j);
    if (a >= 0) {
        if (!area_block_ok(w, phys, a, j, kind))
            return 0;
    } else if (phys < w->t->db->first_block || phys >= w->t->root.block_count) {
        say(w, "block %llu (%s) lies outside the file's blocks [%llu, %llu)",
            (unsigned long long)phys, kind_name(kind),
            (unsigned long long)w->t->db->first_block,
            (unsigned long long)w->t->root.block_count);
        return 0;
    }
    if (w->seen[phys] != SEEN_NONE) {
        say(w, "block %llu is both %s and %s", (unsigned long long)phys,
            kind_name(w->seen[phys]), kind_name(kind));
        return 0;
    }
    w->seen[phys] = (uint8_t)kind;
    return 1;
}

/* Read and check one block; 0 (and a line) if it is damaged. */
static int load(walk *w, uint64_t phys, rl__blk_bhdr *h)
{
    rl__err err;
    if (rl__blk_read_raw(w->t->db, phys, w->buf, &err) != RL_OK) {
        say(w, "%s", err.msg);
        return 0;
    }
    rl__fmt_bhdr_decode(w->buf, h);
    if (h->txn > w->t->root.txn) {
        say(w, "block %llu was written by transaction %llu, after this snapshot's %llu",
            (unsigned long long)phys, (unsigned long long)h->txn,
            (unsigned long long)w->t->root.txn);
        return 0;
    }
    return 1;
}

/* A mapped block: its header must name logical. */
static void data_block(walk *w, uint64_t logical, uint64_t phys)
{
    rl__blk_bhdr h;
    if (!mark(w, phys, SEEN_DATA) || !load(w, phys, &h))
        return;
    if (h.logical != logical || h.type < RL__BLK_TYPE_CHAIN)
        say(w, "block %llu is mapped as logical %llu but says logical %llu, type %u",
            (unsigned long long)phys, (unsigned long long)logical,
            (unsigned long long)h.logical, h.type);
}

static void map_node(walk *w, uint64_t phys, uint32_t level, uint64_t first, int depth)
{
    rl__blk_db *db = w->t->db;
    rl__blk_bhdr h;
    uint64_t span = 1, *entries;
    if (depth > (int)RL__MAX_MAP_DEPTH || !mark(w, phys, SEEN_MAP) || !load(w, phys, &h))
        return;
    if (h.type != RL__BLK_TYPE_MAP || h.flags != level) {
        say(w, "block %llu should be a level-%u map node (type %u, level %u)",
            (unsigned long long)phys, level, h.type, h.flags);
        return;
    }
    for (uint32_t i = 0; i < level; i++)
        span = span > UINT64_MAX / db->fanout ? UINT64_MAX : span * db->fanout;
    entries = malloc(db->fanout * sizeof *entries);
    if (!entries)
        return;
    for (uint32_t i = 0; i < db->fanout; i++) /* the buffer is reused below: copy */
        entries[i] = rl__get64(w->buf + RL__HDR_SIZE + 8u * i);
    for (uint32_t i = 0; i < db->fanout; i++) {
        uint64_t logical = first + span * i, e = entries[i];
        if (e == 0 || logical >= w->t->root.logical_limit)
            continue;
        if (level > 0) {
            map_node(w, e, level - 1, logical, depth + 1);
        } else if (!(e & RL__MAP_FREE_BIT)) {
            uint64_t moved = rl__map_delta_get(&w->t->root, logical); /* the delta wins */
            w->delta_seen += moved != 0;
            data_block(w, logical, moved ? moved : e);
        }
    }
    free(entries);
}

static void freelist(walk *w)
{
    uint64_t phys = w->t->root.freelist_head, blocks = 0;
    for (uint64_t hops = 0; phys != 0; hops++) {
        rl__blk_bhdr h;
        if (hops > w->t->root.block_count) {
            say(w, "the freelist chain loops");
            return;
        }
        if (!mark(w, phys, SEEN_FREELIST) || !load(w, phys, &h))
            return;
        if (h.type != RL__BLK_TYPE_FREELIST || h.used % RL__FREE_ENTRY) {
            say(w, "block %llu should be a freelist block", (unsigned long long)phys);
            return;
        }
        for (uint32_t off = 0; off < h.used; off += RL__FREE_ENTRY) {
            uint64_t first, count, txn;
            rl__fmt_free_decode(w->buf + RL__HDR_SIZE + off, &first, &count, &txn);
            if (blocks + count > w->t->root.block_count) {
                say(w, "the freelist lists more blocks than the file's %llu",
                    (unsigned long long)w->t->root.block_count);
                return;
            }
            if (first + count > w->t->root.block_count) {
                say(w, "freelist block %llu lists %llu blocks from %llu, past the file's %llu",
                    (unsigned long long)phys, (unsigned long long)count,
                    (unsigned long long)first, (unsigned long long)w->t->root.block_count);
                continue;
            }
            for (uint64_t i = 0; i < count; i++)
                mark(w, first + i, SEEN_FREE);
            blocks += count;
        }
        phys = h.next;
    }
    if (blocks != w->t->root.free_count)
        say(w, "the freelist lists %llu blocks, the root says %llu",
            (unsigned long long)blocks, (unsigned long long)w->t->root.free_count);
}

int rl__blk_check(rl__blk_txn *t, char **report, int *problems)
{
    rl__blk_db *db = t->db;
    walk w = {t, NULL, NULL, NULL, 0, 0, 0, 0};
    uint64_t leaked = 0;
    *report = NULL;
    *problems = 0;
    pthread_mutex_lock(&db->mu);
    w.seen = calloc(t->root.block_count, 1);
    w.buf = malloc(db->block_size);
    if (!w.seen || !w.buf) {
        pthread_mutex_unlock(&db->mu);
        free(w.seen);
        free(w.buf);
        return RL__FAIL(&t->err, RL_NOMEM, "no memory to check %llu blocks",
                        (unsigned long long)t->root.block_count);
    }
    if (db->passed_over.code && db->passed_over_txn > t->root.txn) {
        say(&w, "note: the newer root slot (txn %llu) was passed over, so this is txn %llu: "
                "%s (a commit torn by a crash, or damage to it since)",
            (unsigned long long)db->passed_over_txn, (unsigned long long)t->root.txn,
            db->passed_over.msg);
        w.problems--; /* a note: after a crash this is the expected state */
    }
    if (t->root.map_root)
        map_node(&w, t->root.map_root, t->root.map_depth - 1, 0, 0);
    if (w.delta_seen != t->root.ndelta)
        say(&w, "%u of the root's %u map changes name logical numbers the map does not hold",
            t->root.ndelta - w.delta_seen, t->root.ndelta);
    freelist(&w);
    for (uint64_t b = db->first_block; b < t->root.block_count; b++)
        if (w.seen[b] == SEEN_NONE && leaked++ < 8)
            say(&w, "block %llu is neither reachable nor free (leaked)", (unsigned long long)b);
    if (leaked > 8)
        say(&w, "... %llu leaked blocks in all", (unsigned long long)leaked);
    pthread_mutex_unlock(&db->mu);
    if (w.problems > MAX_LINES)
        say(&w, "... %d problems in all", w.problems);
    free(w.seen);
    free(w.buf);
    *report = w.out;
    *problems = w.problems;
    return RL_OK;
}
