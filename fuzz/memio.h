/*
** fuzz/memio.h: an rl__io over a growable memory buffer, so fuzz targets
** can hand the block layer any bytes as "the file" without touching disk.
** Single-threaded; locks always succeed.
*/
#ifndef RL_MEMIO_H
#define RL_MEMIO_H

#include <stddef.h>
#include <stdint.h>

#include "blocks/blocks.h"

typedef struct memimage {
    uint8_t *data;
    size_t size, cap;
} memimage;

/* An rl__io_open_fn: arg is a memimage*, path is ignored. */
int memio_open(void *arg, const char *path, int flags, int mode, rl__io **out);
void memimage_free(memimage *m);

#endif
