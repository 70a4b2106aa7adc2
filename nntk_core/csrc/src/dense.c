/* Dense: y = act(x · kernel + bias). Inference, training forward and gradient
 * side by side. Shapes: rows = batch·steps, D = input_dim, U = units.
 *
 * TimeDistributed(Dense) is the same layer (Dense already maps every step):
 * its type, below, differs only in names and tags. */
#include "core/layer.h"
#include "core/ops.h"
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
    const Kept k = kept(f, rows);
    nntk_copy(k.x, in, rows * d);
    project(f, rows, k.x, k.pre);
    nntk_activation_forward(act, rows, u, k.pre, k.y);
    nntk_copy(out, k.y, rows * u);
    return NNTK_OK;
}

static NNTKStatus backward(const char *fn, NNTKLayer *f, const float *d_out, const float *d_final_state,
                           float *d_in, float *d_initial_state, float *d_weights) {
    (void)fn, (void)d_final_state, (void)d_initial_state;
    const int64_t rows = f->batch * f->steps, d = nntk_layer_int(&f->config, INPUT_DIM),
                  u = nntk_layer_int(&f->config, UNITS);
    const Kept k = kept(f, rows);
    const float *kernel = f->weights;  /* (D, U) */
    float *d_kernel = d_weights;       /* (D, U) */
    float *d_bias = d_weights + d * u; /* (U,) */

    /* y = act(pre): delta = d_out ⊙ act'(pre). */
    nntk_activation_backward((NNTKActivationKind)nntk_layer_int(&f->config, ACTIVATION), rows, u, k.pre,
                             k.y, d_out, k.delta);
    /* pre = x · kernel + bias: d_kernel = xᵀ · delta, d_bias = Σ_rows delta, d_in = delta · kernelᵀ. */
    nntk_gemm(1, 0, d, u, rows, 1.0f, k.x, d, k.delta, u, 0.0f, d_kernel, u);
    if (nntk_layer_int(&f->config, USE_BIAS)) nntk_sum_rows(rows, u, k.delta, d_bias, 0);
    if (d_in != NULL) nntk_gemm(0, 1, rows, d, u, 1.0f, k.delta, u, kernel, u, 0.0f, d_in, d);
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
