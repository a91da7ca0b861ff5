/*
** relatable.h: the one public header of relatable, an embedded relational
** database whose whole database is a single file.
**
** This header is the reference manual. Every call returns an int result
** code: RL_OK (0) on success, otherwise one of the codes below. Codes are
** never renumbered; new codes are only ever appended.
**
** The relational API (databases, tables, rows) arrives with the relational
** core; today the header carries the result codes shared by every layer.
*/
#ifndef RELATABLE_H
#define RELATABLE_H

#ifdef __cplusplus
extern "C" {
#endif

#define RL_VERSION_STRING "0.1.0"
#define RL_VERSION_NUMBER 100 /* major * 10000 + minor * 100 + patch */

/*
** The result code table. Each row: name, number, message. This one table
** produces the enum, rl_strerror() and rl_errname(). Append only.
*/
#define RL_ERROR_TABLE(X)                                                    \
    X(RL_OK, 0, "not an error")                                              \
    X(RL_ERROR, 1, "unspecified error")                                      \
    X(RL_IOERR, 2, "input/output error")                                     \
    X(RL_CORRUPT, 3, "the database file is damaged")                         \
    X(RL_NOMEM, 4, "out of memory")                                          \
    X(RL_BUSY, 5, "the database is locked by another writer")                \
    X(RL_FULL, 6, "the database or disk is full")                            \
    X(RL_READONLY, 7, "attempt to write a read-only database or transaction") \
    X(RL_MISUSE, 8, "the library was called incorrectly")                    \
    X(RL_INVALID, 9, "invalid argument")                                     \
    X(RL_NOTFOUND, 10, "not found")                                          \
    X(RL_EXISTS, 11, "already exists")                                       \
    X(RL_RANGE, 12, "value or offset out of range")                          \
    X(RL_TOOBIG, 13, "value too large")                                      \
    X(RL_CANTOPEN, 14, "unable to open the database file")

/** Result codes. */
typedef enum rl_result {
#define RL__ENUM_ROW(name, num, msg) name = num,
    RL_ERROR_TABLE(RL__ENUM_ROW)
#undef RL__ENUM_ROW
} rl_result;

/**
 * rl_strerror - a fixed English sentence for a result code.
 * @code: any int; unknown codes give "unknown error code".
 * Returns a static string; never NULL.
 */
const char *rl_strerror(int code);

/**
 * rl_errname - the symbolic name of a result code ("RL_CORRUPT").
 * @code: any int; unknown codes give "RL_UNKNOWN".
 * Returns a static string; never NULL.
 */
const char *rl_errname(int code);

/** rl_version - the library version string, e.g. "0.1.0". */
const char *rl_version(void);

#ifdef __cplusplus
}
#endif
#endif /* RELATABLE_H */
