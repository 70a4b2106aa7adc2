/* Dense: y = act(x · kernel + bias). Inference, training forward and gradient
 * side by side. Shapes: rows = batch·steps, D = input_dim, U = units.
 *
 * TimeDistributed(Dense) is the same layer (Dense already maps every step):
 * its type, below, differs only in names and tags. */
#include "core/layer.h"
#include "core/ops.h"
#include "core/threads.h"
#include "nntk/dense.h"

enum { INPUT_DIM, UNITS, ACTIVATION, USE_BIAS };

static const NNTKLayerField fields[] = {
    [INPUT_DIM] = NNTK_FIELD_SIZE("input_dim"),
    [UNITS] = NNTK_FIELD_SIZE("units"),
    [ACTIVATION] = NNTK_FIELD_ACTIVATION("activation", NULL, NNTK_ACTIVATION_LINEAR),
    [USE_BIAS] = NNTK_FIELD_FLAG("use_bias", 1),
};

/* GCOVR_EXCL_BR_START: argument validation */
static NNTKStatus check(const char *fn, const NNTKLayerConfig *c) {
    const int64_t input_dim = nntk_layer_int(c, INPUT_DIM), units = nntk_layer_int(c, UNITS);
    if (input_dim * units > NNTK_MAX_ELEMENTS)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: input_dim*units = %lld*%lld is too large", fn,
                         (long long)input_dim, (long long)units);
    return NNTK_OK;
}
/* GCOVR_EXCL_BR_STOP */

/* kernel (D, U), then bias (U,) when use_bias. */
static int32_t weights(const NNTKLayerConfig *c, NNTKWeightBlock *blocks) {
    const int64_t d = nntk_layer_int(c, INPUT_DIM), u = nntk_layer_int(c, UNITS);
    blocks[0] = (NNTKWeightBlock){"kernel", 2, {d, u}, "glorot_uniform", 1};
    if (!nntk_layer_int(c, USE_BIAS)) return 1;
    blocks[1] = (NNTKWeightBlock){"bias", 1, {u}, "zeros", 1};
    return 2;
}

/* The training workspace of a batch of `rows` rows: what the gradient needs. */
typedef struct Kept {
    float *x;     /* (rows, D) the input */
    float *pre;   /* (rows, U) pre-activation x·kernel + bias */
    float *y;     /* (rows, U) the output */
    float *delta; /* (rows, U) scratch: d pre-activation */
} Kept;

static Kept kept(const NNTKLayer *f, int64_t rows) {
    const int64_t d = nntk_layer_int(&f->config, INPUT_DIM), u = nntk_layer_int(&f->config, UNITS);
    Kept k;
    k.x = f->workspace;
    k.pre = k.x + rows * d;
    k.y = k.pre + rows * u;
    k.delta = k.y + rows * u;
    return k;
}

static NNTKStatus reserve(const char *fn, NNTKLayer *f, int64_t batch, int64_t steps, int64_t out_steps) {
    (void)out_steps; /* = steps */
    const int64_t d = nntk_layer_int(&f->config, INPUT_DIM), u = nntk_layer_int(&f->config, UNITS);
    return nntk_layer_reserve(fn, f, batch * steps * (d + 3 * u));
}

static NNTKStatus output_shape(const char *fn, const NNTKLayer *f, int64_t batch, int64_t steps,
                               int64_t *out_steps, int64_t *out_features) {
    const int64_t d = nntk_layer_int(&f->config, INPUT_DIM), u = nntk_layer_int(&f->config, UNITS);
    /* The wider of input and output bounds the batch. */
    NNTKStatus s = nntk_check_batch(fn, batch, steps, d > u ? d : u);
    *out_steps = steps;
    *out_features = u;
    return s;
}

/* pre (rows, U) = x (rows, D) · kernel (D, U) + bias (U,). */
static void project(const NNTKLayer *f, int64_t rows, const float *x, float *pre) {
    const int64_t d = nntk_layer_int(&f->config, INPUT_DIM), u = nntk_layer_int(&f->config, UNITS);
    const float *kernel = f->weights;    /* (D, U) */
    const float *bias = f->weights + d * u; /* (U,) */
    nntk_gemm(0, 0, rows, u, d, 1.0f, x, d, kernel, u, 0.0f, pre, u);
    if (nntk_layer_int(&f->config, USE_BIAS))
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < u; j++) pre[r * u + j] += bias[j];
}

/* Training rows [r0, r1) of a forward or gradient pass (docs/threads.md): a row of
 * the output, of delta and of d_in depends only on the same row of the input, of
 * d_out and of delta, and the own kernel's products give a row the same bits
 * whatever rows share the call (core/ops.h), so the pool may split the rows. */
typedef struct {
    const NNTKLayer *f;
    Kept k;
    int64_t rows, d, u;
    int in_parts; /* the products run in the parts: the whole product is the own kernel's */
    const float *in;    /* forward: the input (rows, D) */
    float *out;         /* forward: the output (rows, U) */
    const float *d_out; /* backward (rows, U) */
    float *d_in;        /* backward (rows, D) or NULL */
    float *d_kernel;    /* backward (D, U) */
} Rows;

static void forward_rows(void *context, int64_t r0, int64_t r1) {
    const Rows *p = context;
    const int64_t d = p->d, u = p->u, nr = r1 - r0;
    const float *kernel = p->f->weights;        /* (D, U) */
    const float *bias = p->f->weights + d * u; /* (U,) */
    float *x = p->k.x + r0 * d, *pre = p->k.pre + r0 * u, *y = p->k.y + r0 * u; /* (nr, ·) */
    if (p->in_parts) { /* else copied and projected whole before the dispatch */
        nntk_copy(x, p->in + r0 * d, nr * d);
        nntk_matmul(0, nr, u, d, x, d, kernel, u, NULL, 0, pre, u);
    }
    if (nntk_layer_int(&p->f->config, USE_BIAS))
        for (int64_t r = 0; r < nr; r++)
            for (int64_t j = 0; j < u; j++) pre[r * u + j] += bias[j];
    nntk_activation_forward((NNTKActivationKind)nntk_layer_int(&p->f->config, ACTIVATION), nr, u, pre,
                            y);
    nntk_copy(p->out + r0 * u, y, nr * u);
}

static NNTKStatus forward(const char *fn, NNTKLayer *f, NNTKApplyMode mode, int64_t batch,
                          int64_t steps, int64_t out_steps, const float *in,
                          const float *initial_state, float *out, float *final_state) {
    (void)fn, (void)out_steps, (void)initial_state, (void)final_state;
    const NNTKActivationKind act = (NNTKActivationKind)nntk_layer_int(&f->config, ACTIVATION);
    const int64_t rows = batch * steps, d = nntk_layer_int(&f->config, INPUT_DIM),
                  u = nntk_layer_int(&f->config, UNITS);
    if (mode == NNTK_APPLY_INFERENCE) {
        project(f, rows, in, out);
        nntk_activation_forward(act, rows, u, out, out);
        return NNTK_OK;
    }
    Rows p = {.f = f, .k = kept(f, rows), .rows = rows, .d = d, .u = u, .in = in, .out = out};
    p.in_parts = nntk_gemm_own_kernel(rows, u, d);
    if (!p.in_parts) { /* an OpenBLAS product: whole, on this thread (core/ops.c) */
        nntk_copy(p.k.x, in, rows * d);
        nntk_gemm(0, 0, rows, u, d, 1.0f, p.k.x, d, f->weights, u, 0.0f, p.k.pre, u);
    }
    /* work: the product (when in the parts) and about four multiply-adds' time per
     * output element (bias, activation, copies) */
    nntk_split_rows((p.in_parts ? rows * u * d : 0) + 4 * rows * u, rows, forward_rows, &p);
    return NNTK_OK;
}

/* delta = d_out ⊙ act'(pre) for rows [r0, r1), and their d_in = delta · kernelᵀ when
 * that product is the own kernel's. */
static void delta_rows(void *context, int64_t r0, int64_t r1) {
    const Rows *p = context;
    const int64_t d = p->d, u = p->u, nr = r1 - r0;
    nntk_activation_backward((NNTKActivationKind)nntk_layer_int(&p->f->config, ACTIVATION), nr, u,
                             p->k.pre + r0 * u, p->k.y + r0 * u, p->d_out + r0 * u,
                             p->k.delta + r0 * u);
    if (p->in_parts && p->d_in != NULL)
        nntk_gemm(0, 1, nr, d, u, 1.0f, p->k.delta + r0 * u, u, p->f->weights, u, 0.0f,
                  p->d_in + r0 * d, d);
}

/* Rows [i0, i1) of d_kernel (D, U) = xᵀ · delta: each element one chain over all the
 * rows (the own kernel), whichever part holds it. */
static void kernel_gradient_rows(void *context, int64_t i0, int64_t i1) {
    const Rows *p = context;
    nntk_matmul(1, i1 - i0, p->u, p->rows, p->k.x + i0, p->d, p->k.delta, p->u, NULL, 0,
                p->d_kernel + i0 * p->u, p->u);
}

static NNTKStatus backward(const char *fn, NNTKLayer *f, const float *d_out, const float *d_final_state,
                           float *d_in, float *d_initial_state, float *d_weights) {
    (void)fn, (void)d_final_state, (void)d_initial_state;
    const int64_t rows = f->batch * f->steps, d = nntk_layer_int(&f->config, INPUT_DIM),
                  u = nntk_layer_int(&f->config, UNITS);
    Rows p = {.f = f, .k = kept(f, rows), .rows = rows, .d = d, .u = u, .d_out = d_out,
              .d_in = d_in, .d_kernel = d_weights};
    float *d_bias = d_weights + d * u; /* (U,) */

    /* y = act(pre): delta = d_out ⊙ act'(pre); pre = x · kernel + bias: d_in = delta ·
     * kernelᵀ, d_kernel = xᵀ · delta, d_bias = Σ_rows delta. */
    p.in_parts = nntk_gemm_own_kernel(rows, d, u);
    nntk_split_rows((p.in_parts && d_in ? rows * d * u : 0) + 4 * rows * u, rows, delta_rows, &p);
    if (!p.in_parts && d_in != NULL)
        nntk_gemm(0, 1, rows, d, u, 1.0f, p.k.delta, u, f->weights, u, 0.0f, d_in, d);
    if (d >= 2 && nntk_gemm_own_kernel(d, u, rows)) /* by rows of d_kernel; else as a whole */
        nntk_split_rows(d * u * rows, d, kernel_gradient_rows, &p);
    else
        nntk_gemm(1, 0, d, u, rows, 1.0f, p.k.x, d, p.k.delta, u, 0.0f, d_weights, u);
    if (nntk_layer_int(&f->config, USE_BIAS)) nntk_sum_rows(rows, u, p.k.delta, d_bias, 0);
    return NNTK_OK;
}

/* keras_positional: tf.keras Dense(units, activation, use_bias, kernel_initializer, ...)
 * (TimeDistributed's: its Dense's). */
#define DENSE_OPS                                                                                  \
    NNTK_LAYER_FIELDS(fields), .check = check, .weights = weights, NNTK_LAYER_STANDARD_OPS,       \
        .keras_positional = 3, .streams = nntk_stream_stepwise

const NNTKLayerType nntk_dense_type = {
    NNTK_LAYER_NAMES("Dense", "Dense", 'D', 'n', 's'),
    DENSE_OPS,
};

const NNTKLayerType nntk_time_distributed_dense_type = {
    NNTK_LAYER_NAMES("TimeDistributedDense", "TimeDistributed(Dense)", 'T', 'd', 'D'),
    DENSE_OPS,
    .sequence_input = 1, /* tf.keras's TimeDistributed takes (B, T, D) only */
};

NNTK_API NNTKDenseConfig *NNTKDenseConfigCreate(int64_t input_dim, int64_t units,
                                                int32_t activation, int32_t use_bias) {
    const NNTKLayerValue values[] = {{.i = input_dim}, {.i = units}, {.i = activation}, {.i = use_bias}};
    return (NNTKDenseConfig *)nntk_layer_config_create("NNTKDenseConfigCreate", &nntk_dense_type,
                                                      values);
}

NNTK_DEFINE_LAYER(Dense, nntk_dense_type)
