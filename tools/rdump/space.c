/*
** tools/rdump/space.c: where the blocks of each table and index go, through
** rl_space_of: the summary's table lines, --indexes and --space (alias
** --tombstones: relatable removes a deleted row's cell at once, so the
** space deletes leave is free bytes inside B+tree nodes, not tombstones).
** A table or index whose walk fails keeps its name and the error; the
** others are still shown.
*/
#include <stdlib.h>
#include <string.h>

#include "tools/rdump/rdump.h"

typedef struct entry {
    char *table, *index; /* index NULL: the table itself */
    char *columns;       /* an index's columns, "a, b" */
    int unique;
    int rc;      /* rl_space_of's result */
    char *error; /* its message when rc != RL_OK */
    rl_space sp;
} entry;

struct rdump_space {
    entry *e;
    int n, cap;
};

static char *copy(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static char *join(const char *const *cols, int n)
{
    size_t len = 1;
    char *out;
    for (int i = 0; i < n; i++)
        len += strlen(cols[i]) + 2;
    if (!(out = malloc(len)))
        return NULL;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i)
            strcat(out, ", ");
        strcat(out, cols[i]);
    }
    return out;
}

/* Append the space of table (index NULL) or of its index; 0 if out of memory. */
static int add(rdump_space *s, rl_db *db, rl_txn *t, const char *table, const char *index,
               const char *const *cols, int ncols, int unique)
{
    entry *e;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        entry *grown = realloc(s->e, (size_t)cap * sizeof *grown);
        if (!grown)
            return 0;
        s->e = grown;
        s->cap = cap;
    }
    e = &s->e[s->n];
    memset(e, 0, sizeof *e);
    e->unique = unique;
    e->rc = rl_space_of(t, table, index, &e->sp);
    e->table = copy(table);
    e->index = index ? copy(index) : NULL;
    e->columns = index ? join(cols, ncols) : NULL;
    e->error = e->rc != RL_OK ? copy(rl_errmsg(db)) : NULL;
    s->n++;
    return e->table && (!index || (e->index && e->columns)) && (e->rc == RL_OK || e->error);
}

rdump_space *rdump_space_load(rl_db *db)
{
    rdump_space *s = calloc(1, sizeof *s);
    rl_txn *t = NULL;
    const char *name, *ix, *const *cols;
    int unique, ncols, ok = s && rl_begin(db, RL_READ, &t) == RL_OK;
    for (int i = 0; ok && rl_table_at(t, i, &name) == RL_OK; i++) {
        ok = add(s, db, t, name, NULL, NULL, 0, 0);
        for (int k = 0; ok && rl_index_at(t, name, k, &ix, &unique, &cols, &ncols) == RL_OK; k++)
            ok = add(s, db, t, name, ix, cols, ncols, unique);
    }
    if (t)
        rl_rollback(t);
    if (!ok) {
        rdump_space_free(s);
        return NULL;
    }
    return s;
}

void rdump_space_free(rdump_space *s)
{
    for (int i = 0; s && i < s->n; i++) {
        free(s->e[i].table);
        free(s->e[i].index);
        free(s->e[i].columns);
        free(s->e[i].error);
    }
    if (s)
        free(s->e);
    free(s);
}

void rdump_space_roles(const rdump_space *s, image *im)
{
    im->roles_known = 1;
    for (int i = 0; i < s->n; i++) {
        if (s->e[i].rc != RL_OK)
            im->roles_known = 0; /* a tree could not be walked: no split */
        *(s->e[i].index ? &im->btree_indexes : &im->btree_tables) += s->e[i].sp.tree_blocks;
    }
}

/* Bytes in use over all bytes of a tree's nodes, in percent. */
static double fill(const rl_space *sp)
{
    uint64_t all = sp->bytes_used + sp->bytes_free;
    return all ? 100.0 * (double)sp->bytes_used / (double)all : 0.0;
}

static void json_space(FILE *o, const rl_space *sp)
{
    fprintf(o, "\"entries\": %llu, \"blocks\": %llu, \"tree_blocks\": %llu, \"leaf_blocks\": %llu, "
               "\"chain_blocks\": %llu, \"depth\": %u, \"bytes_used\": %llu, \"bytes_free\": %llu, "
               "\"vacuum_frees\": %llu",
            (unsigned long long)sp->entries, (unsigned long long)sp->blocks,
            (unsigned long long)sp->tree_blocks, (unsigned long long)sp->leaf_blocks,
            (unsigned long long)sp->chain_blocks, sp->depth, (unsigned long long)sp->bytes_used,
            (unsigned long long)sp->bytes_free, (unsigned long long)sp->vacuum_frees);
}

static void json_error(FILE *o, const entry *e)
{
    fprintf(o, "\"error\": ");
    rdump_json_str(o, e->error, strlen(e->error));
}

static void json_names(FILE *o, const entry *e);

/* One item of the --indexes and --space lists. */
static void json_entry(FILE *o, const entry *e, int first)
{
    fprintf(o, "%s\n  {", first ? "" : ",");
    json_names(o, e);
    if (e->rc != RL_OK)
        json_error(o, e);
    else
        json_space(o, &e->sp);
    fprintf(o, "}");
}

static void json_names(FILE *o, const entry *e)
{
    fprintf(o, "\"table\": ");
    rdump_json_str(o, e->table, strlen(e->table));
    if (e->index) {
        fprintf(o, ", \"index\": ");
        rdump_json_str(o, e->index, strlen(e->index));
        fprintf(o, ", \"columns\": ");
        rdump_json_str(o, e->columns, strlen(e->columns));
        fprintf(o, ", \"unique\": %s", e->unique ? "true" : "false");
    }
    fprintf(o, ", ");
}

int rdump_space_tables(const rdump_space *s, FILE *o, int json)
{
    int problems = 0, first = 1;
    if (!json)
        fprintf(o, "tables           %8s %8s %8s %6s %s\n", "rows", "blocks", "indexes", "fill",
                "vacuum would free");
    for (int i = 0; i < s->n; i++) {
        const entry *e = &s->e[i];
        uint64_t ix_blocks = 0, frees = e->sp.vacuum_frees;
        if (e->index)
            continue;
        for (int k = i + 1; k < s->n && s->e[k].index; k++) {
            ix_blocks += s->e[k].sp.blocks;
            frees += s->e[k].sp.vacuum_frees;
        }
        problems |= e->rc != RL_OK;
        if (json) {
            fprintf(o, "%s\n    {\"name\": ", first ? "" : ",");
            rdump_json_str(o, e->table, strlen(e->table));
            if (e->rc != RL_OK) {
                fprintf(o, ", ");
                json_error(o, e);
            } else
                fprintf(o, ", \"rows\": %llu, \"blocks\": %llu, \"index_blocks\": %llu, "
                           "\"fill\": %.4f, \"vacuum_frees\": %llu",
                        (unsigned long long)e->sp.entries, (unsigned long long)e->sp.blocks,
                        (unsigned long long)ix_blocks, fill(&e->sp) / 100.0,
                        (unsigned long long)frees);
            fprintf(o, "}");
        } else if (e->rc != RL_OK)
            fprintf(o, "  %-14s %s\n", e->table, e->error);
        else
            fprintf(o, "  %-14s %8llu %8llu %8llu %5.1f%% %llu blocks\n", e->table,
                    (unsigned long long)e->sp.entries, (unsigned long long)e->sp.blocks,
                    (unsigned long long)ix_blocks, fill(&e->sp), (unsigned long long)frees);
        first = 0;
    }
    if (json)
        fprintf(o, "%s", first ? "" : "\n  ");
    return problems;
}

int rdump_space_indexes(const rdump_space *s, FILE *o, int json)
{
    int problems = 0, first = 1;
    if (json)
        fprintf(o, "[");
    else
        fprintf(o, "%-24s %-14s %-20s %-6s %8s %7s %5s %6s\n", "index", "table", "columns",
                "unique", "keys", "blocks", "depth", "fill");
    for (int i = 0; i < s->n; i++) {
        const entry *e = &s->e[i];
        if (!e->index)
            continue;
        problems |= e->rc != RL_OK;
        if (json)
            json_entry(o, e, first);
        else if (e->rc != RL_OK)
            fprintf(o, "%-24s %-14s %s\n", e->index, e->table, e->error);
        else
            fprintf(o, "%-24s %-14s %-20s %-6s %8llu %7llu %5u %5.1f%%\n", e->index, e->table,
                    e->columns, e->unique ? "yes" : "no", (unsigned long long)e->sp.entries,
                    (unsigned long long)e->sp.blocks, e->sp.depth, fill(&e->sp));
        first = 0;
    }
    if (json)
        fprintf(o, "%s]\n", first ? "" : "\n");
    else if (first)
        fprintf(o, "(no indexes)\n");
    return problems;
}

int rdump_space_all(const rdump_space *s, FILE *o, int json)
{
    uint64_t used = 0, unused = 0, frees = 0;
    int problems = 0, first = 1;
    if (json)
        fprintf(o, "[");
    else
        fprintf(o, "%-32s %8s %7s %6s %6s %12s %12s %6s %s\n", "table or index", "entries",
                "blocks", "tree", "chains", "bytes used", "bytes free", "fill", "vacuum frees");
    for (int i = 0; i < s->n; i++) {
        const entry *e = &s->e[i];
        char name[160];
        problems |= e->rc != RL_OK;
        snprintf(name, sizeof name, "%s%s%s", e->index ? "  " : "", e->index ? e->index : e->table,
                 e->index ? " (index)" : "");
        if (json)
            json_entry(o, e, first);
        else if (e->rc != RL_OK)
            fprintf(o, "%-32s %s\n", name, e->error);
        else
            fprintf(o, "%-32s %8llu %7llu %6llu %6llu %12llu %12llu %5.1f%% %llu\n", name,
                    (unsigned long long)e->sp.entries, (unsigned long long)e->sp.blocks,
                    (unsigned long long)e->sp.tree_blocks, (unsigned long long)e->sp.chain_blocks,
                    (unsigned long long)e->sp.bytes_used, (unsigned long long)e->sp.bytes_free,
                    fill(&e->sp), (unsigned long long)e->sp.vacuum_frees);
        used += e->sp.bytes_used;
        unused += e->sp.bytes_free;
        frees += e->sp.vacuum_frees;
        first = 0;
    }
    if (json)
        fprintf(o, "%s]\n", first ? "" : "\n");
    else
        fprintf(o, "B+tree bytes: %llu used, %llu free (space deletes left); rl_vacuum would "
                   "give back about %llu blocks\n",
                (unsigned long long)used, (unsigned long long)unused, (unsigned long long)frees);
    return problems;
}
