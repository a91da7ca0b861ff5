/*
** fuzz/replay.c: a main for a fuzz target without libFuzzer. It feeds each
** file named on the command line (a directory: each file in it) to the
** target's LLVMFuzzerTestOneInput once. `make check` builds every target
** this way with the ordinary compiler and replays the seed corpus and
** tests/fuzz-regressions/ (every input that once crashed a target), so
** those inputs run in every test pass, under ASan in `make asan` and under
** Valgrind in `make valgrind`, not only when libFuzzer runs.
** An input that runs past REPLAY_LIMIT_S (a hang, like libFuzzer's
** -timeout, but generous enough for Valgrind) fails the replay.
*/
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#define REPLAY_LIMIT_S 120

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *current; /* the input being fed, for the hang report */

static void on_alarm(int sig)
{
    static const char msg[] = "replay: an input hangs (over REPLAY_LIMIT_S seconds): ";
    (void)sig;
    (void)!write(2, msg, sizeof msg - 1);
    (void)!write(2, current, strlen(current));
    (void)!write(2, "\n", 1);
    _exit(2);
}

/* Feed one file; 0 if it cannot be read. */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    long n;
    int ok = 0;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (data = malloc((size_t)n + 1)) != NULL && fread(data, 1, (size_t)n, f) == (size_t)n) {
        current = path;
        alarm(REPLAY_LIMIT_S);
        LLVMFuzzerTestOneInput(data, (size_t)n);
        alarm(0);
        ok = 1;
    }
    if (f)
        fclose(f);
    free(data);
    if (!ok)
        fprintf(stderr, "replay: cannot read %s\n", path);
    return ok;
}

/* Files directly in dir, or dir itself if it is a file; -1 on error. */
static int replay_path(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *e;
    int n = 0;
    if (stat(path, &st) != 0)
        return 0; /* a target with no regressions yet has no directory */
    if (!S_ISDIR(st.st_mode))
        return replay_file(path) ? 1 : -1;
    if (!(d = opendir(path)))
        return -1;
    while ((e = readdir(d)) != NULL) {
        char full[4096];
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "README.md"))
            continue;
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        if (!replay_file(full)) {
            closedir(d);
            return -1;
        }
        n++;
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    int total = 0;
    signal(SIGALRM, on_alarm);
    for (int i = 1; i < argc; i++) {
        int n = replay_path(argv[i]);
        if (n < 0)
            return 1;
        total += n;
    }
    printf("%s: %d inputs replayed\n", argv[0], total);
    return 0;
}
