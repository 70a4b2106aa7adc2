/* Shared pieces of RNN, GRU and LSTM (see recurrent.h). */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/ops.h"
#include "core/recurrent.h"

static NNTKStatus check_flag(const char *fn, const char *arg, int32_t value) {
    /* GCOVR_EXCL_BR_START: argument validation */
    if (value != 0 && value != 1)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s must be 0 or 1 (got %d)", fn, arg,
                         (int)value);
    /* GCOVR_EXCL_BR_STOP */
    return NNTK_OK;
}

NNTKStatus nntk_recurrent_spec_init(const char *fn, NNTKRecurrentSpec *spec, int64_t input_dim,
                                    int64_t units, int64_t gates, int64_t states,
                                    int32_t activation, int32_t recurrent_activation,
                                    int32_t use_bias, int32_t reset_after,
                                    int32_t return_sequences, int32_t go_backwards) {
    NNTKStatus s;
    if ((s = nntk_check_size(fn, "input_dim", input_dim, NNTK_MAX_DIM)) != NNTK_OK) return s;
    if ((s = nntk_check_size(fn, "units", units, NNTK_MAX_DIM)) != NNTK_OK) return s;
    /* kernel (D, GU) and recurrent_kernel (U, GU) must each fit one tensor. */
    const int64_t wide = gates * units;
    /* GCOVR_EXCL_BR_START: argument validation */
    if (wide > NNTK_MAX_ELEMENTS / input_dim || wide > NNTK_MAX_ELEMENTS / units)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: input_dim=%lld, units=%lld give weights larger than the largest tensor",
                         fn, (long long)input_dim, (long long)units);
    if ((s = nntk_check_activation(fn, "activation", activation)) != NNTK_OK) return s;
    if (gates > 1 &&
        (s = nntk_check_activation(fn, "recurrent_activation", recurrent_activation)) != NNTK_OK)
        return s;
    /* GCOVR_EXCL_BR_STOP */
    if ((s = check_flag(fn, "use_bias", use_bias)) != NNTK_OK) return s;
    if ((s = check_flag(fn, "reset_after", reset_after)) != NNTK_OK) return s;
    if ((s = check_flag(fn, "return_sequences", return_sequences)) != NNTK_OK) return s;
    if ((s = check_flag(fn, "go_backwards", go_backwards)) != NNTK_OK) return s;
    *spec = (NNTKRecurrentSpec){
        .input_dim = input_dim,
        .units = units,
        .gates = gates,
        .states = states,
        .activation = (NNTKActivationKind)activation,
        .recurrent_activation =
            gates > 1 ? (NNTKActivationKind)recurrent_activation : NNTK_ACTIVATION_LINEAR,
        .use_bias = use_bias,
        .reset_after = reset_after,
        .return_sequences = return_sequences,
        .go_backwards = go_backwards,
        .bias_count = use_bias ? (reset_after ? 2 : 1) * wide : 0,
    };
    return NNTK_OK;
}

NNTKRecurrentWeights nntk_recurrent_weights(const NNTKRecurrentFilter *f) {
    const int64_t d = f->spec.input_dim, u = f->spec.units, gu = f->spec.gates * u;
    NNTKRecurrentWeights w;
    w.kernel = f->weights;
    w.recurrent = f->weights + d * gu;
    w.bias = f->spec.use_bias ? f->weights + d * gu + u * gu : NULL;
    return w;
}

/* --- handles ------------------------------------------------------------------------------ */

NNTKRecurrentConfig *nntk_recurrent_config_create(const char *fn, uint32_t tag,
                                                  const NNTKRecurrentSpec *spec) {
    NNTKRecurrentConfig *config = calloc(1, sizeof *config);
    if (config == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    config->tag = tag;
    config->spec = *spec;
    return config;
}

void nntk_recurrent_config_destroy(NNTKRecurrentConfig *config, uint32_t tag) {
    if (config == NULL || config->tag != tag) return;
    config->tag = NNTK_TAG_DEAD;
    free(config);
}

NNTKStatus nntk_recurrent_reserve_cache(const char *fn, NNTKRecurrentFilter *f, int64_t floats) {
    return nntk_reserve(fn, &f->cache, &f->cache_capacity, floats);
}

NNTKStatus nntk_recurrent_reserve_scratch(const char *fn, NNTKRecurrentFilter *f, int64_t floats,
                                          float **scratch) {
    NNTKStatus s = nntk_reserve(fn, &f->scratch, &f->scratch_capacity, floats);
    if (s != NNTK_OK) return s;
    *scratch = f->scratch; /* not cleared: every user writes before it reads */
    return NNTK_OK;
}

NNTKRecurrentFilter *nntk_recurrent_create(const char *fn, const NNTKRecurrentConfig *config,
                                           uint32_t config_tag, uint32_t filter_tag, int training,
                                           const NNTKTrainingConfig *training_config,
                                           NNTKRecurrentSizeFn cache_size,
                                           NNTKRecurrentSizeFn scratch_size,
                                           NNTKRecurrentSizeFn inference_scratch) {
    if (nntk_check_handle(fn, "config", config, config_tag) != NNTK_OK) return NULL;
    int64_t max_batch = 0, max_steps = 0;
    if (training && nntk_training_capacity(fn, training_config, &max_batch, &max_steps) != NNTK_OK)
        return NULL;
    NNTKRecurrentFilter *f = calloc(1, sizeof *f);
    if (f == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    const NNTKRecurrentSpec *spec = &config->spec;
    const int64_t gu = spec->gates * spec->units;
    f->tag = filter_tag;
    f->spec = *spec;
    f->training = training;
    f->weight_count = spec->input_dim * gu + spec->units * gu + spec->bias_count;
    f->weights = nntk_alloc_floats(f->weight_count);
    /* GCOVR_EXCL_BR_START: out of memory: the weights were not allocated */
    f->panels = f->weights ? nntk_alloc_floats(spec->units * gu) : NULL;
    /* GCOVR_EXCL_BR_STOP */
    if (f->weights == NULL || f->panels == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory for %lld weights", fn,
                  (long long)f->weight_count);
        nntk_recurrent_destroy(f, filter_tag);
        return NULL;
    }
    const int64_t inference_batch = max_batch > 0 ? max_batch : 1;
    /* GCOVR_EXCL_BR_START: out of memory */
    if (nntk_reserve(fn, &f->scratch, &f->scratch_capacity,
                     inference_scratch(spec, inference_batch, NNTK_RECURRENT_PROJECTION_STEPS)) !=
            NNTK_OK ||
    /* GCOVR_EXCL_BR_STOP */
        (max_batch > 0 &&
         /* GCOVR_EXCL_BR_START: out of memory */
         (nntk_recurrent_reserve_cache(fn, f, cache_size(spec, max_batch, max_steps)) != NNTK_OK ||
          nntk_reserve(fn, &f->scratch, &f->scratch_capacity,
                       scratch_size(spec, max_batch, max_steps)) != NNTK_OK))) {
         /* GCOVR_EXCL_BR_STOP */
        nntk_recurrent_destroy(f, filter_tag);
        return NULL;
    }
    return f;
}

void nntk_recurrent_destroy(NNTKRecurrentFilter *filter, uint32_t tag) {
    if (filter == NULL || filter->tag != tag) return;
    filter->tag = NNTK_TAG_DEAD;
    nntk_free(filter->weights);
    nntk_free(filter->cache);
    nntk_free(filter->scratch);
    nntk_free(filter->panels);
    free(filter);
}

NNTKStatus nntk_recurrent_get_weights(const char *fn, NNTKRecurrentFilter *filter, uint32_t tag,
                                      float **weights, int64_t *count) {
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, tag)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "weights", weights)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "count", count)) != NNTK_OK) return s;
    *weights = filter->weights;
    *count = filter->weight_count;
    return NNTK_OK;
}

static int64_t widest(const NNTKRecurrentSpec *spec) {
    const int64_t gu = spec->gates * spec->units;
    return spec->input_dim > gu ? spec->input_dim : gu;
}

NNTKStatus nntk_recurrent_output_shape(const char *fn, const NNTKRecurrentFilter *filter,
                                       uint32_t tag, int64_t batch, int64_t steps,
                                       int64_t *out_steps, int64_t *out_features) {
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, tag)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_steps", out_steps)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_features", out_features)) != NNTK_OK) return s;
    if ((s = nntk_check_batch(fn, batch, steps, widest(&filter->spec))) != NNTK_OK) return s;
    *out_steps = filter->spec.return_sequences ? steps : 1;
    *out_features = filter->spec.units;
    return NNTK_OK;
}

NNTKRecurrentGradient *nntk_recurrent_gradient_create(const char *fn,
                                                      const NNTKRecurrentFilter *filter,
                                                      uint32_t filter_tag, uint32_t gradient_tag) {
    if (nntk_check_handle(fn, "filter", filter, filter_tag) != NNTK_OK) return NULL;
    if (!filter->training) {
        nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
        return NULL;
    }
    NNTKRecurrentGradient *g = calloc(1, sizeof *g);
    float *block = nntk_alloc_floats(filter->weight_count);
    if (g == NULL || block == NULL) {
        free(g);
        nntk_free(block);
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    *g = (NNTKRecurrentGradient){gradient_tag, filter, block, filter->weight_count};
    return g;
}

void nntk_recurrent_gradient_destroy(NNTKRecurrentGradient *gradient, uint32_t tag) {
    if (gradient == NULL || gradient->tag != tag) return;
    gradient->tag = NNTK_TAG_DEAD;
    nntk_free(gradient->d_weights);
    free(gradient);
}

NNTKStatus nntk_recurrent_gradient_get_weights(const char *fn, NNTKRecurrentGradient *gradient,
                                               uint32_t tag, float **weights, int64_t *count) {
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "gradient", gradient, tag)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "weights", weights)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "count", count)) != NNTK_OK) return s;
    *weights = gradient->d_weights;
    *count = gradient->count;
    return NNTK_OK;
}

/* --- checks ------------------------------------------------------------------------------- */

NNTKStatus nntk_recurrent_check_apply(const char *fn, const NNTKRecurrentFilter *filter,
                                      uint32_t tag, int training, int64_t batch, int64_t steps,
                                      const float *in, const float *out) {
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, tag)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "in", in)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out", out)) != NNTK_OK) return s;
    if ((s = nntk_check_batch(fn, batch, steps, widest(&filter->spec))) != NNTK_OK) return s;
    if (training && !filter->training)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
    return NNTK_OK;
}

NNTKStatus nntk_recurrent_check_gradient(const char *fn, const NNTKRecurrentFilter *filter,
                                         uint32_t filter_tag,
                                         const NNTKRecurrentGradient *gradient,
                                         uint32_t gradient_tag, const float *d_out,
                                         const char *apply_name) {
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, filter_tag)) != NNTK_OK) return s;
    if ((s = nntk_check_handle(fn, "gradient", gradient, gradient_tag)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "d_out", d_out)) != NNTK_OK) return s;
    if (gradient->filter != filter)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: gradient was created for another filter", fn);
    if (!filter->training)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
    if (filter->batch == 0)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: no training batch yet (call %s first)", fn,
                         apply_name);
    return NNTK_OK;
}

/* --- the sequence --------------------------------------------------------------------------- */

void nntk_recurrent_store_output(const NNTKRecurrentSpec *spec, int64_t batch, int64_t steps,
                                 int64_t k, const float *h, float *out) {
    const int64_t u = spec->units;
    if (spec->return_sequences) {
        for (int64_t b = 0; b < batch; b++) nntk_copy(out + (b * steps + k) * u, h + b * u, u);
    } else if (k == steps - 1) {
        nntk_copy(out, h, batch * u);
    }
}

void nntk_recurrent_output_gradient(const NNTKRecurrentSpec *spec, int64_t batch, int64_t steps,
                                    int64_t k, const float *d_out, const float *carry, float *dh) {
    const int64_t u = spec->units;
    const int has_output = spec->return_sequences || k == steps - 1;
    for (int64_t b = 0; b < batch; b++) {
        const float *d = spec->return_sequences ? d_out + (b * steps + k) * u : d_out + b * u; /* (U,) */
        float *row = dh + b * u;                                                              /* (U,) */
        const float *c = carry ? carry + b * u : NULL;                                       /* (U,) */
        for (int64_t j = 0; j < u; j++) {
            float v = has_output ? d[j] : 0.0f;
            row[j] = c ? v + c[j] : v;
        }
    }
}

void nntk_recurrent_gather_input(const NNTKRecurrentSpec *spec, int64_t batch, int64_t steps,
                                 const float *in, float *x) {
    const int64_t d = spec->input_dim;
    for (int64_t k = 0; k < steps; k++) {
        const int64_t t = nntk_recurrent_position(spec, k, steps);
        for (int64_t b = 0; b < batch; b++) nntk_copy(x + (k * batch + b) * d, in + (b * steps + t) * d, d);
    }
}

void nntk_recurrent_load_state(int64_t batch, int64_t units, const float *state, float *dst) {
    if (state)
        nntk_copy(dst, state, batch * units);
    else
        memset(dst, 0, (size_t)(batch * units) * sizeof(float));
}

void nntk_recurrent_activate(NNTKActivationKind kind, int64_t batch, int64_t units, int64_t ld,
                             const float *pre, float *act) {
    if (ld == units) {
        nntk_activation_forward(kind, batch, units, pre, act);
        return;
    }
    for (int64_t b = 0; b < batch; b++) nntk_activation_forward(kind, 1, units, pre + b * ld, act + b * ld);
}

void nntk_recurrent_activate_backward(NNTKActivationKind kind, int64_t batch, int64_t units,
                                      int64_t ld, const float *pre, const float *act,
                                      const float *d_act, float *d_pre) {
    if (ld == units) {
        nntk_activation_backward(kind, batch, units, pre, act, d_act, d_pre);
        return;
    }
    for (int64_t b = 0; b < batch; b++)
        nntk_activation_backward(kind, 1, units, pre + b * ld, act + b * ld, d_act + b * ld,
                                 d_pre + b * ld);
}

/* --- the recurrent product ------------------------------------------------------------- */
/* At batch 1 each step reads the whole recurrent kernel (U, GU) for one row:
 * for a 64-unit LSTM that is 64 KiB, twice the L1 data cache, so every step
 * streams it from L2. Stored as contiguous column panels and visited
 * forwards on even steps and backwards on odd ones, the panels read last in
 * one step are read first in the next, still in L1. Measured on the bench
 * machine (AVX-512, U = 64): 574 -> 467 ns per LSTM step, 425 -> 334 ns per
 * GRU step; neither the panels alone nor the alternation alone gains. */
void nntk_recurrent_prepare_product(NNTKRecurrentFilter *f, int64_t batch, int64_t steps) {
    f->use_panels = batch == 1 && steps >= NNTK_RECURRENT_PANEL_MIN_STEPS;
    if (!f->use_panels) return;
    const int64_t u = f->spec.units, gu = f->spec.gates * u;
    const float *r = nntk_recurrent_weights(f).recurrent; /* (U, GU) */
    float *dst = f->panels;
    for (int64_t j0 = 0; j0 < gu; j0 += NNTK_RECURRENT_PANEL) {
        const int64_t width = gu - j0 < NNTK_RECURRENT_PANEL ? gu - j0 : NNTK_RECURRENT_PANEL;
        for (int64_t p = 0; p < u; p++, dst += width) memcpy(dst, r + p * gu + j0, (size_t)width * sizeof *dst);
    }
}

void nntk_recurrent_product(const NNTKRecurrentFilter *f, int64_t k, int64_t batch, int64_t n,
                            const float *h, const float *bias, float *hp, int64_t ldc) {
    const int64_t u = f->spec.units, gu = f->spec.gates * u;
    if (!f->use_panels || batch != 1) {
        nntk_matmul(0, batch, n, u, h, u, nntk_recurrent_weights(f).recurrent, gu, bias, 0, hp, ldc);
        return;
    }
    const int64_t panels = (n + NNTK_RECURRENT_PANEL - 1) / NNTK_RECURRENT_PANEL;
    for (int64_t i = 0; i < panels; i++) {
        const int64_t q = k % 2 ? panels - 1 - i : i; /* the panel visited i-th */
        const int64_t j0 = q * NNTK_RECURRENT_PANEL;
        const int64_t stored = gu - j0 < NNTK_RECURRENT_PANEL ? gu - j0 : NNTK_RECURRENT_PANEL;
        const int64_t width = n - j0 < stored ? n - j0 : stored;
        nntk_matmul(0, 1, width, u, h, u, f->panels + j0 * u, stored, bias ? bias + j0 : NULL, 0,
                    hp + j0, ldc);
    }
}

int64_t nntk_recurrent_project_block(const NNTKRecurrentFilter *f, int64_t batch, int64_t steps,
                                     int64_t k0, int64_t n, const float *in, const float *bias,
                                     float *xp) {
    const int64_t d = f->spec.input_dim, gu = f->spec.gates * f->spec.units;
    const int64_t t_lo = f->spec.go_backwards ? steps - k0 - n : k0;
    const float *kernel = nntk_recurrent_weights(f).kernel; /* (D, GU) */
    for (int64_t b = 0; b < batch; b++) /* the block's rows of sample b are contiguous in `in` */
        nntk_matmul(0, n, gu, d, in + (b * steps + t_lo) * d, d, kernel, gu, bias, 0,
                    xp + b * n * gu, gu);
    return t_lo;
}

void nntk_recurrent_input_gradient(const NNTKRecurrentFilter *f, int64_t batch, int64_t steps,
                                   const float *a, float *wt, float *d_in) {
    const int64_t d = f->spec.input_dim, gu = f->spec.gates * f->spec.units;
    nntk_transpose(d, gu, nntk_recurrent_weights(f).kernel, wt);
    for (int64_t k = 0; k < steps; k++) {
        const int64_t t = nntk_recurrent_position(&f->spec, k, steps);
        nntk_gemm(0, 0, batch, d, gu, 1.0f, a + k * batch * gu, gu, wt, d, 0.0f, d_in + t * d,
                  steps * d);
    }
}
