/*
** tools/rdump/rdump.h: what rdump's parts share. raw.c decodes the file's
** bytes itself (header, slots, blocks, the map, the freelist, chains) and
** so works on damaged files; tools/rdump.c holds main and the views that
** go through the public API. Every raw view range-checks a link before it
** follows one and bounds every walk by the file's block count, so no file
** makes it crash or loop (fuzz/fuzz_rdump.c holds it to that).
*/
#ifndef RDUMP_H
#define RDUMP_H

#include <stdint.h>
#include <stdio.h>

#include "blocks/blk_int.h"
#include "relatable.h"

typedef struct image {
    FILE *f;   /* the file, read with fseeko/fread (or fmemopen when fuzzing) */
    FILE *out; /* where views print */
    int json;  /* print JSON instead of text */
    uint64_t size;
    rl__blk_header h;
    int header_ok;
    char header_why[256];
    rl__blk_root slot[RL__NSLOTS];
    int slot_ok[RL__NSLOTS];
    char slot_why[RL__NSLOTS][256];
    int slot_empty[RL__NSLOTS]; /* all zero: never written */
    int newest; /* the valid slot with the highest txn; -1: none */
    int walk;   /* the slot the map/freelist/chain views walk; -1: none */
    int roles_known; /* the next two were counted (through the API) */
    uint64_t btree_tables, btree_indexes; /* B+tree nodes of tables, of indexes */
} image;

/* Read the header and the root slots of f (not closed here); 0 if f is unusable. */
int rdump_load(image *im, FILE *f, FILE *out, int json);
/* Walk the slot whose txn is txn (the one rl_open chose), if valid. */
void rdump_walk_txn(image *im, uint64_t txn);

/* Raw views. The summary leaves its JSON object open (main adds the
 * tables); the others are complete. Each returns 1 if it met damage. */
int rdump_summary(image *im);
int rdump_blocks(image *im);
int rdump_map(image *im);
int rdump_freelist(image *im);
int rdump_chain(image *im, uint64_t logical);
int rdump_svg(image *im, FILE *svg);
int rdump_dot(image *im);

/* Space views (space.c), through rl_space_of: every table and index. */
typedef struct rdump_space rdump_space;
/* NULL if db cannot be read or memory is short. */
rdump_space *rdump_space_load(rl_db *db);
void rdump_space_free(rdump_space *s);
/* Set im's B+tree split (tables, indexes) for the summary. */
void rdump_space_roles(const rdump_space *s, image *im);
/* The summary's table lines (JSON: the list's items); --indexes; --space.
 * Each returns 1 if a tree could not be walked. */
int rdump_space_tables(const rdump_space *s, FILE *out, int json);
int rdump_space_indexes(const rdump_space *s, FILE *out, int json);
int rdump_space_all(const rdump_space *s, FILE *out, int json);

/* JSON helpers. */
void rdump_json_str(FILE *out, const char *s, size_t n);

#endif
