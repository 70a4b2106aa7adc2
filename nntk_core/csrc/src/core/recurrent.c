/* Shared pieces of RNN, GRU and LSTM (see recurrent.h). */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/kernels.h"
#include "core/ops.h"
#include "core/recurrent.h"
#include "core/threads.h"

/* --- the config ----------------------------------------------------------------------------- */

static const NNTKRecurrentCell *cell_of(const NNTKLayerConfig *config) {
    return (const NNTKRecurrentCell *)config->type->impl;
}

/* The value of the config field `name`, or `absent` when the layer has none. */
static int64_t field(const NNTKLayerConfig *config, const char *name, int64_t absent) {
    const int32_t i = nntk_layer_field_index(config->type, name);
    return i >= 0 ? nntk_layer_int(config, i) : absent;
}

int32_t nntk_recurrent_drops_steps(const NNTKLayerConfig *config) {
    return field(config, "return_sequences", 0) == 0;
}

static NNTKRecurrentSpec spec_of(const NNTKLayerConfig *config) {
    const NNTKRecurrentCell *cell = cell_of(config);
    NNTKRecurrentSpec spec = {
        .cell = cell,
        .input_dim = field(config, "input_dim", 0),
        .units = field(config, "units", 0),
        .gates = cell->gates,
        .states = cell->states,
        .activation = (NNTKActivationKind)field(config, "activation", NNTK_ACTIVATION_LINEAR),
        .recurrent_activation =
            (NNTKActivationKind)field(config, "recurrent_activation", NNTK_ACTIVATION_LINEAR),
        .use_bias = (int32_t)field(config, "use_bias", 0),
        .reset_after = (int32_t)field(config, "reset_after", 0),
        .return_sequences = (int32_t)field(config, "return_sequences", 0),
        .go_backwards = (int32_t)field(config, "go_backwards", 0),
    };
    const int64_t wide = spec.gates * spec.units;
    spec.bias_count = spec.use_bias ? (spec.reset_after ? 2 : 1) * wide : 0;
    return spec;
}

/* GCOVR_EXCL_BR_START: argument validation */
NNTKStatus nntk_recurrent_check(const char *fn, const NNTKLayerConfig *config) {
    const NNTKRecurrentSpec spec = spec_of(config);
    const int64_t wide = spec.gates * spec.units;
    if (wide > NNTK_MAX_ELEMENTS / spec.input_dim || wide > NNTK_MAX_ELEMENTS / spec.units)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: input_dim=%lld, units=%lld give weights larger than the largest tensor",
                         fn, (long long)spec.input_dim, (long long)spec.units);
    return NNTK_OK;
}
/* GCOVR_EXCL_BR_STOP */

int32_t nntk_recurrent_weight_blocks(const NNTKLayerConfig *config, NNTKWeightBlock *blocks) {
    const NNTKRecurrentSpec spec = spec_of(config);
    const int64_t d = spec.input_dim, u = spec.units, gu = spec.gates * u;
    blocks[0] = (NNTKWeightBlock){"kernel", 2, {d, gu}, "glorot_uniform", 1};
    blocks[1] = (NNTKWeightBlock){"recurrent_kernel", 2, {u, gu}, "orthogonal", 1};
    if (!spec.use_bias) return 2;
    const char *init = field(config, "unit_forget_bias", 0) ? "unit_forget_bias" : "zeros";
    blocks[2] = spec.reset_after ? (NNTKWeightBlock){"bias", 2, {2, gu}, init, 1}
                                 : (NNTKWeightBlock){"bias", 1, {gu}, init, 1};
    return 3;
}

int32_t nntk_recurrent_states(const NNTKLayerConfig *config, int64_t *widths) {
    const NNTKRecurrentSpec spec = spec_of(config);
    for (int64_t i = 0; i < spec.states; i++) widths[i] = spec.units;
    return (int32_t)spec.states;
}

NNTKRecurrentWeights nntk_recurrent_weights(const NNTKRecurrentFilter *f) {
    const int64_t d = f->spec.input_dim, u = f->spec.units, gu = f->spec.gates * u;
    NNTKRecurrentWeights w;
    w.kernel = f->weights;
    w.recurrent = f->weights + d * gu;
    w.bias = f->spec.use_bias ? f->weights + d * gu + u * gu : NULL;
    return w;
}

/* --- workspace sizes ----------------------------------------------------------------------- */

/* Floats in (B, w·U) arrays of a cell's list, per batch row and step, in units of U. */
static int64_t sum_widths(const int64_t *widths, int n) {
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += widths[i];
    return total;
}

/* Training cache (processing order k, then batch row):
 *   x       (T, B, D)       the input, x[k] = in[:, position(k), :]
 *   states  S × (T+1, B, U) state s: [0] = initial, [k+1] = after step k
 *   values  the cell's kept arrays, each (T, B, value_width·U) */
typedef struct {
    float *x, *states;
    NNTKRecurrentSlots values;
} Cache;

static int64_t cache_size(const NNTKRecurrentSpec *s, int64_t batch, int64_t steps) {
    const NNTKRecurrentCell *cell = s->cell;
    const int64_t bu = batch * s->units;
    return batch * steps * s->input_dim + cell->states * (steps + 1) * bu +
           sum_widths(cell->value_width, cell->values) * steps * bu;
}

static Cache cache_layout(const NNTKRecurrentFilter *f, int64_t batch, int64_t steps) {
    const NNTKRecurrentCell *cell = f->spec.cell;
    const int64_t bu = batch * f->spec.units;
    Cache c = {0};
    c.x = f->cache;
    c.states = c.x + batch * steps * f->spec.input_dim;
    float *next = c.states + cell->states * (steps + 1) * bu;
    for (int i = 0; i < cell->values; i++) {
        c.values.a[i] = next;
        next += cell->value_width[i] * steps * bu;
    }
    return c;
}

/* Scratch of a forward pass: xp the input projection (training: (B, G·U),
 * one step; inference: (B, block, G·U), one block of steps), hp (B, G·U);
 * inference also the states (S, 2, B, U) (ping-pong) and one step's values. */
static int64_t forward_scratch(const NNTKRecurrentSpec *s, int64_t batch, int64_t steps,
                               int training) {
    const NNTKRecurrentCell *cell = s->cell;
    const int64_t bu = batch * s->units;
    const int64_t one_step = 2 * cell->states + sum_widths(cell->value_width, cell->values);
    return s->gates * nntk_recurrent_projected_steps(steps, training) * bu + s->gates * bu +
           (training ? 0 : one_step * bu);
}

/* The larger of the forward (training) and backward scratch: reserved at
 * creation for a training capacity. Backward: rt (G·U, U) = recurrent_kernelᵀ,
 * wt (G·U, D) = kernelᵀ, d_state, d_prev (S, B, U) each, the cell's work
 * (B, work·U), the pre-activation gradients (T, B, grad_width·U) each. */
static int64_t training_scratch(const NNTKRecurrentSpec *s, int64_t batch, int64_t steps) {
    const NNTKRecurrentCell *cell = s->cell;
    const int64_t u = s->units, gu = s->gates * u, bu = batch * u;
    const int64_t fwd = forward_scratch(s, batch, steps, 1);
    const int64_t bwd = gu * u + gu * s->input_dim + (2 * cell->states + cell->work) * bu +
                        sum_widths(cell->grad_width, cell->grads) * steps * bu;
    return fwd > bwd ? fwd : bwd;
}

/* --- handles ------------------------------------------------------------------------------ */

/* Reserves `floats` of the filter's scratch (grows only; contents are not
 * kept or cleared); *scratch points at it. */
static NNTKStatus reserve_scratch(const char *fn, NNTKRecurrentFilter *f, int64_t floats,
                                  float **scratch) {
    NNTKStatus s = nntk_reserve(fn, &f->scratch, &f->scratch_capacity, floats);
    if (s != NNTK_OK) return s;
    *scratch = f->scratch; /* not cleared: every user writes before it reads */
    return NNTK_OK;
}

/* Every handle reserves the inference scratch of NNTK_RECURRENT_PROJECTION_STEPS
 * steps for batch 1 (a training capacity: see nntk_recurrent_reserve). */
NNTKStatus nntk_recurrent_init(const char *fn, NNTKLayer *layer, const NNTKLayerConfig *config,
                               const NNTKTrainingConfig *training_config) {
    (void)training_config; /* the capacity comes through nntk_recurrent_reserve */
    NNTKRecurrentFilter *f = layer->state;
    f->spec = spec_of(config);
    f->weights = layer->weights;
    const int64_t gu = f->spec.gates * f->spec.units;
    /* the panels only for a kernel table that reads them (prepare_product) */
    const int panels = nntk_kernels()->recurrent_panels;
    f->panels = panels ? nntk_alloc_floats(f->spec.units * gu) : NULL;
    if (panels && f->panels == NULL)
        return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory for %lld weights", fn,
                         (long long)layer->weight_count);
    return nntk_reserve(fn, &f->scratch, &f->scratch_capacity,
                        forward_scratch(&f->spec, 1, NNTK_RECURRENT_PROJECTION_STEPS, 0));
}

void nntk_recurrent_release(NNTKLayer *layer) {
    NNTKRecurrentFilter *f = layer->state;
    nntk_free(f->scratch);
    nntk_free(f->panels);
}

NNTKStatus nntk_recurrent_reserve(const char *fn, NNTKLayer *layer, int64_t batch, int64_t steps,
                                  int64_t out_steps) {
    (void)out_steps;
    NNTKRecurrentFilter *f = layer->state;
    const int64_t training = training_scratch(&f->spec, batch, steps);
    const int64_t inference = forward_scratch(&f->spec, batch, steps, 0);
    NNTKStatus s = nntk_layer_reserve(fn, layer, cache_size(&f->spec, batch, steps));
    if (s != NNTK_OK) return s;
    return nntk_reserve(fn, &f->scratch, &f->scratch_capacity,
                        training > inference ? training : inference);
}

static int64_t widest(const NNTKRecurrentSpec *spec) {
    const int64_t gu = spec->gates * spec->units;
    return spec->input_dim > gu ? spec->input_dim : gu;
}

NNTKStatus nntk_recurrent_output_shape(const char *fn, const NNTKLayer *layer, int64_t batch,
                                       int64_t steps, int64_t *out_steps, int64_t *out_features) {
    const NNTKRecurrentFilter *f = layer->state;
    NNTKStatus s = nntk_check_batch(fn, batch, steps, widest(&f->spec));
    *out_steps = f->spec.return_sequences ? steps : 1;
    *out_features = f->spec.units;
    return s;
}

/* --- the sequence --------------------------------------------------------------------------- */

/* Input position of processing step k. */
static int64_t position(const NNTKRecurrentSpec *spec, int64_t k, int64_t steps) {
    return spec->go_backwards ? steps - 1 - k : k;
}

/* Writes h (B, U), the state after processing step k, into the output:
 * out (B, T, U) at [:, k, :] (processing order, as Keras) with
 * return_sequences, else out (B, U) when k is the last step. */
static void store_output(const NNTKRecurrentSpec *spec, int64_t batch, int64_t steps, int64_t k,
                         const float *h, float *out) {
    const int64_t u = spec->units;
    if (spec->return_sequences) {
        for (int64_t b = 0; b < batch; b++) nntk_copy(out + (b * steps + k) * u, h + b * u, u);
    } else if (k == steps - 1) {
        nntk_copy(out, h, batch * u);
    }
}

/* dh (B, U) = d_out's part for processing step k (zeros when k has no output)
 * + carry (B, U) (may be NULL, or dh itself). The mirror of store_output. */
static void output_gradient(const NNTKRecurrentSpec *spec, int64_t batch, int64_t steps, int64_t k,
                            const float *d_out, const float *carry, float *dh) {
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

/* x (T, B, D) = in (B, T, D) in processing order, rows [b0, b1): x[k, b] = in[b, position(k)]. */
static void gather_input(const NNTKRecurrentSpec *spec, int64_t batch, int64_t steps, int64_t b0,
                         int64_t b1, const float *in, float *x) {
    const int64_t d = spec->input_dim;
    for (int64_t k = 0; k < steps; k++) {
        const int64_t t = position(spec, k, steps);
        for (int64_t b = b0; b < b1; b++) nntk_copy(x + (k * batch + b) * d, in + (b * steps + t) * d, d);
    }
}

/* dst (B, U) = state (B, U), or zeros when state is NULL. */
static void load_state(int64_t batch, int64_t units, const float *state, float *dst) {
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
/* At a larger batch (training: W7d, B = 32, 256 units) each step's product reads
 * the kernel once per column block of the own kernel's tiles. In place its rows
 * are G·U floats apart, 4 KiB at 1024 columns, where the product copies each
 * block before its tiles read it (kernels_impl.inc, matmul), every step; in
 * panels one tile wide (the table's tile_cols), copied once per call, each block
 * is already contiguous. Measured (AVX2, Zen 3, 32 x 256 x 1024, the own kernel
 * alone): 23.6 ms per 100 products in place (with its per-step copy) -> 17.6 in
 * 24-column panels (64-column panels: 19.7). */
/* Called by the forward pass before its loop: packs recurrent_kernel into
 * f->panels of f->panel_width columns and sets f->use_panels when the kernel
 * table reads panels (kernels.h, recurrent_panels: not avx512, whose wider
 * one-row product reads the kernel in place faster, and whose larger batches
 * were not measured here) and the sequence is long enough to repay the copy:
 * NNTK_RECURRENT_PANEL columns at batch 1, a tile's columns at larger
 * batches; clears use_panels otherwise. */
static void prepare_product(NNTKRecurrentFilter *f, int64_t batch, int64_t steps) {
    const NNTKKernels *kernels = nntk_kernels();
    f->use_panels = kernels->recurrent_panels && steps >= NNTK_RECURRENT_PANEL_MIN_STEPS;
    if (!f->use_panels) return;
    f->panel_width = batch == 1 ? NNTK_RECURRENT_PANEL : kernels->tile_cols;
    const int64_t u = f->spec.units, gu = f->spec.gates * u, panel = f->panel_width;
    const float *r = nntk_recurrent_weights(f).recurrent; /* (U, GU) */
    float *dst = f->panels;
    for (int64_t j0 = 0; j0 < gu; j0 += panel) {
        const int64_t width = gu - j0 < panel ? gu - j0 : panel;
        for (int64_t p = 0; p < u; p++, dst += width) memcpy(dst, r + p * gu + j0, (size_t)width * sizeof *dst);
    }
}

void nntk_recurrent_product(const NNTKRecurrentFilter *f, int64_t k, int64_t batch, int64_t n,
                            const float *h, const float *bias, float *hp, int64_t ldc) {
    const int64_t u = f->spec.units, gu = f->spec.gates * u;
    if (!f->use_panels) {
        nntk_matmul(0, batch, n, u, h, u, nntk_recurrent_weights(f).recurrent, gu, bias, 0, hp, ldc);
        return;
    }
    const int64_t panel = f->panel_width;
    const int64_t panels = (n + panel - 1) / panel;
    for (int64_t i = 0; i < panels; i++) {
        const int64_t q = k % 2 ? panels - 1 - i : i; /* the panel visited i-th */
        const int64_t j0 = q * panel;
        const int64_t stored = gu - j0 < panel ? gu - j0 : panel;
        const int64_t width = n - j0 < stored ? n - j0 : stored;
        nntk_matmul(0, batch, width, u, h, u, f->panels + j0 * u, stored,
                    bias ? bias + j0 : NULL, 0, hp + j0, ldc);
    }
}

/* The backward's product by rt = recurrent_kernelᵀ (G·U, U), each step: at
 * U = 256 its rows are 1 KiB apart, and in tile-wide column panels laid out
 * once per call (build_rt) the own kernel reads each block contiguous. Measured
 * (AVX2, Zen 3, 32 x 256 x 1024, the own kernel alone): 20.5 -> 17.9 ms per
 * 100 products. Same condition as the forward's panels (prepare_product). */
static int64_t rt_panel_width(int64_t batch) {
    const NNTKKernels *kernels = nntk_kernels();
    return kernels->recurrent_panels && batch > 1 ? kernels->tile_cols : 0;
}

/* rt (G·U, U) = recurrent_kernelᵀ, plain or in f->rt_panel_width column panels. */
static void build_rt(const NNTKRecurrentFilter *f, float *rt) {
    const int64_t u = f->spec.units, gu = f->spec.gates * u, panel = f->rt_panel_width;
    const float *r = nntk_recurrent_weights(f).recurrent; /* (U, G·U) */
    if (panel == 0) {
        nntk_transpose(u, gu, r, rt);
        return;
    }
    for (int64_t j0 = 0; j0 < u; j0 += panel) {
        const int64_t width = u - j0 < panel ? u - j0 : panel;
        float *dst = rt + j0 * gu; /* (G·U, width): dst[p, j] = r[j0 + j, p] */
        for (int64_t j = 0; j < width; j++) {
            const float *src = r + (j0 + j) * gu; /* (G·U,) */
            for (int64_t p = 0; p < gu; p++) dst[p * width + j] = src[p];
        }
    }
}

void nntk_recurrent_product_t(const NNTKRecurrentFilter *f, int64_t batch, int64_t k0, int64_t n,
                              const float *a, int64_t lda, const float *rt, int accumulate,
                              float *out) {
    const int64_t u = f->spec.units, gu = f->spec.gates * u, panel = f->rt_panel_width;
    if (panel == 0) {
        nntk_matmul(0, batch, u, n, a, lda, rt + k0 * u, u, NULL, accumulate, out, u);
        return;
    }
    for (int64_t j0 = 0; j0 < u; j0 += panel) {
        const int64_t width = u - j0 < panel ? u - j0 : panel;
        nntk_matmul(0, batch, width, n, a, lda, rt + j0 * gu + k0 * width, width, NULL,
                    accumulate, out + j0, u);
    }
}

/* The input projection of processing steps k0 .. k0+n-1 for inference:
 * xp (B, n, G·U), row j of sample b = in[b, t_lo + j] · kernel [+ bias (G·U,)],
 * where t_lo is the first input position of the block (returned): k0, or
 * T-k0-n with go_backwards. Step k's row is position(k) - t_lo. Rows are
 * computed independently (nntk_matmul), so the bits are those of one product
 * over the whole sequence. */
static int64_t project_block(const NNTKRecurrentFilter *f, int64_t batch, int64_t steps, int64_t k0,
                             int64_t n, const float *in, const float *bias, float *xp) {
    const int64_t d = f->spec.input_dim, gu = f->spec.gates * f->spec.units;
    const int64_t t_lo = f->spec.go_backwards ? steps - k0 - n : k0;
    const float *kernel = nntk_recurrent_weights(f).kernel; /* (D, GU) */
    for (int64_t b = 0; b < batch; b++) /* the block's rows of sample b are contiguous in `in` */
        nntk_matmul(0, n, gu, d, in + (b * steps + t_lo) * d, d, kernel, gu, bias, 0,
                    xp + b * n * gu, gu);
    return t_lo;
}

/* --- the loop over time ------------------------------------------------------------------- */

/* What one part of a split training pass needs (nntk_parallel_rows: rows are
 * batch rows; they never interact in the loop over time, so each part runs the
 * whole sequence for its rows). */
typedef struct {
    NNTKRecurrentFilter *f;
    int64_t batch, steps;
    Cache c;
    float *xp, *hp;       /* forward: (B, G·U) each */
    const float *in;      /* forward: the input (B, T, D) */
    const float *bias;    /* forward: the projection's bias or NULL */
    float *out;           /* forward */
    const float *d_out, *d_final_state; /* backward */
    float *d_state, *d_prev, *work; /* backward: (S, B, U) twice, (B, work·U) */
    NNTKRecurrentSlots grads;       /* backward: (T, B, grad_width·U) each */
    const float *rt;                /* backward: recurrent_kernelᵀ */
    const float *wt;                /* backward: kernelᵀ, when d_in */
    float *d_in;                    /* backward, may be NULL */
    float *d_initial_state;         /* backward, may be NULL */
} Pass;

/* Rows of the output per batch row: T with return_sequences, else 1. */
static int64_t out_rows(const NNTKRecurrentSpec *spec, int64_t steps) {
    return spec->return_sequences ? steps : 1;
}

/* The training forward pass for batch rows [b0, b1): their input kept in the
 * cache, then the loop over time, each step's input projection made just
 * before the step into the rows' slice of xp (B, G·U): it is read back from
 * L2, not from memory as a (T·B, G·U) projection made before the loop would
 * be (13 MiB at B = 32, T = 100, 1024 columns). Slices of the (·, B, ·)
 * arrays at row b0, the full batch apart. */
static void forward_rows(void *context, int64_t b0, int64_t b1) {
    const Pass *p = context;
    NNTKRecurrentFilter *f = p->f;
    const NNTKRecurrentCell *cell = f->spec.cell;
    const int64_t batch = p->batch, steps = p->steps, nb = b1 - b0;
    const int64_t d = f->spec.input_dim, u = f->spec.units, bu = batch * u;
    const int64_t gu = f->spec.gates * u, stride = (steps + 1) * bu;
    const float *kernel = nntk_recurrent_weights(f).kernel;
    gather_input(&f->spec, batch, steps, b0, b1, p->in, p->c.x);
    float *states = p->c.states + b0 * u;
    float *out = p->out + b0 * out_rows(&f->spec, steps) * u;
    float *xp = p->xp + b0 * gu; /* (nb, G·U) */
    for (int64_t k = 0; k < steps; k++) {
        /* xp = x[k, b0:b1] · kernel [+ bias]: rows are independent (nntk_matmul) */
        nntk_matmul(0, nb, gu, d, p->c.x + (k * batch + b0) * d, d, kernel, gu, p->bias, 0, xp,
                    gu);
        NNTKRecurrentSlots values = {{0}};
        for (int i = 0; i < cell->values; i++)
            values.a[i] = p->c.values.a[i] + (k * batch + b0) * cell->value_width[i] * u;
        cell->forward_step(f, k, nb, xp, gu,
                           (NNTKRecurrentStates){states + k * bu, states + (k + 1) * bu, stride},
                           p->hp + b0 * gu, values, 1);
        store_output(&f->spec, nb, steps, k, states + (k + 1) * bu, out);
    }
}

/* Runs the whole sequence from state0 (S, B, U) (NULL = zeros). training:
 * keeps the input (in processing order) and every step in the cache, split by
 * batch rows over the threads (docs/threads.md);
 * otherwise two states (ping-pong) and one step's values live in the scratch.
 *
 * The input projections are one product per step, made just before the step
 * (training), or one per block of NNTK_RECURRENT_PROJECTION_STEPS steps
 * (inference): the scratch does not grow with T. Rows are computed
 * independently of each other (nntk_matmul), so a row's bits do not depend on
 * the layout, the number of steps or the split: inference, training and
 * streaming chunk by chunk give the same bits. */
static NNTKStatus forward(const char *fn, NNTKRecurrentFilter *f, int training, int64_t batch,
                          int64_t steps, const float *in, const float *state0, float *out,
                          float *final_state) {
    const NNTKRecurrentCell *cell = f->spec.cell;
    const int64_t u = f->spec.units, bu = batch * u;
    const int64_t gu = f->spec.gates * u, ns = cell->states;
    float *scratch;
    NNTKStatus s = reserve_scratch(fn, f, forward_scratch(&f->spec, batch, steps, training), &scratch);
    if (s != NNTK_OK) return s;
    const NNTKRecurrentWeights w = nntk_recurrent_weights(f);
    const float *bias = cell->projection_bias ? w.bias : NULL; /* (G·U,) or NULL */
    const int64_t block = nntk_recurrent_projected_steps(steps, training);
    float *xp = scratch;          /* training (B, G·U); inference (B, block, G·U) */
    float *hp = xp + block * gu * batch; /* (B, G·U) */
    prepare_product(f, batch, steps);
    if (training) {
        const Cache c = cache_layout(f, batch, steps);
        const int64_t stride = (steps + 1) * bu;
        for (int64_t j = 0; j < ns; j++)
            load_state(batch, u, state0 ? state0 + j * bu : NULL, c.states + j * stride);
        Pass pass = {.f = f, .batch = batch, .steps = steps, .c = c, .xp = xp, .hp = hp,
                     .in = in, .bias = bias, .out = out};
        nntk_parallel_rows(batch, forward_rows, &pass);
        if (final_state)
            for (int64_t j = 0; j < ns; j++)
                nntk_copy(final_state + j * bu, c.states + j * stride + steps * bu, bu);
        return NNTK_OK;
    }
    float *states = hp + gu * batch; /* S × (2, B, U), ping-pong */
    NNTKRecurrentSlots values = {{0}};
    float *next_value = states + ns * 2 * bu;
    for (int i = 0; i < cell->values; i++) {
        values.a[i] = next_value;
        next_value += cell->value_width[i] * bu;
    }
    const int64_t stride = 2 * bu;
    for (int64_t j = 0; j < ns; j++)
        load_state(batch, u, state0 ? state0 + j * bu : NULL, states + j * stride);
    int64_t n = 0, t_lo = 0; /* the projected block's steps and first position */
    for (int64_t k = 0; k < steps; k++) {
        const int64_t t = position(&f->spec, k, steps);
        if (k % block == 0) {
            n = steps - k < block ? steps - k : block;
            t_lo = project_block(f, batch, steps, k, n, in, bias, xp);
        }
        const int64_t prev = (k % 2) * bu, next = ((k + 1) % 2) * bu;
        cell->forward_step(f, k, batch, xp + (t - t_lo) * gu, n * gu,
                           (NNTKRecurrentStates){states + prev, states + next, stride}, hp, values,
                           0);
        store_output(&f->spec, batch, steps, k, states + next, out);
    }
    if (final_state) {
        const int64_t last = (steps % 2) * bu;
        for (int64_t j = 0; j < ns; j++) nntk_copy(final_state + j * bu, states + j * stride + last, bu);
    }
    return NNTK_OK;
}

NNTKStatus nntk_recurrent_forward(const char *fn, NNTKLayer *layer, NNTKApplyMode mode,
                                  int64_t batch, int64_t steps, int64_t out_steps, const float *in,
                                  const float *initial_state, float *out, float *final_state) {
    (void)out_steps;
    NNTKRecurrentFilter *f = layer->state;
    const int training = mode != NNTK_APPLY_INFERENCE; /* FROZEN = TRAINING: no batch statistics */
    if (training) f->cache = layer->workspace; /* reserved by nntk_recurrent_reserve */
    return forward(fn, f, training, batch, steps, in, initial_state, out, final_state);
}

/* BPTT for batch rows [b0, b1) (nb rows): their slices of the cache and of
 * the pre-activation gradients (at row b0, the full batch apart), and their
 * own d_state, d_prev (S, nb, U) and work (nb, work·U), contiguous at
 * S·b0·U and work·b0·U, as the cell lays them out for nb rows. With d_in,
 * each step's input gradient too: dx = grad 0 · kernelᵀ for the step's rows, at
 * its input position (nntk_matmul: a row's bits do not depend on the others). */
static void backward_rows(void *context, int64_t b0, int64_t b1) {
    const Pass *p = context;
    NNTKRecurrentFilter *f = p->f;
    const NNTKRecurrentCell *cell = f->spec.cell;
    const int64_t batch = p->batch, steps = p->steps, nb = b1 - b0;
    const int64_t d = f->spec.input_dim, u = f->spec.units, gu = f->spec.gates * u;
    const int64_t bu = batch * u, nbu = nb * u, ns = cell->states;
    const int64_t stride = (steps + 1) * bu;
    float *d_state = p->d_state + ns * b0 * u, *d_prev = p->d_prev + ns * b0 * u;
    float *work = p->work + cell->work * b0 * u;
    const float *d_out = p->d_out + b0 * out_rows(&f->spec, steps) * u;
    float *states = p->c.states + b0 * u;
    /* The gradients reaching the states after step k (besides d_out): h's
     * through `incoming`, the others (LSTM's c) in d_state[1:]. d_state and
     * d_prev trade places after every step. */
    const float *incoming = p->d_final_state ? p->d_final_state + b0 * u : NULL;
    for (int64_t j = 1; j < ns; j++)
        load_state(nb, u, p->d_final_state ? p->d_final_state + j * bu + b0 * u : NULL,
                   d_state + j * nbu);
    for (int64_t k = steps - 1; k >= 0; k--) {
        output_gradient(&f->spec, nb, steps, k, d_out, incoming, d_state);
        NNTKRecurrentSlots values_k = {{0}}, grads_k = {{0}};
        for (int i = 0; i < cell->values; i++)
            values_k.a[i] = p->c.values.a[i] + (k * batch + b0) * cell->value_width[i] * u;
        for (int i = 0; i < cell->grads; i++)
            grads_k.a[i] = p->grads.a[i] + (k * batch + b0) * cell->grad_width[i] * u;
        cell->backward_step(f, nb,
                            (NNTKRecurrentStates){states + k * bu, states + (k + 1) * bu, stride},
                            values_k, d_state, d_prev, p->rt, work, grads_k);
        /* The step before's gradients are this step's d_prev: swapped, not copied.
         * output_gradient then adds d_out to its h part in place (incoming is that
         * buffer), and the other states' (LSTM's c) carry over as they are. */
        float *const done = d_state;
        d_state = d_prev;
        d_prev = done;
        incoming = d_state;
        if (p->d_in)
            nntk_matmul(0, nb, d, gu, grads_k.a[0], gu, p->wt, d, NULL, 0,
                        p->d_in + (b0 * steps + position(&f->spec, k, steps)) * d, steps * d);
    }
    if (p->d_initial_state)
        for (int64_t j = 0; j < ns; j++)
            nntk_copy(p->d_initial_state + j * bu + b0 * u, d_state + j * nbu, nbu);
}

/* BPTT over the kept batch, last processing step first. The loop carries
 * what is sequential (the state gradients through the cell) and each step's
 * input gradient; the weight gradients are large products over all steps after
 * it, from the cell's pre-activation gradients of every step. */
NNTKStatus nntk_recurrent_backward(const char *fn, NNTKLayer *layer, const float *d_out,
                                   const float *d_final_state, float *d_in,
                                   float *d_initial_state, float *d_weights) {
    NNTKRecurrentFilter *f = layer->state;
    f->cache = layer->workspace;
    f->batch = layer->batch;
    f->steps = layer->steps;
    const NNTKRecurrentCell *cell = f->spec.cell;
    const int64_t batch = f->batch, steps = f->steps, d = f->spec.input_dim, u = f->spec.units;
    const int64_t gu = f->spec.gates * u, bu = batch * u, rows = steps * batch, ns = cell->states;
    float *scratch;
    NNTKStatus s = reserve_scratch(fn, f, training_scratch(&f->spec, batch, steps), &scratch);
    if (s != NNTK_OK) return s;
    float *rt = scratch, *wt = rt + gu * u;            /* (G·U, U), (G·U, D) */
    float *d_state = wt + gu * d, *d_prev = d_state + ns * bu; /* (S, B, U) each */
    float *work = d_prev + ns * bu;                    /* (B, work·U) */
    NNTKRecurrentSlots grads = {{0}};                  /* (T, B, grad_width·U) each */
    float *next = work + cell->work * bu;
    for (int i = 0; i < cell->grads; i++) {
        grads.a[i] = next;
        next += cell->grad_width[i] * rows * u;
    }
    const NNTKRecurrentWeights w = nntk_recurrent_weights(f);
    f->rt_panel_width = rt_panel_width(batch);
    build_rt(f, rt);
    if (d_in) nntk_transpose(d, gu, w.kernel, wt);
    const Cache c = cache_layout(f, batch, steps);
    Pass pass = {.f = f, .batch = batch, .steps = steps, .c = c, .d_out = d_out,
                 .d_final_state = d_final_state, .d_state = d_state, .d_prev = d_prev,
                 .work = work, .grads = grads, .rt = rt, .wt = wt, .d_in = d_in,
                 .d_initial_state = d_initial_state};
    nntk_parallel_rows(batch, backward_rows, &pass);
    /* Weight gradients, summed over all steps and rows (processing order):
     * d kernel = xᵀ·grad 0; the recurrent_kernel and bias gradients by the cell. */
    float *g_kernel = d_weights;            /* (D, G·U) */
    float *g_recurrent = g_kernel + d * gu; /* (U, G·U) */
    float *g_bias = g_recurrent + u * gu;  /* (bias_count,) */
    nntk_gemm(1, 0, d, gu, rows, 1.0f, c.x, d, grads.a[0], gu, 0.0f, g_kernel, gu);
    if (cell->weight_gradient) {
        cell->weight_gradient(f, rows, c.states, c.values, grads, g_recurrent, g_bias);
    } else {
        nntk_gemm(1, 0, u, gu, rows, 1.0f, c.states, u, grads.a[0], gu, 0.0f, g_recurrent, gu);
        if (f->spec.use_bias) nntk_sum_rows(rows, gu, grads.a[0], g_bias, 0);
    }
    return NNTK_OK;
}
