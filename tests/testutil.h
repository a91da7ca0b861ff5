/*
** tests/testutil.h: helpers shared by the test programs: a private
** temporary directory per program, file byte helpers, and the "quick"
** switch (RL_TEST_QUICK=1, used under Valgrind) that shrinks loop counts.
*/
#ifndef RL_TESTUTIL_H
#define RL_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Create the program's temporary directory (removed at exit). */
void tu_setup_dir(const char *prog);
/* A path inside that directory; the returned string lives until exit. */
const char *tu_path(const char *name);
/* n, or a much smaller count in quick mode. */
long tu_scale(long n);
int tu_quick(void);
/* Whole-file helpers; tu_read_file returns malloc'd bytes (*n = size). */
uint8_t *tu_read_file(const char *path, size_t *n);
void tu_write_at(const char *path, uint64_t off, const void *buf, size_t n);
void tu_read_at(const char *path, uint64_t off, void *buf, size_t n);
uint64_t tu_file_size(const char *path);
/* Deterministic pseudo-random numbers (xorshift64*). */
uint64_t tu_rand(uint64_t *state);

#endif
