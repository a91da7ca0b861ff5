/*
** blocks/block.c: single blocks, for structures that link blocks their own
** way (B+tree nodes): allocate one, reach its payload for reading or
** writing, free it.
**
** A single block is a one-block chain without a chain header: its logical
** number is its own; its owner is the first block of the structure it
** belongs to (a B+tree's root), or itself; its next link belongs to that
** structure (a B+tree links its leaves with it).
** A reference pins the block's page in the cache, so the pointer in it
** stays valid after the call returns, until rl__blk_block_put. Write
** references are copy-on-write like everything else (INV 1).
** Invariants:
**   1. At most a handful of references are held at once and all are put
**      back before commit or rollback.
**   2. Payload bytes past `used` are zero in a new block.
*/
#include "blk_int.h"

/* Decode p's header into h and check it is single block logical's. */
static int check_single(rl__blk_txn *t, rl__blk_page *p, uint64_t logical, rl__blk_bhdr *h)
{
    rl__fmt_bhdr_decode(p->buf, h);
    if (h->logical != logical || h->owner == 0 || h->owner >= t->root.logical_limit ||
        h->next >= t->root.logical_limit ||
        h->type < RL__BLK_TYPE_CHAIN || h->txn > t->root.txn)
        return RL__CORRUPT(&t->err, "block %llu (logical %llu) is not a single block",
                           (unsigned long long)p->phys, (unsigned long long)logical);
    return RL_OK;
}

/* The pinned page of single block logical, checked; its physical number
 * in *phys and its header in *h. Nothing stays pinned on failure. */
static int load_single(rl__blk_txn *t, uint64_t logical, uint64_t *phys, rl__blk_page **p,
                       rl__blk_bhdr *h)
{
    int rc = rl__map_lookup(t, logical, phys);
    if (rc == RL_OK)
        rc = rl__cache_get_once(t, *phys, p);
    if (rc != RL_OK)
        return rc;
    rc = check_single(t, *p, logical, h);
    if (rc != RL_OK)
        rl__cache_unpin(*p);
    return rc;
}

/* A reference to page p of single block logical, whose header is h (a
 * copy made on write keeps owner, type, next and used). */
static void fill_ref(rl__blk_txn *t, rl__blk_page *p, uint64_t logical, int write,
                     const rl__blk_bhdr *h, rl__blk_ref *ref)
{
    ref->page_ = p;
    ref->logical = logical;
    ref->owner = h->owner;
    ref->type = h->type;
    ref->next = h->next;
    ref->used = h->used;
    ref->cap = t->db->payload;
    ref->data = p->buf + RL__HDR_SIZE;
    ref->wdata = write ? p->buf + RL__HDR_SIZE : NULL;
}

int rl__blk_new(rl__blk_txn *t, uint8_t type, uint64_t owner, uint64_t *logical,
                rl__blk_page **out)
{
    rl__blk_page *p;
    rl__blk_bhdr h;
    uint64_t phys;
    int rc = rl__map_alloc_logical(t, logical);
    if (rc == RL_OK)
        rc = rl__free_alloc_hot(t, &phys);
    if (rc == RL_OK)
        rc = rl__cache_fresh(t, phys, &p);
    if (rc != RL_OK)
        return rc;
    memset(&h, 0, sizeof h);
    h.type = type;
    h.self = phys;
    h.logical = *logical;
    h.txn = t->root.txn;
    h.owner = owner ? owner : *logical;
    rl__fmt_bhdr_encode(p->buf, &h);
    rc = rl__map_set(t, *logical, phys);
    if (rc != RL_OK) {
        rl__cache_unpin(p);
        return rc;
    }
    *out = p;
    return RL_OK;
}

static int block_alloc(rl__blk_txn *t, uint8_t type, uint64_t owner, uint64_t *logical,
                       rl__blk_ref *ref)
{
    rl__blk_page *p;
    rl__blk_bhdr h;
    int rc = rl__blk_new(t, type, owner, logical, &p);
    if (rc == RL_OK) {
        rl__fmt_bhdr_decode(p->buf, &h);
        fill_ref(t, p, *logical, 1, &h, ref);
    }
    return rc;
}

/* Make read reference ref a write one: a copy on write when the block is
 * not this transaction's yet; ref is unchanged on failure. */
static int block_upgrade(rl__blk_txn *t, rl__blk_ref *ref)
{
    rl__blk_page *old = ref->page_, *p;
    uint64_t np;
    int rc = rl__blk_writable_page(t, old, 1, &np, &p);
    if (rc != RL_OK)
        return rc;
    if (np != old->phys && (rc = rl__map_set(t, ref->logical, np)) != RL_OK) {
        rl__cache_unpin(p);
        return rc;
    }
    rl__cache_unpin(old); /* the reference's pin (a change in place pinned it again) */
    ref->page_ = p;
    ref->data = p->buf + RL__HDR_SIZE;
    ref->wdata = p->buf + RL__HDR_SIZE;
    return RL_OK;
}

static int block_get(rl__blk_txn *t, uint64_t logical, int write, rl__blk_ref *ref)
{
    rl__blk_page *p;
    rl__blk_bhdr h;
    uint64_t phys;
    int rc = load_single(t, logical, &phys, &p, &h);
    if (rc != RL_OK)
        return rc;
    fill_ref(t, p, logical, 0, &h, ref);
    if (write && (rc = block_upgrade(t, ref)) != RL_OK) {
        rl__cache_unpin(p);
        ref->page_ = NULL;
        ref->data = NULL;
    }
    return rc;
}

static int block_free(rl__blk_txn *t, uint64_t logical)
{
    rl__blk_page *p;
    rl__blk_bhdr h;
    uint64_t phys;
    int rc = load_single(t, logical, &phys, &p, &h);
    if (rc != RL_OK)
        return rc;
    rc = rl__free_page(t, p, h.txn);
    if (rc == RL_OK)
        rc = rl__map_free_logical(t, logical);
    return rc;
}

/* ---- entry points ------------------------------------------------------- */

int rl__blk_block_alloc(rl__blk_txn *t, uint8_t type, uint64_t owner, uint64_t *logical,
                        rl__blk_ref *ref)
{
    int rc;
    if (!t)
        return RL_MISUSE;
    if (!t->write)
        return RL__FAIL(&t->err, RL_READONLY, "block allocation in a read transaction");
    if (type < RL__BLK_TYPE_CHAIN)
        return RL__FAIL(&t->err, RL_INVALID, "block type %u is reserved", type);
    pthread_mutex_lock(&t->db->mu);
    rc = block_alloc(t, type, owner, logical, ref);
    pthread_mutex_unlock(&t->db->mu);
    return rc;
}

int rl__blk_block_get(rl__blk_txn *t, uint64_t logical, int write, rl__blk_ref *ref)
{
    int rc;
    if (!t)
        return RL_MISUSE;
    if (write && !t->write)
        return RL__FAIL(&t->err, RL_READONLY, "block write in a read transaction");
    if (!t->write) { /* without db->mu while the cache has what it needs (cache.c) */
        t->unlocked = 1;
        rc = block_get(t, logical, 0, ref);
        t->unlocked = 0;
        if (rc != RL__NEED_LOCK)
            return rc;
    }
    pthread_mutex_lock(&t->db->mu);
    rc = block_get(t, logical, write, ref);
    pthread_mutex_unlock(&t->db->mu);
    return rc;
}

int rl__blk_block_upgrade(rl__blk_txn *t, rl__blk_ref *ref)
{
    int rc;
    if (!t || !ref || !ref->page_)
        return RL_MISUSE;
    if (ref->wdata)
        return RL_OK;
    if (!t->write)
        return RL__FAIL(&t->err, RL_READONLY, "block write in a read transaction");
    pthread_mutex_lock(&t->db->mu);
    rc = block_upgrade(t, ref);
    pthread_mutex_unlock(&t->db->mu);
    return rc;
}

void rl__blk_block_set_used(rl__blk_ref *ref, uint32_t used)
{
    rl__blk_page *p = ref->page_;
    rl__fmt_bhdr_set_used(p->buf, used);
    ref->used = used;
}

void rl__blk_block_set_next(rl__blk_ref *ref, uint64_t next)
{
    rl__blk_page *p = ref->page_;
    rl__fmt_bhdr_set_next(p->buf, next);
    ref->next = next;
}

void rl__blk_block_put(rl__blk_ref *ref)
{
    if (!ref || !ref->page_)
        return;
    rl__cache_unpin(ref->page_); /* atomic: no lock (cache.c) */
    ref->page_ = NULL;
    ref->data = ref->wdata = NULL;
}

int rl__blk_block_free(rl__blk_txn *t, uint64_t logical)
{
    int rc;
    if (!t)
        return RL_MISUSE;
    if (!t->write)
        return RL__FAIL(&t->err, RL_READONLY, "block free in a read transaction");
    pthread_mutex_lock(&t->db->mu);
    rc = block_free(t, logical);
    pthread_mutex_unlock(&t->db->mu);
    return rc;
}
