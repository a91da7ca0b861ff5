/*
** fuzz/fuzz_open.c: any bytes as a database file. Open it, read every
** chain that can be reached, change some, commit, reopen and read again.
** Whatever the bytes, every call must return a code: no crash, no hang,
** no leak, no sanitizer report.
*/
#include <stdlib.h>
#include <string.h>

#include "blocks/blocks.h"
#include "fuzz/memio.h"

#define MAX_READ 65536

static void read_all(rl__blk_db *db)
{
    static uint8_t buf[MAX_READ];
    rl__blk_txn *t;
    if (rl__blk_begin(db, 0, &t) != RL_OK)
        return;
    for (uint64_t head = 1; head <= 64; head++) {
        uint64_t len = 0;
        if (rl__blk_chain_length(t, head, &len) != RL_OK)
            continue;
        rl__blk_chain_read(t, head, 0, buf, len < MAX_READ ? len : MAX_READ);
        if (len > 10)
            rl__blk_chain_read(t, head, len - 10, buf, 10);
    }
    rl__blk_rollback(t);
}

static void change_some(rl__blk_db *db, const uint8_t *data, size_t size)
{
    rl__blk_txn *t;
    uint64_t head;
    if (rl__blk_begin(db, 1, &t) != RL_OK)
        return;
    if (rl__blk_chain_create(t, RL__BLK_TYPE_CHAIN, &head) == RL_OK)
        rl__blk_chain_append(t, head, data, size < 5000 ? size : 5000);
    for (uint64_t h = 1; h <= 8; h++) {
        uint64_t len = 0;
        if (rl__blk_chain_length(t, h, &len) != RL_OK)
            continue;
        if (h % 3 == 0)
            rl__blk_chain_free(t, h);
        else if (h % 3 == 1)
            rl__blk_chain_truncate(t, h, len / 2);
        else
            rl__blk_chain_write(t, h, len / 3, data, size < 700 ? size : 700);
    }
    rl__blk_meta_set(t, 1, size);
    rl__blk_commit(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memimage img = {0};
    rl__blk_options o;
    rl__blk_db *db;
    rl__err err;
    if (size > (1u << 20))
        return 0;
    img.data = malloc(size + 1);
    if (!img.data)
        return 0;
    memcpy(img.data, data, size);
    img.size = img.cap = size;
    memset(&o, 0, sizeof o);
    o.io_open = memio_open;
    o.io_arg = &img;
    o.cache_bytes = 64 * 1024;
    if (rl__blk_open("fuzz.rdb", &o, &db, &err) == RL_OK) {
        read_all(db);
        change_some(db, data, size);
        rl__blk_close(db);
        if (rl__blk_open("fuzz.rdb", &o, &db, &err) == RL_OK) {
            read_all(db);
            rl__blk_close(db);
        }
    }
    memimage_free(&img);
    return 0;
}
