/*
** fuzz/mkcorpus.c: writes the seed corpus of fuzz_open: small valid
** database files of several block sizes, made by the block layer itself.
** Usage: mkcorpus DIR
*/
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blocks/blocks.h"

static int make(const char *dir, uint32_t bs, size_t bytes, int chains)
{
    rl__blk_options o;
    rl__blk_db *db;
    rl__blk_txn *t;
    rl__err err;
    char path[512];
    uint8_t buf[3000];
    snprintf(path, sizeof path, "%s/seed-%u-%zu-%d", dir, bs, bytes, chains);
    unlink(path);
    memset(&o, 0, sizeof o);
    o.flags = RL__BLK_CREATE | RL__BLK_EXCL;
    o.block_size = bs;
    if (rl__blk_open(path, &o, &db, &err) != RL_OK) {
        fprintf(stderr, "mkcorpus: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7);
    for (int c = 0; c < chains; c++) {
        uint64_t head;
        rl__blk_begin(db, 1, &t);
        rl__blk_chain_create(t, RL__BLK_TYPE_CHAIN, &head);
        for (size_t done = 0; done < bytes; done += sizeof buf)
            rl__blk_chain_append(t, head, buf, sizeof buf);
        rl__blk_commit(t);
    }
    rl__blk_close(db);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mkcorpus DIR\n");
        return 2;
    }
    return make(argv[1], 512, 3000, 2) | make(argv[1], 512, 12000, 3) |
           make(argv[1], 1024, 6000, 1) | make(argv[1], 4096, 9000, 2);
}
