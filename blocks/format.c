/*
** blocks/format.c: encoding and checking of the on-disk structures of the
** block layer: the file header, the root area's layout (four root slots,
** each followed by its commit area), the slots, and the block header.
** docs/format.md describes the same bytes as OFFSET / SIZE tables; the
** two must always agree.
**
** Every decoder treats its input as hostile: it checks magic, CRC and the
** range of every field before anyone uses it, and reports RL_CORRUPT with
** what and where. Nothing here allocates or does I/O.
*/
#include <stdio.h>

#include "blk_int.h"

/* Fuzz builds accept any checksum so that mutated bytes reach the checks
 * behind it (the convention of libFuzzer and OSS-Fuzz). Never defined in
 * a real build. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define CRC_DIFFERS(stored, computed) ((void)(stored), (void)(computed), 0)
#else
#define CRC_DIFFERS(stored, computed) ((stored) != (computed))
#endif

/* Header field offsets (region 0). */
enum { H_MAGIC = 0, H_VERSION = 16, H_BSIZE = 20, H_FLAGS = 24,
       H_AREA = 28, H_FILEID = 32, H_CREATED = 48, H_CRC = 56, H_END = 60 };

/* Root slot field offsets (regions 1 and 2). */
enum { S_MAGIC = 0, S_TXN = 8, S_BLOCKS = 16, S_MAPROOT = 24, S_DEPTH = 32,
       S_FLAGS = 36, S_LOGLIMIT = 40, S_FREELOG = 48, S_FREEHEAD = 56,
       S_FREECOUNT = 64, S_META = 72, S_NLIST = 136, S_NDELTA = 140, S_AREAS = 144 };

/* Block header field offsets (block numbers are 48-bit). */
enum { B_TYPE = 0, B_FLAGS = 1, B_USED = 2, B_CRC = 4, B_TXN = 8, B_SELF = 16,
       B_LOGICAL = 22, B_NEXT = 28, B_OWNER = 34, B_END = 40 };

int rl__fmt_block_size_ok(uint32_t bs)
{
    return bs >= RL__MIN_BLOCK && bs <= RL__MAX_BLOCK && (bs & (bs - 1)) == 0;
}

uint32_t rl__fmt_region(uint32_t bs)
{
    return bs > RL__REGION ? bs : RL__REGION;
}

uint32_t rl__fmt_area_blocks(uint32_t bs)
{
    uint32_t n = 65536u / bs; /* 16 blocks up to 4 KiB, at least 4 */
    return n > 16 ? 16 : n < 4 ? 4 : n;
}

/* Bytes from one slot to the next: its region and its area. */
static uint64_t slot_stride(uint32_t bs)
{
    return rl__fmt_region(bs) + (uint64_t)rl__fmt_area_blocks(bs) * bs;
}

uint64_t rl__fmt_slot_offset(uint32_t bs, unsigned slot)
{
    return rl__fmt_region(bs) + slot * slot_stride(bs);
}

uint64_t rl__fmt_area_first(uint32_t bs, unsigned area)
{
    return (rl__fmt_slot_offset(bs, area) + rl__fmt_region(bs)) / bs;
}

int rl__fmt_area_of(uint32_t bs, uint64_t phys, uint32_t *index)
{
    uint64_t first = rl__fmt_area_first(bs, 0), per = slot_stride(bs) / bs, k;
    if (phys < first || phys >= rl__fmt_first_block(bs))
        return -1;
    k = (phys - first) % per;
    if (k >= rl__fmt_area_blocks(bs))
        return -1; /* a slot region of a large block size */
    if (index)
        *index = (uint32_t)k;
    return (int)((phys - first) / per);
}

uint64_t rl__fmt_first_block(uint32_t bs)
{
    return (rl__fmt_region(bs) + RL__NSLOTS * slot_stride(bs)) / bs;
}

/* A block number a root may reach: in a commit area or past the root area. */
int rl__fmt_reachable(uint32_t bs, uint64_t phys, uint64_t block_count)
{
    return (phys >= rl__fmt_first_block(bs) && phys < block_count) ||
           rl__fmt_area_of(bs, phys, NULL) >= 0;
}

void rl__fmt_header_encode(uint8_t *region, const rl__blk_header *h)
{
    memset(region, 0, RL__REGION);
    memcpy(region + H_MAGIC, RL__MAGIC, RL__MAGIC_SIZE);
    rl__put32(region + H_VERSION, h->version);
    rl__put32(region + H_BSIZE, h->block_size);
    rl__put32(region + H_FLAGS, h->flags);
    rl__put32(region + H_AREA, (uint32_t)(rl__fmt_first_block(h->block_size) * h->block_size));
    memcpy(region + H_FILEID, h->file_id, 16);
    rl__put64(region + H_CREATED, h->created);
    rl__put32(region + H_CRC, rl__crc32c(0, region, H_CRC));
}

int rl__fmt_header_decode(const uint8_t *region, size_t n, rl__blk_header *h,
                          rl__err *err)
{
    if (n < RL__MAGIC_SIZE || memcmp(region + H_MAGIC, RL__MAGIC, RL__MAGIC_SIZE) != 0)
        return RL__CORRUPT(err, "not a relatable database (bad magic at offset 0)");
    if (n < H_END)
        return RL__CORRUPT(err, "file is %zu bytes, too short for a relatable header", n);
    if (CRC_DIFFERS(rl__get32(region + H_CRC), rl__crc32c(0, region, H_CRC)))
        return RL__CORRUPT(err, "file header checksum mismatch (offset %d)", H_CRC);
    h->version = rl__get32(region + H_VERSION);
    if (h->version != RL__FORMAT_VERSION)
        return RL__CORRUPT(err, "unsupported format version %u (this library reads %u)",
                           h->version, RL__FORMAT_VERSION);
    h->block_size = rl__get32(region + H_BSIZE);
    if (!rl__fmt_block_size_ok(h->block_size))
        return RL__CORRUPT(err, "invalid block size %u in file header", h->block_size);
    if (rl__get32(region + H_AREA) != rl__fmt_first_block(h->block_size) * h->block_size)
        return RL__CORRUPT(err, "invalid root area size %u", rl__get32(region + H_AREA));
    h->flags = rl__get32(region + H_FLAGS);
    memcpy(h->file_id, region + H_FILEID, 16);
    h->created = rl__get64(region + H_CREATED);
    return RL_OK;
}

/* Where a slot's map delta starts, after a commit list of n entries. */
static uint32_t delta_off(uint32_t n)
{
    return RL__SLOT_LIST_OFF + RL__SLOT_LIST_ENTRY * n;
}

void rl__fmt_slot_encode(uint8_t *region, const rl__blk_root *r,
                         const rl__blk_listed *list, uint32_t n)
{
    memset(region, 0, RL__REGION);
    memcpy(region + S_MAGIC, RL__SLOT_MAGIC, 8);
    rl__put64(region + S_TXN, r->txn);
    rl__put64(region + S_BLOCKS, r->block_count);
    rl__put64(region + S_MAPROOT, r->map_root);
    rl__put32(region + S_DEPTH, r->map_depth);
    rl__put32(region + S_FLAGS, r->flags);
    rl__put64(region + S_LOGLIMIT, r->logical_limit);
    rl__put64(region + S_FREELOG, r->free_logical);
    rl__put64(region + S_FREEHEAD, r->freelist_head);
    rl__put64(region + S_FREECOUNT, r->free_count);
    for (unsigned i = 0; i < RL__BLK_META_WORDS; i++)
        rl__put64(region + S_META + 8 * i, r->meta[i]);
    rl__put32(region + S_NLIST, n);
    rl__put32(region + S_NDELTA, r->ndelta);
    for (unsigned i = 0; i < RL__NSLOTS; i++)
        region[S_AREAS + i] = r->area_used[i];
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *e = region + RL__SLOT_LIST_OFF + RL__SLOT_LIST_ENTRY * i;
        rl__put64(e, list[i].phys);
        rl__put32(e + 8, list[i].crc);
    }
    for (uint32_t i = 0; i < r->ndelta; i++) { /* after the list */
        uint8_t *e = region + delta_off(n) + RL__SLOT_DELTA_ENTRY * i;
        rl__put48(e, r->delta[i].logical);
        rl__put48(e + 6, r->delta[i].phys);
    }
    rl__put32(region + RL__SLOT_CRC_OFF, rl__crc32c(0, region, RL__SLOT_CRC_OFF));
}

/* Range checks of a decoded slot against the block size. */
static int slot_check(const rl__blk_root *r, uint32_t bs, uint32_t n, rl__err *err)
{
    uint64_t first = rl__fmt_first_block(bs);
    if (r->txn == 0)
        return RL__CORRUPT(err, "root slot has transaction id 0");
    if (r->block_count < first || r->block_count > (UINT64_MAX / bs))
        return RL__CORRUPT(err, "root slot %llu: block count %llu out of range",
                           (unsigned long long)r->txn, (unsigned long long)r->block_count);
    if ((r->map_root != 0 && (r->map_root < first || r->map_root >= r->block_count)) ||
        (r->freelist_head != 0 && !rl__fmt_reachable(bs, r->freelist_head, r->block_count)))
        return RL__CORRUPT(err, "root slot %llu: link out of range",
                           (unsigned long long)r->txn);
    if (r->free_count > r->block_count)
        return RL__CORRUPT(err, "root slot %llu: %llu free blocks of %llu",
                           (unsigned long long)r->txn, (unsigned long long)r->free_count,
                           (unsigned long long)r->block_count);
    for (unsigned i = 0; i < RL__NSLOTS; i++)
        if (r->area_used[i] > rl__fmt_area_blocks(bs))
            return RL__CORRUPT(err, "root slot %llu: commit area %u uses %u blocks (at most %u)",
                               (unsigned long long)r->txn, i, r->area_used[i],
                               rl__fmt_area_blocks(bs));
    if (r->map_depth > RL__MAX_MAP_DEPTH || (r->map_depth == 0) != (r->map_root == 0))
        return RL__CORRUPT(err, "root slot %llu: invalid map depth %u",
                           (unsigned long long)r->txn, r->map_depth);
    if (r->logical_limit == 0 || r->free_logical >= r->logical_limit)
        return RL__CORRUPT(err, "root slot %llu: invalid logical numbers",
                           (unsigned long long)r->txn);
    if (n > RL__SLOT_LIST_CAP || (n > 0) != ((r->flags & RL__SLOT_LISTED) != 0))
        return RL__CORRUPT(err, "root slot %llu: invalid commit list of %u entries",
                           (unsigned long long)r->txn, n);
    if (r->ndelta > RL__SLOT_DELTA_CAP)
        return RL__CORRUPT(err, "root slot %llu: %u map changes (at most %u)",
                           (unsigned long long)r->txn, r->ndelta, RL__SLOT_DELTA_CAP);
    return RL_OK;
}

int rl__fmt_slot_decode(const uint8_t *region, uint32_t bs, rl__blk_root *r,
                        rl__blk_listed *list, uint32_t *n, rl__err *err)
{
    uint32_t count;
    if (memcmp(region + S_MAGIC, RL__SLOT_MAGIC, 8) != 0)
        return RL__CORRUPT(err, "root slot has no slot magic");
    if (CRC_DIFFERS(rl__get32(region + RL__SLOT_CRC_OFF), rl__crc32c(0, region, RL__SLOT_CRC_OFF)))
        return RL__CORRUPT(err, "root slot checksum mismatch");
    memset(r, 0, sizeof *r);
    r->txn = rl__get64(region + S_TXN);
    r->block_count = rl__get64(region + S_BLOCKS);
    r->map_root = rl__get64(region + S_MAPROOT);
    r->map_depth = rl__get32(region + S_DEPTH);
    r->flags = rl__get32(region + S_FLAGS);
    r->logical_limit = rl__get64(region + S_LOGLIMIT);
    r->free_logical = rl__get64(region + S_FREELOG);
    r->freelist_head = rl__get64(region + S_FREEHEAD);
    r->free_count = rl__get64(region + S_FREECOUNT);
    for (unsigned i = 0; i < RL__BLK_META_WORDS; i++)
        r->meta[i] = rl__get64(region + S_META + 8 * i);
    count = rl__get32(region + S_NLIST);
    r->ndelta = rl__get32(region + S_NDELTA);
    for (unsigned i = 0; i < RL__NSLOTS; i++)
        r->area_used[i] = region[S_AREAS + i];
    if (slot_check(r, bs, count, err) != RL_OK)
        return RL_CORRUPT;
    for (uint32_t i = 0; i < r->ndelta; i++) {
        const uint8_t *e = region + delta_off(count) + RL__SLOT_DELTA_ENTRY * i;
        r->delta[i].logical = rl__get48(e);
        r->delta[i].phys = rl__get48(e + 6);
        if (r->delta[i].logical == 0 || r->delta[i].logical >= r->logical_limit ||
            (i > 0 && r->delta[i].logical <= r->delta[i - 1].logical) ||
            !rl__fmt_reachable(bs, r->delta[i].phys, r->block_count))
            return RL__CORRUPT(err, "root slot %llu: map change %u out of range or order",
                               (unsigned long long)r->txn, i);
    }
    for (uint32_t i = 0; list && i < count; i++) {
        const uint8_t *e = region + RL__SLOT_LIST_OFF + RL__SLOT_LIST_ENTRY * i;
        list[i].phys = rl__get64(e);
        list[i].crc = rl__get32(e + 8);
    }
    if (n)
        *n = count;
    return RL_OK;
}

void rl__fmt_bhdr_encode(uint8_t *b, const rl__blk_bhdr *h)
{
    b[B_TYPE] = h->type;
    b[B_FLAGS] = h->flags;
    rl__put16(b + B_USED, (uint16_t)h->used);
    rl__put64(b + B_TXN, h->txn);
    rl__put48(b + B_SELF, h->self);
    rl__put48(b + B_LOGICAL, h->logical);
    rl__put48(b + B_NEXT, h->next);
    rl__put48(b + B_OWNER, h->owner);
}

void rl__fmt_bhdr_decode(const uint8_t *b, rl__blk_bhdr *h)
{
    h->type = b[B_TYPE];
    h->flags = b[B_FLAGS];
    h->used = rl__get16(b + B_USED);
    h->txn = rl__get64(b + B_TXN);
    h->self = rl__get48(b + B_SELF);
    h->logical = rl__get48(b + B_LOGICAL);
    h->next = rl__get48(b + B_NEXT);
    h->owner = rl__get48(b + B_OWNER);
}

void rl__fmt_bhdr_set_used(uint8_t *b, uint32_t used)
{
    rl__put16(b + B_USED, (uint16_t)used);
}

void rl__fmt_bhdr_set_next(uint8_t *b, uint64_t next)
{
    rl__put48(b + B_NEXT, next);
}

uint32_t rl__fmt_block_crc(const uint8_t *b, uint32_t bs)
{
    uint32_t crc = rl__crc32c(0, b, B_CRC);
    return rl__crc32c(crc, b + B_TXN, bs - B_TXN);
}

uint32_t rl__fmt_block_seal(uint8_t *b, uint32_t bs)
{
    uint32_t crc = rl__fmt_block_crc(b, bs);
    rl__put32(b + B_CRC, crc);
    return crc;
}

int rl__fmt_block_check(const uint8_t *b, uint32_t bs, uint64_t phys, rl__err *err)
{
    rl__blk_bhdr h;
    if (CRC_DIFFERS(rl__get32(b + B_CRC), rl__fmt_block_crc(b, bs)))
        return RL__CORRUPT(err, "block %llu: checksum mismatch", (unsigned long long)phys);
    rl__fmt_bhdr_decode(b, &h);
    if (h.self != phys)
        return RL__CORRUPT(err, "block %llu: header says it is block %llu",
                           (unsigned long long)phys, (unsigned long long)h.self);
    if (h.type == 0)
        return RL__CORRUPT(err, "block %llu: type 0", (unsigned long long)phys);
    if (h.used > bs - RL__HDR_SIZE)
        return RL__CORRUPT(err, "block %llu: %u bytes used of %u", (unsigned long long)phys,
                           h.used, bs - RL__HDR_SIZE);
    return RL_OK;
}

/* Freelist entry: the run's first block in the low 48 bits of the first
 * word, its length minus one in the high 16; then the freeing txn. */
void rl__fmt_free_encode(uint8_t *e, uint64_t phys, uint64_t count, uint64_t txn)
{
    rl__put64(e, phys | (count - 1) << 48);
    rl__put64(e + 8, txn);
}

void rl__fmt_free_decode(const uint8_t *e, uint64_t *phys, uint64_t *count, uint64_t *txn)
{
    uint64_t w = rl__get64(e);
    *phys = w & RL__MAX_BLOCKNO;
    *count = (w >> 48) + 1;
    *txn = rl__get64(e + 8);
}
