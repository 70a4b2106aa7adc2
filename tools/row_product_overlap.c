/* row_product_overlap.c: can the input projection hide inside W7a's read-bound
 * recurrent product? (AVX-512 hosts; docs/bench/README.md, "W7a and W7b at B = 1 on the
 * Zen 4 host".)
 *
 * Per step, best of 50 runs of 100 steps, thread CPU time:
 *   product            h (1, 256) · R (256, 768): 16-vector rows read in place in three
 *                      256-column blocks, as the avx512 table's one-row product does
 *                      (768 KiB, from L2);
 *   product + project  then x (1, 40) · W (40, 768) the same way (a step's projection as
 *                      a one-row product);
 *   fused              the product with a 4-row x 32-column projection tile's FMAs in
 *                      its loop (the first 40 rows of each block): half a step's
 *                      projection, in the product's idle FMA slots if it has any.
 *
 *   cc -std=c11 -O3 -march=native tools/row_product_overlap.c -o row_product_overlap
 */
#define _POSIX_C_SOURCE 200809L
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { U = 256, GU = 768, D = 40, BLOCK = 256, STEPS = 100, RUNS = 50 };

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define ZERO16(a) __m512 a[16]; for (int v = 0; v < 16; v++) a[v] = _mm512_setzero_ps()
#define FMA16(a, s, row) for (int v = 0; v < 16; v++) a[v] = _mm512_fmadd_ps(s, _mm512_loadu_ps((row) + 16 * v), a[v])
#define STORE16(out, a) for (int v = 0; v < 16; v++) _mm512_storeu_ps((out) + 16 * v, a[v])

/* c (GU) = a (K) · b (K, GU), K = k */
static void one_row(int k, const float *a, const float *b, float *c) {
    for (int j0 = 0; j0 < GU; j0 += BLOCK) {
        ZERO16(acc);
        for (int p = 0; p < k; p++) {
            const __m512 s = _mm512_set1_ps(a[p]);
            FMA16(acc, s, b + (size_t)p * GU + j0);
        }
        STORE16(c + j0, acc);
    }
}

/* one_row(U, h, r, c), and per block a 4 x 32 tile of x4 (4, D) · w (D, GU) at columns
 * `col` into proj (4, GU) */
static void fused(const float *h, const float *r, float *c, const float *x4, const float *w,
                  float *proj, int step) {
    for (int j0 = 0; j0 < GU; j0 += BLOCK) {
        ZERO16(acc);
        __m512 t[4][2];
        for (int i = 0; i < 4; i++) t[i][0] = t[i][1] = _mm512_setzero_ps();
        const int col = (step * 3 + j0 / BLOCK) * 32 % GU;
        for (int p = 0; p < U; p++) {
            const __m512 s = _mm512_set1_ps(h[p]);
            FMA16(acc, s, r + (size_t)p * GU + j0);
            if (p < D) {
                const float *wp = w + (size_t)p * GU + col;
                const __m512 w0 = _mm512_loadu_ps(wp), w1 = _mm512_loadu_ps(wp + 16);
                for (int i = 0; i < 4; i++) {
                    const __m512 xi = _mm512_set1_ps(x4[i * D + p]);
                    t[i][0] = _mm512_fmadd_ps(xi, w0, t[i][0]);
                    t[i][1] = _mm512_fmadd_ps(xi, w1, t[i][1]);
                }
            }
        }
        STORE16(c + j0, acc);
        for (int i = 0; i < 4; i++) {
            _mm512_storeu_ps(proj + i * GU + col, t[i][0]);
            _mm512_storeu_ps(proj + i * GU + col + 16, t[i][1]);
        }
    }
}

int main(void) {
    float *r = aligned_alloc(64, sizeof(float) * U * GU), *w = aligned_alloc(64, sizeof(float) * D * GU);
    float *proj = aligned_alloc(64, sizeof(float) * STEPS * GU);
    static float h[U], x[4 * D], c[GU];
    if (r == NULL || w == NULL || proj == NULL) return 1;
    for (int i = 0; i < U * GU; i++) r[i] = (float)rand() / (float)RAND_MAX * 1e-3f;
    for (int i = 0; i < D * GU; i++) w[i] = (float)rand() / (float)RAND_MAX;
    for (int i = 0; i < U; i++) h[i] = 0.5f;
    for (int i = 0; i < 4 * D; i++) x[i] = 0.25f;
    double best[3] = {1e9, 1e9, 1e9};
    for (int run = 0; run < RUNS; run++) {
        /* each step feeds its result into the next h, as a recurrence does */
        const double t0 = cpu_seconds();
        for (int s = 0; s < STEPS; s++) {
            one_row(U, h, r, c);
            h[s % U] += c[s] * 1e-9f;
        }
        const double t1 = cpu_seconds();
        for (int s = 0; s < STEPS; s++) {
            one_row(U, h, r, c);
            one_row(D, x, w, proj + (size_t)s * GU);
            h[s % U] += c[s] * 1e-9f;
        }
        const double t2 = cpu_seconds();
        for (int s = 0; s < STEPS; s++) {
            fused(h, r, c, x, w, proj, s);
            h[s % U] += c[s] * 1e-9f;
        }
        const double t3 = cpu_seconds();
        const double taken[3] = {t1 - t0, t2 - t1, t3 - t2};
        for (int i = 0; i < 3; i++)
            if (taken[i] < best[i]) best[i] = taken[i];
    }
    printf("per step: product %.2f us, product + project %.2f us, fused (half a step's projection) %.2f us\n",
           best[0] * 1e6 / STEPS, best[1] * 1e6 / STEPS, best[2] * 1e6 / STEPS);
    printf("(checksum %g)\n", (double)(h[0] + c[1] + proj[2]));
    return 0;
}
