/*
** fuzz/mkcorpus.c: writes the seed corpora: small valid database files of
** several block sizes made by the block layer (fuzz_open), and small
** relational databases made through the public API (fuzz_db). Each ends
** with a small commit, so its root slot carries a map delta.
** Usage: mkcorpus BLOCK-DIR DB-DIR
*/
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blocks/blocks.h"
#include "relatable.h"

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
        /* a small change after: its moved block goes into the map delta */
        rl__blk_begin(db, 1, &t);
        rl__blk_chain_write(t, head, 0, "changed", 7);
        rl__blk_commit(t);
    }
    rl__blk_close(db);
    return 0;
}

/* A small relational database for fuzz_db: related tables, an index,
 * large values, deleted rows. */
static int make_db(const char *dir, uint32_t bs)
{
    static const rl_column users[] = {{"name", RL_TTEXT, 0, RL_NOT_NULL, NULL, 0},
                                      {"email", RL_TCHAR, 20, RL_UNIQUE, NULL, 0}};
    static const rl_column tasks[] = {{"owner", RL_TINTEGER, 0, 0, "users", RL_FK_CASCADE},
                                      {"title", RL_TTEXT, 0, 0, NULL, 0},
                                      {"hours", RL_TREAL, 0, 0, NULL, 0},
                                      {"data", RL_TBLOB, 0, 0, NULL, 0}};
    char path[512], big[2000];
    rl_options o = {RL_OPEN_CREATE | RL_OPEN_EXCL, bs, RL_SYNC_OFF, 0, 0, 0};
    rl_db *db;
    rl_txn *t;
    snprintf(path, sizeof path, "%s/db-%u", dir, bs);
    unlink(path);
    memset(big, 'b', sizeof big);
    if (rl_open(path, &o, &db) != RL_OK || rl_begin(db, RL_WRITE, &t) != RL_OK) {
        fprintf(stderr, "mkcorpus: %s\n", rl_errmsg(db));
        return 1;
    }
    rl_create_table(t, "users", users, 2);
    rl_create_table(t, "tasks", tasks, 4);
    rl_create_index(t, "tasks_title", "tasks", (const char *[]){"title"}, 1, 0);
    for (int i = 0; i < 12; i++) {
        char email[20];
        snprintf(email, sizeof email, "u%d@x", i);
        rl_insert(t, "users", (rl_value[]){rl_null(), rl_text("user"), rl_text(email)}, 3, NULL);
    }
    for (int i = 0; i < 40; i++)
        rl_insert(t, "tasks", (rl_value[]){rl_null(), rl_int(1 + i % 12), rl_text("a task"),
                                           rl_real(i / 4.0),
                                           rl_blob(big, i % 5 == 0 ? sizeof big : (size_t)i)},
                  5, NULL);
    rl_delete(t, "tasks", 3);
    rl_delete(t, "users", 5);
    rl_commit(t);
    if (rl_begin(db, RL_WRITE, &t) == RL_OK) { /* moved blocks: a map delta */
        rl_delete(t, "tasks", 7);
        rl_commit(t);
    }
    rl_close(db);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: mkcorpus BLOCK-DIR DB-DIR\n");
        return 2;
    }
    return make(argv[1], 512, 3000, 2) | make(argv[1], 512, 12000, 3) |
           make(argv[1], 1024, 6000, 1) | make(argv[1], 4096, 9000, 2) | make_db(argv[2], 512) |
           make_db(argv[2], 1024);
}
