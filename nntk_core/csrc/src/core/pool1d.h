/* What the 1-D poolings (src/max_pool1d.c, src/average_pool1d.c) share: their
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

#endif /* NNTK_CORE_POOL1D_H */
