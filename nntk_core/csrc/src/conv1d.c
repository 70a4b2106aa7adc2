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
#include "core/layer.h"
#include "core/ops.h"
#include "core/threads.h"
#include "nntk/conv1d.h"

/* The kernel gradient is split over the pool in units of this many filters (one
 * AVX-512 vector of columns). */
#define FILTER_UNIT 16

enum { INPUT_DIM, FILTERS, KERNEL_SIZE, STRIDES, PADDING, DILATION_RATE, ACTIVATION, USE_BIAS };

/* GCOVR_EXCL_BR_START: argument validation */
static NNTKStatus check_padding(const char *fn, const char *arg, int32_t padding) {
    if (padding != NNTK_PADDING_VALID && padding != NNTK_PADDING_SAME && padding != NNTK_PADDING_CAUSAL)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: %s = %d is not an NNTKPadding (0 valid, 1 same, 2 causal)", fn, arg,
                         (int)padding);
    return NNTK_OK;
}
/* GCOVR_EXCL_BR_STOP */

static const char *const padding_names[] = {"valid", "same", "causal"};

static const NNTKLayerField fields[] = {
    [INPUT_DIM] = NNTK_FIELD_SIZE("input_dim"),
    [FILTERS] = NNTK_FIELD_SIZE("filters"),
    [KERNEL_SIZE] = NNTK_FIELD_SIZE("kernel_size"),
    [STRIDES] = NNTK_FIELD_SIZE_DEFAULT("strides", 1),
    [PADDING] = {.name = "padding", .kind = NNTK_FIELD_ENUM, .default_value = NNTK_PADDING_VALID,
                 .min = 0, .max = 2, .enum_names = padding_names, .enum_count = 3,
                 .check = check_padding},
    [DILATION_RATE] = NNTK_FIELD_SIZE_DEFAULT("dilation_rate", 1),
    [ACTIVATION] = NNTK_FIELD_ACTIVATION("activation", NULL, NNTK_ACTIVATION_LINEAR),
    [USE_BIAS] = NNTK_FIELD_FLAG("use_bias", 1),
};

/* The config decoded (the layer's state). */
typedef struct Conv {
    int64_t input_dim;     /* C */
    int64_t filters;       /* F */
    int64_t kernel_size;   /* k */
    int64_t strides;       /* s */
    NNTKPadding padding;
    int64_t dilation_rate; /* d */
    NNTKActivationKind activation;
    int32_t use_bias;
} Conv;

static Conv decode(const NNTKLayerConfig *c) {
    return (Conv){
        .input_dim = nntk_layer_int(c, INPUT_DIM),
        .filters = nntk_layer_int(c, FILTERS),
        .kernel_size = nntk_layer_int(c, KERNEL_SIZE),
        .strides = nntk_layer_int(c, STRIDES),
        .padding = (NNTKPadding)nntk_layer_int(c, PADDING),
        .dilation_rate = nntk_layer_int(c, DILATION_RATE),
        .activation = (NNTKActivationKind)nntk_layer_int(c, ACTIVATION),
        .use_bias = (int32_t)nntk_layer_int(c, USE_BIAS),
    };
}

/* GCOVR_EXCL_BR_START: argument validation */
static NNTKStatus check(const char *fn, const NNTKLayerConfig *config) {
    const Conv c = decode(config);
    if (c.strides > 1 && c.dilation_rate > 1)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: strides = %lld and dilation_rate = %lld: strides > 1 together with "
                         "dilation_rate > 1 is not supported (tf.keras raises too)",
                         fn, (long long)c.strides, (long long)c.dilation_rate);
    /* k, d < 2^24 each, so (k-1)*d + 1 cannot overflow. */
    if ((c.kernel_size - 1) * c.dilation_rate + 1 > NNTK_MAX_DIM)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: effective kernel length (kernel_size-1)*dilation_rate+1 = %lld exceeds %lld",
                         fn, (long long)((c.kernel_size - 1) * c.dilation_rate + 1),
                         (long long)NNTK_MAX_DIM);
    if (c.kernel_size * c.input_dim > NNTK_MAX_ELEMENTS / c.filters)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: kernel_size*input_dim*filters = %lld*%lld*%lld is too large", fn,
                         (long long)c.kernel_size, (long long)c.input_dim, (long long)c.filters);
    return NNTK_OK;
}
/* GCOVR_EXCL_BR_STOP */

/* kernel (k, C, F), then bias (F,) when use_bias. */
static int32_t weights(const NNTKLayerConfig *config, NNTKWeightBlock *blocks) {
    const Conv c = decode(config);
    blocks[0] = (NNTKWeightBlock){"kernel", 3, {c.kernel_size, c.input_dim, c.filters}, "glorot_uniform", 1};
    if (!c.use_bias) return 1;
    blocks[1] = (NNTKWeightBlock){"bias", 1, {c.filters}, "zeros", 1};
    return 2;
}

static NNTKStatus init(const char *fn, NNTKLayer *f, const NNTKLayerConfig *config,
                       const NNTKTrainingConfig *training_config) {
    (void)fn, (void)training_config;
    *(Conv *)f->state = decode(config);
    return NNTK_OK;
}

static const Conv *conv(const NNTKLayer *f) { return f->state; }

/* The padding and output length for an input of L steps. */
typedef struct Geometry {
    int64_t steps;     /* L */
    int64_t out_steps; /* O = ⌈n/s⌉ */
    int64_t pad_left;  /* zeros in front of x; those behind it are never read */
} Geometry;

static int64_t effective_kernel(const Conv *c) {
    return (c->kernel_size - 1) * c->dilation_rate + 1;
}

/* Fills *g for an input of `steps` steps (>= 1, already checked); fails when
 * a valid convolution does not fit. */
static NNTKStatus geometry(const char *fn, const Conv *c, int64_t steps, Geometry *g) {
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
static int64_t tap_range(const Conv *c, const Geometry *g, int64_t j, int64_t *o_lo,
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

/* The output rows [*o1, *o2) whose whole window lies inside the input, for
 * dilation_rate 1 (*o1 = *o2 = 0 otherwise): row o reads the k·C consecutive
 * floats of x from step o·s − pad_left on, a row of an overlapping matrix
 * with leading dimension s·C. Returns the count. */
static int64_t full_rows(const Conv *c, const Geometry *g, int64_t *o1, int64_t *o2) {
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
 * a padded edge tap by tap (the chain continuing through pre). The part of
 * convolve for samples [b0, b1) of `Convolution`: each sample is its own
 * products, so the pool may split the batch (docs/threads.md). */
typedef struct {
    const NNTKLayer *f;
    const Geometry *g;
    const float *x;
    float *pre;
} Convolution;

static void convolve_samples(void *context, int64_t b0, int64_t b1) {
    const Convolution *p = context;
    const NNTKLayer *f = p->f;
    const Geometry *g = p->g;
    const float *x = p->x;
    float *pre = p->pre;
    const Conv *c = conv(f);
    const int64_t cin = c->input_dim, nf = c->filters, s = c->strides;
    const float *kernel = f->weights;                           /* (k, C, F) */
    const float *bias = c->use_bias ? f->weights + c->kernel_size * cin * nf : NULL; /* (F,) */
    int64_t o1, o2;
    const int64_t n_full = full_rows(c, g, &o1, &o2);
    for (int64_t b = b0; b < b1; b++) {
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

static void convolve(const NNTKLayer *f, const Geometry *g, int64_t batch, const float *x, float *pre) {
    Convolution p = {f, g, x, pre};
    nntk_parallel_rows(batch, convolve_samples, &p);
}

/* The training forward of samples [b0, b1): their input kept, convolved, the
 * activation and the output; every step of it is the sample's own rows. */
typedef struct {
    Convolution conv;   /* its x: the kept input */
    const float *in;    /* (B, L, C) */
    float *x;           /* (B, L, C) the kept input (conv.x) */
    float *y, *out;     /* (B, O, F) each */
} Training;

static void train_samples(void *context, int64_t b0, int64_t b1) {
    Training *p = context;
    const Geometry *g = p->conv.g;
    const int64_t cin = conv(p->conv.f)->input_dim, nf = conv(p->conv.f)->filters;
    const int64_t in_first = b0 * g->steps * cin, out_first = b0 * g->out_steps * nf;
    const int64_t out_rows = (b1 - b0) * g->out_steps;
    nntk_copy(p->x + in_first, p->in + in_first, (b1 - b0) * g->steps * cin);
    convolve_samples(&p->conv, b0, b1);
    nntk_activation_forward(conv(p->conv.f)->activation, out_rows, nf, p->conv.pre + out_first,
                            p->y + out_first);
    nntk_copy(p->out + out_first, p->y + out_first, out_rows * nf);
}

/* The training workspace of a batch of B·L input rows and B·O output rows. */
typedef struct Kept {
    float *x;     /* (B, L, C) the input */
    float *pre;   /* (B, O, F) pre-activation */
    float *y;     /* (B, O, F) the output */
    float *delta; /* (B, O, F) scratch: d pre-activation */
} Kept;

static Kept kept(const NNTKLayer *f, int64_t in_rows, int64_t out_rows) {
    Kept k;
    k.x = f->workspace;
    k.pre = k.x + in_rows * conv(f)->input_dim;
    k.y = k.pre + out_rows * conv(f)->filters;
    k.delta = k.y + out_rows * conv(f)->filters;
    return k;
}

static NNTKStatus reserve(const char *fn, NNTKLayer *f, int64_t batch, int64_t steps, int64_t out_steps) {
    const int64_t c = conv(f)->input_dim, nf = conv(f)->filters;
    return nntk_layer_reserve(fn, f, batch * steps * c + 3 * batch * out_steps * nf);
}

/* Checks batch and steps for an input (batch, steps, C). */
static NNTKStatus output_shape(const char *fn, const NNTKLayer *f, int64_t batch, int64_t steps,
                               int64_t *out_steps, int64_t *out_features) {
    const int64_t c = conv(f)->input_dim, nf = conv(f)->filters;
    Geometry g = {0, 0, 0}; /* set by geometry(); zeroed for gcc's flow analysis */
    NNTKStatus s = nntk_check_batch(fn, batch, steps, c > nf ? c : nf);
    if (s != NNTK_OK || (s = geometry(fn, conv(f), steps, &g)) != NNTK_OK) return s;
    *out_steps = g.out_steps;
    *out_features = nf;
    return NNTK_OK;
}

static NNTKStatus forward(const char *fn, NNTKLayer *f, NNTKApplyMode mode, int64_t batch,
                          int64_t steps, int64_t out_steps, const float *in,
                          const float *initial_state, float *out, float *final_state) {
    (void)out_steps, (void)initial_state, (void)final_state;
    Geometry g = {0, 0, 0};
    NNTKStatus s = geometry(fn, conv(f), steps, &g); /* cannot fail: output_shape checked it */
    if (s != NNTK_OK) return s;
    const int64_t nf = conv(f)->filters, out_rows = batch * g.out_steps;
    if (mode == NNTK_APPLY_INFERENCE) {
        convolve(f, &g, batch, in, out);
        nntk_activation_forward(conv(f)->activation, out_rows, nf, out, out);
        return NNTK_OK;
    }
    const Kept k = kept(f, batch * steps, out_rows);
    Training p = {{f, &g, k.x, k.pre}, in, k.x, k.y, out};
    nntk_parallel_rows(batch, train_samples, &p);
    return NNTK_OK;
}

/* The gradient's products (backward): the kernel gradient summed over the samples,
 * one chain per element in sample order, and the input gradient, each sample its own.
 *   d_kernel[j] += x_tap_jᵀ · delta_b  (b = 0, 1, ...)   d_in_b[taps of j] += delta_b · kernel[j]ᵀ
 * The pool splits the kernel gradient by filter columns (each column's chains are the
 * same whatever its part, when every product is the own kernel's: see backward) and
 * the input gradient by samples (docs/threads.md). */
typedef struct {
    const NNTKLayer *filter;
    const Geometry *g;
    const float *x, *delta; /* (B, L, C), (B, O, F) */
    float *d_kernel, *d_in; /* (k, C, F), (B, L, C) */
} ConvGradient;

/* d_kernel[:, :, q0:q1] over all the samples. */
static void kernel_gradient_columns(void *context, int64_t q0, int64_t q1) {
    const ConvGradient *p = context;
    const Conv *c = conv(p->filter);
    const Geometry *g = p->g;
    const int64_t cin = c->input_dim, nf = c->filters, s = c->strides, w = q1 - q0;
    int64_t o1, o2;
    const int64_t n_full = full_rows(c, g, &o1, &o2);
    for (int64_t b = 0; b < p->filter->batch; b++) {
        const float *x_b = p->x + b * g->steps * cin;             /* (L, C) */
        const float *delta_b = p->delta + b * g->out_steps * nf + q0; /* (O, w), ld F */
        /* Full-window rows: d_kernel (k·C, w) += windowsᵀ (k·C, n) · delta_b[o1:o2] (n, w),
         * the windows read in place (overlapping, leading dimension s·C). */
        if (n_full > 0)
            nntk_matmul(1, c->kernel_size * cin, w, n_full, x_b + (o1 * s - g->pad_left) * cin,
                        s * cin, delta_b + o1 * nf, nf, NULL, 1, p->d_kernel + q0, nf);
        for (int64_t j = 0; j < c->kernel_size; j++) {
            int64_t o_lo, i_lo;
            const int64_t n = tap_range(c, g, j, &o_lo, &i_lo);
            if (n == 0) continue;
            /* d_kernel[j] (C, w) += x_tapᵀ · delta over the tap's rows outside [o1, o2) */
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
                nntk_gemm(1, 0, cin, w, hi - lo, 1.0f, x_b + (i_lo + (lo - o_lo) * s) * cin, s * cin,
                          delta_b + lo * nf, nf, 1.0f, p->d_kernel + j * cin * nf + q0, nf);
            }
        }
    }
}

/* d_in of samples [b0, b1): d_in_b[i_lo::s] (n, C; row stride s·C) += delta_b[o_lo:o_lo+n]
 * (n, F) · kernel[j]ᵀ (F, C), tap by tap. */
static void input_gradient_samples(void *context, int64_t b0, int64_t b1) {
    const ConvGradient *p = context;
    const Conv *c = conv(p->filter);
    const Geometry *g = p->g;
    const int64_t cin = c->input_dim, nf = c->filters, s = c->strides;
    const float *kernel = p->filter->weights; /* (k, C, F) */
    for (int64_t b = b0; b < b1; b++)
        for (int64_t j = 0; j < c->kernel_size; j++) {
            int64_t o_lo, i_lo;
            const int64_t n = tap_range(c, g, j, &o_lo, &i_lo);
            if (n == 0) continue;
            nntk_gemm(0, 1, n, cin, nf, 1.0f, p->delta + (b * g->out_steps + o_lo) * nf, nf,
                      kernel + j * cin * nf, nf, 1.0f, p->d_in + (b * g->steps + i_lo) * cin, s * cin);
        }
}

/* delta = d_out ⊙ act'(pre) for output rows [r0, r1): per element (per row for
 * softmax), so the pool may split the rows. */
typedef struct {
    const Conv *c;
    Kept k;
    const float *d_out; /* (B·O, F) */
} Delta;

static void delta_rows(void *context, int64_t r0, int64_t r1) {
    const Delta *p = context;
    const int64_t nf = p->c->filters;
    nntk_activation_backward(p->c->activation, r1 - r0, nf, p->k.pre + r0 * nf, p->k.y + r0 * nf,
                             p->d_out + r0 * nf, p->k.delta + r0 * nf);
}

static NNTKStatus backward(const char *fn, NNTKLayer *filter, const float *d_out,
                           const float *d_final_state, float *d_in, float *d_initial_state,
                           float *d_weights) {
    (void)d_final_state, (void)d_initial_state;
    NNTKStatus s;
    const Conv *c = conv(filter);
    const int64_t batch = filter->batch, cin = c->input_dim, nf = c->filters;
    Geometry g = {0, 0, 0};
    if ((s = geometry(fn, c, filter->steps, &g)) != NNTK_OK) return s; /* cannot fail: it did before */
    const int64_t out_rows = batch * g.out_steps;
    float *d_kernel = d_weights;                           /* (k, C, F) */
    float *d_bias = d_weights + c->kernel_size * cin * nf; /* (F,) */
    const Kept k = kept(filter, batch * g.steps, out_rows);
    float *delta = k.delta; /* (B, O, F) d pre-activation */

    /* y = act(pre): delta = d_out ⊙ act'(pre), split by rows when worth a dispatch (an
     * element costs about four multiply-adds' time, as in the Activation layer). */
    Delta dp = {c, k, d_out};
    nntk_split_rows(4 * out_rows * nf, out_rows, delta_rows, &dp);
    /* pre = bias + Σ_j x_tap_j · kernel[j]: d_bias = Σ_rows delta, and the products
     * (zero-padding positions are never written). */
    for (int64_t i = 0; i < c->kernel_size * cin * nf; i++) d_kernel[i] = 0.0f;
    if (c->use_bias) nntk_sum_rows(out_rows, nf, delta, d_bias, 0);
    ConvGradient p = {filter, &g, k.x, delta, d_kernel, d_in};
    /* Split when worth a dispatch; the kernel gradient only when every product of the
     * whole is the own kernel's (a BLAS product of a column part may give other bits
     * than the whole's, core/ops.c): the edge taps' products, at most O rows each, are
     * the only ones through nntk_gemm. */
    const int64_t work = batch * g.out_steps * c->kernel_size * cin * nf;
    if (nntk_gemm_own_kernel(cin, nf, g.out_steps))
        nntk_split_columns(work, nf, FILTER_UNIT, kernel_gradient_columns, &p);
    else
        kernel_gradient_columns(&p, 0, nf);
    if (d_in != NULL) {
        for (int64_t i = 0; i < batch * g.steps * cin; i++) d_in[i] = 0.0f;
        nntk_split_rows(work, batch, input_gradient_samples, &p);
    }
    return NNTK_OK;
}

static int32_t streams(const NNTKLayerConfig *config) {
    return nntk_stream_convolution(nntk_layer_int(config, KERNEL_SIZE), nntk_layer_int(config, STRIDES),
                                   (int32_t)nntk_layer_int(config, PADDING));
}

const NNTKLayerType nntk_conv1d_type = {
    NNTK_LAYER_NAMES("Conv1d", "Conv1D", 'C', 'v', '1'),
    NNTK_LAYER_FIELDS(fields),
    /* Conv1D(filters, kernel_size, strides, padding, data_format, ...) */
    .keras_positional = 4,
    .check = check,
    .weights = weights,
    .state_size = sizeof(Conv),
    .init = init,
    .streams = streams,
    NNTK_LAYER_STANDARD_OPS,
    .sequence_input = 1, /* tf.keras takes (B, L, C) only */
};

NNTK_API NNTKConv1dConfig *NNTKConv1dConfigCreate(int64_t input_dim, int64_t filters,
                                                  int64_t kernel_size, int64_t strides,
                                                  int32_t padding, int64_t dilation_rate,
                                                  int32_t activation, int32_t use_bias) {
    const NNTKLayerValue values[] = {{.i = input_dim}, {.i = filters},       {.i = kernel_size},
                                     {.i = strides},   {.i = padding},       {.i = dilation_rate},
                                     {.i = activation}, {.i = use_bias}};
    return (NNTKConv1dConfig *)nntk_layer_config_create("NNTKConv1dConfigCreate", &nntk_conv1d_type,
                                                       values);
}

NNTK_DEFINE_LAYER(Conv1d, nntk_conv1d_type)
