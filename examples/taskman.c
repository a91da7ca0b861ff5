/*
** examples/taskman.c: a command-line task manager on one relatable file.
**
**   taskman FILE                       the dashboard
**   taskman FILE project ID            a project with its tasks and assignees
**   taskman FILE task ID               a task with its comments and authors
**   taskman FILE search TEXT           projects, tasks and people matching TEXT
**   taskman FILE add PROJECT TITLE PRIORITY
**   taskman FILE status TASK STATUS    todo, doing or done
**   taskman FILE delete TASK           (its comments go with it)
**   taskman FILE check                 rl_check: every index against its table
**
** The first run creates the file and fills it with sample data. Under each
** view it prints the relatable calls that produced it and their plans, so
** you can see which index did the work.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relatable.h"

static rl_db *db;

static void die(int rc, const char *what)
{
    fprintf(stderr, "taskman: %s: %s: %s\n", what, rl_errname(rc), rl_errmsg(db));
    exit(1);
}

#define CHECK(what, call)                                                      \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != RL_OK)                                                      \
            die(rc_, what);                                                    \
    } while (0)

static const char *str(const rl_row *row, const char *col)
{
    const char *s = rl_row_bytes(row, rl_row_col(row, col), NULL);
    return s ? s : "-";
}

static int64_t num(const rl_row *row, const char *col)
{
    return rl_row_int(row, rl_row_col(row, col));
}

static void how(const char *call, const char *plan)
{
    printf("    via %s: %s\n", call, plan);
}

/* ---- the schema and the sample data ------------------------------------------ */

static void create(void)
{
    static const rl_column users[] = {
        {"name", RL_TTEXT, 0, RL_NOT_NULL, NULL, 0},
        {"email", RL_TCHAR, 64, RL_UNIQUE, NULL, 0},
    };
    static const rl_column projects[] = {
        {"owner", RL_TINTEGER, 0, RL_NOT_NULL, "users", RL_FK_RESTRICT},
        {"name", RL_TTEXT, 0, RL_NOT_NULL, NULL, 0},
        {"status", RL_TTEXT, 0, RL_NOT_NULL, NULL, 0},
        {"description", RL_TTEXT, 0, 0, NULL, 0},
    };
    static const rl_column tasks[] = {
        {"project", RL_TINTEGER, 0, RL_NOT_NULL, "projects", RL_FK_CASCADE},
        {"assignee", RL_TINTEGER, 0, 0, "users", RL_FK_SET_NULL},
        {"title", RL_TTEXT, 0, RL_NOT_NULL, NULL, 0},
        {"status", RL_TTEXT, 0, RL_NOT_NULL, NULL, 0},
        {"priority", RL_TINTEGER, 0, RL_NOT_NULL, NULL, 0},
        {"due", RL_TCHAR, 10, 0, NULL, 0},
        {"hours", RL_TREAL, 0, 0, NULL, 0},
        {"description", RL_TTEXT, 0, 0, NULL, 0},
    };
    static const rl_column comments[] = {
        {"task", RL_TINTEGER, 0, RL_NOT_NULL, "tasks", RL_FK_CASCADE},
        {"author", RL_TINTEGER, 0, RL_NOT_NULL, "users", RL_FK_RESTRICT},
        {"body", RL_TTEXT, 0, RL_NOT_NULL, NULL, 0},
    };
    static const char *const people[][2] = {
        {"Ada Lovelace", "ada@example.org"}, {"Grace Hopper", "grace@example.org"},
        {"Edsger Dijkstra", "edsger@example.org"}, {"Barbara Liskov", "barbara@example.org"}};
    static const struct {
        int owner;
        const char *name, *status, *desc;
    } projs[] = {
        {1, "Storage engine", "active", "Copy-on-write blocks, the block map and the freelist."},
        {2, "Website redesign", "active", "New look for the public site, with a design system."},
        {4, "Query planner", "planned", "Use indexes for ranges and ORDER BY."}};
    static const struct {
        int project, assignee;
        const char *title, *status;
        int prio;
        const char *due;
        double hours;
    } work[] = {{1, 1, "Design the block map", "done", 1, "2026-10-01", 6},
                {1, 3, "Write the freelist", "doing", 1, "2026-11-30", 8},
                {1, 0, "Measure fsync latency", "todo", 2, NULL, 2},
                {2, 2, "Design the colour palette", "doing", 2, "2026-12-05", 5},
                {2, 4, "Describe every page", "todo", 3, "2026-12-20", 3.5},
                {3, 4, "Plan range scans", "todo", 2, "2027-01-15", 12}};
    rl_txn *t;
    int64_t id;
    CHECK("begin", rl_begin(db, RL_WRITE, &t));
    CHECK("create users", rl_create_table(t, "users", users, 2));
    CHECK("create projects", rl_create_table(t, "projects", projects, 4));
    CHECK("create tasks", rl_create_table(t, "tasks", tasks, 8));
    CHECK("create comments", rl_create_table(t, "comments", comments, 3));
    CHECK("index tasks.status",
          rl_create_index(t, "tasks_status", "tasks", (const char *[]){"status"}, 1, 0));
    for (int i = 0; i < 4; i++)
        CHECK("add user", rl_insert(t, "users", (rl_value[]){rl_null(), rl_text(people[i][0]),
                                                             rl_text(people[i][1])}, 3, NULL));
    for (int i = 0; i < 3; i++)
        CHECK("add project",
              rl_insert(t, "projects", (rl_value[]){rl_null(), rl_int(projs[i].owner),
                                                    rl_text(projs[i].name),
                                                    rl_text(projs[i].status),
                                                    rl_text(projs[i].desc)}, 5, NULL));
    for (int i = 0; i < 6; i++)
        CHECK("add task",
              rl_insert(t, "tasks",
                        (rl_value[]){rl_null(), rl_int(work[i].project),
                                     work[i].assignee ? rl_int(work[i].assignee) : rl_null(),
                                     rl_text(work[i].title), rl_text(work[i].status),
                                     rl_int(work[i].prio), rl_text(work[i].due),
                                     rl_real(work[i].hours), rl_null()}, 9, &id));
    CHECK("add comment", rl_insert(t, "comments", (rl_value[]){rl_null(), rl_int(1), rl_int(2),
                                                   rl_text("Logical numbers keep chains cheap.")},
                                   4, NULL));
    CHECK("add comment", rl_insert(t, "comments", (rl_value[]){rl_null(), rl_int(1), rl_int(3),
                                                   rl_text("Measured: 4 blocks per change.")},
                                   4, NULL));
    CHECK("add comment", rl_insert(t, "comments", (rl_value[]){rl_null(), rl_int(2), rl_int(1),
                                                   rl_text("Reuse only after two commits.")},
                                   4, NULL));
    CHECK("commit", rl_commit(t));
    printf("created a new database with sample data\n\n");
}

/* ---- views -------------------------------------------------------------------------- */

static void dashboard(rl_txn *t)
{
    rl_query q = {0};
    rl_cursor *c;
    const rl_row *row;
    rl_join owner[] = {{"users", "projects.owner", 0}};
    rl_join recent[] = {{"projects", "tasks.project", 0}, {"users", "tasks.assignee", 1}};
    rl_order newest = {"id", 1};
    char plan[512];
    printf("PROJECTS\n");
    q.table = "projects";
    CHECK("projects", rl_join_open(t, &q, owner, 1, &c));
    while (rl_cursor_next(c, &row) == RL_OK) {
        rl_query open_q = {0};
        rl_cond *cond = rl_and(rl_cmp("project", RL_EQ, rl_int(num(row, "projects.id"))),
                               rl_cmp("status", RL_NE, rl_text("done")));
        uint64_t n = 0;
        open_q.table = "tasks";
        open_q.where = cond;
        CHECK("count", rl_query_count(t, &open_q, &n));
        printf("  #%lld %-20s %-8s owner %-16s %llu open task(s)\n",
               (long long)num(row, "projects.id"), str(row, "projects.name"),
               str(row, "projects.status"), str(row, "users.name"), (unsigned long long)n);
        rl_cond_free(cond);
    }
    rl_cursor_close(c);
    CHECK("explain", rl_join_explain(t, &q, owner, 1, plan, sizeof plan));
    how("rl_join_open", plan);
    {
        rl_query open_q = {0};
        rl_cond *cond = rl_and(rl_cmp("project", RL_EQ, rl_int(1)),
                               rl_cmp("status", RL_NE, rl_text("done")));
        open_q.table = "tasks";
        open_q.where = cond;
        CHECK("explain", rl_explain(t, &open_q, plan, sizeof plan));
        how("rl_query_count (per project)", plan);
        rl_cond_free(cond);
    }
    printf("RECENT TASKS\n");
    q.table = "tasks";
    q.order = &newest;
    q.norder = 1;
    q.limit = 4;
    CHECK("recent", rl_join_open(t, &q, recent, 2, &c));
    while (rl_cursor_next(c, &row) == RL_OK)
        printf("  #%lld %-28s %-6s p%lld  %-18s %s\n", (long long)num(row, "tasks.id"),
               str(row, "tasks.title"), str(row, "tasks.status"),
               (long long)num(row, "tasks.priority"), str(row, "projects.name"),
               str(row, "users.name"));
    rl_cursor_close(c);
    CHECK("explain", rl_join_explain(t, &q, recent, 2, plan, sizeof plan));
    how("rl_join_open", plan);
}

static void project(rl_txn *t, int64_t id)
{
    rl_query q = {0};
    rl_cursor *c;
    const rl_row *row;
    rl_row *p;
    rl_cond *cond = rl_cmp("id", RL_EQ, rl_int(id));
    rl_join js[] = {{"tasks", "tasks.project", 1}, {"users", "tasks.assignee", 1}};
    char plan[512];
    int rc = rl_get(t, "projects", id, &p);
    if (rc == RL_NOTFOUND) {
        printf("no project #%lld\n", (long long)id);
        rl_cond_free(cond);
        return;
    }
    CHECK("get", rc);
    printf("PROJECT #%lld %s (%s)\n  %s\n", (long long)id, str(p, "name"), str(p, "status"),
           str(p, "description"));
    rl_row_free(p);
    q.table = "projects";
    q.where = cond;
    CHECK("tasks", rl_join_open(t, &q, js, 2, &c));
    while (rl_cursor_next(c, &row) == RL_OK) {
        if (rl_row_is_null(row, rl_row_col(row, "tasks.id"))) {
            printf("  (no tasks)\n");
            continue;
        }
        printf("  #%lld %-28s %-6s p%lld due %-10s %4.1fh  %s\n", (long long)num(row, "tasks.id"),
               str(row, "tasks.title"), str(row, "tasks.status"),
               (long long)num(row, "tasks.priority"), str(row, "tasks.due"),
               rl_row_real(row, rl_row_col(row, "tasks.hours")),
               rl_row_is_null(row, rl_row_col(row, "users.id")) ? "(unassigned)"
                                                                  : str(row, "users.name"));
    }
    rl_cursor_close(c);
    CHECK("explain", rl_join_explain(t, &q, js, 2, plan, sizeof plan));
    how("rl_get, rl_join_open", plan);
    rl_cond_free(cond);
}

static void task(rl_txn *t, int64_t id)
{
    rl_query q = {0};
    rl_cursor *c;
    const rl_row *row;
    rl_cond *cond = rl_cmp("id", RL_EQ, rl_int(id));
    rl_join js[] = {{"projects", "tasks.project", 0}, {"comments", "comments.task", 1},
                    {"users", "comments.author", 1}};
    char plan[512];
    int first = 1;
    q.table = "tasks";
    q.where = cond;
    CHECK("task", rl_join_open(t, &q, js, 3, &c));
    while (rl_cursor_next(c, &row) == RL_OK) {
        if (first)
            printf("TASK #%lld %s [%s] in %s\n", (long long)id, str(row, "tasks.title"),
                   str(row, "tasks.status"), str(row, "projects.name"));
        first = 0;
        if (rl_row_is_null(row, rl_row_col(row, "comments.id")))
            printf("  (no comments)\n");
        else
            printf("  %s: %s\n", str(row, "users.name"), str(row, "comments.body"));
    }
    rl_cursor_close(c);
    if (first)
        printf("no task #%lld\n", (long long)id);
    CHECK("explain", rl_join_explain(t, &q, js, 3, plan, sizeof plan));
    how("rl_join_open", plan);
    rl_cond_free(cond);
}

static void search(rl_txn *t, const char *text)
{
    static const struct {
        const char *table, *column, *label;
    } where[] = {{"projects", "name", "project"}, {"tasks", "title", "task"},
                 {"users", "name", "person"}};
    char plan[512];
    int hits = 0;
    printf("SEARCH \"%s\"\n", text);
    for (int i = 0; i < 3; i++) {
        rl_query q = {0};
        rl_cursor *c;
        const rl_row *row;
        rl_cond *cond = rl_icontains(where[i].column, text);
        q.table = where[i].table;
        q.where = cond;
        CHECK("search", rl_query_open(t, &q, &c));
        while (rl_cursor_next(c, &row) == RL_OK) {
            printf("  %-8s #%lld %s\n", where[i].label, (long long)num(row, "id"),
                   str(row, where[i].column));
            hits++;
        }
        rl_cursor_close(c);
        CHECK("explain", rl_explain(t, &q, plan, sizeof plan));
        how("rl_query_open + rl_icontains", plan);
        rl_cond_free(cond);
    }
    printf("  %d match(es)\n", hits);
}

/* ---- changes ------------------------------------------------------------------------- */

static void change(int argc, char **argv)
{
    rl_txn *t;
    int64_t id;
    int rc;
    CHECK("begin", rl_begin(db, RL_WRITE, &t));
    if (strcmp(argv[2], "add") == 0 && argc == 6) {
        rc = rl_insert(t, "tasks",
                       (rl_value[]){rl_null(), rl_int(atoll(argv[3])), rl_null(), rl_text(argv[4]),
                                    rl_text("todo"), rl_int(atoll(argv[5])), rl_null(), rl_null(),
                                    rl_null()}, 9, &id);
        if (rc == RL_OK)
            printf("added task #%lld\n", (long long)id);
    } else if (strcmp(argv[2], "status") == 0 && argc == 5) {
        rl_row *row;
        rc = rl_get(t, "tasks", atoll(argv[3]), &row);
        if (rc == RL_OK) {
            rl_value vals[9];
            for (int c = 0; c < 9; c++)
                rl_row_get(row, c, &vals[c]);
            vals[4] = rl_text(argv[4]);
            rc = rl_update(t, "tasks", atoll(argv[3]), vals, 9);
            rl_row_free(row);
        }
        if (rc == RL_OK)
            printf("task #%s is now %s\n", argv[3], argv[4]);
    } else if (strcmp(argv[2], "delete") == 0 && argc == 4) {
        rc = rl_delete(t, "tasks", atoll(argv[3]));
        if (rc == RL_OK)
            printf("deleted task #%s and its comments\n", argv[3]);
    } else {
        rl_rollback(t);
        fprintf(stderr, "taskman: unknown command or wrong arguments (see the top of taskman.c)\n");
        exit(2);
    }
    if (rc != RL_OK) {
        printf("refused: %s (%s)\n", rl_errname(rc), rl_errmsg(db));
        rl_rollback(t);
        return;
    }
    CHECK("commit", rl_commit(t));
}

int main(int argc, char **argv)
{
    rl_txn *t;
    const char *name;
    if (argc < 2) {
        fprintf(stderr, "usage: taskman FILE [project ID | task ID | search TEXT | add PROJECT "
                        "TITLE PRIORITY | status TASK STATUS | delete TASK | check]\n");
        return 2;
    }
    CHECK("open", rl_open(argv[1], NULL, &db));
    CHECK("begin", rl_begin(db, RL_READ, &t));
    if (rl_table_at(t, 0, &name) == RL_NOTFOUND) {
        rl_rollback(t);
        create();
        CHECK("begin", rl_begin(db, RL_READ, &t));
    }
    if (argc == 2)
        dashboard(t);
    else if (strcmp(argv[2], "project") == 0 && argc == 4)
        project(t, atoll(argv[3]));
    else if (strcmp(argv[2], "task") == 0 && argc == 4)
        task(t, atoll(argv[3]));
    else if (strcmp(argv[2], "search") == 0 && argc == 4)
        search(t, argv[3]);
    else if (strcmp(argv[2], "check") == 0 && argc == 3) {
        char *report = NULL;
        int rc = rl_check(t, &report);
        printf("check: %s\n", rc == RL_OK ? "ok" : rl_errname(rc));
        if (report && *report)
            printf("%s", report);
        free(report);
    }
    else {
        rl_rollback(t);
        t = NULL;
        change(argc, argv);
    }
    rl_rollback(t);
    CHECK("close", rl_close(db));
    return 0;
}
