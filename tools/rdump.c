/*
** tools/rdump.c: look inside a relatable file, healthy or damaged.
**
**   rdump FILE                  summary: header, root slots, blocks by type,
**                               space, the commit it opens at, tables
**   rdump --blocks FILE         every block: type, numbers, txn, links, checksum
**   rdump --map FILE            the block map: logical number -> block
**   rdump --freelist FILE       the free blocks and the commits that freed them
**   rdump --chain L FILE        one chain (or B+tree leaf level) link by link
**   rdump --check FILE          the integrity walk (rl_check); exit 1 on problems
**   rdump --schema FILE         tables, columns, keys and indexes
**   rdump --indexes FILE        each index: columns, keys, blocks, depth, fill
**   rdump --space FILE          every table and index: blocks, bytes used and
**                               free, what vacuum would give back
**                               (--tombstones: the same)
**   rdump --rows TABLE [--limit N] FILE
**                               a table's rows, as a readable table
**   rdump --sql FILE            schema and rows as SQL that sqlite3 loads
**   rdump --svg OUT.svg FILE    a picture of the file, one cell per block
**   rdump --dot FILE            the chains as a Graphviz graph
**   --json                      JSON instead of text (all but --sql, --svg, --dot)
**
** The raw views (summary, blocks, map, freelist, chain, svg, dot) decode
** the file's bytes themselves (tools/rdump/raw.c), so they show what they
** can of a damaged file; the table views and --check go through the public
** API. docs/rdump.md is the manual. Exit status: 0 fine, 1 problems found,
** 2 usage error or unreadable file.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relatable.h"
#include "tools/rdump/rdump.h"

static int json; /* --json */

/* ---- table views (public API) ------------------------------------------------ */

static void print_value(const rl_row *row, int c, int sql)
{
    rl_value v;
    rl_row_get(row, c, &v);
    if (json && (v.type == RL_TTEXT || v.type == RL_TCHAR))
        rdump_json_str(stdout, v.v.b.p, v.v.b.n);
    else if (json && (v.type == RL_TNULL || (v.type == RL_TREAL && !(v.v.r == v.v.r &&
                                                                     v.v.r < 1e308 &&
                                                                     v.v.r > -1e308))))
        printf("null"); /* JSON has no NaN or infinity */
    else if (json && v.type == RL_TBLOB) {
        printf("{\"hex\": \"");
        for (size_t i = 0; i < v.v.b.n; i++)
            printf("%02x", ((const unsigned char *)v.v.b.p)[i]);
        printf("\"}");
    } else if (v.type == RL_TNULL)
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
    } else { /* one row, one line: control bytes escaped, long text cut */
        for (size_t i = 0; i < v.v.b.n && i < 60; i++) {
            unsigned char ch = ((const unsigned char *)v.v.b.p)[i];
            if (ch == '\n')
                printf("\\n");
            else if (ch == '\t')
                printf("\\t");
            else if (ch == '\\')
                printf("\\\\");
            else if (ch < 0x20 || ch == 0x7f)
                printf("\\x%02x", ch);
            else
                putchar(ch);
        }
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

/* Between tables in a JSON list. */
static void json_sep(int *first)
{
    if (json)
        printf("%s\n  ", *first ? "" : ",");
    *first = 0;
}

static int schema_json(rl_txn *t, const char *name, int *first)
{
    const rl_column *cols;
    const char *ix, *const *icols;
    int ncols, unique, nic;
    char tb[32];
    static const char *const rules[] = {"restrict", "cascade", "set null"};
    if (rl_columns(t, name, &cols, &ncols) != RL_OK)
        return RL_OK;
    json_sep(first);
    printf("{\"table\": ");
    rdump_json_str(stdout, name, strlen(name));
    printf(", \"columns\": [");
    for (int c = 0; c < ncols; c++) {
        printf("%s{\"name\": ", c ? ", " : "");
        rdump_json_str(stdout, cols[c].name, strlen(cols[c].name));
        printf(", \"type\": \"%s\", \"not_null\": %s, \"unique\": %s",
               c == 0 ? "INTEGER" : sql_type(&cols[c], tb, sizeof tb),
               c == 0 || cols[c].flags & RL_NOT_NULL ? "true" : "false",
               c == 0 || cols[c].flags & RL_UNIQUE ? "true" : "false");
        if (c > 0 && cols[c].references) {
            printf(", \"references\": ");
            rdump_json_str(stdout, cols[c].references, strlen(cols[c].references));
            printf(", \"on_delete\": \"%s\"", rules[cols[c].on_delete]);
        }
        printf("}");
    }
    printf("], \"indexes\": [");
    for (int k = 0; rl_index_at(t, name, k, &ix, &unique, &icols, &nic) == RL_OK; k++) {
        printf("%s{\"name\": ", k ? ", " : "");
        rdump_json_str(stdout, ix, strlen(ix));
        printf(", \"unique\": %s, \"columns\": [", unique ? "true" : "false");
        for (int c = 0; c < nic; c++) {
            printf("%s", c ? ", " : "");
            rdump_json_str(stdout, icols[c], strlen(icols[c]));
        }
        printf("]}");
    }
    printf("]}");
    return RL_OK;
}

/* Is ix the index a UNIQUE column makes by itself (TABLE_COLUMN_unique)?
 * SQL's UNIQUE makes it again; foreign-key indexes are kept, as SQLite
 * does not make those. */
static int made_by_column(const char *table, const char *ix, int unique,
                          const char *const *icols, int nic)
{
    char want[512];
    if (nic != 1 || !unique)
        return 0;
    snprintf(want, sizeof want, "%s_%s_unique", table, icols[0]);
    return !strcmp(ix, want);
}

static int schema_one(rl_txn *t, const char *name, void *arg)
{
    const rl_column *cols;
    const char *ix, *const *icols;
    int ncols, unique, nic, *sql = arg;
    char tb[32];
    static const char *const rules[] = {"", " ON DELETE CASCADE", " ON DELETE SET NULL"};
    if (json)
        return schema_json(t, name, sql);
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
        if (*sql && made_by_column(name, ix, unique, icols, nic))
            continue; /* the column definitions above make it again */
        printf("CREATE %sINDEX \"%s\" ON \"%s\" (", unique ? "UNIQUE " : "", ix, name);
        for (int c = 0; c < nic; c++)
            printf("%s\"%s\"", c ? ", " : "", icols[c]);
        printf(");\n");
    }
    return RL_OK;
}

static void row_line(const rl_row *row)
{
    for (int k = 0; k < rl_row_ncols(row); k++) {
        if (json) {
            printf("%s", k ? ", " : "{");
            rdump_json_str(stdout, rl_row_name(row, k), strlen(rl_row_name(row, k)));
            printf(": ");
        } else
            printf("%s", k ? " | " : "");
        print_value(row, k, 0);
    }
    printf("%s", json ? "}" : "\n");
}

static int rows_one(rl_txn *t, const char *name, long limit)
{
    long n = 0;
    rl_cursor *c;
    const rl_row *row;
    uint64_t total = 0;
    int rc = rl_scan(t, name, &c);
    if (rc != RL_OK)
        return rc;
    rl_count(t, name, &total);
    if (json) {
        printf("{\"table\": ");
        rdump_json_str(stdout, name, strlen(name));
        printf(", \"total\": %llu, \"rows\": [", (unsigned long long)total);
    }
    while ((limit < 0 || n < limit) && (rc = rl_cursor_next(c, &row)) == RL_OK) {
        if (json)
            printf("%s\n  ", n ? "," : "");
        else if (n == 0) {
            for (int k = 0; k < rl_row_ncols(row); k++)
                printf("%s%s", k ? " | " : "", rl_row_name(row, k));
            printf("\n");
        }
        row_line(row);
        n++;
    }
    rl_cursor_close(c);
    if (json)
        printf("%s]}\n", n ? "\n" : "");
    else
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

/* --check: rl_check's report, one problem per line; "note:" lines are not
 * problems. Returns 1 if problems were found. */
static int check_view(rl_txn *t)
{
    char *report = NULL, *line;
    int problems = rl_check(t, &report) != RL_OK, first = 1;
    if (!json) {
        printf("%s", report && *report ? report : "");
        printf("check: %s\n", problems ? "problems found" : "ok");
        free(report);
        return problems;
    }
    printf("{\"ok\": %s, \"lines\": [", problems ? "false" : "true");
    for (line = report ? strtok(report, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        printf("%s\n  ", first ? "" : ",");
        rdump_json_str(stdout, line, strlen(line));
        first = 0;
    }
    printf("%s]}\n", first ? "" : "\n");
    free(report);
    return problems;
}

static int usage(FILE *out)
{
    fprintf(out,
            "usage: rdump [--json] [VIEW] FILE\n"
            "views: (none: summary) --blocks --map --freelist --chain LOGICAL --check\n"
            "       --schema --indexes --space (--tombstones) --rows TABLE [--limit N]\n"
            "       --sql --svg OUT.svg --dot\n"
            "see docs/rdump.md; exit 0 fine, 1 problems found, 2 usage error or unreadable "
            "file\n");
    return out == stdout ? 0 : 2;
}

typedef struct args {
    const char *mode, *file, *table, *svg;
    long limit;
    uint64_t chain;
    int passed_over;    /* rl_open chose the older root slot */
    rdump_space *space; /* summary, --indexes, --space: every tree's space */
} args;

/* 0 on success, else the exit status. */
static int parse_args(int argc, char **argv, args *a)
{
    static const char *const plain[] = {"blocks", "map",     "freelist", "check", "schema",
                                        "sql",    "dot",     "indexes",  "space"};
    memset(a, 0, sizeof *a);
    a->mode = "summary";
    a->limit = -1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int known = 0;
        for (unsigned k = 0; k < sizeof plain / sizeof plain[0]; k++)
            if (!strncmp(arg, "--", 2) && !strcmp(arg + 2, plain[k]))
                a->mode = plain[k], known = 1;
        if (known)
            continue;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h"))
            return usage(stdout) + 100;
        if (!strcmp(arg, "--json"))
            json = 1;
        else if (!strcmp(arg, "--tombstones"))
            a->mode = "space"; /* no tombstones: the space deletes leave */
        else if (!strcmp(arg, "--rows") && val)
            a->mode = "rows", a->table = argv[++i];
        else if (!strcmp(arg, "--svg") && val)
            a->mode = "svg", a->svg = argv[++i];
        else if (!strcmp(arg, "--chain") && val && (a->chain = strtoull(val, NULL, 10)) > 0)
            a->mode = "chain", i++;
        else if (!strcmp(arg, "--limit") && val)
            a->limit = atol(argv[++i]);
        else if (arg[0] == '-' || a->file)
            return usage(stderr);
        else
            a->file = arg;
    }
    return a->file ? 0 : usage(stderr);
}

/* The raw views, which need only the file's bytes. */
static int raw_view(image *im, const args *a)
{
    const char *m = a->mode;
    if (!strcmp(m, "blocks"))
        return rdump_blocks(im);
    if (!strcmp(m, "map"))
        return rdump_map(im);
    if (!strcmp(m, "freelist"))
        return rdump_freelist(im);
    if (!strcmp(m, "chain"))
        return rdump_chain(im, a->chain);
    if (!strcmp(m, "dot"))
        return rdump_dot(im);
    if (!strcmp(m, "svg")) {
        FILE *svg = fopen(a->svg, "w");
        int damaged;
        if (!svg) {
            fprintf(stderr, "rdump: cannot write %s\n", a->svg);
            return 2;
        }
        damaged = rdump_svg(im, svg);
        if (fclose(svg) != 0) {
            fprintf(stderr, "rdump: cannot write %s\n", a->svg);
            return 2;
        }
        printf("wrote %s\n", a->svg);
        return damaged;
    }
    return 0;
}

/* The views through the public API. */
static int api_view(rl_db *db, const args *a)
{
    rl_txn *t = NULL;
    int rc = rl_begin(db, RL_READ, &t), problems = 0, first = 1, no = 0;
    const char *m = a->mode;
    if (rc == RL_OK && !strcmp(m, "summary")) {
        if (json)
            printf(",\n  \"opens_at\": %llu,\n  \"newer_slot_passed_over\": %s",
                   (unsigned long long)rl_txn_id(t), a->passed_over ? "true" : "false");
        else
            printf("opens at         txn %llu%s\n", (unsigned long long)rl_txn_id(t),
                   a->passed_over ? "  (the newer slot is passed over: see --check)" : "");
        rl_rollback(t);
        t = NULL;
        if (json)
            printf(",\n  \"tables\": [");
        problems = rdump_space_tables(a->space, stdout, json);
        if (json)
            printf("]\n}\n");
    } else if (rc == RL_OK && !strcmp(m, "indexes"))
        problems = rdump_space_indexes(a->space, stdout, json);
    else if (rc == RL_OK && !strcmp(m, "space"))
        problems = rdump_space_all(a->space, stdout, json);
    else if (rc == RL_OK && !strcmp(m, "check"))
        problems = check_view(t);
    else if (rc == RL_OK && !strcmp(m, "rows"))
        rc = rows_one(t, a->table, a->limit);
    else if (rc == RL_OK && !strcmp(m, "schema")) {
        if (json)
            printf("[");
        rc = each_table(db, schema_one, json ? &first : &no);
        if (json)
            printf("%s]\n", first ? "" : "\n");
    } else if (rc == RL_OK && !strcmp(m, "sql")) {
        int yes = 1;
        printf("BEGIN TRANSACTION;\n");
        rc = each_table(db, schema_one, &yes);
        if (rc == RL_OK)
            rc = each_table(db, sql_one, NULL);
        printf(rc == RL_OK ? "COMMIT;\n" : "ROLLBACK;\n");
    }
    if (t)
        rl_rollback(t);
    if (rc != RL_OK) {
        fprintf(json ? stderr : stdout, "rdump: %s: %s\n", rl_errname(rc), rl_errmsg(db));
        return 1;
    }
    return problems;
}

int main(int argc, char **argv)
{
    rl_options o = {RL_OPEN_READONLY, 0, 0, 0, -1, 0};
    rl_db *db = NULL;
    image im;
    FILE *f;
    args a;
    int status = parse_args(argc, argv, &a), raw, opened;
    if (status)
        return status == 100 ? 0 : status;
    raw = strcmp(a.mode, "summary") && strcmp(a.mode, "check") && strcmp(a.mode, "schema") &&
          strcmp(a.mode, "rows") && strcmp(a.mode, "sql") && strcmp(a.mode, "indexes") &&
          strcmp(a.mode, "space");
    if (!(f = fopen(a.file, "rb")) || !rdump_load(&im, f, stdout, json)) {
        fprintf(stderr, "rdump: cannot read %s\n", a.file);
        if (f)
            fclose(f);
        return 2;
    }
    opened = rl_open(a.file, &o, &db) == RL_OK;
    if (opened) {
        rl_txn *t = NULL;
        if (rl_begin(db, RL_READ, &t) == RL_OK)
            rdump_walk_txn(&im, rl_txn_id(t)); /* walk what the library reads */
        a.passed_over = im.walk != im.newest;
        rl_rollback(t);
        if (!strcmp(a.mode, "summary") || !strcmp(a.mode, "indexes") || !strcmp(a.mode, "space")) {
            if (!(a.space = rdump_space_load(db))) {
                fprintf(stderr, "rdump: %s\n", rl_errmsg(db));
                rl_close(db);
                fclose(f);
                return 2;
            }
            rdump_space_roles(a.space, &im);
        }
    }
    if (!strcmp(a.mode, "summary"))
        status = rdump_summary(&im);
    else if (raw)
        status = raw_view(&im, &a);
    fclose(f);
    if (!raw && !opened) {
        if (json)
            printf("%s\"error\": ", !strcmp(a.mode, "summary") ? ",\n  " : "{");
        else
            printf("cannot open as a database: ");
        if (json) {
            rdump_json_str(stdout, rl_errmsg(db), strlen(rl_errmsg(db)));
            printf("\n}\n");
        } else
            printf("%s\n", rl_errmsg(db));
        rl_close(db);
        return !strcmp(a.mode, "summary") ? 1 : 2;
    }
    if (!raw)
        status = api_view(db, &a) || (!strcmp(a.mode, "summary") ? 0 : status);
    rdump_space_free(a.space);
    rl_close(db);
    return status;
}
