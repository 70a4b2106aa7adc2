/* The blocking constants shared by several files: the sizes at which a code
 * path changes (a panel fills, a chunk ends). The matrix kernels' own (tile
 * shape, K block, cell block) differ per instruction set and live in
 * kernels_impl.inc, reported in each table (kernels.h). NNTKKernelConstants()
 * (nntk/runtime.h) reports all of them, so the tests place shapes one below,
 * at and one above each without restating a number. */
#ifndef NNTK_BLOCKING_H
#define NNTK_BLOCKING_H

/* ops.c, products with op(B) = Bᵀ: B is packed PACK_N columns by PACK_K rows
 * (a stack buffer) at a time. */
#define NNTK_PACK_N 64
#define NNTK_PACK_K 128

/* ops.c, nntk_sum_rows: columns summed per block (double accumulators on the stack). */
#define NNTK_SUM_BLOCK 512

/* core/recurrent.c: at batch 1 the recurrent kernel is read from column panels of
 * this width, once the sequence has at least PANEL_MIN_STEPS steps (the copy costs
 * about one step's read of the kernel). */
#define NNTK_RECURRENT_PANEL 64
#define NNTK_RECURRENT_PANEL_MIN_STEPS 8

/* Inference projects the input NNTK_RECURRENT_PROJECTION_STEPS processing steps
 * at a time (nntk_recurrent_project_block), so its scratch does not grow with the
 * sequence length: it is reserved at Create for batch 1 (and for the capacity's
 * batch on a training handle), and no inference call of that batch allocates. */
#define NNTK_RECURRENT_PROJECTION_STEPS 32

/* bidirectional.c: inference with return_sequences streams each direction this
 * many steps at a time. */
#define NNTK_BIDIRECTIONAL_CHUNK_STEPS 32

/* batch_norm.c: channels handled per block by the workspace-free inference path. */
#define NNTK_BATCH_NORM_CHANNEL_BLOCK 64

#endif /* NNTK_BLOCKING_H */
