/*
** schema/catalog.c: table definitions. The catalog is stored whole in the
** schema chain (its head in meta word RL__META_SCHEMA) and read back into
** an rl__catalog, which is immutable once shared: a transaction that
** changes the schema works on a private copy and saves it.
**
** Catalog bytes (docs/format.md, "Catalog"):
**     magic u32 "RLCA", version u32 (1), table count u32, then per table:
**     name (u16 length + bytes), state block u64, user column count u16,
**     then per column: name, type u8, size u32, flags u8, references
**     (u16 length + bytes; 0 = none), on delete u8; then the index count
**     u16 and per index: name, unique u8, column count u16, the column
**     numbers u16 each, root u64.
** Names are 1..64 bytes of [A-Za-z0-9_], not starting with a digit, and
** compared without regard to ASCII case. Column 0 of every table is the
** implicit "id" INTEGER NOT NULL primary key; it is not stored.
*/
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "schema.h"

#define CAT_MAGIC 0x41434c52u /* "RLCA" */
#define CAT_VERSION 1u

static void index_clear(rl__index *ix)
{
    free(ix->name);
    free(ix->cols);
    free(ix->colnames);
    memset(ix, 0, sizeof *ix);
}

static void table_clear(rl__table *tb)
{
    for (int i = 0; i < tb->nindexes; i++)
        index_clear(&tb->indexes[i]);
    free(tb->indexes);
    for (int c = 0; tb->cols && c < tb->ncols; c++) { /* cols may be missing (no memory) */
        free((char *)tb->cols[c].name);
        free((char *)tb->cols[c].references);
    }
    free(tb->cols);
    free(tb->ref_table);
    free(tb->name);
    memset(tb, 0, sizeof *tb);
}

void rl__cat_free(rl__catalog *cat)
{
    if (!cat)
        return;
    for (int i = 0; i < cat->n; i++)
        table_clear(&cat->tables[i]);
    free(cat->tables);
    free(cat);
}

int rl__cat_find(const rl__catalog *cat, const char *name)
{
    for (int i = 0; name && i < cat->n; i++)
        if (strcasecmp(cat->tables[i].name, name) == 0)
            return i;
    return -1;
}

static int name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > RL__MAX_NAME || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    return 1;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Point every foreign key at its table's current index. */
static void resolve_refs(rl__catalog *cat)
{
    for (int i = 0; i < cat->n; i++)
        for (int c = 0; c < cat->tables[i].ncols; c++)
            cat->tables[i].ref_table[c] = rl__cat_find(cat, cat->tables[i].cols[c].references);
}

/* Check one user column definition (index c of cols) against the rest. */
static int column_check(const rl__catalog *cat, const char *table, const rl_column *cols,
                        int ncols, int c, rl__err *err)
{
    const rl_column *col = &cols[c];
    if (!name_ok(col->name) || strcasecmp(col->name, "id") == 0)
        return RL__FAIL(err, RL_INVALID, "table %s: invalid column name \"%s\"", table,
                        col->name ? col->name : "(null)");
    for (int k = 0; k < c; k++)
        if (strcasecmp(cols[k].name, col->name) == 0)
            return RL__FAIL(err, RL_INVALID, "table %s: column %s appears twice", table,
                            col->name);
    if (col->type < RL_TINTEGER || col->type > RL_TBLOB)
        return RL__FAIL(err, RL_INVALID, "table %s: column %s has unknown type %d", table,
                        col->name, (int)col->type);
    if (col->type == RL_TCHAR && (col->size == 0 || col->size > RL__MAX_CHAR))
        return RL__FAIL(err, RL_INVALID, "table %s: CHAR(%u) of column %s must be 1..%u",
                        table, col->size, col->name, RL__MAX_CHAR);
    if (col->references && col->type != RL_TINTEGER)
        return RL__FAIL(err, RL_INVALID, "table %s: foreign key %s must be INTEGER", table,
                        col->name);
    if (col->references && rl__cat_find(cat, col->references) < 0 &&
        strcasecmp(col->references, table) != 0)
        return RL__FAIL(err, RL_NOTABLE, "table %s: column %s references unknown table %s",
                        table, col->name, col->references);
    if (col->on_delete < RL_FK_RESTRICT || col->on_delete > RL_FK_SET_NULL)
        return RL__FAIL(err, RL_INVALID, "table %s: column %s: unknown on_delete %d", table,
                        col->name, col->on_delete);
    if (col->references && col->on_delete == RL_FK_SET_NULL && (col->flags & RL_NOT_NULL))
        return RL__FAIL(err, RL_INVALID, "table %s: column %s is NOT NULL: it cannot be set "
                        "to NULL on delete", table, col->name);
    if (col->flags & ~(unsigned)(RL_NOT_NULL | RL_UNIQUE))
        return RL__FAIL(err, RL_INVALID, "table %s: column %s: unknown flags 0x%x", table,
                        col->name, col->flags);
    (void)ncols;
    return RL_OK;
}

/* Fill tb from a name and user columns (no checks). */
static int table_build(rl__table *tb, const char *name, const rl_column *cols, int ncols,
                       uint64_t state)
{
    memset(tb, 0, sizeof *tb);
    tb->name = strdup(name);
    tb->state = state;
    tb->ncols = ncols + 1;
    tb->cols = calloc((size_t)tb->ncols, sizeof *tb->cols);
    tb->ref_table = calloc((size_t)tb->ncols, sizeof *tb->ref_table);
    if (!tb->name || !tb->cols || !tb->ref_table)
        return RL_NOMEM;
    tb->cols[0].name = strdup("id");
    tb->cols[0].type = RL_TINTEGER;
    tb->cols[0].flags = RL_NOT_NULL;
    if (!tb->cols[0].name)
        return RL_NOMEM;
    for (int c = 0; c < ncols; c++) {
        rl_column *d = &tb->cols[c + 1];
        *d = cols[c];
        d->name = strdup(cols[c].name);
        d->references = dup_or_null(cols[c].references);
        if (d->type != RL_TCHAR)
            d->size = 0;
        if (!d->references)
            d->on_delete = RL_FK_RESTRICT;
        if (!d->name || (cols[c].references && !d->references))
            return RL_NOMEM;
    }
    return RL_OK;
}

int rl__cat_add(rl__catalog *cat, const char *name, const rl_column *cols, int ncols,
                uint64_t state, rl__err *err)
{
    rl__table *grown;
    int rc;
    if (!name_ok(name))
        return RL__FAIL(err, RL_INVALID, "invalid table name \"%s\"", name ? name : "(null)");
    if (rl__cat_find(cat, name) >= 0)
        return RL__FAIL(err, RL_EXISTS, "table %s already exists", name);
    if (ncols < 0 || ncols > RL__MAX_COLUMNS || (ncols > 0 && !cols))
        return RL__FAIL(err, RL_INVALID, "table %s: %d columns (0..%d allowed)", name, ncols,
                        RL__MAX_COLUMNS);
    for (int c = 0; c < ncols; c++)
        if ((rc = column_check(cat, name, cols, ncols, c, err)) != RL_OK)
            return rc;
    grown = realloc(cat->tables, (size_t)(cat->n + 1) * sizeof *grown);
    if (!grown)
        return RL__FAIL(err, RL_NOMEM, "no memory for the catalog");
    cat->tables = grown;
    rc = table_build(&cat->tables[cat->n], name, cols, ncols, state);
    cat->n++;
    if (rc != RL_OK) {
        table_clear(&cat->tables[--cat->n]);
        return RL__FAIL(err, RL_NOMEM, "no memory for the catalog");
    }
    resolve_refs(cat);
    return RL_OK;
}

void rl__cat_remove(rl__catalog *cat, int i)
{
    table_clear(&cat->tables[i]);
    memmove(&cat->tables[i], &cat->tables[i + 1], (size_t)(cat->n - i - 1) * sizeof *cat->tables);
    cat->n--;
    resolve_refs(cat);
}

int rl__cat_find_index(const rl__catalog *cat, const char *name, int *table, int *index)
{
    for (int i = 0; name && i < cat->n; i++)
        for (int x = 0; x < cat->tables[i].nindexes; x++)
            if (strcasecmp(cat->tables[i].indexes[x].name, name) == 0) {
                *table = i;
                *index = x;
                return 0;
            }
    return -1;
}

int rl__cat_add_index(rl__catalog *cat, int i, const char *name, const int *cols, int ncols,
                      int unique, uint64_t root, rl__err *err)
{
    rl__table *tb = &cat->tables[i];
    rl__index *grown, *ix;
    int t2, x2;
    if (!name_ok(name))
        return RL__FAIL(err, RL_INVALID, "invalid index name \"%s\"", name ? name : "(null)");
    if (rl__cat_find_index(cat, name, &t2, &x2) == 0)
        return RL__FAIL(err, RL_EXISTS, "index %s already exists", name);
    if (ncols < 1 || ncols > 16)
        return RL__FAIL(err, RL_INVALID, "index %s: %d columns (1..16 allowed)", name, ncols);
    for (int k = 0; k < ncols; k++)
        if (cols[k] < 1 || cols[k] >= tb->ncols)
            return RL__FAIL(err, RL_NOCOLUMN, "index %s: no column %d in table %s", name,
                            cols[k], tb->name);
    grown = realloc(tb->indexes, (size_t)(tb->nindexes + 1) * sizeof *grown);
    if (!grown)
        return RL__FAIL(err, RL_NOMEM, "no memory for the catalog");
    tb->indexes = grown;
    ix = &tb->indexes[tb->nindexes];
    memset(ix, 0, sizeof *ix);
    ix->name = strdup(name);
    ix->cols = malloc((size_t)ncols * sizeof *ix->cols);
    ix->colnames = malloc((size_t)ncols * sizeof *ix->colnames);
    if (!ix->name || !ix->cols || !ix->colnames) {
        index_clear(ix);
        return RL__FAIL(err, RL_NOMEM, "no memory for the catalog");
    }
    memcpy(ix->cols, cols, (size_t)ncols * sizeof *cols);
    for (int k = 0; k < ncols; k++)
        ix->colnames[k] = tb->cols[cols[k]].name;
    ix->ncols = ncols;
    ix->unique = unique != 0;
    ix->root = root;
    tb->nindexes++;
    return RL_OK;
}

void rl__cat_remove_index(rl__catalog *cat, int table, int index)
{
    rl__table *tb = &cat->tables[table];
    index_clear(&tb->indexes[index]);
    memmove(&tb->indexes[index], &tb->indexes[index + 1],
            (size_t)(tb->nindexes - index - 1) * sizeof *tb->indexes);
    tb->nindexes--;
}

int rl__cat_clone(const rl__catalog *cat, rl__catalog **out, rl__err *err)
{
    rl__catalog *c = calloc(1, sizeof *c);
    if (!c)
        return RL__FAIL(err, RL_NOMEM, "no memory for the catalog");
    c->refs = 1;
    c->version = cat->version;
    for (int i = 0; i < cat->n; i++) {
        const rl__table *tb = &cat->tables[i];
        rl__table *grown = realloc(c->tables, (size_t)(c->n + 1) * sizeof *grown);
        int rc = RL_OK;
        if (!grown || (c->tables = grown,
                       table_build(&c->tables[c->n++], tb->name, tb->cols + 1, tb->ncols - 1,
                                   tb->state)) != RL_OK) {
            rl__cat_free(c);
            return RL__FAIL(err, RL_NOMEM, "no memory for the catalog");
        }
        for (int x = 0; x < tb->nindexes && rc == RL_OK; x++)
            rc = rl__cat_add_index(c, c->n - 1, tb->indexes[x].name, tb->indexes[x].cols,
                                   tb->indexes[x].ncols, tb->indexes[x].unique,
                                   tb->indexes[x].root, err);
        if (rc != RL_OK) {
            rl__cat_free(c);
            return rc;
        }
    }
    resolve_refs(c);
    *out = c;
    return RL_OK;
}

/* ---- bytes ------------------------------------------------------------------ */

static int put_str(rl__buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (rl__buf_reserve(b, n + 2) != RL_OK)
        return RL_NOMEM;
    rl__put16(b->p + b->n, (uint16_t)n);
    memcpy(b->p + b->n + 2, s ? s : "", n);
    b->n += n + 2;
    return RL_OK;
}

static int put_u(rl__buf *b, uint64_t v, int bytes)
{
    if (rl__buf_reserve(b, 8) != RL_OK)
        return RL_NOMEM;
    for (int i = 0; i < bytes; i++)
        b->p[b->n++] = (uint8_t)(v >> (8 * i));
    return RL_OK;
}

static int encode(const rl__catalog *cat, rl__buf *b)
{
    int rc = put_u(b, CAT_MAGIC, 4) | put_u(b, CAT_VERSION, 4) | put_u(b, (uint64_t)cat->n, 4);
    for (int i = 0; i < cat->n && rc == RL_OK; i++) {
        const rl__table *tb = &cat->tables[i];
        rc = put_str(b, tb->name) | put_u(b, tb->state, 8) | put_u(b, (uint64_t)(tb->ncols - 1), 2);
        for (int c = 1; c < tb->ncols && rc == RL_OK; c++) {
            const rl_column *col = &tb->cols[c];
            rc = put_str(b, col->name) | put_u(b, (uint64_t)col->type, 1) |
                 put_u(b, col->size, 4) | put_u(b, col->flags, 1) | put_str(b, col->references) |
                 put_u(b, (uint64_t)col->on_delete, 1);
        }
        rc |= put_u(b, (uint64_t)tb->nindexes, 2);
        for (int x = 0; x < tb->nindexes && rc == RL_OK; x++) {
            const rl__index *ix = &tb->indexes[x];
            rc = put_str(b, ix->name) | put_u(b, (uint64_t)ix->unique, 1) |
                 put_u(b, (uint64_t)ix->ncols, 2);
            for (int k = 0; k < ix->ncols; k++)
                rc |= put_u(b, (uint64_t)ix->cols[k], 2);
            rc |= put_u(b, ix->root, 8);
        }
    }
    return rc ? RL_NOMEM : RL_OK;
}

int rl__cat_save(rl__blk_txn *t, rl__catalog *cat)
{
    rl__buf b = {0};
    uint64_t head = rl__blk_meta_get(t, RL__META_SCHEMA);
    int rc = encode(cat, &b);
    if (rc != RL_OK)
        rc = RL__FAIL(rl__blk_txn_err(t), RL_NOMEM, "no memory to save the catalog");
    if (rc == RL_OK && head == 0) {
        rc = rl__blk_chain_create(t, RL__TYPE_SCHEMA, &head);
        if (rc == RL_OK)
            rc = rl__blk_meta_set(t, RL__META_SCHEMA, head);
    }
    if (rc == RL_OK)
        rc = rl__blk_chain_truncate(t, head, 0);
    if (rc == RL_OK)
        rc = rl__blk_chain_append(t, head, b.p, b.n);
    if (rc == RL_OK) {
        cat->version = rl__blk_meta_get(t, RL__META_VERSION) + 1;
        rc = rl__blk_meta_set(t, RL__META_VERSION, cat->version);
    }
    rl__buf_free(&b);
    return rc;
}

/* A bounds-checked reader over the catalog bytes. */
typedef struct reader {
    const uint8_t *p;
    size_t n, off;
    int bad;
} reader;

static uint64_t get_u(reader *r, int bytes)
{
    uint64_t v = 0;
    if (r->bad || r->n - r->off < (size_t)bytes) {
        r->bad = 1;
        return 0;
    }
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)r->p[r->off++] << (8 * i);
    return v;
}

/* A NUL-terminated copy of a stored string, or NULL (empty or bad). */
static char *get_str(reader *r, int *nomem)
{
    size_t n = (size_t)get_u(r, 2);
    char *s;
    if (r->bad || r->n - r->off < n) {
        r->bad = 1;
        return NULL;
    }
    if (n == 0)
        return NULL;
    s = malloc(n + 1);
    if (!s) {
        *nomem = 1;
        return NULL;
    }
    memcpy(s, r->p + r->off, n);
    s[n] = '\0';
    r->off += n;
    return s;
}

/* The index entries of the table just added. */
static int decode_indexes(reader *r, rl__catalog *cat, rl__err *err)
{
    int n = (int)get_u(r, 2), rc = RL_OK;
    for (int x = 0; x < n && rc == RL_OK && !r->bad; x++) {
        int nomem = 0, unique, ncols, cols[16];
        char *name = get_str(r, &nomem);
        unique = (int)get_u(r, 1);
        ncols = (int)get_u(r, 2);
        for (int k = 0; k < ncols && k < 16; k++)
            cols[k] = (int)get_u(r, 2);
        if (nomem)
            rc = RL__FAIL(err, RL_NOMEM, "no memory for the catalog");
        else if (r->bad || ncols > 16)
            rc = RL__CORRUPT(err, "catalog: index entry %d is damaged", x);
        else
            rc = rl__cat_add_index(cat, cat->n - 1, name, cols, ncols, unique, get_u(r, 8), err);
        free(name);
    }
    if (rc == RL_OK && r->bad)
        rc = RL__CORRUPT(err, "catalog: index list is damaged");
    return rc;
}

static int decode_table(reader *r, rl__catalog *cat, rl__err *err)
{
    int nomem = 0, rc;
    char *name = get_str(r, &nomem);
    uint64_t state = get_u(r, 8);
    int ncols = (int)get_u(r, 2);
    rl_column *cols = calloc((size_t)ncols + 1, sizeof *cols);
    for (int c = 0; cols && c < ncols && !r->bad; c++) {
        cols[c].name = get_str(r, &nomem);
        cols[c].type = (rl_type)get_u(r, 1);
        cols[c].size = (uint32_t)get_u(r, 4);
        cols[c].flags = (unsigned)get_u(r, 1);
        cols[c].references = get_str(r, &nomem);
        cols[c].on_delete = (int)get_u(r, 1);
    }
    if (!cols || nomem)
        rc = RL__FAIL(err, RL_NOMEM, "no memory for the catalog");
    else if (r->bad || !name || state == 0)
        rc = RL__CORRUPT(err, "catalog: table entry %d is damaged", cat->n);
    else
        rc = rl__cat_add(cat, name, cols, ncols, state, err);
    if (rc == RL_OK)
        rc = decode_indexes(r, cat, err);
    if (rc != RL_OK && rc != RL_NOMEM)
        rc = RL__CORRUPT(err, "catalog: table %d: %s", cat->n, err->msg);
    for (int c = 0; cols && c < ncols; c++) {
        free((char *)cols[c].name);
        free((char *)cols[c].references);
    }
    free(cols);
    free(name);
    return rc;
}

static int decode(const uint8_t *p, size_t n, rl__catalog *cat, rl__err *err)
{
    reader r = {p, n, 0, 0};
    uint32_t magic = (uint32_t)get_u(&r, 4), version = (uint32_t)get_u(&r, 4);
    uint32_t ntables = (uint32_t)get_u(&r, 4);
    int rc = RL_OK;
    if (r.bad || magic != CAT_MAGIC)
        return RL__CORRUPT(err, "catalog: bad magic");
    if (version != CAT_VERSION)
        return RL__CORRUPT(err, "catalog: unsupported version %u", version);
    for (uint32_t i = 0; i < ntables && rc == RL_OK; i++)
        rc = decode_table(&r, cat, err);
    if (rc == RL_OK && r.off != n)
        rc = RL__CORRUPT(err, "catalog: %zu stray bytes", n - r.off);
    return rc;
}

int rl__cat_load(rl__blk_txn *t, rl__catalog **out)
{
    rl__catalog *cat = calloc(1, sizeof *cat);
    uint64_t head = rl__blk_meta_get(t, RL__META_SCHEMA), len = 0;
    uint8_t *bytes = NULL;
    int rc = RL_OK;
    if (!cat)
        return RL__FAIL(rl__blk_txn_err(t), RL_NOMEM, "no memory for the catalog");
    cat->refs = 1;
    cat->version = rl__blk_meta_get(t, RL__META_VERSION);
    if (head != 0)
        rc = rl__blk_chain_length(t, head, &len);
    if (rc == RL_OK && head != 0) {
        bytes = malloc(len + 1);
        rc = bytes ? rl__blk_chain_read(t, head, 0, bytes, len)
                   : RL__FAIL(rl__blk_txn_err(t), RL_NOMEM, "no memory for the catalog");
    }
    if (rc == RL_OK && head != 0)
        rc = decode(bytes, len, cat, rl__blk_txn_err(t));
    free(bytes);
    if (rc != RL_OK) {
        rl__cat_free(cat);
        return rc;
    }
    *out = cat;
    return RL_OK;
}
