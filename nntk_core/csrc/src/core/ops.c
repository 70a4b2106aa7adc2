/* Matrix products and the kernel dispatch.
 *
 * nntk_matmul is always the library's own kernel (core/kernels_impl.inc):
 * a fixed, row-independent summation order, used wherever bits must not
 * depend on how many rows are batched (the recurrent layers' projections,
 * their streaming) and for every small product. nntk_gemm sends the large
 * products of training to OpenBLAS (the scipy-openblas32 wheel) when built
 * with NNTK_BLAS, and everything else to the own kernel. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blocking.h"
#include "core/internal.h"
#include "core/kernels.h"
#include "core/ops.h"
#include "core/threads.h"
#include "nntk/runtime.h"

#ifdef NNTK_USE_BLAS
#include <cblas.h>
/* scipy-openblas32 prefixes every symbol with "scipy_" so that it can never
 * clash with another BLAS loaded into the same Python process. */
#define NNTK_SGEMM scipy_cblas_sgemm
#endif

NNTK_API const char *NNTKBackend(void) {
#ifdef NNTK_USE_BLAS
    return "openblas";
#else
    return "portable";
#endif
}

/* --- kernel table ------------------------------------------------------------------------- */

static const NNTKKernels *choose_kernels(void) {
    const NNTKKernels *best = &nntk_kernels_generic;
#if defined(__x86_64__) && defined(NNTK_X86_KERNELS) && defined(__GNUC__)
    __builtin_cpu_init();
    /* GCOVR_EXCL_BR_START: the CPU's features decide, not the inputs */
    const int has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const int has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f") &&
                           __builtin_cpu_supports("avx512vl") &&
                           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
    const char *forced = getenv("NNTK_ISA");
    if (has_avx512 && !(forced && (strcmp(forced, "avx2") == 0 || strcmp(forced, "generic") == 0)))
        best = &nntk_kernels_avx512;
    else if (has_avx2 && !(forced && strcmp(forced, "generic") == 0))
        best = &nntk_kernels_avx2;
    /* GCOVR_EXCL_BR_STOP */
#endif
    return best;
}

const NNTKKernels *nntk_kernels(void) {
    /* Chosen once; first callers racing both store the same pointer. */
    static _Atomic(const NNTKKernels *) chosen = NULL;
    const NNTKKernels *k = atomic_load_explicit(&chosen, memory_order_acquire);
    if (k == NULL) {
        k = choose_kernels();
        atomic_store_explicit(&chosen, k, memory_order_release);
    }
    return k;
}

NNTK_API const char *NNTKKernelISA(void) { return nntk_kernels()->name; }

void nntk_matmul(int trans_a, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                 const float *b, int64_t ldb, const float *bias, int accumulate, float *c,
                 int64_t ldc) {
    nntk_kernels()->matmul(trans_a, m, n, k, a, lda, b, ldb, bias, accumulate, c, ldc);
}

/* --- nntk_gemm ------------------------------------------------------------------------------ */

#ifdef NNTK_USE_BLAS
/* Products with at least this many multiply-adds go to OpenBLAS. Below it
 * (every per-step product of the recurrent layers, every inference product
 * of the workloads nntk targets) OpenBLAS's call and threading overhead
 * dominate, and the own kernel is as fast. */
#define BLAS_MIN_MACS ((int64_t)1 << 21)

extern void scipy_openblas_set_num_threads(int);

/* OpenBLAS always runs on one thread: its own threads split a product into parts
 * whose bits depend on the split on some CPUs (its Haswell kernels, which it also
 * runs on AMD EPYC), and nntk's pool splits the products itself (nntk_gemm). One
 * thread is also the faster for nntk's small sequential products (GRU B=1 T=200
 * U=32 inference: 0.55 ms threaded, 0.24 ms not). */
static void blas_threads_once(void) {
    /* done: 0 not set, 1 one caller is setting it, 2 set. Every caller waits for
     * 2, so no product from any thread starts before the setting is made nor
     * runs while OpenBLAS changes it (the first callers may race: ci/tsan.sh). */
    static atomic_int done = 0;
    if (atomic_load_explicit(&done, memory_order_acquire) == 2) return;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&done, &expected, 1)) {
        while (atomic_load_explicit(&done, memory_order_acquire) != 2) {
        }
        return;
    }
    scipy_openblas_set_num_threads(1);
    atomic_store_explicit(&done, 2, memory_order_release);
}
#endif

/* Own-kernel product with op(B) = Bᵀ: B (N, K) is packed a panel at a time
 * into a stack buffer (no allocation), the K chunks continuing each
 * element's chain through C. */
#define PACK_N NNTK_PACK_N /* core/blocking.h */
#define PACK_K NNTK_PACK_K
static void matmul_trans_b(int trans_a, int64_t m, int64_t n, int64_t k, const float *a,
                           int64_t lda, const float *b, int64_t ldb, int accumulate, float *c,
                           int64_t ldc) {
    float panel[PACK_K * PACK_N]; /* (kc, w) */
    const int64_t a_col = trans_a ? lda : 1;
    for (int64_t j0 = 0; j0 < n; j0 += PACK_N) {
        const int64_t w = n - j0 < PACK_N ? n - j0 : PACK_N;
        for (int64_t p0 = 0; p0 < k; p0 += PACK_K) {
            const int64_t kc = k - p0 < PACK_K ? k - p0 : PACK_K;
            for (int64_t jj = 0; jj < w; jj++) {
                const float *src = b + (j0 + jj) * ldb + p0; /* (kc,) */
                for (int64_t p = 0; p < kc; p++) panel[p * w + jj] = src[p];
            }
            nntk_matmul(trans_a, m, w, kc, a + p0 * a_col, lda, panel, w, NULL,
                        p0 == 0 ? accumulate : 1, c + j0, ldc);
        }
    }
}

/* One product on the backend chosen for it (blas: OpenBLAS, else the own kernel).
 * Every caller passes alpha = 1 and beta 0 or 1 (ops.h), and m, n, k >= 1 (sizes the
 * layers validated), so the own kernel's accumulate flag says all that beta says. */
static void gemm_on(int blas, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                    float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                    float beta, float *c, int64_t ldc) {
#ifdef NNTK_USE_BLAS
    if (blas) {
        blas_threads_once();
        NNTK_SGEMM(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
               (blasint)m, (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta, c,
               (blasint)ldc);
        return;
    }
#else
    (void)blas;
    (void)alpha; /* 1 */
#endif
    const int accumulate = beta == 1.0f;
    if (trans_b)
        matmul_trans_b(trans_a, m, n, k, a, lda, b, ldb, accumulate, c, ldc);
    else
        nntk_matmul(trans_a, m, n, k, a, lda, b, ldb, NULL, accumulate, c, ldc);
}

/* The pool splits products and sums by output columns (docs/threads.md), only
 * those of at least NNTK_SPLIT_MIN_WORK multiply-adds (a dispatch costs microseconds),
 * in units of `width` columns (the last unit takes the remainder). The backend is
 * chosen for the whole product, and each element of C keeps its whole chain over
 * k: the own kernel's contract (ops.h), so any column split gives the same bits.
 *
 * OpenBLAS makes no such promise: a column's bits depend on the columns of the call
 * that computes it (measured on its Haswell kernels, on AMD EPYC: a 40x192x3200
 * product made as two calls of 96 columns differs from one call in the 16 columns
 * around the seam; on its SkylakeX kernels it did not for calls of >= 2^21
 * multiply-adds). So an OpenBLAS product is always made as the same calls, whatever
 * the thread count: calls of `width` columns from column 0, the remainder one more
 * call, and the pool's parts are whole calls. `width` depends on the product's shape
 * only: up to BLAS_MAX_CALLS calls (each call packs the shared operand A again: 4
 * calls cost ~10 % over one at 256x1024x3200, 2 calls ~3 % at 64x192x3200), each of
 * at least BLAS_MIN_CALL_COLUMNS columns and BLAS_MIN_MACS multiply-adds, in
 * multiples of SPLIT_COLUMNS. */
#define SPLIT_COLUMNS 32
#ifdef NNTK_USE_BLAS
#define BLAS_MAX_CALLS 4
#define BLAS_MIN_CALL_COLUMNS 64

static int64_t blas_call_columns(int64_t m, int64_t n, int64_t k) {
    int64_t calls = 1;
    while (calls < BLAS_MAX_CALLS && n / (2 * calls) >= BLAS_MIN_CALL_COLUMNS &&
           m * k * (n / (2 * calls)) >= BLAS_MIN_MACS)
        calls *= 2;
    if (calls == 1) return n;
    /* rounded down, so that n holds `calls` whole units (the pool's parts) */
    return n / calls / SPLIT_COLUMNS * SPLIT_COLUMNS;
}
#endif

typedef struct {
    int blas, trans_a, trans_b;
    int64_t m, k, lda, ldb, ldc;
    int64_t width; /* the columns of one OpenBLAS call */
    float alpha, beta;
    const float *a, *b;
    float *c;
} Product;

/* C's columns j0..j1 (j0 a multiple of p->width): the own kernel in one call,
 * OpenBLAS in its fixed calls of p->width columns. */
static void product_columns(void *context, int64_t j0, int64_t j1) {
    const Product *p = context;
    const int64_t step = p->blas ? p->width : j1 - j0;
    for (int64_t c0 = j0; c0 < j1; c0 += step) {
        const int64_t c1 = j1 - c0 < step ? j1 : c0 + step;
        /* op(B)'s columns c0..c1: B's columns (K, N), or B's rows (N, K) when trans_b */
        const float *b = p->b + (p->trans_b ? c0 * p->ldb : c0);
        gemm_on(p->blas, p->trans_a, p->trans_b, p->m, c1 - c0, p->k, p->alpha, p->a, p->lda, b,
                p->ldb, p->beta, p->c + c0, p->ldc);
    }
}

int nntk_gemm_own_kernel(int64_t m, int64_t n, int64_t k) {
#ifdef NNTK_USE_BLAS
    return m * n * k < BLAS_MIN_MACS;
#else
    (void)m, (void)n, (void)k;
    return 1;
#endif
}

void nntk_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc) {
    const int blas = !nntk_gemm_own_kernel(m, n, k);
    int64_t width = SPLIT_COLUMNS;
#ifdef NNTK_USE_BLAS
    if (blas) width = blas_call_columns(m, n, k); /* the parts are whole calls */
#endif
    Product p = {blas, trans_a, trans_b, m, k, lda, ldb, ldc, width, alpha, beta, a, b, c};
    nntk_split_columns(m * n * k, n, width, product_columns, &p);
}

/* Sums in double (SUM_BLOCK columns at a time, the accumulators on the stack):
 * a bias gradient sums B·T rows, and a float32 running sum over thousands of
 * them loses digits that Keras's tree reduction keeps (its error was 15.6x
 * Keras's on Dense's bias; in double it is one final rounding). Each column's
 * sum is its own chain, so the pool may split the columns. */
enum { SUM_BLOCK = NNTK_SUM_BLOCK }; /* core/blocking.h */

typedef struct {
    int64_t rows, n;
    const float *x;
    float *out;
    int accumulate;
} Sum;

static void sum_columns(void *context, int64_t c0, int64_t c1) {
    const Sum *p = context;
    for (int64_t j0 = c0; j0 < c1; j0 += SUM_BLOCK) {
        const int64_t width = c1 - j0 < SUM_BLOCK ? c1 - j0 : SUM_BLOCK;
        double acc[SUM_BLOCK];
        for (int64_t j = 0; j < width; j++) acc[j] = p->accumulate ? (double)p->out[j0 + j] : 0.0;
        int64_t r = 0;
        /* Four rows per pass over acc: the same additions in the same order (so the
         * same bits) for a quarter of acc's loads and stores. */
        for (; r + 4 <= p->rows; r += 4) {
            const float *x0 = p->x + r * p->n + j0, *x1 = x0 + p->n; /* (width,) each */
            const float *x2 = x1 + p->n, *x3 = x2 + p->n;
            for (int64_t j = 0; j < width; j++)
                acc[j] = (((acc[j] + (double)x0[j]) + (double)x1[j]) + (double)x2[j]) + (double)x3[j];
        }
        for (; r < p->rows; r++) {
            const float *row = p->x + r * p->n + j0; /* (width,) */
            for (int64_t j = 0; j < width; j++) acc[j] += (double)row[j];
        }
        for (int64_t j = 0; j < width; j++) p->out[j0 + j] = (float)acc[j];
    }
}

void nntk_sum_rows(int64_t rows, int64_t n, const float *x, float *out, int accumulate) {
    Sum p = {rows, n, x, out, accumulate};
    nntk_split_columns(rows * n, n, SPLIT_COLUMNS, sum_columns, &p);
}

void nntk_transpose(int64_t rows, int64_t cols, const float *src, float *dst) {
    /* In 16 x 16 blocks: a block's 16 destination rows stay in cache while it is
     * written, where a whole column of dst at a time writes one float per line. */
    enum { BLOCK = 16 };
    for (int64_t i0 = 0; i0 < rows; i0 += BLOCK) {
        const int64_t i1 = rows - i0 < BLOCK ? rows : i0 + BLOCK;
        for (int64_t j0 = 0; j0 < cols; j0 += BLOCK) {
            const int64_t j1 = cols - j0 < BLOCK ? cols : j0 + BLOCK;
            for (int64_t i = i0; i < i1; i++)
                for (int64_t j = j0; j < j1; j++) dst[j * rows + i] = src[i * cols + j];
        }
    }
}

/* --- the blocking constants ----------------------------------------------------------------- */

/* Appends one "name=value" line to text[size] (as much as fits; text may be NULL when
 * size is 0) and counts its whole length in *length. */
static void add_line(char *text, size_t size, size_t *length, const char *prefix,
                     const char *name, long long value) {
    const size_t room = *length < size ? size - *length : 0;
    const int n = snprintf(room ? text + *length : NULL, room, "%s%s=%lld\n", prefix, name, value);
    if (n > 0) *length += (size_t)n;
}

static void describe_table(char *text, size_t size, size_t *length, const NNTKKernels *k) {
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%s.", k->name);
    add_line(text, size, length, prefix, "k_block", k->k_block);
    add_line(text, size, length, prefix, "vector", k->vector);
    add_line(text, size, length, prefix, "tile_rows", k->tile_rows);
    add_line(text, size, length, prefix, "tile_cols", k->tile_cols);
    add_line(text, size, length, prefix, "row_cols", k->row_cols);
    add_line(text, size, length, prefix, "row_k_block", k->row_k_block);
    add_line(text, size, length, prefix, "cell_block", k->cell_block);
    add_line(text, size, length, prefix, "packed_stride", k->packed_stride);
}

NNTK_API const char *NNTKKernelConstants(void) {
    /* Thread-local: the library keeps no writable process-wide data but its declared
     * atomics (tests/test_determinism.py), and each thread gets a whole text. */
    static _Thread_local char buffer[2048];
    const size_t size = sizeof buffer;
    size_t length = 0;
    add_line(buffer, size, &length, "", "pack_n", NNTK_PACK_N);
    add_line(buffer, size, &length, "", "pack_k", NNTK_PACK_K);
    add_line(buffer, size, &length, "", "sum_block", NNTK_SUM_BLOCK);
    add_line(buffer, size, &length, "", "recurrent_panel", NNTK_RECURRENT_PANEL);
    add_line(buffer, size, &length, "", "recurrent_panel_min_steps",
             NNTK_RECURRENT_PANEL_MIN_STEPS);
    add_line(buffer, size, &length, "", "recurrent_projection_steps",
             NNTK_RECURRENT_PROJECTION_STEPS);
    add_line(buffer, size, &length, "", "bidirectional_chunk_steps",
             NNTK_BIDIRECTIONAL_CHUNK_STEPS);
    add_line(buffer, size, &length, "", "batch_norm_channel_block",
             NNTK_BATCH_NORM_CHANNEL_BLOCK);
#ifdef NNTK_USE_BLAS
    add_line(buffer, size, &length, "", "blas_min_macs", BLAS_MIN_MACS);
#endif
    describe_table(buffer, size, &length, &nntk_kernels_generic);
#if defined(__x86_64__) && defined(NNTK_X86_KERNELS) && defined(__GNUC__)
    describe_table(buffer, size, &length, &nntk_kernels_avx2);
    describe_table(buffer, size, &length, &nntk_kernels_avx512);
#endif
    return buffer;
}
