/* The internal ops layer: every matrix product and every activation in the
 * library goes through here, so a backend (BLAS or the portable C path) is
 * swapped in one place. Row-major throughout. */
#ifndef NNTK_OPS_H
#define NNTK_OPS_H

#include <stdint.h>

#include "nntk/status.h"

/* C (M, N) = [C +] op(A) (M, K) · B (K, N) [+ bias (N,)], row-major, by the
 * library's own kernel (core/kernels.h): each element of C is one
 * sequential fma chain over k (from 0, or from C's value when accumulate),
 * then + bias[j] (bias may be NULL). A row of C depends only on the same row
 * of A, never on M: use this wherever results must not depend on how rows
 * are batched. op(A) = A (M, K), lda apart, or Aᵀ of A stored (K, M) when
 * trans_a. Rows of A may overlap (lda < K). M, N, K >= 1 (every caller's sizes are
 * validated ones). */
void nntk_matmul(int trans_a, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                 const float *b, int64_t ldb, const float *bias, int accumulate, float *c,
                 int64_t ldc);

/* C (M, N) = alpha * op(A) · op(B) + beta * C, all row-major, for alpha = 1 and
 * beta 0 or 1 only (the own kernel's accumulate flag: no caller needs more) and
 * M, N, K >= 1. Large products go to BLAS when built with it (summation order:
 * BLAS's own), the rest to nntk_matmul (beta == 1 then continues each element's
 * chain from C). op(A) is (M, K): A is (M, K) with leading dimension lda, or
 * (K, M) when trans_a. op(B) is (K, N): B is (K, N), or (N, K) when trans_b.
 * beta == 0 overwrites C (its old contents are never read). */
void nntk_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc);

/* 1 when nntk_gemm computes an M x N x K product with the own kernel (nntk_matmul's
 * bits: an element's chain does not depend on the other rows or columns, so a caller may
 * compute a product's rows or columns in parts), 0 when it goes to BLAS. */
int nntk_gemm_own_kernel(int64_t m, int64_t n, int64_t k);

/* dst (cols, rows) = src (rows, cols)ᵀ. */
void nntk_transpose(int64_t rows, int64_t cols, const float *src, float *dst);

/* out (N,) = sum over the `rows` rows of x (rows, N), or += when accumulate. */
void nntk_sum_rows(int64_t rows, int64_t n, const float *x, float *out, int accumulate);

/* y (rows, dim) = act(x); y may equal x. `dim` is the last axis (softmax
 * normalises over it; every other activation is elementwise). */
void nntk_activation_forward(NNTKActivationKind kind, int64_t rows, int64_t dim, const float *x,
                             float *y);

/* dx (rows, dim) = dy · act'(x), given the pre-activation x and y = act(x);
 * dx may equal dy. Follows TF's gradient conventions at kinks
 * (relu'(0) = 0, hard_sigmoid'(±2.5) = 0.2, elu'(0) = 1). */
void nntk_activation_backward(NNTKActivationKind kind, int64_t rows, int64_t dim, const float *x,
                              const float *y, const float *dy, float *dx);

/* The Keras names of the activations, indexed by NNTKActivationKind (the one
 * table: the layer descriptions' enum names come from it too). */
extern const char *const nntk_activation_names[NNTK_ACTIVATION_COUNT_];

#endif /* NNTK_OPS_H */
