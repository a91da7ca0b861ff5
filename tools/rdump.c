/*
** tools/rdump.c: look inside a relatable file, healthy or damaged.
**
**   rdump FILE                  summary: header, root slots, blocks by type,
**                               free space, tables and their rows
**   rdump --blocks FILE         every block: type, numbers, txn, links, checksum
**   rdump --check FILE          the integrity walk (rl_check); exit 1 on problems
**   rdump --schema FILE         tables, columns, keys and indexes
**   rdump --rows TABLE [--limit N] FILE
**                               a table's rows, as a readable table
**   rdump --sql FILE            schema and rows as SQL that sqlite3 loads
**
** The summary and --blocks decode the file's bytes themselves (through the
** block layer's format decoders), so they show what they can of a damaged
** file; the table views go through the public API. docs/rdump.md is the
** manual. Exit status: 0 fine, 1 problems found, 2 usage or open error.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "blocks/blk_int.h"
#include "relatable.h"

static const char *type_name(unsigned t)
{
    switch (t) {
    case RL__BLK_TYPE_MAP: return "map";
    case RL__BLK_TYPE_FREELIST: return "freelist";
    case RL__BLK_TYPE_CHAIN: return "chain";
    case RL__BLK_TYPE_USER + 0: return "schema";
    case RL__BLK_TYPE_USER + 1: return "table-state";
    case RL__BLK_TYPE_USER + 2: return "record";
    case RL__BLK_TYPE_USER + 3: return "value";
    case RL__BLK_TYPE_USER + 4: return "btree";
    default: return t == 0 ? "empty" : "unknown";
    }
}

/* ---- raw views ------------------------------------------------------------- */

typedef struct image {
    FILE *f;
    uint64_t size;
    rl__blk_header h;
    int header_ok;
    rl__blk_root slot[2];
    int slot_ok[2];
    char slot_why[2][256];
    int current; /* -1: none */
} image;

static int read_at(image *im, uint64_t off, void *buf, size_t n)
{
    if (fseeko(im->f, (off_t)off, SEEK_SET) != 0)
        return 0;
    return fread(buf, 1, n, im->f) == n;
}

static int load_image(image *im, const char *path)
{
    uint8_t region[RL__REGION];
    struct stat st;
    rl__err err;
    memset(im, 0, sizeof *im);
    im->current = -1;
    im->f = fopen(path, "rb");
    if (!im->f || fstat(fileno(im->f), &st) != 0) {
        fprintf(stderr, "rdump: cannot open %s\n", path);
        return 0;
    }
    im->size = (uint64_t)st.st_size;
    memset(region, 0, sizeof region);
    read_at(im, 0, region, sizeof region);
    im->header_ok = rl__fmt_header_decode(region, im->size < RL__REGION ? im->size : RL__REGION,
                                          &im->h, &err) == RL_OK;
    if (!im->header_ok) {
        printf("header: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < 2; i++) {
        memset(region, 0, sizeof region);
        if (!read_at(im, RL__REGION * (1 + (uint64_t)i), region, sizeof region)) {
            snprintf(im->slot_why[i], sizeof im->slot_why[i], "cut off by the end of the file");
            continue;
        }
        im->slot_ok[i] =
            rl__fmt_slot_decode(region, im->h.block_size, &im->slot[i], NULL, NULL, &err) == RL_OK;
        if (!im->slot_ok[i])
            snprintf(im->slot_why[i], sizeof im->slot_why[i], "%s", err.msg);
    }
    if (im->slot_ok[0] || im->slot_ok[1])
        im->current = (im->slot_ok[0] && im->slot_ok[1])
                          ? (im->slot[1].txn > im->slot[0].txn)
                          : im->slot_ok[1];
    return 1;
}

static void summary_raw(image *im)
{
    uint64_t bs, nblocks, counts[256] = {0}, bad = 0, used = 0, first;
    uint8_t *buf;
    printf("file size        %llu bytes\n", (unsigned long long)im->size);
    if (!im->header_ok)
        return;
    bs = im->h.block_size;
    first = rl__fmt_first_block(im->h.block_size);
    printf("format version   %u\nblock size       %llu bytes\n", im->h.version,
           (unsigned long long)bs);
    for (int i = 0; i < 2; i++) {
        if (im->slot_ok[i])
            printf("root slot %d      txn %llu, %llu blocks, %llu free, %s%s\n", i,
                   (unsigned long long)im->slot[i].txn,
                   (unsigned long long)im->slot[i].block_count,
                   (unsigned long long)im->slot[i].free_count,
                   im->slot[i].flags & RL__SLOT_LISTED ? "single-sync commit" : "synced commit",
                   im->current == i ? "  <- newest" : "");
        else
            printf("root slot %d      invalid: %s\n", i, im->slot_why[i]);
    }
    nblocks = im->size / bs;
    buf = malloc(bs);
    for (uint64_t b = first; buf && b < nblocks; b++) {
        rl__blk_bhdr h;
        rl__err err;
        if (!read_at(im, b * bs, buf, bs))
            break;
        if (rl__fmt_block_check(buf, (uint32_t)bs, b, &err) != RL_OK) {
            bad++;
            continue;
        }
        rl__fmt_bhdr_decode(buf, &h);
        counts[h.type]++;
        used += h.used;
    }
    free(buf);
    printf("blocks           %llu (root area %llu)\n", (unsigned long long)nblocks,
           (unsigned long long)first);
    for (int t = 0; t < 256; t++)
        if (counts[t])
            printf("  %-14s %llu\n", type_name((unsigned)t), (unsigned long long)counts[t]);
    if (bad)
        printf("  %-14s %llu (free space, or damage: see --check)\n", "unreadable",
               (unsigned long long)bad);
    if (im->current >= 0 && nblocks > first)
        printf("space            %.1f%% of block payloads in use; %llu free blocks\n",
               100.0 * (double)used / (double)((nblocks - first) * (bs - RL__HDR_SIZE)),
               (unsigned long long)im->slot[im->current].free_count);
}

static void blocks_raw(image *im)
{
    uint64_t bs = im->h.block_size, first = rl__fmt_first_block(im->h.block_size);
    uint8_t *buf = malloc(bs);
    if (!im->header_ok || !buf) {
        free(buf);
        return;
    }
    printf("%-8s %-12s %-8s %-8s %-8s %-8s %-6s %s\n", "block", "type", "logical", "owner",
           "txn", "next", "used", "check");
    for (uint64_t b = first; b < im->size / bs; b++) {
        rl__blk_bhdr h;
        rl__err err;
        int ok;
        if (!read_at(im, b * bs, buf, bs))
            break;
        ok = rl__fmt_block_check(buf, (uint32_t)bs, b, &err) == RL_OK;
        rl__fmt_bhdr_decode(buf, &h);
        if (!ok && h.type == 0 && h.txn == 0) {
            printf("%-8llu %-12s\n", (unsigned long long)b, "(never written)");
            continue;
        }
        printf("%-8llu %-12s %-8llu %-8llu %-8llu %-8llu %-6u %s\n", (unsigned long long)b,
               type_name(h.type), (unsigned long long)h.logical, (unsigned long long)h.owner,
               (unsigned long long)h.txn, (unsigned long long)h.next, h.used,
               ok ? "ok" : err.msg);
    }
    free(buf);
}

/* ---- table views (public API) ------------------------------------------------ */

static void print_value(const rl_row *row, int c, int sql)
{
    rl_value v;
    rl_row_get(row, c, &v);
    if (v.type == RL_TNULL)
        printf("%s", sql ? "NULL" : "-");
    else if (v.type == RL_TINTEGER)
        printf("%lld", (long long)v.v.i);
    else if (v.type == RL_TREAL) {
        if (v.v.r != v.v.r)
            printf("%s", sql ? "NULL" : "NaN"); /* SQL has no NaN */
        else if (v.v.r > 1e308 || v.v.r < -1e308)
            printf("%s", v.v.r > 0 ? "9e999" : "-9e999"); /* sqlite3 reads these as inf */
        else
            printf("%.17g", v.v.r);
    } else if (v.type == RL_TBLOB) {
        printf("X'");
        for (size_t i = 0; i < v.v.b.n; i++)
            printf("%02X", ((const unsigned char *)v.v.b.p)[i]);
        printf("'");
    } else if (sql) {
        putchar('\'');
        for (size_t i = 0; i < v.v.b.n; i++) {
            char ch = ((const char *)v.v.b.p)[i];
            if (ch == '\'')
                putchar('\'');
            putchar(ch);
        }
        putchar('\'');
    } else {
        printf("%.*s", (int)(v.v.b.n > 60 ? 60 : v.v.b.n), (const char *)v.v.b.p);
        if (v.v.b.n > 60)
            printf("...");
    }
}

static const char *sql_type(const rl_column *c, char *buf, size_t n)
{
    switch (c->type) {
    case RL_TINTEGER: return "INTEGER";
    case RL_TREAL: return "REAL";
    case RL_TCHAR: snprintf(buf, n, "CHAR(%u)", c->size); return buf;
    case RL_TTEXT: return "TEXT";
    default: return "BLOB";
    }
}

static int each_table(rl_db *db, int (*fn)(rl_txn *, const char *, void *), void *arg)
{
    rl_txn *t = NULL;
    const char *name;
    int rc = rl_begin(db, RL_READ, &t);
    for (int i = 0; rc == RL_OK && rl_table_at(t, i, &name) == RL_OK; i++)
        rc = fn(t, name, arg);
    if (t)
        rl_rollback(t);
    return rc;
}

static int schema_one(rl_txn *t, const char *name, void *sqlp)
{
    const rl_column *cols;
    const char *ix, *const *icols;
    int ncols, unique, nic, sql = *(int *)sqlp;
    char tb[32];
    static const char *const rules[] = {"", " ON DELETE CASCADE", " ON DELETE SET NULL"};
    if (rl_columns(t, name, &cols, &ncols) != RL_OK)
        return RL_OK;
    printf("CREATE TABLE \"%s\" (\n  \"id\" INTEGER PRIMARY KEY", name);
    for (int c = 1; c < ncols; c++) {
        printf(",\n  \"%s\" %s%s%s", cols[c].name, sql_type(&cols[c], tb, sizeof tb),
               cols[c].flags & RL_NOT_NULL ? " NOT NULL" : "",
               cols[c].flags & RL_UNIQUE ? " UNIQUE" : "");
        if (cols[c].references)
            printf(" REFERENCES \"%s\"(\"id\")%s", cols[c].references, rules[cols[c].on_delete]);
    }
    printf("\n);\n");
    for (int k = 0; rl_index_at(t, name, k, &ix, &unique, &icols, &nic) == RL_OK; k++) {
        if (sql && (strstr(ix, "_unique") || strstr(ix, "_fk")))
            continue; /* made by the column definitions above */
        printf("CREATE %sINDEX \"%s\" ON \"%s\" (", unique ? "UNIQUE " : "", ix, name);
        for (int c = 0; c < nic; c++)
            printf("%s\"%s\"", c ? ", " : "", icols[c]);
        printf(");\n");
    }
    return RL_OK;
}

static int rows_one(rl_txn *t, const char *name, void *limitp)
{
    long limit = *(long *)limitp, n = 0;
    rl_cursor *c;
    const rl_row *row;
    uint64_t total = 0;
    int rc = rl_scan(t, name, &c);
    if (rc != RL_OK)
        return rc;
    rl_count(t, name, &total);
    while ((limit < 0 || n < limit) && (rc = rl_cursor_next(c, &row)) == RL_OK) {
        if (n == 0) {
            for (int k = 0; k < rl_row_ncols(row); k++)
                printf("%s%s", k ? " | " : "", rl_row_name(row, k));
            printf("\n");
        }
        for (int k = 0; k < rl_row_ncols(row); k++) {
            printf("%s", k ? " | " : "");
            print_value(row, k, 0);
        }
        printf("\n");
        n++;
    }
    rl_cursor_close(c);
    printf("(%ld of %llu rows)\n", n, (unsigned long long)total);
    return rc == RL_DONE || rc == RL_OK ? RL_OK : rc;
}

static int sql_one(rl_txn *t, const char *name, void *arg)
{
    rl_cursor *c;
    const rl_row *row;
    int rc = rl_scan(t, name, &c);
    (void)arg;
    if (rc != RL_OK)
        return rc;
    while ((rc = rl_cursor_next(c, &row)) == RL_OK) {
        printf("INSERT INTO \"%s\" VALUES(", name);
        for (int k = 0; k < rl_row_ncols(row); k++) {
            printf("%s", k ? "," : "");
            print_value(row, k, 1);
        }
        printf(");\n");
    }
    rl_cursor_close(c);
    return rc == RL_DONE ? RL_OK : rc;
}

static int count_one(rl_txn *t, const char *name, void *arg)
{
    uint64_t n = 0;
    (void)arg;
    rl_count(t, name, &n);
    printf("  %-20s %llu rows\n", name, (unsigned long long)n);
    return RL_OK;
}

static int usage(FILE *out)
{
    fprintf(out, "usage: rdump [--blocks | --check | --schema | --sql | --rows TABLE "
                 "[--limit N]] FILE\n"
                 "see docs/rdump.md; exit 0 fine, 1 problems found, 2 usage or open error\n");
    return out == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
    const char *mode = "summary", *file = NULL, *table = NULL;
    long limit = -1;
    rl_options o = {RL_OPEN_READONLY, 0, 0, 0, -1, 0};
    rl_db *db = NULL;
    image im;
    int rc = RL_OK, problems = 0, zero = 0, one = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return usage(stdout);
        if (!strcmp(argv[i], "--blocks") || !strcmp(argv[i], "--check") ||
            !strcmp(argv[i], "--schema") || !strcmp(argv[i], "--sql"))
            mode = argv[i] + 2;
        else if (!strcmp(argv[i], "--rows") && i + 1 < argc) {
            mode = "rows";
            table = argv[++i];
        } else if (!strcmp(argv[i], "--limit") && i + 1 < argc)
            limit = atol(argv[++i]);
        else if (argv[i][0] == '-' || file)
            return usage(stderr);
        else
            file = argv[i];
    }
    if (!file)
        return usage(stderr);
    if (!strcmp(mode, "summary") || !strcmp(mode, "blocks")) {
        if (!load_image(&im, file))
            return 2;
        if (!strcmp(mode, "blocks"))
            blocks_raw(&im);
        else
            summary_raw(&im);
        fclose(im.f);
        if (!strcmp(mode, "blocks"))
            return 0;
    }
    if (rl_open(file, &o, &db) != RL_OK) {
        printf("cannot open as a database: %s\n", rl_errmsg(db));
        rl_close(db);
        return !strcmp(mode, "summary") ? 1 : 2;
    }
    if (!strcmp(mode, "summary")) {
        rl_txn *t = NULL;
        if (rl_begin(db, RL_READ, &t) == RL_OK)
            printf("opens at         txn %llu%s\n", (unsigned long long)rl_txn_id(t),
                   im.current >= 0 && rl_txn_id(t) != im.slot[im.current].txn
                       ? "  (the newer slot is passed over: see --check)" : "");
        rl_rollback(t);
        printf("tables\n");
        rc = each_table(db, count_one, NULL);
    } else if (!strcmp(mode, "check")) {
        rl_txn *t;
        char *report = NULL;
        rc = rl_begin(db, RL_READ, &t);
        if (rc == RL_OK) {
            problems = rl_check(t, &report) != RL_OK;
            printf("%s", report && *report ? report : "");
            printf("check: %s\n", problems ? "problems found" : "ok");
            free(report);
            rl_rollback(t);
        }
    } else if (!strcmp(mode, "schema")) {
        rc = each_table(db, schema_one, &zero);
    } else if (!strcmp(mode, "sql")) {
        printf("BEGIN TRANSACTION;\n");
        rc = each_table(db, schema_one, &one);
        if (rc == RL_OK)
            rc = each_table(db, sql_one, NULL);
        printf(rc == RL_OK ? "COMMIT;\n" : "ROLLBACK;\n");
    } else {
        rl_txn *t = NULL;
        rc = rl_begin(db, RL_READ, &t);
        if (rc == RL_OK)
            rc = rows_one(t, table, &limit);
        if (t)
            rl_rollback(t);
    }
    if (rc != RL_OK)
        printf("rdump: %s: %s\n", rl_errname(rc), rl_errmsg(db));
    rl_close(db);
    return rc != RL_OK || problems;
}
