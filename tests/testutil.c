/*
** tests/testutil.c: see testutil.h. Test-only; never linked into the
** library.
*/
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static char tu_dir[512];
static char *tu_paths[4096];
static int tu_npaths;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void tu_cleanup(void)
{
    if (tu_dir[0] && !getenv("RL_TEST_KEEP"))
        nftw(tu_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    for (int i = 0; i < tu_npaths; i++)
        free(tu_paths[i]);
}

void tu_setup_dir(const char *prog)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tu_dir, sizeof tu_dir, "%s/rl-%s-XXXXXX", base, prog);
    if (!mkdtemp(tu_dir)) {
        perror("mkdtemp");
        exit(2);
    }
    atexit(tu_cleanup);
}

const char *tu_path(const char *name)
{
    size_t n = strlen(tu_dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p || tu_npaths == (int)(sizeof tu_paths / sizeof *tu_paths))
        abort();
    snprintf(p, n, "%s/%s", tu_dir, name);
    tu_paths[tu_npaths++] = p;
    return p;
}

int tu_quick(void)
{
    const char *q = getenv("RL_TEST_QUICK");
    return q && *q && *q != '0';
}

long tu_scale(long n)
{
    return tu_quick() ? (n / 20 > 1 ? n / 20 : 1) : n;
}

uint8_t *tu_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long size;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)size + 1);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *n = (size_t)size;
    return buf;
}

void tu_write_at(const char *path, uint64_t off, const void *buf, size_t n)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0 || pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
        abort();
    close(fd);
}

void tu_read_at(const char *path, uint64_t off, void *buf, size_t n)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0 || pread(fd, buf, n, (off_t)off) != (ssize_t)n)
        abort();
    close(fd);
}

uint64_t tu_file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    return (uint64_t)st.st_size;
}

uint64_t tu_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(0x2545F4914F6CDD1D);
}
