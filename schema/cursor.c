/*
** schema/cursor.c: scans over a table's rows in id order: an iterator over
** the leaves of the table's B+tree. The record of the current row points
** into the pinned leaf until the next step.
*/
#include <string.h>

#include "schema.h"

int rl__scan_open(rl__stx *s, int table, rl__scan *sc)
{
    rl__tstate st;
    int rc;
    memset(sc, 0, sizeof *sc);
    sc->s = s;
    sc->table = table;
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
