/* DepthwiseConv1d: tf.keras DepthwiseConv1D (channels_last). Shapes: B = batch,
 * L = input steps, O = output steps, C = input_dim, M = depth_multiplier,
 * F = C·M output channels (channel c·M + m), k = kernel_size, s = strides,
 * d = dilation_rate, k_eff = (k − 1)·d + 1.
 *
 * Output step o, tap j reads input step i = o·s + j·d − pad_left (zeros outside
 * [0, L)); the geometry of valid and same padding is tf.nn's, as the poolings'
 * (core/pool1d.h) with a window of k_eff steps. tf.keras refuses causal padding
 * for this layer, and strides > 1 with dilation_rate > 1.
 *   pre[b, o, c·M + m] = bias[c·M + m] + Σ_j x[b, i, c]·kernel[j, c, m],
 *   y = activation(pre).
 * Every output element, input-gradient element and weight-gradient element is
 * one sum in double, rounded once (no scratch: an inference handle stays
 * shareable). Training keeps x, pre and y; backward forms d_pre there too. */
#include "core/ops.h"
#include "core/pool1d.h"
#include "nntk/depthwise_conv1d.h"

enum { INPUT_DIM, KERNEL_SIZE, STRIDES, PADDING, DEPTH_MULTIPLIER, DILATION_RATE, ACTIVATION, USE_BIAS };

static const char *const padding_names[] = {"valid", "same"};

static const NNTKLayerField fields[] = {
    [INPUT_DIM] = NNTK_FIELD_SIZE("input_dim"),
    [KERNEL_SIZE] = NNTK_FIELD_SIZE("kernel_size"),
    [STRIDES] = NNTK_FIELD_SIZE_DEFAULT("strides", 1),
    [PADDING] = {.name = "padding", .kind = NNTK_FIELD_ENUM, .default_value = NNTK_PADDING_VALID,
                 .min = 0, .max = 1, .enum_names = padding_names, .enum_count = 2},
    [DEPTH_MULTIPLIER] = NNTK_FIELD_SIZE_DEFAULT("depth_multiplier", 1),
    [DILATION_RATE] = NNTK_FIELD_SIZE_DEFAULT("dilation_rate", 1),
    [ACTIVATION] = NNTK_FIELD_ACTIVATION("activation", NULL, NNTK_ACTIVATION_LINEAR),
    [USE_BIAS] = NNTK_FIELD_FLAG("use_bias", 1),
};

/* The sizes of a config. */
typedef struct Sizes {
    int64_t channels, multiplier, features, taps, dilation, k_eff;
} Sizes;

static Sizes sizes_of(const NNTKLayerConfig *config) {
    const int64_t C = nntk_layer_int(config, INPUT_DIM), M = nntk_layer_int(config, DEPTH_MULTIPLIER);
    const int64_t k = nntk_layer_int(config, KERNEL_SIZE), d = nntk_layer_int(config, DILATION_RATE);
    return (Sizes){.channels = C, .multiplier = M, .features = C * M, .taps = k, .dilation = d,
                   .k_eff = (k - 1) * d + 1};
}

/* GCOVR_EXCL_BR_START: argument validation */
static NNTKStatus check(const char *fn, const NNTKLayerConfig *config) {
    const int64_t strides = nntk_layer_int(config, STRIDES);
    const Sizes z = sizes_of(config); /* each size < 2^24: the products below do not overflow */
    if (strides > 1 && z.dilation > 1)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: strides = %lld with dilation_rate = %lld: tf.keras refuses strides > 1 "
                         "together with dilation_rate > 1",
                         fn, (long long)strides, (long long)z.dilation);
    if (z.k_eff > NNTK_MAX_DIM || z.features > NNTK_MAX_DIM || z.taps * z.features > NNTK_MAX_ELEMENTS)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: kernel_size = %lld, dilation_rate = %lld, input_dim = %lld, "
                         "depth_multiplier = %lld: the kernel or the output channels are too large",
                         fn, (long long)z.taps, (long long)z.dilation, (long long)z.channels,
                         (long long)z.multiplier);
    return NNTK_OK;
}
/* GCOVR_EXCL_BR_STOP */

/* depthwise_kernel (k, C, M), then bias (C·M,) when use_bias. */
static int32_t weights(const NNTKLayerConfig *config, NNTKWeightBlock *blocks) {
    const Sizes z = sizes_of(config);
    blocks[0] = (NNTKWeightBlock){"depthwise_kernel", 3, {z.taps, z.channels, z.multiplier},
                                  "glorot_uniform", 1};
    if (!nntk_layer_int(config, USE_BIAS)) return 1;
    blocks[1] = (NNTKWeightBlock){"bias", 1, {z.features}, "zeros", 1};
    return 2;
}

static NNTKStatus windows(const char *fn, const NNTKLayerConfig *config, int64_t steps,
                          NNTKPool1dWindows *w) {
    const Sizes z = sizes_of(config);
    return nntk_window_geometry(fn, "the effective kernel length (kernel_size-1)*dilation_rate+1",
                                z.channels, z.k_eff, nntk_layer_int(config, STRIDES),
                                nntk_layer_int(config, PADDING), steps, w);
}

static NNTKStatus output_shape(const char *fn, const NNTKLayer *f, int64_t batch, int64_t steps,
                               int64_t *out_steps, int64_t *out_features) {
    NNTKPool1dWindows w;
    NNTKStatus s = nntk_check_batch(fn, batch, steps, sizes_of(&f->config).features);
    if (s == NNTK_OK) s = windows(fn, &f->config, steps, &w);
    *out_steps = s == NNTK_OK ? w.out_steps : 0;
    *out_features = sizes_of(&f->config).features;
    return s;
}

/* The training workspace: x (B, L, C), then pre, y and d_pre, each (B, O, F). */
static NNTKStatus reserve(const char *fn, NNTKLayer *f, int64_t batch, int64_t steps, int64_t out_steps) {
    const Sizes z = sizes_of(&f->config);
    return nntk_layer_reserve(fn, f, batch * (steps * z.channels + 3 * out_steps * z.features));
}

/* The input step tap j of output step o reads, or −1 when it is padding. */
static int64_t input_step(const NNTKPool1dWindows *w, const Sizes *z, int64_t o, int64_t j) {
    const int64_t i = o * w->stride + j * z->dilation - w->pad_left;
    return i >= 0 && i < w->steps ? i : -1;
}

/* pre (B, O, F) = bias + the taps over x (B, L, C). */
static void convolve(const NNTKLayer *f, const NNTKPool1dWindows *w, int64_t batch, const float *x,
                     float *pre) {
    const Sizes z = sizes_of(&f->config);
    const float *kernel = f->weights; /* (k, C, M) = (k, F) */
    const float *bias = nntk_layer_int(&f->config, USE_BIAS) ? kernel + z.taps * z.features : NULL;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t o = 0; o < w->out_steps; o++)
            for (int64_t c = 0; c < z.channels; c++)
                for (int64_t m = 0; m < z.multiplier; m++) {
                    const int64_t out_c = c * z.multiplier + m;
                    double sum = bias != NULL ? (double)bias[out_c] : 0.0;
                    for (int64_t j = 0; j < z.taps; j++) {
                        const int64_t i = input_step(w, &z, o, j);
                        if (i >= 0)
                            sum += (double)x[(b * w->steps + i) * z.channels + c] *
                                   (double)kernel[j * z.features + out_c];
                    }
                    pre[(b * w->out_steps + o) * z.features + out_c] = (float)sum;
                }
}

static NNTKActivationKind activation_of(const NNTKLayer *f) {
    return (NNTKActivationKind)nntk_layer_int(&f->config, ACTIVATION);
}

static NNTKStatus forward(const char *fn, NNTKLayer *f, NNTKApplyMode mode, int64_t batch,
                          int64_t steps, int64_t out_steps, const float *in,
                          const float *initial_state, float *out, float *final_state) {
    (void)initial_state, (void)final_state;
    NNTKPool1dWindows w;
    const NNTKStatus s = windows(fn, &f->config, steps, &w);
    if (s != NNTK_OK) return s; /* output_shape checked it */
    const Sizes z = sizes_of(&f->config);
    const int64_t outputs = batch * out_steps * z.features;
    if (mode == NNTK_APPLY_INFERENCE) {
        convolve(f, &w, batch, in, out);
        nntk_activation_forward(activation_of(f), batch * out_steps, z.features, out, out);
        return NNTK_OK;
    }
    float *x = f->workspace, *pre = x + batch * steps * z.channels, *y = pre + outputs;
    nntk_copy(x, in, batch * steps * z.channels);
    convolve(f, &w, batch, x, pre);
    nntk_activation_forward(activation_of(f), batch * out_steps, z.features, pre, y);
    nntk_copy(out, y, outputs);
    return NNTK_OK;
}

static NNTKStatus backward(const char *fn, NNTKLayer *f, const float *d_out, const float *d_final_state,
                           float *d_in, float *d_initial_state, float *d_weights) {
    (void)d_final_state, (void)d_initial_state;
    NNTKPool1dWindows w;
    const NNTKStatus s = windows(fn, &f->config, f->steps, &w);
    if (s != NNTK_OK) return s; /* the kept batch passed output_shape */
    const Sizes z = sizes_of(&f->config);
    const int64_t B = f->batch, O = w.out_steps, F = z.features, outputs = B * O * F;
    float *x = f->workspace, *pre = x + B * w.steps * z.channels, *y = pre + outputs;
    float *d_pre = y + outputs;
    nntk_activation_backward(activation_of(f), B * O, F, pre, y, d_out, d_pre);
    /* d_kernel[j, c, m] = Σ_b Σ_o x[b, i, c]·d_pre[b, o, c·M + m];  d_bias = Σ_b Σ_o d_pre. */
    for (int64_t j = 0; j < z.taps; j++)
        for (int64_t out_c = 0; out_c < F; out_c++) {
            const int64_t c = out_c / z.multiplier;
            double sum = 0.0;
            for (int64_t b = 0; b < B; b++)
                for (int64_t o = 0; o < O; o++) {
                    const int64_t i = input_step(&w, &z, o, j);
                    if (i >= 0)
                        sum += (double)x[(b * w.steps + i) * z.channels + c] *
                               (double)d_pre[(b * O + o) * F + out_c];
                }
            d_weights[j * F + out_c] = (float)sum;
        }
    if (nntk_layer_int(&f->config, USE_BIAS))
        for (int64_t out_c = 0; out_c < F; out_c++) {
            double sum = 0.0;
            for (int64_t r = 0; r < B * O; r++) sum += (double)d_pre[r * F + out_c];
            d_weights[z.taps * F + out_c] = (float)sum;
        }
    if (d_in == NULL) return NNTK_OK;
    /* d_in[b, i, c] = Σ over the (o, j) with i = o·s + j·d − pad_left of
     * Σ_m d_pre[b, o, c·M + m]·kernel[j, c, m]. */
    const float *kernel = f->weights;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < w.steps; i++)
            for (int64_t c = 0; c < z.channels; c++) {
                double sum = 0.0;
                for (int64_t j = 0; j < z.taps; j++) {
                    const int64_t reach = i + w.pad_left - j * z.dilation; /* = o·s */
                    if (reach < 0 || reach % w.stride != 0 || reach / w.stride >= O) continue;
                    const int64_t o = reach / w.stride;
                    for (int64_t m = 0; m < z.multiplier; m++) {
                        const int64_t out_c = c * z.multiplier + m;
                        sum += (double)d_pre[(b * O + o) * F + out_c] * (double)kernel[j * F + out_c];
                    }
                }
                d_in[(b * w.steps + i) * z.channels + c] = (float)sum;
            }
    return NNTK_OK;
}

static int32_t streams(const NNTKLayerConfig *config) {
    return nntk_stream_convolution(nntk_layer_int(config, KERNEL_SIZE), nntk_layer_int(config, STRIDES),
                                   (int32_t)nntk_layer_int(config, PADDING));
}

const NNTKLayerType nntk_depthwise_conv1d_type = {
    NNTK_LAYER_NAMES("DepthwiseConv1d", "DepthwiseConv1D", 'D', 'w', '1'),
    NNTK_LAYER_FIELDS(fields),
    /* DepthwiseConv1D(kernel_size, strides, padding, depth_multiplier, data_format, ...) */
    .keras_positional = 4,
    .check = check,
    .weights = weights,
    .streams = streams,
    NNTK_LAYER_STANDARD_OPS,
    .sequence_input = 1, /* tf.keras takes (B, L, C) only */
};

NNTK_API NNTKDepthwiseConv1dConfig *NNTKDepthwiseConv1dConfigCreate(
    int64_t input_dim, int64_t kernel_size, int64_t strides, int32_t padding,
    int64_t depth_multiplier, int64_t dilation_rate, int32_t activation, int32_t use_bias) {
    const NNTKLayerValue values[] = {{.i = input_dim},        {.i = kernel_size}, {.i = strides},
                                     {.i = padding},          {.i = depth_multiplier},
                                     {.i = dilation_rate},    {.i = activation},  {.i = use_bias}};
    return (NNTKDepthwiseConv1dConfig *)nntk_layer_config_create(
        "NNTKDepthwiseConv1dConfigCreate", &nntk_depthwise_conv1d_type, values);
}

NNTK_DEFINE_LAYER(DepthwiseConv1d, nntk_depthwise_conv1d_type)
