/* Allocation-failure injection over the whole public C API (issue #15 §1;
 * docs/reliability.md). Needs the test build: cmake -DNNTK_ALLOC_FAULTS=ON
 * (core/alloc_faults.c), and is meant to run under ASan/LeakSanitizer.
 *
 * A scenario is a sequence of public calls on fresh handles: for every layer
 * of the generated table (nntk_api_table.h, from the public headers) and
 * config variant, creation for inference and for training (with and without a
 * reserved capacity), ApplyInference, ApplyTrainingBatch, GradientCreate,
 * CalculateGradient (with and without d_in), growth to a bigger batch and then
 * a longer sequence, beyond a reserved capacity, and each optional function a
 * layer has (stream chunks through ApplyInferenceWithState, the first chunk's
 * final state feeding a longer second chunk; the training and gradient
 * variants WithState; ApplyFrozenBatch); then every loss, the optimizers
 * (creation, the first step that creates the slots, a second step), and the
 * model of each model file given (nntk/model.h: load, inference, a training
 * step, save, a new optimizer, another step and save, load of the saved file;
 * inference and the steps within the capacity reserved at load; two chunks
 * streamed when the model streams), and a
 * chain of layers streamed (nntk/layer.h, NNTKLayerChain: the layers, create,
 * append, two chunks with the states carried, within the capacity).
 *
 * For each step k of a scenario and n = 1, 2, ...: steps 0..k-1 run on fresh
 * handles, the n-th allocation of step k is made to fail, and the call must
 *   - return NNTK_ERROR_OUT_OF_MEMORY (NULL + that status for a constructor),
 *     with a message that starts with the public function's name;
 *   - write no output (every output buffer keeps its sentinel, the gradient
 *     buffers their previous values);
 *   - leave the handles usable: step k again without injection, then every
 *     later step, give bitwise the outputs of an uninjected run;
 *   - calls within a reserved training capacity allocate nothing at all;
 *   - leak nothing: NNTKMemoryStats is back to its baseline after teardown
 *     (LeakSanitizer, when built with it, checks the uncounted handle structs).
 * n stops growing when step k makes fewer than n allocations. Every injected
 * failure is a site; their number is printed.
 *
 *   nntk_alloc_faults [seed percent [MODEL.nntk ...]]
 *                                      default: every config variant (nightly);
 *                                      else every layer's base config plus a
 *                                      seeded `percent`% of the variants (CI);
 *                                      the model files' scenarios (ci: the
 *                                      fuzz/model_corpus files)
 * Exits 1 on any failure (and says which), 0 otherwise. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "c_test_support.h"

/* Exported by the NNTK_ALLOC_FAULTS build only (core/alloc_faults.c). */
void NNTKTestFailAllocation(int64_t n);
int64_t NNTKTestAllocationCount(void);

static long failures, sites, scenarios, steps_tried;

enum Op {
    CONFIG, CREATE_INFERENCE, CREATE_TRAINING, INFER, TRAIN, FROZEN, GRAD_CREATE, CALC,
    CALC_NO_DIN, STREAM_FIRST, STREAM_NEXT, TRAIN_STATE, CALC_STATE,
    LOSS, OPT_SGD, OPT_ADAM, OPT_STEP, OPT_SET_STATE,
    MODEL_LOAD, MODEL_INFER, MODEL_TRAIN, MODEL_SAVE, MODEL_SET_ADAM, MODEL_LOAD_SAVED,
    CHAIN_LAYERS, CHAIN_CREATE, CHAIN_APPEND, CHAIN_STREAM, MODEL_STREAM
};
static const char *const OP_NAME[] = {
    "ConfigCreate", "CreateForInference", "CreateForTraining", "ApplyInference",
    "ApplyTrainingBatch", "ApplyFrozenBatch", "GradientCreate", "CalculateGradient",
    "CalculateGradient", "ApplyInferenceWithState", "ApplyInferenceWithState",
    "ApplyTrainingBatchWithState", "CalculateGradientWithState", "LossCompute",
    "OptimizerCreateSGD", "OptimizerCreateAdam", "OptimizerStep", "OptimizerSetState",
    "ModelLoad", "ModelApplyInference", "ModelTrainStep", "ModelSave", "ModelSetOptimizerAdam",
    "ModelLoad", "LayerCreateForInference", "LayerChainCreate", "LayerChainAppend",
    "LayerChainStream", "ModelStream"};

typedef struct {
    enum Op op;
    int64_t batch, steps; /* layer calls: the shape; LOSS: kind, from_logits */
    int within_capacity;  /* must not allocate at all (NNTKTrainingConfig's promise) */
} Step;

#define MAX_STEPS 24
typedef struct {
    const char *what; /* for messages */
    const nntk_layer_api *L; /* NULL: loss / optimizer / model scenario */
    const char *model_path;  /* a model scenario's file */
    nntk_arg_value v[32];
    NNTKTrainingConfig capacity; /* all-zero: none */
    int n_steps;
    Step steps[MAX_STEPS];
} Scenario;

/* Handles and carried state of one run of a scenario. */
typedef struct {
    void *config, *filter, *gradient;
    NNTKOptimizer *optimizer;
    NNTKModel *model, *reloaded;
    int64_t train_batch, train_steps; /* the last successful training batch */
    float *state;                     /* the last stream chunk's final state */
    int64_t state_n;
    float params[2][6];
    NNTKLayer *chain_layers[3]; /* the chain scenario's layers */
    int32_t appended;           /* of them in the chain */
    NNTKLayerChain *chain;
} Run;

/* The outputs one step wrote, for bitwise comparison. */
typedef struct {
    int skipped; /* the step does not apply (a shape the config refuses, no such function) */
    FloatRecord out;
} Record;

static uint32_t SENTINEL_BITS = 0x7fc0deadu; /* a NaN the library never produces */
static float *sentinel_floats(int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (p == NULL) abort();
    for (int64_t i = 0; i < n; i++) memcpy(&p[i], &SENTINEL_BITS, sizeof(float));
    return p;
}
static int untouched(const float *p, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&p[i], &SENTINEL_BITS, sizeof(float)) != 0) return 0;
    return 1;
}

static int64_t library_bytes(void) {
    int64_t now = 0, peak = 0;
    NNTKMemoryStats(&now, &peak);
    return now;
}

/* The refusal of an injected failure: the status and a message naming fn. */
static void check_refusal(const Scenario *sc, int k, const char *fn, NNTKStatus status) {
    const size_t len = strlen(fn);
    CHECK(status == NNTK_ERROR_OUT_OF_MEMORY && NNTKLastStatus() == NNTK_ERROR_OUT_OF_MEMORY,
          "%s step %d %s: status %d on an injected allocation failure", sc->what, k, fn, (int)status);
    CHECK(strncmp(NNTKLastError(), fn, len) == 0 && NNTKLastError()[len] == ':',
          "%s step %d: the message does not start with %s", sc->what, k, fn);
}

static float *gradient_weights(const Scenario *sc, Run *run, int64_t *n) {
    float *w = NULL;
    *n = 0;
    if (run->gradient == NULL || sc->L->gradient_get_weights(run->gradient, &w, n) != NNTK_OK) *n = 0;
    /* A gradient handed out with no block behind it (an allocation failure swallowed). */
    CHECK(w != NULL || *n == 0, "%s: the gradient has %lld weights and no buffer", sc->what,
          (long long)*n);
    if (w == NULL) *n = 0;
    return w;
}

/* The model scenarios: their capacity, and where they save. */
enum { MODEL_BATCH = 2, MODEL_STEPS = 6 };
static char saved_path[96];

/* Every weight of a model (malloc'd), *count of them. */
static float *model_weights(NNTKModel *model, int64_t *count) {
    int64_t layers, features;
    NNTKModelDescribe(model, &layers, &features, count);
    float *w = malloc((size_t)(*count + 1) * sizeof *w);
    if (w == NULL) abort();
    NNTKModelGetWeights(model, w, *count);
    return w;
}

/* A model's weights and step count, into a record. */
static void record_model(Record *rec, NNTKModel *model) {
    int64_t count, it = -1;
    float *w = model_weights(model, &count);
    record_append(&rec->out, w, count);
    free(w);
    NNTKModelIterations(model, &it);
    float iterations = (float)it;
    record_append(&rec->out, &iterations, 1);
}

/* A file's bytes (malloc'd; NULL and *size 0 when there is none). */
static char *read_bytes(const char *path, int64_t *size) {
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)n + 1);
    if (data == NULL || fread(data, 1, (size_t)n, f) != (size_t)n) abort();
    fclose(f);
    *size = n;
    return data;
}

/* The chain scenario: Conv1d (3 -> 4 features, kernel 3, padding valid), GRU
 * (4 -> 5, sequences), Dense (5 -> 2), for chunks of up to CHAIN_BATCH x
 * CHAIN_STEPS; a GRU state of 5 floats per sequence. */
enum { CHAIN_BATCH = 2, CHAIN_STEPS = 6, CHAIN_IN = 3, CHAIN_OUT = 2, CHAIN_STATE = 5 };

/* The chain's layers, their weights seeded; 1 when a call refused (checked). */
static int chain_layers(const Scenario *sc, Run *run, int k) {
    NNTKLayerConfig *configs[3] = {
        (NNTKLayerConfig *)NNTKConv1dConfigCreate(CHAIN_IN, 4, 3, 1, NNTK_PADDING_VALID, 1,
                                                  NNTK_ACTIVATION_TANH, 1),
        (NNTKLayerConfig *)NNTKGRUConfigCreate(4, CHAIN_STATE, NNTK_ACTIVATION_TANH,
                                               NNTK_ACTIVATION_SIGMOID, 1, 1, 1, 0),
        (NNTKLayerConfig *)NNTKDenseConfigCreate(CHAIN_STATE, CHAIN_OUT, NNTK_ACTIVATION_LINEAR, 1)};
    const char *failed = NULL;
    for (int i = 0; i < 3 && failed == NULL; i++) {
        if (configs[i] == NULL) {
            failed = i == 0 ? "NNTKConv1dConfigCreate" : i == 1 ? "NNTKGRUConfigCreate" : "NNTKDenseConfigCreate";
        } else if ((run->chain_layers[i] = NNTKLayerCreateForInference(configs[i])) == NULL) {
            failed = "NNTKLayerCreateForInference";
        } else {
            float *w;
            int64_t n;
            NNTKLayerGetWeights(run->chain_layers[i], &w, &n);
            float *seeded = seeded_floats(n, (uint32_t)i + 11u);
            for (int64_t j = 0; j < n; j++) w[j] = 0.5f * seeded[j];
            free(seeded);
        }
    }
    const NNTKStatus s = NNTKLastStatus();
    for (int i = 0; i < 3; i++) NNTKLayerConfigDestroy(configs[i]);
    if (failed == NULL) return 0;
    check_refusal(sc, k, failed, s);
    for (int i = 0; i < 3; i++) { /* the step again starts afresh */
        NNTKLayerDestroy(run->chain_layers[i]);
        run->chain_layers[i] = NULL;
    }
    return 1;
}

/* A stream call's outcome (status s; y and final written by it, both freed
 * here): a refusal checked (nothing written), else recorded, final becoming the
 * carried state run->state. Returns 1 when refused. */
static int streamed(const Scenario *sc, Run *run, int k, const char *fn, NNTKStatus s, float *y,
                    int64_t n_out, float *final, int64_t n_state, Record *rec) {
    const int refused = s != NNTK_OK;
    if (refused) {
        check_refusal(sc, k, fn, s);
        CHECK(untouched(y, n_out) && untouched(final, n_state),
              "%s step %d %s: output or final states written on failure", sc->what, k, fn);
        free(final);
    } else {
        record_append(&rec->out, y, n_out);
        record_append(&rec->out, final, n_state);
        free(run->state);
        run->state = final;
        run->state_n = n_state;
    }
    free(y);
    return refused;
}

/* Step k of sc on run. Returns 1 when the library refused the call (only
 * expected with an injected failure: then checked here), 0 otherwise; the
 * outputs of a successful call go to *rec. */
static int do_step(const Scenario *sc, Run *run, int k, Record *rec) {
    const Step *st = &sc->steps[k];
    const nntk_layer_api *L = sc->L;
    char fn[96];
    snprintf(fn, sizeof fn, "NNTK%s%s", L ? L->name : "", OP_NAME[st->op]);
    memset(rec, 0, sizeof *rec);
    const uint32_t seed = (uint32_t)k * 7919u;

    switch (st->op) {
    case CONFIG:
        run->config = L->config_create(sc->v);
        if (run->config == NULL) return check_refusal(sc, k, fn, NNTKLastStatus()), 1;
        return 0;
    case CREATE_INFERENCE:
    case CREATE_TRAINING: {
        const NNTKTrainingConfig *cap = sc->capacity.max_batch > 0 ? &sc->capacity : NULL;
        run->filter = st->op == CREATE_TRAINING ? L->create_for_training(run->config, cap)
                                                : L->create_for_inference(run->config);
        if (run->filter == NULL) return check_refusal(sc, k, fn, NNTKLastStatus()), 1;
        float *w = NULL;
        int64_t n = 0;
        CHECK(L->get_weights(run->filter, &w, &n) == NNTK_OK, "%s: GetWeights", sc->what);
        /* A handle handed out half-built (an allocation failure swallowed). */
        CHECK(w != NULL || n == 0, "%s: the handle has %lld weights and no buffer", sc->what,
              (long long)n);
        if (w == NULL) n = 0;
        record_append(&rec->out, w, n); /* the initial weights */
        float *set = seeded_floats(n, 99u);
        for (int64_t i = 0; i < n; i++) w[i] = 0.07f + set[i] * 0.1f; /* as tests/c/smoke.c */
        free(set);
        return 0;
    }
    case GRAD_CREATE: {
        run->gradient = L->gradient_create(run->filter);
        if (run->gradient == NULL) return check_refusal(sc, k, fn, NNTKLastStatus()), 1;
        int64_t n;
        float *w = gradient_weights(sc, run, &n);
        record_append(&rec->out, w, n);
        return 0;
    }
    case INFER:
    case TRAIN:
    case FROZEN:
    case STREAM_FIRST:
    case STREAM_NEXT:
    case TRAIN_STATE: {
        const int with_state = st->op == STREAM_FIRST || st->op == STREAM_NEXT || st->op == TRAIN_STATE;
        if ((st->op == FROZEN && L->apply_frozen_batch == NULL) ||
            (st->op == TRAIN_STATE && L->apply_training_batch_with_state == NULL) ||
            (with_state && st->op != TRAIN_STATE && L->apply_inference_with_state == NULL))
            return rec->skipped = 1, 0;
        int64_t out_steps = 0, out_features = 0;
        if (L->output_shape(run->filter, st->batch, st->steps, &out_steps, &out_features) != NNTK_OK)
            return rec->skipped = 1, 0;
        const int64_t n_in = st->batch * st->steps * sc->v[L->input_width_arg].i64;
        const int64_t n_out = st->batch * out_steps * out_features;
        /* A state is at most (2, 2, batch, units) and units <= out_features: room enough. */
        const int64_t n_state = 4 * st->batch * out_features;
        float *x = seeded_floats(n_in, seed), *y = sentinel_floats(n_out), *hn = sentinel_floats(n_state);
        const float *h0 = st->op == STREAM_FIRST ? NULL : run->state;
        NNTKStatus s;
        switch (st->op) {
        case INFER: s = L->apply_inference(run->filter, st->batch, st->steps, x, y); break;
        case TRAIN: s = L->apply_training_batch(run->filter, st->batch, st->steps, x, y); break;
        case FROZEN: s = L->apply_frozen_batch(run->filter, st->batch, st->steps, x, y); break;
        case TRAIN_STATE:
            s = L->apply_training_batch_with_state(run->filter, st->batch, st->steps, x, h0, y, hn);
            break;
        default: s = L->apply_inference_with_state(run->filter, st->batch, st->steps, x, h0, y, hn);
        }
        int refused = s != NNTK_OK;
        if (refused) {
            check_refusal(sc, k, fn, s);
            CHECK(untouched(y, n_out) && untouched(hn, n_state), "%s step %d %s: output written on failure",
                  sc->what, k, fn);
        } else {
            record_append(&rec->out, y, n_out);
            if (with_state) {
                record_append(&rec->out, hn, n_state);
                free(run->state);
                run->state = hn, run->state_n = n_state;
                hn = NULL;
            }
            if (st->op == TRAIN || st->op == FROZEN || st->op == TRAIN_STATE)
                run->train_batch = st->batch, run->train_steps = st->steps;
        }
        free(x);
        free(y);
        free(hn);
        return refused;
    }
    case CALC:
    case CALC_NO_DIN:
    case CALC_STATE: {
        if (st->op == CALC_STATE && L->calculate_gradient_with_state == NULL) return rec->skipped = 1, 0;
        int64_t out_steps = 0, out_features = 0;
        CHECK(L->output_shape(run->filter, run->train_batch, run->train_steps, &out_steps,
                              &out_features) == NNTK_OK, "%s: OutputShape", sc->what);
        const int64_t n_in = run->train_batch * run->train_steps * sc->v[L->input_width_arg].i64;
        const int64_t n_out = run->train_batch * out_steps * out_features;
        const int64_t n_state = 4 * run->train_batch * out_features;
        float *dy = seeded_floats(n_out, seed), *dhn = seeded_floats(n_state, seed + 1u);
        float *dx = st->op == CALC_NO_DIN ? NULL : sentinel_floats(n_in), *dh0 = sentinel_floats(n_state);
        int64_t n_dw;
        float *dw = gradient_weights(sc, run, &n_dw);
        FloatRecord before = {NULL, 0};
        record_append(&before, dw, n_dw);
        NNTKStatus s = st->op == CALC_STATE
                           ? L->calculate_gradient_with_state(run->filter, run->gradient, dy, dhn, dx, dh0)
                           : L->calculate_gradient(run->filter, run->gradient, dy, dx);
        int refused = s != NNTK_OK;
        if (refused) {
            check_refusal(sc, k, fn, s);
            CHECK((dx == NULL || untouched(dx, n_in)) && untouched(dh0, n_state) &&
                      (n_dw == 0 || memcmp(before.data, dw, (size_t)n_dw * sizeof(float)) == 0),
                  "%s step %d %s: output written on failure", sc->what, k, fn);
        } else {
            if (dx != NULL) record_append(&rec->out, dx, n_in);
            if (st->op == CALC_STATE) record_append(&rec->out, dh0, n_state);
            record_append(&rec->out, dw, n_dw);
        }
        free(before.data);
        free(dy);
        free(dhn);
        free(dx);
        free(dh0);
        return refused;
    }
    case LOSS: {
        const int64_t rows = 3, classes = 4;
        float *pred = seeded_floats(rows * classes, seed), *truth = seeded_floats(rows * classes, seed + 1u);
        for (int64_t i = 0; i < rows * classes; i++) pred[i] += 0.6f, truth[i] = truth[i] > 0.0f;
        float *loss = sentinel_floats(1), *d_pred = sentinel_floats(rows * classes);
        NNTKStatus s = NNTKLossCompute((int32_t)st->batch, (int32_t)st->steps, rows, classes, pred, truth,
                                       loss, d_pred);
        int refused = s != NNTK_OK;
        if (refused) {
            check_refusal(sc, k, fn, s);
            CHECK(untouched(loss, 1) && untouched(d_pred, rows * classes),
                  "%s step %d %s: output written on failure", sc->what, k, fn);
        } else {
            record_append(&rec->out, loss, 1);
            record_append(&rec->out, d_pred, rows * classes);
        }
        free(pred);
        free(truth);
        free(loss);
        free(d_pred);
        return refused;
    }
    case OPT_SGD:
    case OPT_ADAM:
        run->optimizer = st->op == OPT_SGD ? NNTKOptimizerCreateSGD(0.01, 0.9, 1)
                                           : NNTKOptimizerCreateAdam(0.001, 0.9, 0.999, 1e-7, 1);
        if (run->optimizer == NULL) return check_refusal(sc, k, fn, NNTKLastStatus()), 1;
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < 6; i++) run->params[b][i] = 0.1f * (float)(b + 1) * (float)(i - 2);
        return 0;
    case OPT_STEP: {
        const int64_t sizes[2] = {6, 4};
        float *grads = seeded_floats(10, seed);
        float *const params[2] = {run->params[0], run->params[1]};
        const float *const gs[2] = {grads, grads + 6};
        float before[2][6];
        memcpy(before, run->params, sizeof before);
        int64_t it_before = -1, it = -1;
        NNTKOptimizerIterations(run->optimizer, &it_before);
        NNTKStatus s = NNTKOptimizerStep(run->optimizer, 2, params, gs, sizes);
        NNTKOptimizerIterations(run->optimizer, &it);
        int refused = s != NNTK_OK;
        if (refused) {
            check_refusal(sc, k, fn, s);
            CHECK(memcmp(before, run->params, sizeof before) == 0 && it == it_before,
                  "%s step %d %s: parameters or iterations changed on failure", sc->what, k, fn);
        } else {
            record_append(&rec->out, &run->params[0][0], 12);
            float iterations = (float)it;
            record_append(&rec->out, &iterations, 1);
        }
        free(grads);
        return refused;
    }
    case OPT_SET_STATE: { /* restoring a saved state before the first step creates the slots */
        const int64_t sizes[2] = {6, 4};
        int64_t count = 0, it_before = -1, it = -1;
        NNTKOptimizerStateSize(run->optimizer, 10, &count); /* <= 3 slots x 10 */
        float *state = seeded_floats(count, seed), got[30];
        NNTKOptimizerIterations(run->optimizer, &it_before);
        NNTKStatus s = NNTKOptimizerSetState(run->optimizer, 2, sizes, state, count);
        NNTKOptimizerIterations(run->optimizer, &it);
        int refused = s != NNTK_OK;
        CHECK(NNTKOptimizerGetState(run->optimizer, 2, sizes, got, count) == NNTK_OK,
              "%s step %d %s: GetState failed: %s", sc->what, k, fn, NNTKLastError());
        if (refused) {
            check_refusal(sc, k, fn, s);
            int zero = 1;
            for (int64_t j = 0; j < count; j++) zero &= got[j] == 0.0f;
            CHECK(zero && it == it_before, "%s step %d %s: slots or iterations changed on failure",
                  sc->what, k, fn);
        } else {
            CHECK(memcmp(got, state, (size_t)count * sizeof *state) == 0,
                  "%s step %d %s: GetState does not return the state set", sc->what, k, fn);
            record_append(&rec->out, got, count);
        }
        free(state);
        return refused;
    }
    case MODEL_LOAD:
    case MODEL_LOAD_SAVED: {
        NNTKModel *m = NNTKModelLoad(st->op == MODEL_LOAD ? sc->model_path : saved_path, MODEL_BATCH,
                                     MODEL_STEPS);
        if (m == NULL) return check_refusal(sc, k, fn, NNTKLastStatus()), 1;
        *(st->op == MODEL_LOAD ? &run->model : &run->reloaded) = m;
        record_model(rec, m);
        return 0;
    }
    case MODEL_INFER:
    case MODEL_TRAIN: {
        int64_t features = 0, layers, weights, out_steps = 0, classes = 0;
        NNTKModelDescribe(run->model, &layers, &features, &weights);
        CHECK(NNTKModelOutputShape(run->model, st->batch, st->steps, &out_steps, &classes) == NNTK_OK,
              "%s: NNTKModelOutputShape: %s", sc->what, NNTKLastError());
        const int64_t n_in = st->batch * st->steps * features, n_out = st->batch * out_steps * classes;
        float *x = seeded_floats(n_in, seed), *y = sentinel_floats(n_out), *target = calloc((size_t)n_out + 1, 4);
        if (target == NULL) abort();
        for (int64_t r = 0; r < n_out / classes; r++) target[r * classes + r % classes] = 1.0f; /* one-hot */
        float *before = model_weights(run->model, &weights);
        int64_t it_before = -1, it = -1;
        NNTKModelIterations(run->model, &it_before);
        const NNTKStatus s = st->op == MODEL_INFER
                                 ? NNTKModelApplyInference(run->model, st->batch, st->steps, x, y)
                                 : NNTKModelTrainStep(run->model, NNTK_LOSS_CATEGORICAL_CROSSENTROPY, 0,
                                                      st->batch, st->steps, x, target, y);
        const int refused = s != NNTK_OK;
        if (refused) check_refusal(sc, k, fn, s);
        float *after = model_weights(run->model, &weights);
        NNTKModelIterations(run->model, &it);
        const int64_t n_written = st->op == MODEL_INFER ? n_out : 1;
        if (refused) {
            CHECK(untouched(y, n_written) && memcmp(before, after, (size_t)weights * 4) == 0 && it == it_before,
                  "%s step %d %s: output, weights or step count changed on failure", sc->what, k, fn);
        } else {
            record_append(&rec->out, y, n_written);
            record_model(rec, run->model);
        }
        free(x), free(y), free(target), free(before), free(after);
        return refused;
    }
    case MODEL_SAVE: {
        int64_t size_before = 0, size = 0;
        char *previous = read_bytes(saved_path, &size_before);
        const NNTKStatus s = NNTKModelSave(run->model, saved_path);
        char *bytes = read_bytes(saved_path, &size);
        const int refused = s != NNTK_OK;
        if (refused) {
            check_refusal(sc, k, fn, s);
            CHECK(size == size_before && (size == 0 || memcmp(previous, bytes, (size_t)size) == 0),
                  "%s step %d %s: the file changed on failure", sc->what, k, fn);
        } else {
            float as_floats[4096] = {0}; /* the file's bytes, padded with zeros */
            CHECK(size > 0 && size <= (int64_t)sizeof as_floats, "%s: saved %lld bytes", sc->what, (long long)size);
            memcpy(as_floats, bytes, (size_t)size);
            record_append(&rec->out, as_floats, (size + 3) / 4);
        }
        free(previous), free(bytes);
        return refused;
    }
    case CHAIN_LAYERS:
        return chain_layers(sc, run, k);
    case CHAIN_CREATE:
        run->chain = NNTKLayerChainCreate(run->chain_layers[0], CHAIN_BATCH, CHAIN_STEPS);
        if (run->chain == NULL) return check_refusal(sc, k, fn, NNTKLastStatus()), 1;
        run->appended = 1;
        return 0;
    case CHAIN_APPEND: {
        const NNTKStatus s = NNTKLayerChainAppend(run->chain, run->chain_layers[run->appended]);
        int64_t layers = 0, in, out, width;
        NNTKLayerChainDescribe(run->chain, &layers, &in, &out, &width);
        if (s != NNTK_OK) {
            check_refusal(sc, k, fn, s);
            CHECK(layers == run->appended, "%s step %d %s: the chain changed on failure", sc->what, k, fn);
            return 1;
        }
        run->appended++;
        const float shape[4] = {(float)layers, (float)in, (float)out, (float)width};
        record_append(&rec->out, shape, 4);
        return 0;
    }
    case CHAIN_STREAM: { /* chunk of st->steps input steps; the state carried in run->state */
        const int64_t n_out = st->batch * (st->steps - 2) * CHAIN_OUT, n_state = st->batch * CHAIN_STATE;
        float *x = seeded_floats(st->batch * st->steps * CHAIN_IN, seed);
        float *y = sentinel_floats(n_out), *final = sentinel_floats(n_state);
        const NNTKStatus s =
            NNTKLayerChainStream(run->chain, st->batch, st->steps, x, run->state, y, final);
        free(x);
        return streamed(sc, run, k, fn, s, y, n_out, final, n_state, rec);
    }
    case MODEL_STREAM: { /* a chunk from the last chunk's states (run->state), within the capacity */
        int64_t features = 0, layers, weights, out_steps = 0, classes = 0, width = 0;
        NNTKModelDescribe(run->model, &layers, &features, &weights);
        CHECK(NNTKModelOutputShape(run->model, st->batch, st->steps, &out_steps, &classes) == NNTK_OK &&
                  NNTKModelStreamStates(run->model, &width) == NNTK_OK,
              "%s: NNTKModelOutputShape / StreamStates: %s", sc->what, NNTKLastError());
        const int64_t n_out = st->batch * out_steps * classes, n_state = st->batch * width;
        float *x = seeded_floats(st->batch * st->steps * features, seed);
        float *y = sentinel_floats(n_out), *final = sentinel_floats(n_state);
        const NNTKStatus s = NNTKModelStream(run->model, st->batch, st->steps, x,
                                             run->state_n == n_state ? run->state : NULL, y, final);
        free(x);
        return streamed(sc, run, k, fn, s, y, n_out, final, n_state, rec);
    }
    case MODEL_SET_ADAM: {
        int64_t it_before = -1, it = -1;
        NNTKModelIterations(run->model, &it_before);
        const NNTKStatus s = NNTKModelSetOptimizerAdam(run->model, 0.005, 0.9, 0.999, 1e-7, 1);
        const int refused = s != NNTK_OK;
        if (refused) check_refusal(sc, k, fn, s);
        NNTKModelIterations(run->model, &it);
        if (refused) { /* the model keeps its optimizer (or none) */
            CHECK(it == it_before, "%s step %d %s: the optimizer changed on failure", sc->what, k, fn);
        } else {
            float iterations = (float)it; /* 0: a new optimizer */
            record_append(&rec->out, &iterations, 1);
        }
        return refused;
    }
    }
    return 0;
}

static void run_free(const Scenario *sc, Run *run) {
    if (sc->L != NULL) {
        sc->L->gradient_destroy(run->gradient);
        sc->L->destroy(run->filter);
        if (run->config) sc->L->config_destroy(run->config);
    }
    NNTKOptimizerDestroy(run->optimizer);
    NNTKModelDestroy(run->model);
    NNTKModelDestroy(run->reloaded);
    NNTKLayerChainDestroy(run->chain);
    for (int i = 0; i < 3; i++) NNTKLayerDestroy(run->chain_layers[i]);
    free(run->state);
    memset(run, 0, sizeof *run);
}

static int same(const Record *a, const Record *b) {
    return a->skipped == b->skipped && records_equal(&a->out, &b->out);
}

static void run_scenario(const Scenario *sc) {
    Record ref[MAX_STEPS];
    Run run;
    memset(&run, 0, sizeof run);
    scenarios++;
    for (int k = 0; k < sc->n_steps; k++) {
        NNTKTestFailAllocation(0); /* counts, injects nothing */
        CHECK(do_step(sc, &run, k, &ref[k]) == 0, "%s: step %d (%s) fails without injection", sc->what, k,
              OP_NAME[sc->steps[k].op]);
        CHECK(!sc->steps[k].within_capacity || NNTKTestAllocationCount() == 0,
              "%s: step %d (%s) allocated %lld times within the reserved capacity", sc->what, k,
              OP_NAME[sc->steps[k].op], (long long)NNTKTestAllocationCount());
    }
    run_free(sc, &run);
    const int64_t baseline = library_bytes();

    for (int k = 0; k < sc->n_steps; k++) {
        if (ref[k].skipped) continue;
        steps_tried++;
        for (int64_t n = 1;; n++) {
            Record rec;
            for (int i = 0; i < k; i++) {
                do_step(sc, &run, i, &rec);
                free(rec.out.data);
            }
            NNTKClearError();
            NNTKTestFailAllocation(n);
            const int refused = do_step(sc, &run, k, &rec);
            const int64_t made = NNTKTestAllocationCount();
            NNTKTestFailAllocation(0);
            if (!refused) { /* the n-th allocation was not made, or its failure was absorbed */
                CHECK(same(&rec, &ref[k]), "%s step %d (%s): wrong result with allocation %lld failed",
                      sc->what, k, OP_NAME[sc->steps[k].op], (long long)n);
                free(rec.out.data);
                /* Absorbed: the later steps too, bitwise as uninjected (a call that swallows
                 * the failure can leave a half-built handle that only they use). */
                for (int i = k + 1; made >= n && i < sc->n_steps; i++) {
                    CHECK(do_step(sc, &run, i, &rec) == 0 && same(&rec, &ref[i]),
                          "%s: step %d (%s) after allocation %lld of step %d (%s) was absorbed: "
                          "differs from an uninjected run",
                          sc->what, i, OP_NAME[sc->steps[i].op], (long long)n, k, OP_NAME[sc->steps[k].op]);
                    free(rec.out.data);
                }
                run_free(sc, &run);
                if (made < n) break;
                continue;
            }
            sites++;
            /* usable afterwards: this step again, then the rest, bitwise as uninjected */
            for (int i = k; i < sc->n_steps; i++) {
                CHECK(do_step(sc, &run, i, &rec) == 0 && same(&rec, &ref[i]),
                      "%s: step %d (%s) after allocation %lld of step %d (%s) failed: differs from an "
                      "uninjected run",
                      sc->what, i, OP_NAME[sc->steps[i].op], (long long)n, k, OP_NAME[sc->steps[k].op]);
                free(rec.out.data);
            }
            run_free(sc, &run);
            CHECK(library_bytes() == baseline, "%s: %lld bytes leaked after allocation %lld of step %d (%s) failed",
                  sc->what, (long long)(library_bytes() - baseline), (long long)n, k, OP_NAME[sc->steps[k].op]);
            if (n > 10000) {
                CHECK(0, "%s step %d: more than 10000 allocations", sc->what, k);
                break;
            }
        }
    }
    for (int k = 0; k < sc->n_steps; k++) free(ref[k].out.data);
}

static void add(Scenario *sc, enum Op op, int64_t batch, int64_t steps) {
    if (sc->n_steps == MAX_STEPS) abort();
    sc->steps[sc->n_steps++] = (Step){op, batch, steps, 0};
}
static void add_within_capacity(Scenario *sc, enum Op op, int64_t batch, int64_t steps) {
    add(sc, op, batch, steps);
    sc->steps[sc->n_steps - 1].within_capacity = 1;
}

/* The three scenarios of one layer config. */
static void run_layer_config(const nntk_layer_api *L, const nntk_arg_value *v, const char *label) {
    Scenario sc;
    char what[160];

    memset(&sc, 0, sizeof sc); /* inference handle: growth, stream chunks */
    snprintf(what, sizeof what, "%s %s inference", L->name, label);
    sc.what = what, sc.L = L;
    memcpy(sc.v, v, sizeof sc.v);
    add(&sc, CONFIG, 0, 0), add(&sc, CREATE_INFERENCE, 0, 0);
    add(&sc, INFER, 1, 4), add(&sc, INFER, 3, 4), add(&sc, INFER, 3, 7);
    add(&sc, STREAM_FIRST, 2, 4), add(&sc, STREAM_NEXT, 2, 7);
    run_scenario(&sc);

    sc.n_steps = 0; /* training handle, nothing reserved: every growth path */
    snprintf(what, sizeof what, "%s %s training", L->name, label);
    add(&sc, CONFIG, 0, 0), add(&sc, CREATE_TRAINING, 0, 0), add(&sc, INFER, 1, 4);
    add(&sc, TRAIN, 1, 4), add(&sc, GRAD_CREATE, 0, 0), add(&sc, CALC, 0, 0);
    add(&sc, TRAIN, 3, 4), add(&sc, CALC, 0, 0), add(&sc, TRAIN, 3, 7), add(&sc, CALC, 0, 0);
    add(&sc, CALC_NO_DIN, 0, 0), add(&sc, INFER, 3, 8);
    add(&sc, FROZEN, 4, 8), add(&sc, CALC, 0, 0);
    add(&sc, STREAM_FIRST, 2, 4), add(&sc, STREAM_NEXT, 2, 7);
    add(&sc, TRAIN_STATE, 2, 9), add(&sc, CALC_STATE, 0, 0);
    run_scenario(&sc);

    sc.n_steps = 0; /* training handle with a reserved capacity, then beyond it */
    snprintf(what, sizeof what, "%s %s training with capacity", L->name, label);
    sc.capacity = (NNTKTrainingConfig){2, 5};
    add(&sc, CONFIG, 0, 0), add(&sc, CREATE_TRAINING, 0, 0), add_within_capacity(&sc, INFER, 2, 5);
    add_within_capacity(&sc, TRAIN, 2, 5), add(&sc, GRAD_CREATE, 0, 0);
    add_within_capacity(&sc, CALC, 0, 0), add_within_capacity(&sc, TRAIN, 1, 3);
    add_within_capacity(&sc, CALC, 0, 0), add(&sc, TRAIN, 3, 7), add(&sc, CALC, 0, 0);
    run_scenario(&sc);
}

static uint32_t sample_state;
static int sampled(int percent) {
    sample_state ^= sample_state << 13;
    sample_state ^= sample_state >> 17;
    sample_state ^= sample_state << 5;
    return (int)(sample_state % 100u) < percent;
}

/* Every layer's base config, then each accepted value 0..7 of each int32
 * argument (the enums and flags: return_sequences, go_backwards, merge mode,
 * padding, inner layer kind, ...), one argument at a time. */
static void run_layer(const nntk_layer_api *L, int percent) {
    nntk_arg_value base[32];
    if (find_valid_config(L, base) != 0) {
        failures++;
        return;
    }
    run_layer_config(L, base, "base");
    for (int i = 0; i < L->n_args; i++) {
        if (L->args[i].kind != NNTK_ARG_I32) continue;
        for (int32_t value = 0; value < 8; value++) {
            nntk_arg_value v[32];
            memcpy(v, base, sizeof v);
            v[i].i32 = value;
            if (value == base[i].i32 || !sampled(percent)) continue;
            void *config = L->config_create(v);
            if (config == NULL) continue; /* not a valid value here */
            L->config_destroy(config);
            char label[96];
            snprintf(label, sizeof label, "%s=%d", L->args[i].name, (int)value);
            run_layer_config(L, v, label);
        }
    }
}

static void run_losses_and_optimizers(void) {
    Scenario sc;
    memset(&sc, 0, sizeof sc);
    sc.what = "losses";
    for (int32_t kind = 0; kind < NNTK_LOSS_COUNT_; kind++)
        for (int32_t logits = 0; logits <= (kind == NNTK_LOSS_CATEGORICAL_CROSSENTROPY); logits++)
            add(&sc, LOSS, kind, logits);
    run_scenario(&sc);
    for (int adam = 0; adam <= 1; adam++) {
        memset(&sc, 0, sizeof sc);
        sc.what = adam ? "optimizer Adam" : "optimizer SGD";
        add(&sc, adam ? OPT_ADAM : OPT_SGD, 0, 0), add(&sc, OPT_STEP, 0, 0), add(&sc, OPT_STEP, 0, 0);
        run_scenario(&sc);
        memset(&sc, 0, sizeof sc);
        sc.what = adam ? "optimizer Adam, state restored" : "optimizer SGD, state restored";
        add(&sc, adam ? OPT_ADAM : OPT_SGD, 0, 0), add(&sc, OPT_SET_STATE, 0, 0);
        add(&sc, OPT_STEP, 0, 0);
        run_scenario(&sc);
    }
}

/* The model of a model file: load, inference, a step (when the file holds an
 * optimizer), save, a new optimizer, a step, inference, save, load of the
 * saved file. Inference and steps are within the capacity: no allocation. */
static void run_model(const char *path) {
    NNTKModel *probe = NNTKModelLoad(path, MODEL_BATCH, MODEL_STEPS);
    if (probe == NULL) {
        printf("nntk_alloc_faults: %s does not load: %s\n", path, NNTKLastError());
        failures++;
        return;
    }
    int64_t iterations;
    const int has_optimizer = NNTKModelIterations(probe, &iterations) == NNTK_OK;
    int64_t state_width, out_steps, classes;
    /* streams (NNTKModelStream) when it can, with a chunk that gives output steps */
    const int streams = NNTKModelStreamStates(probe, &state_width) == NNTK_OK &&
                        NNTKModelOutputShape(probe, MODEL_BATCH, MODEL_STEPS, &out_steps, &classes) == NNTK_OK;
    NNTKModelDestroy(probe);
    Scenario sc;
    memset(&sc, 0, sizeof sc);
    char what[160];
    snprintf(what, sizeof what, "model %s", path);
    sc.what = what, sc.model_path = path;
    add(&sc, MODEL_LOAD, 0, 0), add_within_capacity(&sc, MODEL_INFER, 1, 4);
    if (has_optimizer) add_within_capacity(&sc, MODEL_TRAIN, 2, 6);
    add(&sc, MODEL_SAVE, 0, 0), add(&sc, MODEL_SET_ADAM, 0, 0);
    add_within_capacity(&sc, MODEL_TRAIN, 2, 5), add_within_capacity(&sc, MODEL_INFER, 2, 6);
    add(&sc, MODEL_SAVE, 0, 0), add(&sc, MODEL_LOAD_SAVED, 0, 0);
    if (streams) {
        add_within_capacity(&sc, MODEL_STREAM, MODEL_BATCH, MODEL_STEPS);
        add_within_capacity(&sc, MODEL_STREAM, MODEL_BATCH, MODEL_STEPS);
    }
    remove(saved_path);
    run_scenario(&sc);
    remove(saved_path);
}

/* A chain of layers streamed: the layers, create, two appends, two chunks of a
 * sequence (the second from the first's states) within the capacity. */
static void run_chain(void) {
    Scenario sc;
    memset(&sc, 0, sizeof sc);
    sc.what = "layer chain";
    add(&sc, CHAIN_LAYERS, 0, 0), add(&sc, CHAIN_CREATE, 0, 0);
    add(&sc, CHAIN_APPEND, 0, 0), add(&sc, CHAIN_APPEND, 0, 0);
    add_within_capacity(&sc, CHAIN_STREAM, 2, 5), add_within_capacity(&sc, CHAIN_STREAM, 2, 6);
    add_within_capacity(&sc, CHAIN_STREAM, 1, 3);
    run_scenario(&sc);
}

int main(int argc, char **argv) {
    const unsigned long seed = argc > 1 ? strtoul(argv[1], NULL, 10) : 1;
    const int percent = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 100;
    sample_state = (uint32_t)seed * 2654435761u + 1u;
    for (int l = 0; l < NNTK_LAYER_COUNT; l++) run_layer(&NNTK_LAYER_TABLE[l], percent);
    run_losses_and_optimizers();
    run_chain();
    const long layer_sites = sites;
    char directory[] = "/tmp/nntk-alloc-faults-XXXXXX";
    if (argc > 3 && mkdtemp(directory) == NULL) abort();
    snprintf(saved_path, sizeof saved_path, "%s/saved.nntk", directory);
    for (int i = 3; i < argc; i++) run_model(argv[i]);
    if (argc > 3) rmdir(directory);
    printf("nntk_alloc_faults: %d layers, %ld scenarios, %ld calls, %ld allocation-failure sites tried "
           "(%ld in the models of %d model files; seed %lu, %d%% of the config variants), %ld failures "
           "(%s backend)\n",
           NNTK_LAYER_COUNT, scenarios, steps_tried, sites, sites - layer_sites, argc > 3 ? argc - 3 : 0,
           seed, percent, failures, NNTKBackend());
    return failures == 0 ? 0 : 1;
}
