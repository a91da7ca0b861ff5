/*
** tests/apiutil.h: helpers of the public-API tests (test_api.c,
** test_model.c; test_query.c and test_concurrency.c use OK): opening a
** database, beginning a transaction, asserting a call succeeded, the
** users / projects / tasks schema.
*/
#ifndef RL_APIUTIL_H
#define RL_APIUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "relatable.h"

/* Assert that a call on db succeeds; on failure say why. */
#define OK(db, call)                                                           \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != RL_OK)                                                      \
            fail_msg("%s -> %s: %s", #call, rl_errname(rc_), rl_errmsg(db));   \
    } while (0)

/* Open name in the test directory: blocks of bs bytes, RL_SYNC_OFF, the
 * automatic vacuum at autovac (as rl_options); fresh: remove it first. */
rl_db *open_at(const char *name, uint32_t bs, double autovac, int fresh);
rl_txn *begin(rl_db *db, int mode);
/* Column col of row holds exactly the n bytes at p (and the terminator). */
void expect_bytes(const rl_row *row, int col, const void *p, size_t n);

/* users(name, email), projects(owner -> users, title, budget),
 * tasks(project -> projects CASCADE, parent -> tasks SET NULL, title,
 * body, prio, hours). */
extern const rl_column users_cols[2], projects_cols[3], tasks_cols[6];
void make_schema(rl_db *db, rl_txn *t);

#endif
