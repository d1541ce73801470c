// The engine's own floor for the log-matching throughput scenario: Vectorscan alone, no Vigil, on the same
// generated log and patterns. Compiles the first N patterns of PATTERNS (one per line) into one block-mode
// database and scans LOG one line at a time (as Vigil does) or in 1 MiB buffers of whole lines.
//
//     hs-floor PATTERNS N FLAGS LOG per-line|buffer
//
// FLAGS is the Vectorscan flag word of every pattern (0x8 = HS_FLAG_SINGLEMATCH, Vigil's; 0x4 = MULTILINE
// for buffers). Prints compile time, lines/s and the match count.
#include <hs/hs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *context) {
    (void)id; (void)from; (void)to; (void)flags;
    (*(long *)context)++;
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: hs-floor PATTERNS N FLAGS LOG per-line|buffer\n");
        return 2;
    }
    int wanted = atoi(argv[2]);
    unsigned flags = (unsigned)strtoul(argv[3], 0, 0);
    int per_line = strcmp(argv[5], "per-line") == 0;
    FILE *pf = fopen(argv[1], "r");
    if (!pf) { perror(argv[1]); return 1; }
    char **patterns = calloc(wanted, sizeof *patterns);
    unsigned *all_flags = calloc(wanted, sizeof *all_flags), *ids = calloc(wanted, sizeof *ids);
    char line[8192];
    int count = 0;
    while (count < wanted && fgets(line, sizeof line, pf)) {
        line[strcspn(line, "\n")] = 0;
        patterns[count] = strdup(line);
        all_flags[count] = flags;
        ids[count] = count;
        count++;
    }
    hs_database_t *db;
    hs_compile_error_t *error;
    double t0 = now();
    if (hs_compile_multi((const char *const *)patterns, all_flags, ids, count, HS_MODE_BLOCK, NULL, &db, &error)) {
        fprintf(stderr, "compile: %s\n", error->message);
        return 1;
    }
    double compiled = now() - t0;
    hs_scratch_t *scratch = 0;
    hs_alloc_scratch(db, &scratch);
    FILE *lf = fopen(argv[4], "r");
    if (!lf) { perror(argv[4]); return 1; }
    fseek(lf, 0, SEEK_END);
    long size = ftell(lf);
    fseek(lf, 0, SEEK_SET);
    char *data = malloc(size);
    if (fread(data, 1, size, lf) != (size_t)size) { perror("read"); return 1; }
    long matches = 0, lines = 0;
    for (char *p = data; p < data + size; p++) lines += *p == '\n';
    double t1 = now();
    char *p = data, *end = data + size;
    while (p < end) {
        char *stop;
        if (per_line) {
            stop = memchr(p, '\n', end - p);
            if (!stop) stop = end;
        } else {
            stop = p + (1 << 20) < end ? p + (1 << 20) : end;
            while (stop < end && *stop != '\n') stop++;
        }
        hs_scan(db, p, (unsigned)(stop - p), 0, scratch, on_match, &matches);
        p = stop + 1;
    }
    double scanned = now() - t1;
    printf("N=%d flags=%#x %s: compile %.3f s, %.2f M lines/s, %ld matches\n", count, flags, argv[5], compiled,
           lines / scanned / 1e6, matches);
    return 0;
}
