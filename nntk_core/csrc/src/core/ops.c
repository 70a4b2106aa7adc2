/* Matrix products: OpenBLAS (the scipy-openblas32 wheel) when built with
 * NNTK_BLAS, otherwise a portable C loop with the same contract. */
#include <string.h>

#include "core/internal.h"
#include "core/ops.h"

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

#ifndef NNTK_USE_BLAS
/* Portable path. Loop order i-p-j keeps the inner loop contiguous in B and C
 * (row-major) so the compiler can vectorise it; each C element is accumulated
 * in k order. */
static void gemm_portable(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                          const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                          float *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++) {
        float *c_row = c + i * ldc; /* (N,) */
        if (beta == 0.0f) {
            memset(c_row, 0, (size_t)n * sizeof(float));
        } else if (beta != 1.0f) {
            for (int64_t j = 0; j < n; j++) c_row[j] *= beta;
        }
        for (int64_t p = 0; p < k; p++) {
            float a_ip = alpha * (trans_a ? a[p * lda + i] : a[i * lda + p]);
            if (!trans_b) {
                const float *b_row = b + p * ldb; /* (N,) */
                for (int64_t j = 0; j < n; j++) c_row[j] += a_ip * b_row[j];
            } else {
                for (int64_t j = 0; j < n; j++) c_row[j] += a_ip * b[j * ldb + p];
            }
        }
    }
}
#endif

void nntk_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) { /* empty product: C = beta * C */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
#ifdef NNTK_USE_BLAS
    NNTK_SGEMM(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
               (blasint)m, (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta, c,
               (blasint)ldc);
#else
    gemm_portable(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

void nntk_sum_rows(int64_t rows, int64_t n, const float *x, float *out, int accumulate) {
    if (!accumulate) memset(out, 0, (size_t)n * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * n; /* (N,) */
        for (int64_t j = 0; j < n; j++) out[j] += row[j];
    }
}
