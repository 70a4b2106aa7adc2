/* What the 1-D poolings (src/max_pool1d.c, src/average_pool1d.c, and below the
 * global ones) share: their
 * config fields (tf.keras MaxPooling1D / AveragePooling1D: pool_size=2,
 * strides=None, padding "valid" or "same", plus input_dim) and their window
 * geometry, as tf.nn's pooling defines it (src/depthwise_conv1d.c uses the
 * geometry too: a kernel window's is the same). Not part of the public API.
 *
 * Shapes: L = input steps, O = output steps, C = input_dim, p = pool_size,
 * s = strides (None, stored 0: p). Window o covers input steps
 * [o·s − pad_left, o·s − pad_left + p) clipped to [0, L):
 *   valid: no padding, O = ⌊(L − p)/s⌋ + 1 (L >= p);
 *   same:  O = ⌈L/s⌉, P = max((O − 1)·s + p − L, 0) padded positions, ⌊P/2⌋ on
 *          the left (P <= p − 1, so every window holds at least one step). */
#ifndef NNTK_CORE_POOL1D_H
#define NNTK_CORE_POOL1D_H

#include "core/layer.h"
#include "nntk/conv1d.h" /* NNTKPadding */

enum { NNTK_POOL1D_INPUT_DIM, NNTK_POOL1D_POOL_SIZE, NNTK_POOL1D_STRIDES, NNTK_POOL1D_PADDING };

static const char *const nntk_pool1d_padding_names[] = {"valid", "same"};

/* The field table (in the typed ConfigCreate's parameter order). */
static const NNTKLayerField nntk_pool1d_fields[] = {
    [NNTK_POOL1D_INPUT_DIM] = NNTK_FIELD_SIZE("input_dim"),
    [NNTK_POOL1D_POOL_SIZE] = NNTK_FIELD_SIZE_DEFAULT("pool_size", 2),
    [NNTK_POOL1D_STRIDES] = NNTK_FIELD_SIZE_OR_NONE("strides"),
    [NNTK_POOL1D_PADDING] = {.name = "padding", .kind = NNTK_FIELD_ENUM,
                             .default_value = NNTK_PADDING_VALID, .min = 0, .max = 1,
                             .enum_names = nntk_pool1d_padding_names, .enum_count = 2},
};

/* The windows of a config for an input of L steps. */
typedef struct NNTKPool1dWindows {
    int64_t channels, pool, stride, steps, out_steps, pad_left;
} NNTKPool1dWindows;

/* Fills *w for `steps` (>= 1) and windows of `pool` steps every `stride` with
 * `padding` (valid or same); `channels` is only carried. Fails (under fn) when a
 * valid window does not fit, naming the window by `pool_name`. DepthwiseConv1d
 * uses it too: its window is the effective kernel (tf.nn's geometry is the same). */
/* GCOVR_EXCL_BR_START: argument validation */
static inline NNTKStatus nntk_window_geometry(const char *fn, const char *pool_name, int64_t channels,
                                              int64_t pool, int64_t stride, int64_t padding,
                                              int64_t steps, NNTKPool1dWindows *w) {
    *w = (NNTKPool1dWindows){.channels = channels, .pool = pool, .stride = stride, .steps = steps};
    if (padding == NNTK_PADDING_SAME) {
        w->out_steps = (steps + stride - 1) / stride;
        const int64_t total = (w->out_steps - 1) * stride + pool - steps;
        w->pad_left = total > 0 ? total / 2 : 0;
    } else if (steps < pool) {
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: steps = %lld is shorter than %s = %lld under valid padding", fn,
                         (long long)steps, pool_name, (long long)pool);
    } else {
        w->out_steps = (steps - pool) / stride + 1;
    }
    return NNTK_OK;
}
/* GCOVR_EXCL_BR_STOP */

/* The windows of a pooling's config. */
static inline NNTKStatus nntk_pool1d_windows(const char *fn, const NNTKLayerConfig *config,
                                             int64_t steps, NNTKPool1dWindows *w) {
    const int64_t pool = nntk_layer_int(config, NNTK_POOL1D_POOL_SIZE);
    const int64_t strides = nntk_layer_int(config, NNTK_POOL1D_STRIDES);
    return nntk_window_geometry(fn, "pool_size", nntk_layer_int(config, NNTK_POOL1D_INPUT_DIM), pool,
                                strides != 0 ? strides : pool,
                                nntk_layer_int(config, NNTK_POOL1D_PADDING), steps, w);
}

/* Window o's steps [*lo, *hi) inside [0, L). */
static inline void nntk_pool1d_window(const NNTKPool1dWindows *w, int64_t o, int64_t *lo,
                                      int64_t *hi) {
    const int64_t start = o * w->stride - w->pad_left;
    *lo = start > 0 ? start : 0;
    *hi = start + w->pool < w->steps ? start + w->pool : w->steps;
}

/* The output_shape op of a pooling. */
static inline NNTKStatus nntk_pool1d_output_shape(const char *fn, const NNTKLayer *f, int64_t batch,
                                                  int64_t steps, int64_t *out_steps,
                                                  int64_t *out_features) {
    NNTKPool1dWindows w;
    const int64_t channels = nntk_layer_int(&f->config, NNTK_POOL1D_INPUT_DIM);
    NNTKStatus s = nntk_check_batch(fn, batch, steps, channels);
    if (s == NNTK_OK) s = nntk_pool1d_windows(fn, &f->config, steps, &w);
    *out_steps = s == NNTK_OK ? w.out_steps : 0;
    *out_features = channels;
    return s;
}

/* The typed ConfigCreate of a pooling: C callers give the stride (>= 1); only
 * the generic API takes 0 as tf.keras's None. */
static inline NNTKLayerConfig *nntk_pool1d_config_create(const char *fn, const NNTKLayerType *type,
                                                         int64_t input_dim, int64_t pool_size,
                                                         int64_t strides, int32_t padding) {
    if (nntk_check_size(fn, "strides", strides, NNTK_MAX_DIM) != NNTK_OK) return NULL;
    const NNTKLayerValue values[] = {{.i = input_dim}, {.i = pool_size}, {.i = strides}, {.i = padding}};
    return nntk_layer_config_create(fn, type, values);
}

/* Adds output (b, o, c)'s gradient d into d_in_b (L, C), the batch row's input
 * gradient; x_b (L, C) is the kept input's row (NULL when the pooling keeps none). */
typedef void (*NNTKPool1dRoute)(const NNTKPool1dWindows *w, const float *x_b, int64_t o, int64_t c,
                                float d, float *d_in_b);

/* A pooling's backward op: d_in = 0, then every output's d_out routed in output
 * order (TF's order: overlapping windows add in float32). No weights: with d_in
 * NULL there is nothing to compute. */
static inline NNTKStatus nntk_pool1d_backward(const char *fn, const NNTKLayer *f, const float *d_out,
                                              float *d_in, NNTKPool1dRoute route) {
    if (d_in == NULL) return NNTK_OK;
    NNTKPool1dWindows w;
    const NNTKStatus s = nntk_pool1d_windows(fn, &f->config, f->steps, &w);
    if (s != NNTK_OK) return s; /* the kept batch passed output_shape */
    const int64_t C = w.channels, row = w.steps * C;
    for (int64_t i = 0; i < f->batch * row; i++) d_in[i] = 0.0f;
    for (int64_t b = 0; b < f->batch; b++) {
        const float *x_b = f->workspace != NULL ? f->workspace + b * row : NULL;
        for (int64_t o = 0; o < w.out_steps; o++)
            for (int64_t c = 0; c < C; c++)
                route(&w, x_b, o, c, d_out[(b * w.out_steps + o) * C + c], d_in + b * row);
    }
    return NNTK_OK;
}

/* --- the global poolings (src/global_average_pool1d.c, src/global_max_pool1d.c):
 * tf.keras GlobalAveragePooling1D / GlobalMaxPooling1D, (B, T, C) -> (B, C), or
 * (B, 1, C) with keepdims (the same floats; out_steps is 1 either way). */
enum { NNTK_GLOBAL_POOL1D_INPUT_DIM, NNTK_GLOBAL_POOL1D_KEEPDIMS };

static const NNTKLayerField nntk_global_pool1d_fields[] = {
    [NNTK_GLOBAL_POOL1D_INPUT_DIM] = NNTK_FIELD_SIZE("input_dim"),
    [NNTK_GLOBAL_POOL1D_KEEPDIMS] = NNTK_FIELD_FLAG("keepdims", 0),
};

/* Without keepdims tf.keras's output is (B, C): no steps axis. */
static inline int32_t nntk_global_pool1d_drops_steps(const NNTKLayerConfig *config) {
    return !nntk_layer_int(config, NNTK_GLOBAL_POOL1D_KEEPDIMS);
}

static inline NNTKStatus nntk_global_pool1d_output_shape(const char *fn, const NNTKLayer *f,
                                                         int64_t batch, int64_t steps,
                                                         int64_t *out_steps, int64_t *out_features) {
    *out_steps = 1;
    *out_features = nntk_layer_int(&f->config, NNTK_GLOBAL_POOL1D_INPUT_DIM);
    return nntk_check_batch(fn, batch, steps, *out_features);
}

/* The naming-free members of a global pooling's NNTKLayerType. */
#define NNTK_GLOBAL_POOL1D_MEMBERS                                                                 \
    NNTK_LAYER_FIELDS(nntk_global_pool1d_fields), .sequence_input = 1,                             \
        .drops_steps = nntk_global_pool1d_drops_steps,                                             \
        .output_shape = nntk_global_pool1d_output_shape

/* A global pooling's typed NNTK<Name>ConfigCreate(input_dim, keepdims). */
#define NNTK_DEFINE_GLOBAL_POOL1D_CONFIG_CREATE(Name, TYPE)                                         \
    NNTK_API NNTK##Name##Config *NNTK##Name##ConfigCreate(int64_t input_dim, int32_t keepdims) {   \
        const NNTKLayerValue values[] = {{.i = input_dim}, {.i = keepdims}};                       \
        return (NNTK##Name##Config *)nntk_layer_config_create("NNTK" #Name "ConfigCreate", &(TYPE), \
                                                              values);                             \
    }

#endif /* NNTK_CORE_POOL1D_H */
