/*
** tests/simio.h: a simulated disk for crash and fault tests. An rl__io over
** memory that keeps what is durable (synced) apart from what was written
** since the last sync, and can be told to "crash" at the Nth write or sync
** or to fail it with an errno. After a crash, simdisk_recover builds the
** file a reboot would find, under a policy for the unsynced writes.
*/
#ifndef RL_SIMIO_H
#define RL_SIMIO_H

#include <stddef.h>
#include <stdint.h>

#include "blocks/blocks.h"

/* What happens to writes that were not synced when the crash came. */
enum { SIM_LOSE_ALL, SIM_KEEP_ALL, SIM_TEAR_LAST, SIM_RANDOM_SECTORS, SIM_NPOLICIES };

typedef struct simwrite {
    uint64_t off;
    size_t n;
    uint8_t *data;
} simwrite;

typedef struct simdisk {
    uint8_t *durable;   /* the file as synced */
    size_t dsize, dcap;
    uint8_t *live;      /* the file as the program sees it */
    size_t lsize, lcap;
    simwrite *pending;  /* writes since the last sync, in order */
    size_t npending, cappending;
    uint64_t dtrunc;    /* size set by a truncate since the last sync, or UINT64_MAX */
    long ops;           /* writes and syncs so far */
    long crash_at;      /* crash when ops reaches this (0: never) */
    long fail_at;       /* fail this op with fail_errno (0: never) */
    int fail_errno;
    int fail_sticky;    /* keep failing after fail_at */
    int crashed;
    char trace_what[64]; /* the operation being counted (SIMIO_TRACE=1) */
} simdisk;

void simdisk_init(simdisk *d);
void simdisk_free(simdisk *d);
/* An rl__io_open_fn over d (the path is ignored; a new file is empty). */
int simdisk_open(void *arg, const char *path, int flags, int mode, rl__io **out);
/* Replace d's contents by what survives the crash under policy (seed for
 * the random policies); d is then a fresh, uncrashed disk. */
void simdisk_recover(simdisk *d, int policy, uint64_t seed);

#endif
