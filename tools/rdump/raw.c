/*
** tools/rdump/raw.c: rdump's views that decode the file's bytes directly
** (through the block layer's format decoders, blocks/format.c): the
** summary's file part, every block, the block map, the freelist, one
** chain, an SVG picture and a Graphviz graph.
**
** Invariants: nothing here trusts the file. A block is used only if its
** number lies inside both the file and the walked slot's block count and
** its header and checksum verify; every loop is bounded by the block
** count; the map walk is bounded by its depth. Damage is reported in the
** output and the view goes on.
*/
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/rdump/rdump.h"

#define MAX_MAP_DEPTH 16

/* What a block is in the walked commit (block_states). */
#define BLOCK_UNUSED 0   /* neither reachable nor free: an unfinished commit's */
#define BLOCK_FREE 1     /* listed in the freelist */
#define BLOCK_FREELIST 2 /* holds the freelist */
#define BLOCK_LIVE 3     /* a map node, or a mapped block */

static int freelist_each(image *im, int print, uint8_t *state);

const char *rdump_type_name(unsigned t);
const char *rdump_type_name(unsigned t)
{
    switch (t) {
    case RL__BLK_TYPE_MAP: return "map";
    case RL__BLK_TYPE_FREELIST: return "freelist";
    case RL__BLK_TYPE_CHAIN: return "chain";
    case RL__BLK_TYPE_USER + 0: return "schema";
    case RL__BLK_TYPE_USER + 1: return "table-state";
    case RL__BLK_TYPE_USER + 2: return "record";
    case RL__BLK_TYPE_USER + 3: return "value";
    case RL__BLK_TYPE_USER + 4: return "btree";
    default: return t == 0 ? "empty" : "unknown";
    }
}

/* ---- reading --------------------------------------------------------------- */

static int read_at(image *im, uint64_t off, void *buf, size_t n)
{
    if (off > im->size || n > im->size - off || fseeko(im->f, (off_t)off, SEEK_SET) != 0)
        return 0;
    return fread(buf, 1, n, im->f) == n;
}

static uint64_t block_size(const image *im) { return im->h.block_size; }
static uint64_t first_block(const image *im) { return rl__fmt_first_block(im->h.block_size); }
static uint64_t file_blocks(const image *im) { return im->size / block_size(im); }

/* Blocks the walked slot may name: inside the root's count and the file. */
static uint64_t walk_limit(const image *im)
{
    uint64_t n = file_blocks(im), c = im->slot[im->walk].block_count;
    return c < n ? c : n;
}

/* Call fn(im, phys, arg) for every block of the commit areas that the
 * file holds (a cut file may end inside its root area), in order. */
static void each_area_block(image *im, void (*fn)(image *, uint64_t, void *), void *arg)
{
    for (unsigned a = 0; a < RL__NSLOTS; a++)
        for (uint32_t j = 0; j < rl__fmt_area_blocks(im->h.block_size); j++) {
            uint64_t b = rl__fmt_area_first(im->h.block_size, a) + j;
            if (b < file_blocks(im))
                fn(im, b, arg);
        }
}

/* Read block phys into buf and verify it; why (if not NULL) says what is
 * wrong. 1 if it verifies. */
static int read_block(image *im, uint64_t phys, uint8_t *buf, rl__blk_bhdr *h, rl__err *why)
{
    rl__err ignored;
    rl__err *e = why ? why : &ignored;
    rl__err_clear(e);
    memset(h, 0, sizeof *h);
    if (!rl__fmt_reachable(im->h.block_size, phys, file_blocks(im))) {
        RL__CORRUPT(e, "block %llu lies outside the file", (unsigned long long)phys);
        return 0;
    }
    if (!read_at(im, phys * block_size(im), buf, block_size(im))) {
        RL__CORRUPT(e, "block %llu cannot be read", (unsigned long long)phys);
        return 0;
    }
    rl__fmt_bhdr_decode(buf, h);
    return rl__fmt_block_check(buf, (uint32_t)block_size(im), phys, e) == RL_OK;
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

int rdump_load(image *im, FILE *f, FILE *out, int json)
{
    uint8_t region[RL__REGION];
    struct stat st;
    rl__err err;
    memset(im, 0, sizeof *im);
    im->f = f;
    im->out = out;
    im->json = json;
    im->newest = im->walk = -1;
    if (fseeko(f, 0, SEEK_END) != 0)
        return 0;
    im->size = (uint64_t)ftello(f);
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode))
        im->size = (uint64_t)st.st_size;
    memset(region, 0, sizeof region);
    read_at(im, 0, region, im->size < RL__REGION ? im->size : RL__REGION);
    im->header_ok = rl__fmt_header_decode(region, im->size < RL__REGION ? im->size : RL__REGION,
                                          &im->h, &err) == RL_OK;
    if (!im->header_ok) {
        snprintf(im->header_why, sizeof im->header_why, "%s", err.msg);
        return 1;
    }
    for (int i = 0; i < (int)RL__NSLOTS; i++) {
        memset(region, 0, sizeof region);
        if (!read_at(im, rl__fmt_slot_offset(im->h.block_size, (unsigned)i), region, sizeof region)) {
            snprintf(im->slot_why[i], sizeof im->slot_why[i], "cut off by the end of the file");
            continue;
        }
        im->slot_ok[i] =
            rl__fmt_slot_decode(region, im->h.block_size, &im->slot[i], NULL, NULL, &err) == RL_OK;
        im->slot_empty[i] = !im->slot_ok[i] && all_zero(region, sizeof region);
        if (!im->slot_ok[i])
            snprintf(im->slot_why[i], sizeof im->slot_why[i], "%s",
                     im->slot_empty[i] ? "empty, never written yet" : err.msg);
    }
    for (int i = 0; i < (int)RL__NSLOTS; i++)
        if (im->slot_ok[i] && (im->newest < 0 || im->slot[i].txn > im->slot[im->newest].txn))
            im->newest = i;
    im->walk = im->newest;
    return 1;
}

void rdump_walk_txn(image *im, uint64_t txn)
{
    for (int i = 0; i < (int)RL__NSLOTS; i++)
        if (im->slot_ok[i] && im->slot[i].txn == txn)
            im->walk = i;
}

void rdump_json_str(FILE *out, const char *s, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

/* ---- the map ------------------------------------------------------------- */

/* Where the walked slot's map delta puts logical, else phys (the leaf's). */
static uint64_t delta_or(const image *im, uint64_t logical, uint64_t phys)
{
    uint64_t moved = rl__map_delta_get(&im->slot[im->walk], logical);
    return moved ? moved : phys;
}

typedef void (*map_fn)(image *im, uint64_t logical, uint64_t phys, void *arg);

typedef struct map_walk {
    image *im;
    uint8_t *buf;
    uint64_t fanout, free_logicals, nodes;
    int damaged;
    map_fn fn;
    void *arg;
    uint8_t *mark; /* if set: BLOCK_LIVE for every map node met */
} map_walk;

static void map_damage(map_walk *w, const char *msg)
{
    w->damaged = 1;
    if (w->im->json)
        return; /* JSON views list what they found; --check lists damage */
    fprintf(w->im->out, "damage: %s\n", msg);
}

static void map_node(map_walk *w, uint64_t phys, uint32_t level, uint64_t first, uint64_t span)
{
    rl__blk_bhdr h;
    rl__err why = {0};
    uint64_t *entries;
    if (w->nodes >= walk_limit(w->im)) { /* more nodes than blocks: links repeat */
        if (w->nodes++ == walk_limit(w->im))
            map_damage(w, "the map reaches more nodes than the file has blocks (a cycle?)");
        return;
    }
    if (phys >= walk_limit(w->im) || !read_block(w->im, phys, w->buf, &h, &why) ||
        h.type != RL__BLK_TYPE_MAP || h.flags != level) {
        char msg[320];
        snprintf(msg, sizeof msg, "map node at block %llu (level %u): %s",
                 (unsigned long long)phys, level,
                 why.code ? why.msg : "not a map node of this level, or outside the root");
        map_damage(w, msg);
        return;
    }
    w->nodes++;
    if (w->mark)
        w->mark[phys] = BLOCK_LIVE;
    entries = malloc(w->fanout * sizeof *entries);
    if (!entries)
        return;
    for (uint64_t i = 0; i < w->fanout; i++)
        entries[i] = rl__get64(w->buf + RL__HDR_SIZE + 8 * i);
    for (uint64_t i = 0; i < w->fanout; i++) {
        uint64_t e = entries[i], logical = first + span * i;
        if (e == 0)
            continue;
        if (level > 0)
            map_node(w, e, level - 1, logical, span / w->fanout);
        else if (e >> 63)
            w->free_logicals++;
        else if (logical > 0)
            w->fn(w->im, logical, delta_or(w->im, logical, e), w->arg);
    }
    free(entries);
}

/* How many logical numbers one entry of the map's top node covers
 * (fanout^(depth-1)); 0 if the depth is out of range. */
static int top_span(const rl__blk_root *r, uint64_t fanout, uint64_t *span)
{
    *span = 1;
    if (r->map_depth == 0 || r->map_depth > MAX_MAP_DEPTH)
        return 0;
    for (uint32_t k = 1; k < r->map_depth; k++) {
        if (*span > UINT64_MAX / fanout)
            return 0;
        *span *= fanout;
    }
    return 1;
}

/* Call fn for every mapped logical number of the walked slot, in order;
 * with mark, also mark every map node BLOCK_LIVE in it. Returns 1 if the
 * map is damaged. */
static int map_walk_all(image *im, map_fn fn, void *arg, uint64_t *free_logicals, uint8_t *mark)
{
    const rl__blk_root *r;
    map_walk w;
    uint64_t span = 1;
    if (im->walk < 0)
        return 1;
    r = &im->slot[im->walk];
    memset(&w, 0, sizeof w);
    w.im = im;
    w.fanout = (block_size(im) - RL__HDR_SIZE) / 8;
    w.fn = fn;
    w.arg = arg;
    w.mark = mark;
    if (r->map_root == 0)
        return 0;
    if (!top_span(r, w.fanout, &span)) {
        map_damage(&w, "the root slot's map depth is out of range");
        return 1;
    }
    w.buf = malloc(block_size(im));
    if (w.buf)
        map_node(&w, r->map_root, r->map_depth - 1, 0, span);
    free(w.buf);
    if (free_logicals)
        *free_logicals = w.free_logicals;
    return w.damaged;
}

static int map_each(image *im, map_fn fn, void *arg, uint64_t *free_logicals)
{
    return map_walk_all(im, fn, arg, free_logicals, NULL);
}

/* The physical block of logical (0 if unmapped or the map is damaged). */
static uint64_t map_lookup(image *im, uint64_t logical)
{
    const rl__blk_root *r = &im->slot[im->walk];
    uint64_t fanout = (block_size(im) - RL__HDR_SIZE) / 8, span = 1, node = r->map_root;
    uint8_t *buf;
    if (!top_span(r, fanout, &span) || !(buf = malloc(block_size(im))))
        return 0;
    if (logical / span >= fanout)
        node = 0; /* beyond what the map covers */
    for (uint32_t level = r->map_depth; node != 0 && level-- > 0; span /= fanout) {
        rl__blk_bhdr h;
        uint64_t digit = (logical / span) % fanout;
        if (node == 0 || node >= walk_limit(im) || !read_block(im, node, buf, &h, NULL) ||
            h.type != RL__BLK_TYPE_MAP || h.flags != level) {
            node = 0;
            break;
        }
        node = rl__get64(buf + RL__HDR_SIZE + 8 * digit);
        if (level == 0 && node >> 63)
            node = 0;
        else if (level == 0)
            node = delta_or(im, logical, node);
    }
    free(buf);
    return node;
}

/* ---- one block's line ------------------------------------------------------ */

static void block_line(image *im, uint64_t phys, const rl__blk_bhdr *h, int ok, const char *why,
                       int *first)
{
    if (im->json) {
        fprintf(im->out, "%s\n  {\"block\": %llu, \"type\": \"%s\", \"logical\": %llu, "
                         "\"owner\": %llu, \"txn\": %llu, \"next\": %llu, \"used\": %u, "
                         "\"ok\": %s, \"check\": ",
                *first ? "" : ",", (unsigned long long)phys, rdump_type_name(h->type),
                (unsigned long long)h->logical, (unsigned long long)h->owner,
                (unsigned long long)h->txn, (unsigned long long)h->next, h->used,
                ok ? "true" : "false");
        rdump_json_str(im->out, ok ? "ok" : why, strlen(ok ? "ok" : why));
        fprintf(im->out, "}");
    } else {
        if (*first)
            fprintf(im->out, "%-8s %-12s %-8s %-8s %-8s %-8s %-6s %s\n", "block", "type",
                    "logical", "owner", "txn", "next", "used", "check");
        fprintf(im->out, "%-8llu %-12s %-8llu %-8llu %-8llu %-8llu %-6u %s\n",
                (unsigned long long)phys, rdump_type_name(h->type), (unsigned long long)h->logical,
                (unsigned long long)h->owner, (unsigned long long)h->txn,
                (unsigned long long)h->next, h->used, ok ? "ok" : why);
    }
    *first = 0;
}

static int list_begin(image *im)
{
    if (im->json)
        fprintf(im->out, "[");
    return 1;
}

static void list_end(image *im, int first)
{
    if (im->json)
        fprintf(im->out, "%s]\n", first ? "" : "\n");
}

/* ---- views ----------------------------------------------------------------- */

static void slot_summary(image *im, int i)
{
    const rl__blk_root *r = &im->slot[i];
    const char *kind = r->flags & RL__SLOT_LISTED   ? "single-sync commit"
                       : r->flags & RL__SLOT_SYNCED ? "synced commit"
                                                    : "commit not synced after its slot";
    if (im->json) {
        fprintf(im->out, "    {\"slot\": %d, \"valid\": %s", i, im->slot_ok[i] ? "true" : "false");
        if (im->slot_ok[i])
            fprintf(im->out, ", \"txn\": %llu, \"blocks\": %llu, \"free\": %llu, "
                             "\"map_changes\": %u, \"area_blocks\": %u, \"single_sync\": %s, "
                             "\"newest\": %s}",
                    (unsigned long long)r->txn, (unsigned long long)r->block_count,
                    (unsigned long long)r->free_count, r->ndelta, r->area_used[r->txn % RL__NSLOTS],
                    r->flags & RL__SLOT_LISTED ? "true" : "false",
                    im->newest == i ? "true" : "false");
        else {
            fprintf(im->out, ", \"error\": ");
            rdump_json_str(im->out, im->slot_why[i], strlen(im->slot_why[i]));
            fprintf(im->out, "}");
        }
        fprintf(im->out, "%s\n", i + 1 < (int)RL__NSLOTS ? "," : "");
    } else if (im->slot_ok[i])
        fprintf(im->out, "root slot %d      txn %llu, %llu blocks, %llu free, %u map changes, "
                         "%u area blocks, %s%s\n",
                i, (unsigned long long)r->txn, (unsigned long long)r->block_count,
                (unsigned long long)r->free_count, r->ndelta, r->area_used[r->txn % RL__NSLOTS],
                kind, im->newest == i ? "  <- newest" : "");
    else
        fprintf(im->out, "root slot %d      %s%s\n", i, im->slot_empty[i] ? "" : "invalid: ",
                im->slot_why[i]);
}

static void mark_live(image *im, uint64_t logical, uint64_t phys, void *state)
{
    (void)logical;
    if (phys < file_blocks(im))
        ((uint8_t *)state)[phys] = BLOCK_LIVE;
}

/* Each block's BLOCK_* state in the walked commit (malloc'd), or NULL if
 * no slot is walked or memory is short. *damaged: the walk met damage. */
static uint8_t *block_states(image *im, int *damaged)
{
    uint8_t *state;
    if (im->walk < 0 || !(state = calloc(file_blocks(im) + 1, 1)))
        return NULL;
    *damaged = map_walk_all(im, mark_live, state, NULL, state);
    *damaged |= freelist_each(im, 0, state);
    return state;
}

/* Blocks counted by state and, in use, by type. */
typedef struct census {
    uint64_t types[256], free, freelist, unused, bad_live, bad_other, used_bytes, live;
    uint64_t in_areas; /* blocks of the commit areas counted above */
    int walked; /* 0: no commit to walk, every block counted by its header */
    uint8_t *state, *buf;
} census;

/* A block of a commit area: in use if the walked root reaches it, not in
 * use if a newer (unfinished) commit wrote it, else part of the root area. */
static void census_area_block(image *im, uint64_t b, void *arg)
{
    census *c = arg;
    rl__blk_bhdr h;
    int ok = read_block(im, b, c->buf, &h, NULL);
    if (c->state[b] == BLOCK_LIVE || c->state[b] == BLOCK_FREELIST) {
        c->in_areas++;
        if (!ok) {
            c->bad_live++;
            return;
        }
        c->types[h.type]++;
        c->live++;
        c->used_bytes += h.used;
    } else if (ok && h.txn > im->slot[im->walk].txn) {
        c->in_areas++;
        c->unused++;
    }
}

static void take_census(image *im, census *c)
{
    int damaged = 0;
    uint8_t *state = block_states(im, &damaged), *buf = malloc(block_size(im));
    memset(c, 0, sizeof *c);
    c->walked = state != NULL;
    c->state = state;
    c->buf = buf;
    if (state && buf)
        each_area_block(im, census_area_block, c);
    for (uint64_t b = first_block(im); buf && b < file_blocks(im); b++) {
        rl__blk_bhdr h;
        int st = state ? state[b] : BLOCK_LIVE, ok;
        if (st == BLOCK_FREE || st == BLOCK_UNUSED) {
            *(st == BLOCK_FREE ? &c->free : &c->unused) += 1;
            continue;
        }
        ok = read_block(im, b, buf, &h, NULL);
        if (!ok) {
            *(state ? &c->bad_live : &c->bad_other) += 1;
            continue;
        }
        c->types[h.type]++;
        c->live++;
        c->used_bytes += h.used;
    }
    free(buf);
    free(state);
}

static void census_json(image *im, const census *c)
{
    FILE *o = im->out;
    fprintf(o, "  ],\n  \"blocks\": %llu,\n  \"root_area\": %llu,\n  \"walked\": %s,\n"
               "  \"in_use\": {",
            (unsigned long long)file_blocks(im), (unsigned long long)first_block(im),
            c->walked ? "true" : "false");
    for (int t = 0, n = 0; t < 256; t++)
        if (c->types[t])
            fprintf(o, "%s\"%s\": %llu", n++ ? ", " : "", rdump_type_name((unsigned)t),
                    (unsigned long long)c->types[t]);
    fprintf(o, "},\n  \"free\": %llu,\n  \"not_in_use\": %llu,\n  \"unreadable\": %llu,\n"
               "  \"in_commit_areas\": %llu",
            (unsigned long long)c->free, (unsigned long long)c->unused,
            (unsigned long long)(c->bad_live + c->bad_other), (unsigned long long)c->in_areas);
    if (im->roles_known)
        fprintf(o, ",\n  \"btree_tables\": %llu,\n  \"btree_indexes\": %llu",
                (unsigned long long)im->btree_tables, (unsigned long long)im->btree_indexes);
    fprintf(o, ",\n  \"payload_in_use\": %.4f",
            c->live ? (double)c->used_bytes / (double)(c->live * (block_size(im) - RL__HDR_SIZE))
                    : 0.0);
}

static void census_text(image *im, const census *c)
{
    FILE *o = im->out;
    fprintf(o, "blocks           %llu (root area %llu)\n", (unsigned long long)file_blocks(im),
            (unsigned long long)first_block(im));
    fprintf(o, "  %-14s %llu%s\n", "in use", (unsigned long long)(c->live + c->bad_live),
            c->walked ? "" : " (no root slot to walk: every block, by its header)");
    for (int t = 0; t < 256; t++) {
        if (!c->types[t])
            continue;
        fprintf(o, "    %-12s %llu", rdump_type_name((unsigned)t), (unsigned long long)c->types[t]);
        if (t == RL__BLK_TYPE_USER + 4 && im->roles_known)
            fprintf(o, " (tables %llu, indexes %llu)", (unsigned long long)im->btree_tables,
                    (unsigned long long)im->btree_indexes);
        fprintf(o, "\n");
    }
    if (c->bad_live || c->bad_other)
        fprintf(o, "    %-12s %llu (damage: see --check)\n", "unreadable",
                (unsigned long long)(c->bad_live + c->bad_other));
    if (c->walked) {
        fprintf(o, "  %-14s %llu\n", "free", (unsigned long long)c->free);
        if (c->unused)
            fprintf(o, "  %-14s %llu (written by a commit that did not finish)\n",
                    "not in use", (unsigned long long)c->unused);
        fprintf(o, "  of which in the commit areas (part of the root area) %llu\n",
                (unsigned long long)c->in_areas);
    }
    if (c->live)
        fprintf(o, "space            %.1f%% of the payload of blocks in use is used\n",
                100.0 * (double)c->used_bytes /
                    (double)(c->live * (block_size(im) - RL__HDR_SIZE)));
}

int rdump_summary(image *im)
{
    census c;
    FILE *o = im->out;
    if (im->json)
        fprintf(o, "{\n  \"file_size\": %llu,\n  \"header_ok\": %s", (unsigned long long)im->size,
                im->header_ok ? "true" : "false");
    else
        fprintf(o, "file size        %llu bytes\n", (unsigned long long)im->size);
    if (!im->header_ok) {
        if (im->json) {
            fprintf(o, ",\n  \"error\": ");
            rdump_json_str(o, im->header_why, strlen(im->header_why));
        } else
            fprintf(o, "header           %s\n", im->header_why);
        return 1;
    }
    if (im->json)
        fprintf(o, ",\n  \"format_version\": %u,\n  \"block_size\": %u,\n  \"slots\": [\n",
                im->h.version, im->h.block_size);
    else
        fprintf(o, "format version   %u\nblock size       %u bytes\n", im->h.version,
                im->h.block_size);
    for (int i = 0; i < (int)RL__NSLOTS; i++)
        slot_summary(im, i);
    take_census(im, &c);
    if (im->json)
        census_json(im, &c);
    else
        census_text(im, &c);
    return 0;
}

typedef struct blocks_print {
    uint8_t *buf;
    int first;
} blocks_print;

/* One block's line; a block of a commit area only if it was ever written. */
static void blocks_print_one(image *im, uint64_t b, void *arg)
{
    blocks_print *p = arg;
    rl__blk_bhdr h;
    rl__err why = {0};
    int ok = read_block(im, b, p->buf, &h, &why);
    if (!ok && h.type == 0 && h.txn == 0) {
        if (b < first_block(im))
            return;
        snprintf(why.msg, sizeof why.msg, "never written");
    }
    block_line(im, b, &h, ok, why.msg, &p->first);
}

int rdump_blocks(image *im)
{
    blocks_print p = {NULL, list_begin(im)};
    if (!im->header_ok || !(p.buf = malloc(block_size(im)))) {
        list_end(im, p.first);
        return 1;
    }
    each_area_block(im, blocks_print_one, &p);
    for (uint64_t b = first_block(im); b < file_blocks(im); b++)
        blocks_print_one(im, b, &p);
    free(p.buf);
    list_end(im, p.first);
    return 0;
}

typedef struct map_print {
    int first;
    uint8_t *buf;
} map_print;

static void map_print_one(image *im, uint64_t logical, uint64_t phys, void *arg)
{
    map_print *p = arg;
    rl__blk_bhdr h;
    rl__err why = {0};
    int ok = read_block(im, phys, p->buf, &h, &why);
    if (ok && h.logical != logical) {
        ok = 0;
        snprintf(why.msg, sizeof why.msg, "the block says logical %llu",
                 (unsigned long long)h.logical);
    }
    if (im->json) {
        fprintf(im->out, "%s\n  {\"logical\": %llu, \"block\": %llu, \"type\": \"%s\", "
                         "\"owner\": %llu, \"ok\": %s}",
                p->first ? "" : ",", (unsigned long long)logical, (unsigned long long)phys,
                rdump_type_name(h.type), (unsigned long long)h.owner, ok ? "true" : "false");
    } else {
        if (p->first)
            fprintf(im->out, "%-8s %-8s %-12s %-8s %s\n", "logical", "block", "type", "owner",
                    "check");
        fprintf(im->out, "%-8llu %-8llu %-12s %-8llu %s\n", (unsigned long long)logical,
                (unsigned long long)phys, rdump_type_name(h.type), (unsigned long long)h.owner,
                ok ? "ok" : why.msg);
    }
    p->first = 0;
}

int rdump_map(image *im)
{
    map_print p = {list_begin(im), NULL};
    uint64_t free_logicals = 0;
    int damaged = 1;
    if (im->walk >= 0 && (p.buf = malloc(block_size(im))) != NULL)
        damaged = map_each(im, map_print_one, &p, &free_logicals);
    free(p.buf);
    list_end(im, p.first);
    if (!im->json && im->walk >= 0)
        fprintf(im->out, "(txn %llu: map depth %u, %llu free logical numbers)\n",
                (unsigned long long)im->slot[im->walk].txn, im->slot[im->walk].map_depth,
                (unsigned long long)free_logicals);
    return damaged;
}

/* Walk (and print) the freelist of the walked slot, a run per line; with
 * state, mark its blocks and the blocks it lists. Returns 1 if the list is
 * damaged. A list that names more blocks than the file has is damage, so
 * the work stays bounded by the file's size. */
static int freelist_each(image *im, int print, uint8_t *state)
{
    const rl__blk_root *r;
    uint8_t *buf;
    uint64_t phys, steps = 0, listed = 0;
    int first = 1, damaged = 0;
    if (im->walk < 0 || !(buf = malloc(block_size(im))))
        return 1;
    r = &im->slot[im->walk];
    if (print && !im->json)
        fprintf(im->out, "%-8s %-8s %-10s %s\n", "block", "count", "freed by",
                "(in freelist block)");
    if (print)
        list_begin(im);
    for (phys = r->freelist_head; phys != 0 && steps < walk_limit(im); steps++) {
        rl__blk_bhdr h;
        rl__err why = {0};
        if (phys >= walk_limit(im) || !read_block(im, phys, buf, &h, &why) ||
            h.type != RL__BLK_TYPE_FREELIST || h.used % RL__FREE_ENTRY || h.used > block_size(im) - RL__HDR_SIZE) {
            if (print && !im->json)
                fprintf(im->out, "damage: freelist block %llu: %s\n", (unsigned long long)phys,
                        why.code ? why.msg : "not a freelist block, or outside the root");
            damaged = 1;
            break;
        }
        if (state && phys < file_blocks(im))
            state[phys] = BLOCK_FREELIST;
        for (uint32_t i = 0; i < h.used / RL__FREE_ENTRY && listed <= file_blocks(im); i++) {
            uint64_t b, count, by;
            rl__fmt_free_decode(buf + RL__HDR_SIZE + RL__FREE_ENTRY * i, &b, &count, &by);
            for (uint64_t k = 0; state && k < count && b + k < file_blocks(im); k++)
                state[b + k] = BLOCK_FREE;
            listed += count;
            if (print && im->json) {
                fprintf(im->out, "%s\n  {\"block\": %llu, \"count\": %llu, \"freed_by\": %llu, \"in\": %llu}",
                        first ? "" : ",", (unsigned long long)b, (unsigned long long)count,
                        (unsigned long long)by, (unsigned long long)phys);
            } else if (print)
                fprintf(im->out, "%-8llu %-8llu %-10llu %llu\n", (unsigned long long)b,
                        (unsigned long long)count, (unsigned long long)by, (unsigned long long)phys);
            first = 0;
        }
        phys = h.next;
    }
    if (phys != 0 && !damaged) {
        damaged = 1;
        if (print && !im->json)
            fprintf(im->out, "damage: the freelist does not end (a cycle?)\n");
    }
    if (listed != r->free_count) {
        damaged = 1;
        if (print && !im->json)
            fprintf(im->out, "damage: the freelist lists %llu blocks, the root says %llu\n",
                    (unsigned long long)listed, (unsigned long long)r->free_count);
    }
    if (print)
        list_end(im, first);
    free(buf);
    return damaged;
}

int rdump_freelist(image *im)
{
    int damaged = freelist_each(im, 1, NULL);
    if (!im->json && im->walk >= 0)
        fprintf(im->out, "(txn %llu: %llu free blocks)\n",
                (unsigned long long)im->slot[im->walk].txn,
                (unsigned long long)im->slot[im->walk].free_count);
    return damaged;
}

int rdump_chain(image *im, uint64_t logical)
{
    uint8_t *buf;
    int first = list_begin(im), damaged = 0;
    uint64_t steps = 0, head = logical;
    if (im->walk < 0 || !(buf = malloc(block_size(im)))) {
        list_end(im, first);
        return 1;
    }
    while (logical != 0 && steps++ < walk_limit(im)) {
        rl__blk_bhdr h;
        rl__err why = {0};
        uint64_t phys = map_lookup(im, logical);
        int ok;
        if (phys == 0) {
            if (!im->json)
                fprintf(im->out, "damage: logical %llu is not in the map\n",
                        (unsigned long long)logical);
            damaged = 1;
            break;
        }
        ok = read_block(im, phys, buf, &h, &why);
        if (ok && (h.logical != logical || h.owner != head)) {
            ok = 0;
            snprintf(why.msg, sizeof why.msg, "belongs to logical %llu of chain %llu",
                     (unsigned long long)h.logical, (unsigned long long)h.owner);
        }
        block_line(im, phys, &h, ok, why.msg, &first);
        if (!ok) {
            damaged = 1;
            break;
        }
        logical = h.next;
    }
    if (logical != 0 && !damaged) {
        damaged = 1;
        if (!im->json)
            fprintf(im->out, "damage: the chain does not end (a cycle?)\n");
    }
    free(buf);
    list_end(im, first);
    return damaged;
}

/* ---- pictures -------------------------------------------------------------- */

#define SVG_COLS 64
#define SVG_CELL 10

static void svg_fill(unsigned type, uint64_t owner, char *out, size_t n)
{
    switch (type) {
    case RL__BLK_TYPE_MAP: snprintf(out, n, "#34495e"); return;
    case RL__BLK_TYPE_FREELIST: snprintf(out, n, "#7f8c8d"); return;
    case RL__BLK_TYPE_USER + 0: snprintf(out, n, "#8e44ad"); return;
    case RL__BLK_TYPE_USER + 1: snprintf(out, n, "#2c3e50"); return;
    default:
        /* Data: a hue per owner, lighter for B+tree nodes than for chains. */
        snprintf(out, n, "hsl(%u,65%%,%u%%)", (unsigned)((owner * 137) % 360),
                 type == RL__BLK_TYPE_USER + 4 ? 55u : 38u);
    }
}

int rdump_svg(image *im, FILE *svg)
{
    uint64_t n = im->header_ok ? file_blocks(im) : 0, rows = (n + SVG_COLS - 1) / SVG_COLS;
    uint8_t *is_free = calloc(n ? n : 1, 1), *buf = im->header_ok ? malloc(block_size(im)) : NULL;
    int damaged = 0;
    if (!is_free || !buf) {
        free(is_free);
        free(buf);
        return 1;
    }
    damaged |= freelist_each(im, 0, is_free);
    fprintf(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%llu\" "
                 "font-family=\"sans-serif\" font-size=\"11\">\n",
            SVG_COLS * SVG_CELL + 200, (unsigned long long)(rows * SVG_CELL + 20));
    fprintf(svg, "<text x=\"0\" y=\"12\">%llu blocks of %u bytes; txn %llu</text>\n",
            (unsigned long long)n, im->h.block_size,
            im->walk >= 0 ? (unsigned long long)im->slot[im->walk].txn : 0ULL);
    for (uint64_t b = 0; b < n; b++) {
        rl__blk_bhdr h;
        rl__err why = {0};
        char fill[32], title[320];
        int ok = b >= first_block(im) && read_block(im, b, buf, &h, &why);
        if (b < first_block(im)) {
            snprintf(fill, sizeof fill, "#000");
            snprintf(title, sizeof title, "block %llu: root area", (unsigned long long)b);
        } else if (is_free[b] == BLOCK_FREE) {
            snprintf(fill, sizeof fill, "#e5e5e5");
            snprintf(title, sizeof title, "block %llu: free", (unsigned long long)b);
        } else if (!ok) {
            snprintf(fill, sizeof fill, "#e74c3c");
            snprintf(title, sizeof title, "block %llu: %s", (unsigned long long)b, why.msg);
            damaged = 1;
        } else {
            svg_fill(h.type, h.owner, fill, sizeof fill);
            snprintf(title, sizeof title, "block %llu: %s, logical %llu, owner %llu, txn %llu, "
                                          "%u bytes used",
                     (unsigned long long)b, rdump_type_name(h.type), (unsigned long long)h.logical,
                     (unsigned long long)h.owner, (unsigned long long)h.txn, h.used);
        }
        fprintf(svg, "<rect x=\"%llu\" y=\"%llu\" width=\"%d\" height=\"%d\" fill=\"%s\">"
                     "<title>%s</title></rect>\n",
                (unsigned long long)(b % SVG_COLS * SVG_CELL),
                (unsigned long long)(20 + b / SVG_COLS * SVG_CELL), SVG_CELL - 1, SVG_CELL - 1,
                fill, title);
    }
    {
        static const char *const legend[][2] = {
            {"#000", "root area"},  {"#34495e", "block map"}, {"#7f8c8d", "freelist"},
            {"#8e44ad", "schema"},  {"#2c3e50", "table state"},
            {"hsl(200,65%,55%)", "B+tree node (hue: owner)"},
            {"hsl(200,65%,38%)", "chain block (hue: owner)"},
            {"#e5e5e5", "free"},    {"#e74c3c", "unreadable"}};
        for (unsigned i = 0; i < sizeof legend / sizeof legend[0]; i++)
            fprintf(svg, "<rect x=\"%d\" y=\"%u\" width=\"9\" height=\"9\" fill=\"%s\"/>"
                         "<text x=\"%d\" y=\"%u\">%s</text>\n",
                    SVG_COLS * SVG_CELL + 10, 20 + 14 * i, legend[i][0], SVG_COLS * SVG_CELL + 24,
                    29 + 14 * i, legend[i][1]);
    }
    fprintf(svg, "</svg>\n");
    free(is_free);
    free(buf);
    return damaged;
}

typedef struct dot_walk {
    uint8_t *buf;
} dot_walk;

static void dot_one(image *im, uint64_t logical, uint64_t phys, void *arg)
{
    dot_walk *d = arg;
    rl__blk_bhdr h;
    if (!read_block(im, phys, d->buf, &h, NULL) || h.logical != logical) {
        fprintf(im->out, "  L%llu [label=\"logical %llu\\nblock %llu\\nunreadable\", "
                         "color=red];\n",
                (unsigned long long)logical, (unsigned long long)logical,
                (unsigned long long)phys);
        return;
    }
    fprintf(im->out, "  subgraph cluster_%llu { label=\"owner %llu\"; L%llu [label=\"%s %llu\\n"
                     "block %llu\"]; }\n",
            (unsigned long long)h.owner, (unsigned long long)h.owner, (unsigned long long)logical,
            rdump_type_name(h.type), (unsigned long long)logical, (unsigned long long)phys);
    if (h.next && h.type != RL__BLK_TYPE_MAP && h.type != RL__BLK_TYPE_FREELIST)
        fprintf(im->out, "  L%llu -> L%llu;\n", (unsigned long long)logical,
                (unsigned long long)h.next);
}

int rdump_dot(image *im)
{
    dot_walk d = {NULL};
    int damaged = 1;
    fprintf(im->out, "digraph relatable {\n  node [shape=box, fontsize=10];\n");
    if (im->walk >= 0 && (d.buf = malloc(block_size(im))) != NULL)
        damaged = map_each(im, dot_one, &d, NULL);
    fprintf(im->out, "}\n");
    free(d.buf);
    return damaged;
}
