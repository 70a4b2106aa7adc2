/* Compute kernels behind the ops layer, one table per instruction set.
 *
 * kernels_impl.inc is compiled once per instruction set (kernels_generic.c
 * for any CPU; on x86-64 also kernels_avx2.c with -mavx2 -mfma and
 * kernels_avx512.c with -mavx512f ...); nntk_kernels() picks the best table
 * the running CPU supports, once. No -march=native: the library stays
 * portable and the choice is made at run time. NNTK_ISA=generic|avx2|avx512
 * in the environment forces a table (a lower one than the CPU supports; used
 * by tests to run every path on one machine).
 *
 * Numerics (the same in every table, see docs/DESIGN.md §3):
 * - matmul: every element of C is one strictly sequential chain over k,
 *   acc = fma(a_ik, b_kj, acc) for k = 0..K-1 (the order TF's float32 MatMul
 *   uses), then + bias[j] as a separate rounding. The order never depends on
 *   M, on the row's position or on the blocking, so a row of C is a function
 *   of the same row of A alone: projecting T steps in one call gives the same
 *   bits as projecting them one call at a time (streaming relies on this).
 *   The SIMD tables use the FMA instruction; the generic table uses fmaf where
 *   the target has a fused multiply-add instruction (aarch64, or x86 built
 *   with -mfma), else a multiply and an add (two roundings).
 * - Everything elementwise is IEEE single operations without contraction
 *   (-ffp-contract=off), so it gives the same bits in every table.
 * - sigmoid and tanh are TF's float32 (Eigen packet) approximations
 *   (docs/KERAS_SEMANTICS.md §0.3, §0.4), branch-free so that they vectorise. */
#ifndef NNTK_KERNELS_H
#define NNTK_KERNELS_H

#include <stdint.h>

typedef struct NNTKKernels {
    const char *name; /* "generic", "avx2", "avx512" */

    /* The blocking of this table: the sizes at which its code paths change,
     * reported by NNTKKernelConstants() so the tests place shapes on each side. */
    int32_t k_block;    /* K is split into chunks of this depth */
    int32_t vector;     /* floats per vector: a row's last one is masked (SIMD tables) */
    int32_t tile_rows;  /* rows of C per tile (1: one row at a time) */
    int32_t tile_cols;  /* columns of C per tile */
    int32_t row_cols;   /* columns per block of a one-row product (M = 1) */
    int32_t row_k_block; /* K chunk of a one-row product wider than row_cols */
    int32_t cell_block; /* units per block of the fused GRU/LSTM cells */
    /* matmul copies each block of B into a contiguous one when B's rows are a
     * multiple of this many floats apart and two row tiles or more read it; 0: never */
    int32_t packed_stride;
    /* 1: at batch 1 the recurrent product reads the recurrent kernel from column
     * panels of NNTK_RECURRENT_PANEL (copied at the start of every call, core/recurrent.c);
     * 0: in place, row_cols columns at a time (avx512: its 16-vector rows read the
     * kernel in place faster than four-vector panels, and skip the copy). */
    int32_t recurrent_panels;

    /* C (M, N) = [C +] op(A) (M, K) · B (K, N) [+ bias (N,)], row-major.
     * op(A) = A (M, K) with leading dimension lda, or Aᵀ for A stored (K, M)
     * when trans_a. accumulate: the chain starts from C's value instead of 0.
     * bias (or NULL) is added after the chain. Rows of A may overlap (lda
     * smaller than K, e.g. convolution windows). M, N, K >= 1: no empty product
     * (every caller's sizes are validated ones). */
    void (*matmul)(int trans_a, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                   const float *b, int64_t ldb, const float *bias, int accumulate, float *c,
                   int64_t ldc);

    /* y (n,) = sigmoid(x) / tanh(x); y may equal x. */
    void (*sigmoid)(int64_t n, const float *x, float *y);
    void (*tanh)(int64_t n, const float *x, float *y);

    /* GRU cell, reset_after = 1, sigmoid gates and tanh candidate, one batch
     * row of U units. xp (3U) = x·W + b_in, hp (3U) = h_prev·R + b_rec.
     * z = σ(xz + hz), r = σ(xr + hr), ĥ = tanh(xh + r ⊙ hh),
     * h = z ⊙ h_prev + (1 − z) ⊙ ĥ. act (3U) = [z | r | ĥ] and rec (U) = hh
     * are written unless act is NULL (inference). */
    void (*gru_forward)(int64_t u, const float *xp, const float *hp, const float *h_prev,
                        float *act, float *rec, float *h);
    /* Its gradient for one row: g (U) the whole upstream gradient of h.
     * ax (3U) = [δz | δr | δĥ], ah (3U) = [δz | δr | δĥ ⊙ r],
     * dh_prev (U) = g ⊙ z (the recurrent product is added by the caller). */
    void (*gru_backward)(int64_t u, const float *g, const float *act, const float *rec,
                         const float *h_prev, float *ax, float *ah, float *dh_prev);

    /* LSTM cell, sigmoid gates and tanh, one row. xp (4U) = x·W,
     * hp (4U) = h_prev·R, bias (4U) or NULL: pre = (xp + hp) + bias;
     * i, f, o = σ, g = tanh; c = f ⊙ c_prev + i ⊙ g; h = o ⊙ tanh(c).
     * act (4U) = [i | f | g | o] is written unless act is NULL. */
    void (*lstm_forward)(int64_t u, const float *xp, const float *hp, const float *bias,
                         const float *c_prev, float *act, float *c, float *h);
    /* Its gradient for one row: g (U) upstream gradient of h; dc (U) that of
     * c arriving from the next step (overwritten with scratch); c (U) the step's
     * cell state (tanh(c) is recomputed, the forward's bits). a (4U) = the
     * pre-activation gradient, dc_prev (U) = dc_total ⊙ f. */
    void (*lstm_backward)(int64_t u, const float *g, const float *act, const float *c,
                          const float *c_prev, float *dc, float *a, float *dc_prev);
} NNTKKernels;

/* The table for this CPU (chosen once). */
const NNTKKernels *nntk_kernels(void);

/* The tables compiled in (NULL where not built for this target). */
extern const NNTKKernels nntk_kernels_generic;
extern const NNTKKernels nntk_kernels_avx2;
extern const NNTKKernels nntk_kernels_avx512;

#endif /* NNTK_KERNELS_H */
