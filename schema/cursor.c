/*
** schema/cursor.c: scans over a table's rows in id order: an iterator over
** the leaves of the table's B+tree. The record of the current row points
** into the pinned leaf until the next step.
*/
#include <stddef.h>
#include <string.h>

#include "schema.h"

int rl__scan_open(rl__stx *s, int table, rl__scan *sc)
{
    rl__tstate st;
    int rc;
    sc->s = s; /* field by field: the iterator's last[] is 1 KiB */
    sc->table = table;
    sc->id = 0;
    sc->rec = NULL;
    sc->n = 0;
    sc->chained = 0;
    memset(&sc->it, 0, offsetof(rl__bt_iter, last));
    rc = rl__tbl_state(s, table, &st);
    if (rc == RL_OK)
        rc = rl__bt_seek(s->bt, st.tree, NULL, 0, &sc->it);
    return rc;
}

int rl__scan_next(rl__scan *sc)
{
    const uint8_t *k;
    size_t kn;
    int rc = rl__bt_next(&sc->it, &k, &kn, &sc->rec, &sc->n, &sc->chained);
    if (rc != RL_OK)
        return rc;
    if (rl__key_id(k, kn, &sc->id) != RL_OK)
        return RL__CORRUPT(sc->s->err, "table %s: a damaged row key of %zu bytes",
                           sc->s->cat->tables[sc->table].name, kn);
    return RL_OK;
}

void rl__scan_close(rl__scan *sc)
{
    rl__bt_iter_close(&sc->it);
}
