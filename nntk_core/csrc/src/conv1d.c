/* Conv1d: tf.keras Conv1D. Inference, training forward and gradient side by
 * side. Shapes: B = batch, L = input steps, O = output steps, C = input_dim,
 * F = filters, k = kernel_size, s = strides, d = dilation_rate.
 *
 * The convolution is computed one kernel tap at a time, straight from the
 * unpadded input: for tap j, output step o reads input step
 * i = o·s + j·d − pad_left. The zero padding contributes nothing, so each tap
 * only runs over the output steps whose i lies inside [0, L): a contiguous
 * range [o_lo, o_hi). Over that range the rows of x read by the tap are s·C
 * floats apart, which is just a leading dimension, so each tap is one matrix
 * product with no copy:
 *     pre[b, o_lo:o_hi, :] += x[b, i_lo : : s, :] (n, C) · kernel[j] (C, F).
 * The gradient runs the same ranges backwards (and so is cropped back from the
 * padding by construction):
 *     d_kernel[j] += x_tapᵀ · delta,   d_in[b, i_lo : : s, :] += delta · kernel[j]ᵀ. */
#include <stdlib.h>

#include "core/internal.h"
#include "core/ops.h"
#include "nntk/conv1d.h"

#define CONFIG_TAG NNTK_TAG('C', 'v', '1', 'C')
#define FILTER_TAG NNTK_TAG('C', 'v', '1', 'F')
#define GRADIENT_TAG NNTK_TAG('C', 'v', '1', 'G')

struct NNTKConv1dConfig {
    uint32_t tag;
    int64_t input_dim;     /* C */
    int64_t filters;       /* F */
    int64_t kernel_size;   /* k */
    int64_t strides;       /* s */
    NNTKPadding padding;
    int64_t dilation_rate; /* d */
    NNTKActivationKind activation;
    int32_t use_bias;
};

struct NNTKConv1d {
    uint32_t tag;
    NNTKConv1dConfig config;
    int32_t training;      /* created for training */
    float *weights;        /* kernel (k, C, F), then bias (F,) if use_bias */
    int64_t weight_count;
    /* Kept by the last training batch for the gradient; all four live in one
     * workspace block that grows with the batch. */
    int64_t batch;         /* B of that batch; 0 = none yet */
    int64_t steps;         /* L of that batch */
    float *x;              /* (B, L, C) its input */
    float *pre;            /* (B, O, F) pre-activation */
    float *y;              /* (B, O, F) its output */
    float *delta;          /* (B, O, F) scratch: d pre-activation */
    float *workspace;
    int64_t workspace_capacity;
};

struct NNTKConv1dGradient {
    uint32_t tag;
    const NNTKConv1d *filter; /* the filter it was created for */
    float *d_weights;         /* same layout as the weights */
    int64_t count;
};

/* The padding and output length for an input of L steps. */
typedef struct Geometry {
    int64_t steps;     /* L */
    int64_t out_steps; /* O = ⌈n/s⌉ */
    int64_t pad_left;  /* zeros in front of x; those behind it are never read */
} Geometry;

static int64_t effective_kernel(const NNTKConv1dConfig *c) {
    return (c->kernel_size - 1) * c->dilation_rate + 1;
}

/* Fills *g for an input of `steps` steps (>= 1, already checked); fails when
 * a valid convolution does not fit. */
static NNTKStatus geometry(const char *fn, const NNTKConv1dConfig *c, int64_t steps, Geometry *g) {
    const int64_t k_eff = effective_kernel(c), s = c->strides;
    int64_t n = steps;
    g->steps = steps;
    g->pad_left = 0;
    switch (c->padding) {
    case NNTK_PADDING_VALID:
        /* GCOVR_EXCL_BR_START: argument validation: input shorter than the kernel */
        if (steps < k_eff)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                             "%s: steps = %lld is shorter than the effective kernel length %lld "
                             "((kernel_size-1)*dilation_rate+1 with kernel_size %lld, dilation_rate "
                             "%lld) under valid padding",
                             fn, (long long)steps, (long long)k_eff, (long long)c->kernel_size,
                             (long long)c->dilation_rate);
        /* GCOVR_EXCL_BR_STOP */
        n = steps - k_eff + 1;
        break;
    case NNTK_PADDING_SAME: {
        const int64_t out = (steps + s - 1) / s;
        int64_t total = (out - 1) * s + k_eff - steps;
        if (total < 0) total = 0;
        g->pad_left = total / 2; /* the extra zero of an odd total goes on the right */
        break;
    }
    case NNTK_PADDING_CAUSAL:
        g->pad_left = k_eff - 1;
        break;
    }
    g->out_steps = (n + s - 1) / s;
    return NNTK_OK;
}

/* The output steps [*o_lo, *o_hi) whose tap j reads inside the input, and the
 * input step *i_lo that o_lo reads. Returns the count o_hi − o_lo (may be 0). */
static int64_t tap_range(const NNTKConv1dConfig *c, const Geometry *g, int64_t j, int64_t *o_lo,
                         int64_t *i_lo) {
    const int64_t s = c->strides;
    const int64_t offset = j * c->dilation_rate - g->pad_left; /* input step read by o = 0 */
    const int64_t lo = offset >= 0 ? 0 : (-offset + s - 1) / s;
    const int64_t last = g->steps - 1 - offset; /* need o·s <= last */
    int64_t hi = last < 0 ? 0 : last / s + 1;
    if (hi > g->out_steps) hi = g->out_steps;
    *o_lo = lo;
    *i_lo = lo * s + offset;
    return hi > lo ? hi - lo : 0;
}

NNTK_API NNTKConv1dConfig *NNTKConv1dConfigCreate(int64_t input_dim, int64_t filters,
                                                  int64_t kernel_size, int64_t strides,
                                                  int32_t padding, int64_t dilation_rate,
                                                  int32_t activation, int32_t use_bias) {
    static const char fn[] = "NNTKConv1dConfigCreate";
    if (nntk_check_size(fn, "input_dim", input_dim, NNTK_MAX_DIM) != NNTK_OK) return NULL;
    if (nntk_check_size(fn, "filters", filters, NNTK_MAX_DIM) != NNTK_OK) return NULL;
    if (nntk_check_size(fn, "kernel_size", kernel_size, NNTK_MAX_DIM) != NNTK_OK) return NULL;
    if (nntk_check_size(fn, "strides", strides, NNTK_MAX_DIM) != NNTK_OK) return NULL;
    if (nntk_check_size(fn, "dilation_rate", dilation_rate, NNTK_MAX_DIM) != NNTK_OK) return NULL;
    /* GCOVR_EXCL_BR_START: argument validation */
    if (padding != NNTK_PADDING_VALID && padding != NNTK_PADDING_SAME && padding != NNTK_PADDING_CAUSAL) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                  "%s: padding = %d is not an NNTKPadding (0 valid, 1 same, 2 causal)", fn, (int)padding);
        return NULL;
    }
    if (strides > 1 && dilation_rate > 1) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                  "%s: strides = %lld and dilation_rate = %lld: strides > 1 together with "
                  "dilation_rate > 1 is not supported (tf.keras raises too)",
                  fn, (long long)strides, (long long)dilation_rate);
        return NULL;
    }
    /* k, d < 2^24 each, so (k-1)*d + 1 cannot overflow. */
    if ((kernel_size - 1) * dilation_rate + 1 > NNTK_MAX_DIM) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                  "%s: effective kernel length (kernel_size-1)*dilation_rate+1 = %lld exceeds %lld", fn,
                  (long long)((kernel_size - 1) * dilation_rate + 1), (long long)NNTK_MAX_DIM);
        return NULL;
    }
    if (kernel_size * input_dim > NNTK_MAX_ELEMENTS / filters) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                  "%s: kernel_size*input_dim*filters = %lld*%lld*%lld is too large", fn,
                  (long long)kernel_size, (long long)input_dim, (long long)filters);
        return NULL;
    }
    if (nntk_check_activation(fn, "activation", activation) != NNTK_OK) return NULL;
    if (use_bias != 0 && use_bias != 1) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: use_bias must be 0 or 1 (got %d)", fn, (int)use_bias);
        return NULL;
    }
    /* GCOVR_EXCL_BR_STOP */
    NNTKConv1dConfig *config = calloc(1, sizeof *config);
    if (config == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    *config = (NNTKConv1dConfig){
        .tag = CONFIG_TAG,
        .input_dim = input_dim,
        .filters = filters,
        .kernel_size = kernel_size,
        .strides = strides,
        .padding = (NNTKPadding)padding,
        .dilation_rate = dilation_rate,
        .activation = (NNTKActivationKind)activation,
        .use_bias = use_bias,
    };
    return config;
}

NNTK_API void NNTKConv1dConfigDestroy(NNTKConv1dConfig *config) {
    if (config == NULL || config->tag != CONFIG_TAG) return;
    config->tag = NNTK_TAG_DEAD;
    free(config);
}

/* Reserves the training workspace for a batch of B·L input rows and B·O output
 * rows, and points x, pre, y and delta into it. */
static NNTKStatus reserve_rows(const char *fn, NNTKConv1d *f, int64_t in_rows, int64_t out_rows) {
    const int64_t c = f->config.input_dim, nf = f->config.filters;
    NNTKStatus s = nntk_reserve(fn, &f->workspace, &f->workspace_capacity, in_rows * c + 3 * out_rows * nf);
    if (s != NNTK_OK) return s;
    f->x = f->workspace;
    f->pre = f->x + in_rows * c;
    f->y = f->pre + out_rows * nf;
    f->delta = f->y + out_rows * nf;
    return NNTK_OK;
}

static NNTKConv1d *create(const char *fn, const NNTKConv1dConfig *config, int training,
                          const NNTKTrainingConfig *training_config) {
    if (nntk_check_handle(fn, "config", config, CONFIG_TAG) != NNTK_OK) return NULL;
    NNTKConv1d *f = calloc(1, sizeof *f);
    if (f == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    f->tag = FILTER_TAG;
    f->config = *config;
    f->training = training;
    f->weight_count = config->kernel_size * config->input_dim * config->filters +
                      (config->use_bias ? config->filters : 0);
    f->weights = nntk_alloc_floats(f->weight_count);
    if (f->weights == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory for %lld weights", fn,
                  (long long)f->weight_count);
        NNTKConv1dDestroy(f);
        return NULL;
    }
    int64_t max_batch = 0, max_steps = 0;
    if (training && nntk_training_capacity(fn, training_config, &max_batch, &max_steps) != NNTK_OK) {
        NNTKConv1dDestroy(f);
        return NULL;
    }
    /* Output steps never exceed input steps (same/causal: ⌈L/s⌉, valid: fewer). */
    if (max_batch > 0 && reserve_rows(fn, f, max_batch * max_steps, max_batch * max_steps) != NNTK_OK) {
        NNTKConv1dDestroy(f);
        return NULL;
    }
    return f;
}

NNTK_API NNTKConv1d *NNTKConv1dCreateForInference(const NNTKConv1dConfig *config) {
    return create("NNTKConv1dCreateForInference", config, 0, NULL);
}

NNTK_API NNTKConv1d *NNTKConv1dCreateForTraining(const NNTKConv1dConfig *config,
                                                 const NNTKTrainingConfig *training_config) {
    return create("NNTKConv1dCreateForTraining", config, 1, training_config);
}

NNTK_API void NNTKConv1dDestroy(NNTKConv1d *filter) {
    if (filter == NULL || filter->tag != FILTER_TAG) return;
    filter->tag = NNTK_TAG_DEAD;
    nntk_free(filter->weights);
    nntk_free(filter->workspace);
    free(filter);
}

NNTK_API NNTKStatus NNTKConv1dGetWeights(NNTKConv1d *filter, float **weights, int64_t *count) {
    static const char fn[] = "NNTKConv1dGetWeights";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "weights", weights)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "count", count)) != NNTK_OK) return s;
    *weights = filter->weights;
    *count = filter->weight_count;
    return NNTK_OK;
}

/* Checks batch and steps for an input (batch, steps, C) and fills *g. */
static NNTKStatus check_input(const char *fn, const NNTKConv1d *filter, int64_t batch, int64_t steps,
                              Geometry *g) {
    const int64_t c = filter->config.input_dim, nf = filter->config.filters;
    NNTKStatus s = nntk_check_batch(fn, batch, steps, c > nf ? c : nf);
    if (s != NNTK_OK) return s;
    return geometry(fn, &filter->config, steps, g);
}

NNTK_API NNTKStatus NNTKConv1dOutputShape(const NNTKConv1d *filter, int64_t batch, int64_t steps,
                                          int64_t *out_steps, int64_t *out_features) {
    static const char fn[] = "NNTKConv1dOutputShape";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_steps", out_steps)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_features", out_features)) != NNTK_OK) return s;
    Geometry g;
    if ((s = check_input(fn, filter, batch, steps, &g)) != NNTK_OK) return s;
    *out_steps = g.out_steps;
    *out_features = filter->config.filters;
    return NNTK_OK;
}

/* The output rows [*o1, *o2) whose whole window lies inside the input, for
 * dilation_rate 1 (*o1 = *o2 = 0 otherwise): row o reads the k·C consecutive
 * floats of x from step o·s − pad_left on, a row of an overlapping matrix
 * with leading dimension s·C. Returns the count. */
static int64_t full_rows(const NNTKConv1dConfig *c, const Geometry *g, int64_t *o1, int64_t *o2) {
    *o1 = *o2 = 0;
    if (c->dilation_rate != 1) return 0;
    const int64_t s = c->strides, k = c->kernel_size;
    const int64_t lo = (g->pad_left + s - 1) / s; /* o·s >= pad_left */
    const int64_t last = g->steps - k + g->pad_left; /* o·s <= last */
    if (last < 0) return 0;
    int64_t hi = last / s + 1;
    if (hi > g->out_steps) hi = g->out_steps;
    if (hi <= lo) return 0;
    *o1 = lo;
    *o2 = hi;
    return hi - lo;
}

/* pre (B, O, F) = Σ_j x_tap_j · kernel[j] + bias, from x (B, L, C). Every
 * element is one sequential chain over (j, c) in that order (the zero
 * padding's terms skipped), then + bias, as Keras's conv then bias_add:
 * full-window rows in one product over the overlapping windows, the rows at
 * a padded edge tap by tap (the chain continuing through pre). */
static void convolve(const NNTKConv1d *f, const Geometry *g, int64_t batch, const float *x, float *pre) {
    const NNTKConv1dConfig *c = &f->config;
    const int64_t cin = c->input_dim, nf = c->filters, s = c->strides;
    const float *kernel = f->weights;                           /* (k, C, F) */
    const float *bias = c->use_bias ? f->weights + c->kernel_size * cin * nf : NULL; /* (F,) */
    int64_t o1, o2;
    const int64_t n_full = full_rows(c, g, &o1, &o2);
    for (int64_t b = 0; b < batch; b++) {
        const float *x_b = x + b * g->steps * cin;    /* (L, C) */
        float *pre_b = pre + b * g->out_steps * nf;   /* (O, F) */
        if (n_full > 0)
            nntk_matmul(0, n_full, nf, c->kernel_size * cin, x_b + (o1 * s - g->pad_left) * cin,
                        s * cin, kernel, nf, bias, 0, pre_b + o1 * nf, nf);
        if (n_full == g->out_steps) continue;
        /* Edge rows [0, o1) and [o2, O): zero, the taps in order, then the bias. */
        for (int64_t o = 0; o < g->out_steps; o++) {
            if (o == o1 && n_full > 0) o = o2;
            if (o >= g->out_steps) break;
            for (int64_t q = 0; q < nf; q++) pre_b[o * nf + q] = 0.0f;
        }
        for (int64_t j = 0; j < c->kernel_size; j++) {
            int64_t o_lo, i_lo;
            const int64_t n = tap_range(c, g, j, &o_lo, &i_lo);
            /* the part of [o_lo, o_lo + n) outside [o1, o2) */
            const int64_t ranges[2][2] = {{o_lo, o_lo + n < o1 ? o_lo + n : o1},
                                          {o_lo > o2 ? o_lo : o2, o_lo + n}};
            for (int r = 0; r < 2; r++) {
                int64_t lo = ranges[r][0], hi = ranges[r][1];
                if (n_full == 0) { /* no full rows: the whole tap range, once */
                    if (r == 1) break;
                    lo = o_lo;
                    hi = o_lo + n;
                }
                if (hi <= lo) continue;
                /* pre_b[lo:hi] (F) += x_b[i::s] (C; row stride s·C) · kernel[j] (C, F) */
                nntk_matmul(0, hi - lo, nf, cin, x_b + (i_lo + (lo - o_lo) * s) * cin, s * cin,
                            kernel + j * cin * nf, nf, NULL, 1, pre_b + lo * nf, nf);
            }
        }
        if (bias)
            for (int64_t o = 0; o < g->out_steps; o++) {
                if (o == o1 && n_full > 0) o = o2;
                if (o >= g->out_steps) break;
                for (int64_t q = 0; q < nf; q++) pre_b[o * nf + q] = pre_b[o * nf + q] + bias[q];
            }
    }
}

static NNTKStatus check_apply(const char *fn, const NNTKConv1d *filter, int64_t batch, int64_t steps,
                              const float *in, const float *out, Geometry *g) {
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "in", in)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out", out)) != NNTK_OK) return s;
    return check_input(fn, filter, batch, steps, g);
}

NNTK_API NNTKStatus NNTKConv1dApplyInference(NNTKConv1d *filter, int64_t batch, int64_t steps,
                                             const float *in, float *out) {
    Geometry g;
    NNTKStatus s = check_apply("NNTKConv1dApplyInference", filter, batch, steps, in, out, &g);
    if (s != NNTK_OK) return s;
    convolve(filter, &g, batch, in, out);
    nntk_activation_forward(filter->config.activation, batch * g.out_steps, filter->config.filters, out, out);
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKConv1dApplyTrainingBatch(NNTKConv1d *filter, int64_t batch, int64_t steps,
                                                 const float *in, float *out) {
    static const char fn[] = "NNTKConv1dApplyTrainingBatch";
    Geometry g;
    NNTKStatus s = check_apply(fn, filter, batch, steps, in, out, &g);
    if (s != NNTK_OK) return s;
    if (!filter->training)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
    const int64_t nf = filter->config.filters, out_rows = batch * g.out_steps;
    filter->batch = 0; /* invalid until this batch is complete */
    if ((s = reserve_rows(fn, filter, batch * steps, out_rows)) != NNTK_OK) return s;
    nntk_copy(filter->x, in, batch * steps * filter->config.input_dim);
    convolve(filter, &g, batch, filter->x, filter->pre);
    nntk_activation_forward(filter->config.activation, out_rows, nf, filter->pre, filter->y);
    nntk_copy(out, filter->y, out_rows * nf);
    filter->batch = batch;
    filter->steps = steps;
    return NNTK_OK;
}

NNTK_API NNTKConv1dGradient *NNTKConv1dGradientCreate(const NNTKConv1d *filter) {
    static const char fn[] = "NNTKConv1dGradientCreate";
    if (nntk_check_handle(fn, "filter", filter, FILTER_TAG) != NNTK_OK) return NULL;
    if (!filter->training) {
        nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
        return NULL;
    }
    NNTKConv1dGradient *g = calloc(1, sizeof *g);
    float *block = nntk_alloc_floats(filter->weight_count);
    if (g == NULL || block == NULL) {
        free(g);
        nntk_free(block);
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    *g = (NNTKConv1dGradient){GRADIENT_TAG, filter, block, filter->weight_count};
    return g;
}

NNTK_API void NNTKConv1dGradientDestroy(NNTKConv1dGradient *gradient) {
    if (gradient == NULL || gradient->tag != GRADIENT_TAG) return;
    gradient->tag = NNTK_TAG_DEAD;
    nntk_free(gradient->d_weights);
    free(gradient);
}

NNTK_API NNTKStatus NNTKConv1dGradientGetWeights(NNTKConv1dGradient *gradient, float **weights,
                                                 int64_t *count) {
    static const char fn[] = "NNTKConv1dGradientGetWeights";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "gradient", gradient, GRADIENT_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "weights", weights)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "count", count)) != NNTK_OK) return s;
    *weights = gradient->d_weights;
    *count = gradient->count;
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKConv1dCalculateGradient(NNTKConv1d *filter, NNTKConv1dGradient *gradient,
                                                const float *d_out, float *d_in) {
    static const char fn[] = "NNTKConv1dCalculateGradient";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_handle(fn, "gradient", gradient, GRADIENT_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "d_out", d_out)) != NNTK_OK) return s;
    if (gradient->filter != filter)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: gradient was created for another filter", fn);
    if (!filter->training)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
    if (filter->batch == 0)
        return nntk_fail(NNTK_ERROR_INVALID_STATE,
                         "%s: no training batch yet (call NNTKConv1dApplyTrainingBatch first)", fn);
    const NNTKConv1dConfig *c = &filter->config;
    const int64_t batch = filter->batch, cin = c->input_dim, nf = c->filters, s_ = c->strides;
    Geometry g;
    if ((s = geometry(fn, c, filter->steps, &g)) != NNTK_OK) return s; /* cannot fail: it did before */
    const int64_t out_rows = batch * g.out_steps;
    const float *kernel = filter->weights;                           /* (k, C, F) */
    float *d_kernel = gradient->d_weights;                           /* (k, C, F) */
    float *d_bias = gradient->d_weights + c->kernel_size * cin * nf; /* (F,) */
    float *delta = filter->delta; /* (B, O, F) d pre-activation */

    /* y = act(pre): delta = d_out ⊙ act'(pre). */
    nntk_activation_backward(c->activation, out_rows, nf, filter->pre, filter->y, d_out, delta);
    /* pre = bias + Σ_j x_tap_j · kernel[j]:
     *   d_kernel[j] = Σ_b x_tap_jᵀ · delta_b,   d_bias = Σ_rows delta,
     *   d_in[b, taps of j] += delta_b · kernel[j]ᵀ   (zero-padding positions are never written). */
    for (int64_t i = 0; i < c->kernel_size * cin * nf; i++) d_kernel[i] = 0.0f;
    if (c->use_bias) nntk_sum_rows(out_rows, nf, delta, d_bias, 0);
    if (d_in != NULL)
        for (int64_t i = 0; i < batch * g.steps * cin; i++) d_in[i] = 0.0f;
    int64_t o1, o2;
    const int64_t n_full = full_rows(c, &g, &o1, &o2);
    for (int64_t b = 0; b < batch; b++) {
        const float *x_b = filter->x + b * g.steps * cin;   /* (L, C) */
        const float *delta_b = delta + b * g.out_steps * nf; /* (O, F) */
        /* Full-window rows: d_kernel (k·C, F) += windowsᵀ (k·C, n) · delta_b[o1:o2] (n, F),
         * the windows read in place (overlapping, leading dimension s·C). */
        if (n_full > 0)
            nntk_matmul(1, c->kernel_size * cin, nf, n_full, x_b + (o1 * s_ - g.pad_left) * cin,
                        s_ * cin, delta_b + o1 * nf, nf, NULL, 1, d_kernel, nf);
        for (int64_t j = 0; j < c->kernel_size; j++) {
            int64_t o_lo, i_lo;
            const int64_t n = tap_range(c, &g, j, &o_lo, &i_lo);
            if (n == 0) continue;
            /* d_kernel[j] (C, F) += x_tapᵀ · delta over the tap's rows outside [o1, o2) */
            const int64_t ranges[2][2] = {{o_lo, o_lo + n < o1 ? o_lo + n : o1},
                                          {o_lo > o2 ? o_lo : o2, o_lo + n}};
            for (int r = 0; r < 2; r++) {
                int64_t lo = ranges[r][0], hi = ranges[r][1];
                if (n_full == 0) {
                    if (r == 1) break;
                    lo = o_lo;
                    hi = o_lo + n;
                }
                if (hi <= lo) continue;
                nntk_gemm(1, 0, cin, nf, hi - lo, 1.0f, x_b + (i_lo + (lo - o_lo) * s_) * cin,
                          s_ * cin, delta_b + lo * nf, nf, 1.0f, d_kernel + j * cin * nf, nf);
            }
            /* d_in_b[i_lo::s] (n, C; row stride s·C) += delta_b[o_lo:o_lo+n] (n, F) · kernel[j]ᵀ (F, C) */
            if (d_in != NULL)
                nntk_gemm(0, 1, n, cin, nf, 1.0f, delta_b + o_lo * nf, nf, kernel + j * cin * nf, nf, 1.0f,
                          d_in + b * g.steps * cin + i_lo * cin, s_ * cin);
        }
    }
    return NNTK_OK;
}
