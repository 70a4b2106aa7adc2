/* How fast one core reads a block of floats that stays in its caches: the floor under a
 * batch-1 product, which reads each weight once per call (docs/bench/README.md).
 * Each pass multiplies-adds every float into 8 independent sums of 16 lanes, as the
 * one-row kernels do; the best of 5 timed rounds is printed per size.
 *   cc -std=c11 -O3 -march=native tools/read_rate.c -o read_rate && ./read_rate 24 242 768 1024 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef float v16 __attribute__((vector_size(64))); /* zmm, or two ymm/xmm */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* One pass over a[0 .. n) (n a multiple of 128 floats) into sums[8]. */
static void pass(const v16 *a, size_t vectors, v16 sums[8], v16 x) {
    for (size_t i = 0; i < vectors; i += 8)
        for (int j = 0; j < 8; j++) sums[j] += a[i + j] * x;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s KIB...\n", argv[0]);
        return 2;
    }
    for (int arg = 1; arg < argc; arg++) {
        const size_t kib = strtoul(argv[arg], NULL, 10);
        const size_t vectors = (kib * 1024 / sizeof(v16) + 7) / 8 * 8;
        if (vectors == 0) continue;
        v16 *a = aligned_alloc(64, vectors * sizeof(v16));
        if (a == NULL) return 1;
        for (size_t i = 0; i < vectors; i++)
            for (int l = 0; l < 16; l++) a[i][l] = 1e-3f * (float)((i + l) % 7);
        v16 sums[8] = {0}, x = {0};
        x += 1.0001f;
        const size_t reps = 20000000 / vectors + 10;
        pass(a, vectors, sums, x); /* warm: into the caches */
        double best = 1e9;
        for (int round = 0; round < 5; round++) {
            const double t0 = now();
            for (size_t r = 0; r < reps; r++) pass(a, vectors, sums, x);
            const double t = (now() - t0) / (double)reps;
            best = t < best ? t : best;
        }
        float check = 0;
        for (int j = 0; j < 8; j++) check += sums[j][0];
        printf("%6zu KiB: %8.2f us per pass, %6.1f GB/s (checksum %g)\n", kib, best * 1e6,
               (double)(vectors * sizeof(v16)) / best / 1e9, check);
        free(a);
    }
    return 0;
}
