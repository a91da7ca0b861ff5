/*
** fuzz/fuzz_block.c: the decoders of single on-disk structures (file
** header, root slot, block header and block check) on any bytes.
*/
#include <string.h>

#include "blocks/blk_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t region[RL__MAX_BLOCK];
    rl__blk_listed list[RL__SLOT_LIST_CAP];
    rl__blk_header h;
    rl__blk_root r;
    rl__blk_bhdr b;
    rl__err err;
    uint32_t n, bs;
    if (size < 4)
        return 0;
    bs = RL__MIN_BLOCK << (data[0] % 8); /* 512 .. 65536 */
    memset(region, 0, sizeof region);
    memcpy(region, data + 1, size - 1 < sizeof region ? size - 1 : sizeof region);
    rl__fmt_header_decode(region, size - 1, &h, &err);
    rl__fmt_slot_decode(region, bs, &r, list, &n, &err);
    rl__fmt_bhdr_decode(region, &b);
    rl__fmt_block_check(region, bs, data[1], &err);
    return 0;
}
