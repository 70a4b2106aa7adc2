/* Optimizers: SGD and Adam with tf_keras 2.21's update forms, float32 and in
 * tf.keras's operation order (see nntk/optimizer.h). The library is built
 * with -ffp-contract=off, so every a*b + c below is two roundings, as in TF's
 * separate elementwise kernels. */
#include <math.h>
#include <stdlib.h>

#include "core/internal.h"
#include "core/threads.h"
#include "nntk/optimizer.h"

#define OPTIMIZER_TAG NNTK_TAG('O', 'p', 't', 'm')

/* Most parameter blocks one step may take. */
#define MAX_BLOCKS ((int64_t)1 << 20)

/* Largest step count SetIterations accepts: far beyond any training run, and
 * t = iterations + 1 cannot overflow. */
#define MAX_ITERATIONS ((int64_t)1 << 62)

typedef enum OptimizerKind { KIND_SGD = 0, KIND_ADAM = 1 } OptimizerKind;

struct NNTKOptimizer {
    uint32_t tag;
    /* Set while any call but Create/Destroy runs (nntk_call_enter): they
     * change or read the step count, the slots and the learning rate, so a
     * second call at the same time is refused. */
    atomic_flag in_call;
    OptimizerKind kind;
    float learning_rate;
    /* SGD */
    float momentum;
    int32_t nesterov;
    /* Adam */
    float beta_1, beta_2;                         /* float32(β), for βᵗ */
    float one_minus_beta_1, one_minus_beta_2;     /* float32(1 − β computed in double) */
    float epsilon;
    int32_t amsgrad;
    int32_t slot_count; /* SGD 1 (m); Adam 2 (m, v) or 3 (m, v, v̂) */
    int64_t iterations; /* completed steps */
    /* Created at the first step: the list shape and the slots. */
    int64_t n_params;  /* 0 until the first step */
    int64_t *sizes;    /* (n_params,) */
    int64_t total;     /* Σ sizes */
    float *slots;      /* (slot_count, total): slot k of block i at k·total + offset_i */
};

/* GCOVR_EXCL_BR_START: the shared argument checkers */
static NNTKStatus check_learning_rate(const char *fn, double learning_rate) {
    if (!(learning_rate > 0.0) || !isfinite(learning_rate))
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: learning_rate must be > 0 and finite (got %g)",
                         fn, learning_rate);
    const float rounded = (float)learning_rate;
    if (!(rounded > 0.0f) || !isfinite(rounded))
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: learning_rate = %g is not a positive finite float32 (rounds to %g)", fn,
                         learning_rate, (double)rounded);
    return NNTK_OK;
}

static NNTKStatus check_flag(const char *fn, const char *arg, int32_t value) {
    if (value != 0 && value != 1)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s must be 0 or 1 (got %d)", fn, arg, (int)value);
    return NNTK_OK;
}

static NNTKStatus check_beta(const char *fn, const char *arg, double beta) {
    if (!(beta >= 0.0 && beta < 1.0))
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s must be in [0, 1) (got %g)", fn, arg, beta);
    if ((float)beta >= 1.0f)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: %s = %.17g rounds to 1 in float32 (the bias correction would divide by 0)",
                         fn, arg, beta);
    return NNTK_OK;
}
/* GCOVR_EXCL_BR_STOP */

static NNTKOptimizer *create(const char *fn, OptimizerKind kind) {
    NNTKOptimizer *opt = calloc(1, sizeof *opt);
    if (opt == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    opt->tag = OPTIMIZER_TAG;
    atomic_flag_clear(&opt->in_call);
    opt->kind = kind;
    return opt;
}

NNTK_API NNTKOptimizer *NNTKOptimizerCreateSGD(double learning_rate, double momentum,
                                               int32_t nesterov) {
    static const char fn[] = "NNTKOptimizerCreateSGD";
    if (check_learning_rate(fn, learning_rate) != NNTK_OK) return NULL;
    /* GCOVR_EXCL_BR_START: argument validation */
    if (!(momentum >= 0.0 && momentum <= 1.0)) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: momentum must be in [0, 1] (got %g)", fn, momentum);
        return NULL;
    }
    /* GCOVR_EXCL_BR_STOP */
    if (check_flag(fn, "nesterov", nesterov) != NNTK_OK) return NULL;
    NNTKOptimizer *opt = create(fn, KIND_SGD);
    if (opt == NULL) return NULL;
    opt->learning_rate = (float)learning_rate;
    opt->momentum = (float)momentum;
    opt->nesterov = nesterov;
    opt->slot_count = 1;
    return opt;
}

NNTK_API NNTKOptimizer *NNTKOptimizerCreateAdam(double learning_rate, double beta_1, double beta_2,
                                                double epsilon, int32_t amsgrad) {
    static const char fn[] = "NNTKOptimizerCreateAdam";
    if (check_learning_rate(fn, learning_rate) != NNTK_OK) return NULL;
    if (check_beta(fn, "beta_1", beta_1) != NNTK_OK) return NULL;
    if (check_beta(fn, "beta_2", beta_2) != NNTK_OK) return NULL;
    /* GCOVR_EXCL_BR_START: argument validation */
    if (!(epsilon >= 0.0) || !isfinite(epsilon) || !isfinite((float)epsilon)) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: epsilon must be >= 0 and a finite float32 (got %g)", fn,
                  epsilon);
        return NULL;
    }
    /* GCOVR_EXCL_BR_STOP */
    if (check_flag(fn, "amsgrad", amsgrad) != NNTK_OK) return NULL;
    NNTKOptimizer *opt = create(fn, KIND_ADAM);
    if (opt == NULL) return NULL;
    opt->learning_rate = (float)learning_rate;
    opt->beta_1 = (float)beta_1;
    opt->beta_2 = (float)beta_2;
    /* tf.keras computes 1 − β on the Python float, then casts to float32. */
    opt->one_minus_beta_1 = (float)(1.0 - beta_1);
    opt->one_minus_beta_2 = (float)(1.0 - beta_2);
    opt->epsilon = (float)epsilon;
    opt->amsgrad = amsgrad;
    opt->slot_count = amsgrad ? 3 : 2;
    return opt;
}

NNTK_API void NNTKOptimizerDestroy(NNTKOptimizer *optimizer) {
    if (optimizer == NULL || optimizer->tag != OPTIMIZER_TAG) return;
    optimizer->tag = NNTK_TAG_DEAD;
    free(optimizer->sizes);
    nntk_free(optimizer->slots);
    free(optimizer);
}

/* SGD on one block: w, g, m (n,). */
static void sgd_block(const NNTKOptimizer *opt, int64_t n, float *w, const float *g, float *m) {
    const float lr = opt->learning_rate, mu = opt->momentum;
    for (int64_t j = 0; j < n; j++) {
        const float step = -g[j] * lr;       /* −g·lr */
        const float m_new = step + m[j] * mu; /* m ← (−g·lr) + m·μ */
        m[j] = m_new;
        if (opt->nesterov) {
            const float look_ahead = step + m_new * mu; /* (−g·lr) + m·μ with the new m */
            w[j] = w[j] + look_ahead;
        } else {
            w[j] = w[j] + m_new;
        }
    }
}

/* Adam on one block: w, g, m, v (n,), v_hat (n,) or NULL; alpha the step size. */
static void adam_block(const NNTKOptimizer *opt, int64_t n, float alpha, float *w, const float *g,
                       float *m, float *v, float *v_hat) {
    const float c1 = opt->one_minus_beta_1, c2 = opt->one_minus_beta_2, eps = opt->epsilon;
    for (int64_t j = 0; j < n; j++) {
        const float gj = g[j];
        const float m_new = m[j] + (gj - m[j]) * c1;      /* m ← m + (g − m)(1 − β₁) */
        const float v_new = v[j] + (gj * gj - v[j]) * c2; /* v ← v + (g² − v)(1 − β₂) */
        m[j] = m_new;
        v[j] = v_new;
        float v_used = v_new;
        if (v_hat != NULL) { /* amsgrad: v̂ ← max(v̂, v) */
            const float vh = v_hat[j] > v_new ? v_hat[j] : v_new;
            v_hat[j] = vh;
            v_used = vh;
        }
        const float numerator = m_new * alpha;      /* m·α */
        const float denominator = sqrtf(v_used) + eps; /* √v + ε */
        w[j] = w[j] - numerator / denominator;
    }
}

/* One step's update over the parameters as one list: the blocks laid end to end, as
 * the slots are. Every parameter's update reads and writes only its own w, g and
 * slots, so the pool may split the list anywhere (docs/threads.md). */
typedef struct {
    const NNTKOptimizer *opt;
    float *const *params;     /* (n_params,) of (sizes[i],) */
    const float *const *grads; /* (n_params,) of (sizes[i],) */
    const int64_t *sizes;     /* (n_params,) */
    int64_t n_params;
    float alpha; /* Adam's step size */
} Update;

/* Updates parameters [first, end) of the list: the part of each block in that range. */
static void update_elements(void *context, int64_t first, int64_t end) {
    const Update *p = context;
    const NNTKOptimizer *opt = p->opt;
    int64_t offset = 0; /* the block's first parameter in the list */
    for (int64_t i = 0; i < p->n_params && offset < end; offset += p->sizes[i], i++) {
        const int64_t lo = first > offset ? first - offset : 0; /* within block i */
        const int64_t hi = end < offset + p->sizes[i] ? end - offset : p->sizes[i];
        if (lo >= hi) continue;
        const int64_t at = offset + lo; /* in the slots */
        float *m = opt->slots + at; /* (hi − lo,) */
        if (opt->kind == KIND_SGD) {
            sgd_block(opt, hi - lo, p->params[i] + lo, p->grads[i] + lo, m);
        } else {
            float *v = opt->slots + opt->total + at; /* (hi − lo,) */
            float *v_hat = opt->amsgrad ? opt->slots + 2 * opt->total + at : NULL;
            adam_block(opt, hi - lo, p->alpha, p->params[i] + lo, p->grads[i] + lo, m, v, v_hat);
        }
    }
}

/* Checks a list of blocks (n_params, sizes) against the optimizer (its shape
 * once slots exist); *total = Σ sizes. Touches nothing. */
static NNTKStatus check_blocks(const char *fn, const NNTKOptimizer *opt, int64_t n_params,
                               const int64_t *sizes, int64_t *total) {
    NNTKStatus s;
    /* GCOVR_EXCL_BR_START: argument validation */
    if ((s = nntk_check_size(fn, "n_params", n_params, MAX_BLOCKS)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "sizes", sizes)) != NNTK_OK) return s;
    if (opt->n_params != 0 && n_params != opt->n_params)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: n_params = %lld but the optimizer's slots were created for %lld blocks "
                         "(pass the same list of parameters at every step)",
                         fn, (long long)n_params, (long long)opt->n_params);
    int64_t sum = 0;
    for (int64_t i = 0; i < n_params; i++) {
        if (sizes[i] < 1 || sizes[i] > NNTK_MAX_ELEMENTS)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: sizes[%lld] must be in [1, %lld] (got %lld)",
                             fn, (long long)i, (long long)NNTK_MAX_ELEMENTS, (long long)sizes[i]);
        if (opt->n_params != 0 && sizes[i] != opt->sizes[i])
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                             "%s: sizes[%lld] = %lld but the optimizer's slots were created for %lld "
                             "(pass the same list of parameters at every step)",
                             fn, (long long)i, (long long)sizes[i], (long long)opt->sizes[i]);
        sum += sizes[i]; /* < 2^20 blocks of <= 2^31: no overflow */
    }
    if (sum > NNTK_MAX_ELEMENTS)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: the blocks hold %lld parameters in all, more than %lld", fn, (long long)sum,
                         (long long)NNTK_MAX_ELEMENTS);
    /* GCOVR_EXCL_BR_STOP */
    *total = sum;
    return NNTK_OK;
}

/* Checks the arguments of a step; touches nothing. */
static NNTKStatus check_step(const char *fn, const NNTKOptimizer *opt, int64_t n_params,
                             float *const *params, const float *const *grads, const int64_t *sizes,
                             int64_t *total) {
    NNTKStatus s;
    /* GCOVR_EXCL_BR_START: argument validation */
    if ((s = nntk_check_pointer(fn, "params", params)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "grads", grads)) != NNTK_OK) return s;
    if ((s = check_blocks(fn, opt, n_params, sizes, total)) != NNTK_OK) return s;
    for (int64_t i = 0; i < n_params; i++) {
        if (params[i] == NULL)
            return nntk_fail(NNTK_ERROR_NULL_POINTER, "%s: params[%lld] is NULL", fn, (long long)i);
        if (grads[i] == NULL)
            return nntk_fail(NNTK_ERROR_NULL_POINTER, "%s: grads[%lld] is NULL", fn, (long long)i);
    }
    /* GCOVR_EXCL_BR_STOP */
    return NNTK_OK;
}

/* First step: remembers the list shape and allocates zeroed slots. */
static NNTKStatus create_slots(const char *fn, NNTKOptimizer *opt, int64_t n_params, const int64_t *sizes,
                               int64_t total) {
    int64_t *kept = malloc((size_t)n_params * sizeof *kept);
    float *slots = nntk_alloc_floats(total * opt->slot_count);
    if (kept == NULL || slots == NULL) {
        free(kept);
        nntk_free(slots);
        return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory for %lld slot values", fn,
                         (long long)(total * opt->slot_count));
    }
    for (int64_t i = 0; i < n_params; i++) kept[i] = sizes[i];
    opt->sizes = kept;
    opt->slots = slots;
    opt->total = total;
    opt->n_params = n_params;
    return NNTK_OK;
}

/* NNTKOptimizerStep once the handle is checked and its call flag taken. */
static NNTKStatus step_in_call(const char *fn, NNTKOptimizer *optimizer, int64_t n_params,
                               float *const *params, const float *const *grads,
                               const int64_t *sizes) {
    NNTKStatus s;
    int64_t total = 0;
    if ((s = check_step(fn, optimizer, n_params, params, grads, sizes, &total)) != NNTK_OK) return s;
    if (optimizer->n_params == 0 && (s = create_slots(fn, optimizer, n_params, sizes, total)) != NNTK_OK)
        return s;

    NNTKOptimizer *opt = optimizer;
    float alpha = 0.0f;
    if (opt->kind == KIND_ADAM) {
        /* t = iterations + 1 as float32 (tf.cast of the int64 counter). */
        const float t = (float)(opt->iterations + 1);
        const float beta_1_power = powf(opt->beta_1, t);
        const float beta_2_power = powf(opt->beta_2, t);
        const float root = sqrtf(1.0f - beta_2_power);
        alpha = opt->learning_rate * root / (1.0f - beta_1_power); /* (lr·√(1 − β₂ᵗ)) / (1 − β₁ᵗ) */
    }
    Update update = {opt, params, grads, sizes, n_params, alpha};
    /* about eight multiply-adds' time per parameter (Adam: a square root and a division) */
    nntk_split_rows(8 * total, total, update_elements, &update);
    opt->iterations += 1; /* once per step, after all blocks */
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKOptimizerStep(NNTKOptimizer *optimizer, int64_t n_params,
                                      float *const *params, const float *const *grads,
                                      const int64_t *sizes) {
    static const char fn[] = "NNTKOptimizerStep";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "optimizer", optimizer, OPTIMIZER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_call_enter(fn, "optimizer", &optimizer->in_call)) != NNTK_OK) return s;
    s = step_in_call(fn, optimizer, n_params, params, grads, sizes);
    nntk_call_leave(&optimizer->in_call);
    return s;
}

NNTK_API NNTKStatus NNTKOptimizerIterations(const NNTKOptimizer *optimizer, int64_t *iterations) {
    static const char fn[] = "NNTKOptimizerIterations";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "optimizer", optimizer, OPTIMIZER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "iterations", iterations)) != NNTK_OK) return s;
    /* The flag changes, not what the caller sees: const holds for the value. */
    NNTKOptimizer *busy = (NNTKOptimizer *)optimizer;
    if ((s = nntk_call_enter(fn, "optimizer", &busy->in_call)) != NNTK_OK) return s;
    *iterations = optimizer->iterations;
    nntk_call_leave(&busy->in_call);
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKOptimizerSetLearningRate(NNTKOptimizer *optimizer, double learning_rate) {
    static const char fn[] = "NNTKOptimizerSetLearningRate";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "optimizer", optimizer, OPTIMIZER_TAG)) != NNTK_OK) return s;
    if ((s = check_learning_rate(fn, learning_rate)) != NNTK_OK) return s;
    if ((s = nntk_call_enter(fn, "optimizer", &optimizer->in_call)) != NNTK_OK) return s;
    optimizer->learning_rate = (float)learning_rate;
    nntk_call_leave(&optimizer->in_call);
    return NNTK_OK;
}

/* Checks a state buffer's length against the list of blocks: count must be
 * slot_count · total. */
static NNTKStatus check_state_count(const char *fn, const NNTKOptimizer *opt, int64_t total,
                                    int64_t count) {
    /* GCOVR_EXCL_BR_START: argument validation */
    if (count != opt->slot_count * total)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: count must be %d slots x %lld parameters = %lld (got %lld)", fn,
                         (int)opt->slot_count, (long long)total, (long long)(opt->slot_count * total),
                         (long long)count);
    /* GCOVR_EXCL_BR_STOP */
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKOptimizerStateSize(const NNTKOptimizer *optimizer, int64_t parameter_count,
                                           int64_t *count) {
    static const char fn[] = "NNTKOptimizerStateSize";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "optimizer", optimizer, OPTIMIZER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_size(fn, "parameter_count", parameter_count, NNTK_MAX_ELEMENTS)) != NNTK_OK)
        return s;
    if ((s = nntk_check_pointer(fn, "count", count)) != NNTK_OK) return s;
    *count = optimizer->slot_count * parameter_count; /* slot_count is fixed at creation */
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKOptimizerGetState(const NNTKOptimizer *optimizer, int64_t n_params,
                                          const int64_t *sizes, float *state, int64_t count) {
    static const char fn[] = "NNTKOptimizerGetState";
    NNTKStatus s;
    int64_t total = 0;
    if ((s = nntk_check_handle(fn, "optimizer", optimizer, OPTIMIZER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "state", state)) != NNTK_OK) return s;
    /* The flag changes, not what the caller sees: const holds for the value. */
    NNTKOptimizer *busy = (NNTKOptimizer *)optimizer;
    if ((s = nntk_call_enter(fn, "optimizer", &busy->in_call)) != NNTK_OK) return s;
    if ((s = check_blocks(fn, optimizer, n_params, sizes, &total)) == NNTK_OK &&
        (s = check_state_count(fn, optimizer, total, count)) == NNTK_OK) {
        for (int64_t j = 0; j < count; j++) /* before the first step: the zero slots it would create */
            state[j] = optimizer->n_params != 0 ? optimizer->slots[j] : 0.0f;
    }
    nntk_call_leave(&busy->in_call);
    return s;
}

NNTK_API NNTKStatus NNTKOptimizerSetState(NNTKOptimizer *optimizer, int64_t n_params,
                                          const int64_t *sizes, const float *state, int64_t count) {
    static const char fn[] = "NNTKOptimizerSetState";
    NNTKStatus s;
    int64_t total = 0;
    if ((s = nntk_check_handle(fn, "optimizer", optimizer, OPTIMIZER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "state", state)) != NNTK_OK) return s;
    if ((s = nntk_call_enter(fn, "optimizer", &optimizer->in_call)) != NNTK_OK) return s;
    if ((s = check_blocks(fn, optimizer, n_params, sizes, &total)) == NNTK_OK &&
        (s = check_state_count(fn, optimizer, total, count)) == NNTK_OK &&
        (optimizer->n_params != 0 || (s = create_slots(fn, optimizer, n_params, sizes, total)) == NNTK_OK)) {
        for (int64_t j = 0; j < count; j++) optimizer->slots[j] = state[j];
    }
    nntk_call_leave(&optimizer->in_call);
    return s;
}

NNTK_API NNTKStatus NNTKOptimizerSetIterations(NNTKOptimizer *optimizer, int64_t iterations) {
    static const char fn[] = "NNTKOptimizerSetIterations";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "optimizer", optimizer, OPTIMIZER_TAG)) != NNTK_OK) return s;
    /* GCOVR_EXCL_BR_START: argument validation */
    if (iterations < 0 || iterations > MAX_ITERATIONS)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: iterations must be in [0, %lld] (got %lld)", fn,
                         (long long)MAX_ITERATIONS, (long long)iterations);
    /* GCOVR_EXCL_BR_STOP */
    if ((s = nntk_call_enter(fn, "optimizer", &optimizer->in_call)) != NNTK_OK) return s;
    optimizer->iterations = iterations;
    nntk_call_leave(&optimizer->in_call);
    return NNTK_OK;
}
