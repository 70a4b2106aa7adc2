/* Concurrency tests (issue #15 §2; docs/reliability.md), run under
 * ThreadSanitizer by ci/tsan.sh. The contract (docs/DESIGN.md §3, Threads):
 * distinct handles may be used from any number of threads at once; one handle
 * takes one call at a time, and a call that would overlap another on the same
 * handle is refused with NNTK_ERROR_INVALID_STATE.
 *
 *  1. The once-only initialisation raced: the process's very first library
 *     calls come from THREADS threads released together by a barrier, each
 *     choosing the kernel table (NNTKKernelISA) and running a product large
 *     enough for OpenBLAS (its one-time thread setting) in the BLAS build.
 *     The program interposes the library's two calls into OpenBLAS (below):
 *     the thread setting must be made once, and no product may start while it
 *     is being made (it lasts SETTING_NS longer here, so a first caller that
 *     does not wait for it runs its product inside that window).
 *  2. Distinct handles in many threads: every layer of the generated table
 *     (nntk_api_table.h) created from one shared config by every thread at once,
 *     trained, its gradient computed, run for inference and streamed; every loss;
 *     an optimizer per thread; the model (nntk/model.h) of every model file
 *     given, loaded by every thread into its own handle, run, trained (both
 *     losses), saved to the thread's own path and reloaded. Each thread's
 *     results (the saved files' bytes included) must equal a run on the main
 *     thread bitwise, and no call is refused (every status is checked).
 *  3. The error state is per thread: each thread's refused call leaves its own
 *     message, whatever the other threads do meanwhile.
 *  4. One handle, two threads: the overlap refused. Two threads call one handle
 *     in a loop (Dense ApplyInference and ApplyInference; ApplyTrainingBatch and
 *     CalculateGradient, a filter and its gradient; Optimizer Step and Step;
 *     Step and Iterations; a model's ApplyInference with ApplyInference, with
 *     GetWeights and with Save, and TrainStep with TrainStep, the model after
 *     them bitwise one trained by as many steps on one thread; LayerChain
 *     Stream and Stream on one chain) until a call has been refused and each
 *     thread has had ACCEPTED calls accepted.
 *     Overlaps come by themselves (a call lasts
 *     far longer than the loop around it, and a thread preempted in a call
 *     holds it), so the loop ends within milliseconds; DEADLINE_S bounds it,
 *     and reaching it with no refusal is a failure. A refused call must return
 *     NNTK_ERROR_INVALID_STATE with a message naming its function and saying
 *     the handle is in use by another call; every accepted call must give the
 *     single-thread result bitwise. Before that, single-threaded: every error
 *     exit of a call releases the handle (the next call is accepted), a
 *     model's too (a step without an optimizer, a batch or sequence beyond its
 *     capacity, a save into a missing directory).
 *
 *  5. (--misuse) A race the library cannot see, on purpose: one thread writes
 *     a Dense handle's weights through the pointer of GetWeights (the caller's
 *     own memory access, no call) while another applies it. ThreadSanitizer
 *     must report it (ci/tsan.sh checks that it does, so a build without the
 *     sanitizer armed cannot pass unseen).
 *
 *   nntk_threads [rounds [model files...]]     default 2 rounds of 2 and 3
 *   nntk_threads --misuse
 * Exits 1 on any failure (and says which), 0 otherwise. */
#define _GNU_SOURCE /* pthread barriers, clock_gettime, nanosleep, mkdtemp under -std=c11; RTLD_NEXT */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "c_test_support.h"

#define THREADS 4
static _Atomic long failures;

static pthread_barrier_t barrier;

/* --- 1. the first calls of the process, raced ----------------------------------------------- */

/* The BLAS build's calls into OpenBLAS (core/ops.c), interposed: the program's own
 * definitions come first in the symbol lookup (ld exports them, as libnntk refers to
 * them), and pass each call on to OpenBLAS's (RTLD_NEXT). The portable build makes
 * neither call. Declared with int for the CBLAS enums and blasint (scipy-openblas32). */
#define SETTING_NS 50000000L /* 50 ms: the raced first callers all arrive within it */
static void (*real_set_num_threads)(int);
static void (*real_sgemm)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                          float, float *, int);
static atomic_int setting_calls, setting_now, product_during_setting;

void scipy_openblas_set_num_threads(int threads);
void scipy_openblas_set_num_threads(int threads) {
    atomic_fetch_add(&setting_calls, 1);
    atomic_store(&setting_now, 1);
    nanosleep(&(struct timespec){0, SETTING_NS}, NULL);
    real_set_num_threads(threads);
    atomic_store(&setting_now, 0);
}

void scipy_cblas_sgemm(int layout, int trans_a, int trans_b, int m, int n, int k, float alpha,
                       const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
void scipy_cblas_sgemm(int layout, int trans_a, int trans_b, int m, int n, int k, float alpha,
                       const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    if (atomic_load(&setting_now)) atomic_store(&product_during_setting, 1);
    real_sgemm(layout, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static const nntk_layer_api *find_layer(const char *name) {
    for (int l = 0; l < NNTK_LAYER_COUNT; l++)
        if (strcmp(NNTK_LAYER_TABLE[l].name, name) == 0) return &NNTK_LAYER_TABLE[l];
    return NULL;
}

static void *dense_config; /* Dense(128, input_dim=128): batch 128 is 2^21 multiply-adds */
#define WIDE 128

static void *first_calls(void *arg) {
    FloatRecord *r = arg;
    pthread_barrier_wait(&barrier);
    const char *isa = NNTKKernelISA();
    record_append(r, (const float *)(const void *)&isa, (int64_t)(sizeof isa / sizeof(float)));
    const nntk_layer_api *L = find_layer("Dense");
    void *filter = L->create_for_inference(dense_config);
    float *w = NULL;
    int64_t n = 0;
    CHECK(filter != NULL && L->get_weights(filter, &w, &n) == NNTK_OK, "Dense create");
    if (filter == NULL) return NULL;
    float *init = seeded_floats(n, 5);
    memcpy(w, init, (size_t)n * sizeof(float));
    float *x = seeded_floats(WIDE * WIDE, 6), *y = malloc(WIDE * WIDE * sizeof(float));
    if (y == NULL) abort();
    CHECK(L->apply_inference(filter, WIDE, 1, x, y) == NNTK_OK, "Dense ApplyInference");
    record_append(r, y, WIDE * WIDE);
    L->destroy(filter);
    free(init);
    free(x);
    free(y);
    return NULL;
}

/* --- 2. distinct handles, every layer -------------------------------------------------------- */

static void *configs[64];

typedef struct {
    int id;
    int64_t batch, steps;
    FloatRecord results;
} Work;

static const nntk_arg_value *config_values[64];

static void layer_work(const nntk_layer_api *L, void *config, const nntk_arg_value *v, int64_t batch,
                       int64_t steps, FloatRecord *r) {
    void *filter = L->create_for_training(config, NULL);
    CHECK(filter != NULL, "%s: CreateForTraining", L->name);
    if (filter == NULL) return;
    float *w = NULL;
    int64_t n = 0;
    CHECK(L->get_weights(filter, &w, &n) == NNTK_OK, "%s: GetWeights", L->name);
    float *init = seeded_floats(n, 7);
    for (int64_t i = 0; i < n; i++) w[i] = 0.07f + init[i] * 0.1f; /* as tests/c/smoke.c */
    free(init);
    int64_t out_steps = 0, out_features = 0;
    if (L->output_shape(filter, batch, steps, &out_steps, &out_features) == NNTK_OK) {
        const int64_t n_in = batch * steps * v[L->input_width_arg].i64;
        const int64_t n_out = batch * out_steps * out_features, n_state = 4 * batch * out_features;
        float *x = seeded_floats(n_in, 8), *y = calloc((size_t)n_out, sizeof(float));
        float *dy = seeded_floats(n_out, 9), *dx = calloc((size_t)n_in, sizeof(float));
        float *hn = calloc((size_t)n_state, sizeof(float));
        if (y == NULL || dx == NULL || hn == NULL) abort();
        CHECK(L->apply_training_batch(filter, batch, steps, x, y) == NNTK_OK, "%s: ApplyTrainingBatch",
              L->name);
        record_append(r, y, n_out);
        void *gradient = L->gradient_create(filter);
        CHECK(gradient != NULL, "%s: GradientCreate", L->name);
        if (gradient != NULL) {
            CHECK(L->calculate_gradient(filter, gradient, dy, dx) == NNTK_OK, "%s: CalculateGradient",
                  L->name);
            record_append(r, dx, n_in);
            float *dw = NULL;
            int64_t n_dw = 0;
            CHECK(L->gradient_get_weights(gradient, &dw, &n_dw) == NNTK_OK, "%s: GradientGetWeights",
                  L->name);
            record_append(r, dw, n_dw);
            L->gradient_destroy(gradient);
        }
        CHECK(L->apply_inference(filter, batch, steps, x, y) == NNTK_OK, "%s: ApplyInference", L->name);
        record_append(r, y, n_out);
        if (L->apply_inference_with_state != NULL) {
            CHECK(L->apply_inference_with_state(filter, batch, steps, x, NULL, y, hn) == NNTK_OK,
                  "%s: ApplyInferenceWithState", L->name);
            record_append(r, y, n_out);
            record_append(r, hn, n_state);
        }
        free(x);
        free(y);
        free(dy);
        free(dx);
        free(hn);
    }
    L->destroy(filter);
}

static void losses_and_optimizer(FloatRecord *r) {
    const int64_t rows = 5, classes = 3;
    float *pred = seeded_floats(rows * classes, 10), *truth = seeded_floats(rows * classes, 11);
    float loss, d_pred[15];
    for (int32_t kind = 0; kind < NNTK_LOSS_COUNT_; kind++)
        for (int32_t logits = 0; logits <= (kind == NNTK_LOSS_CATEGORICAL_CROSSENTROPY); logits++) {
            CHECK(NNTKLossCompute(kind, logits, rows, classes, pred, truth, &loss, d_pred) == NNTK_OK,
                  "NNTKLossCompute");
            record_append(r, &loss, 1);
            record_append(r, d_pred, rows * classes);
        }
    NNTKOptimizer *opt = NNTKOptimizerCreateAdam(0.001, 0.9, 0.999, 1e-7, 1);
    CHECK(opt != NULL, "NNTKOptimizerCreateAdam");
    float *const params[1] = {pred};
    const float *const grads[1] = {truth};
    const int64_t sizes[1] = {rows * classes};
    for (int step = 0; step < 3; step++)
        CHECK(NNTKOptimizerStep(opt, 1, params, grads, sizes) == NNTK_OK, "NNTKOptimizerStep");
    record_append(r, pred, rows * classes);
    NNTKOptimizerDestroy(opt);
    free(pred);
    free(truth);
}

/* The models (nntk/model.h) of the model files given on the command line, each
 * loaded by every thread into its own handle and saved to its own path in
 * save_dir. */
#define MODEL_BATCH 3
#define MODEL_STEPS 8
static char **model_paths;
static int model_count;
static char save_dir[] = "/tmp/nntk_threads_XXXXXX";

/* A file's bytes (malloc'd, *length of them); NULL if it cannot be read. */
static unsigned char *file_bytes(const char *path, long *length) {
    FILE *f = fopen(path, "rb");
    unsigned char *data = NULL;
    *length = -1;
    if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (*length = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)*length + 1)) != NULL &&
        fread(data, 1, (size_t)*length, f) != (size_t)*length) {
        free(data);
        data = NULL;
    }
    if (f != NULL) fclose(f);
    return data;
}

/* Appends a file's bytes (their length first), zero-padded to whole floats. */
static void record_file(FloatRecord *r, const char *path) {
    long length = 0;
    unsigned char *data = file_bytes(path, &length);
    CHECK(data != NULL, "cannot read %s", path);
    if (data == NULL) return;
    const int64_t n = (length + (long)sizeof(float) - 1) / (long)sizeof(float);
    float *padded = calloc((size_t)n + 1, sizeof(float));
    if (padded == NULL) abort();
    memcpy(padded, data, (size_t)length);
    const float length_as_float = (float)length;
    record_append(r, &length_as_float, 1);
    record_append(r, padded, n);
    free(padded);
    free(data);
}

/* A model's every weight and its step count. */
static void record_model_state(FloatRecord *r, NNTKModel *model) {
    int64_t layers = 0, features = 0, count = 0, iterations = -1;
    CHECK(NNTKModelDescribe(model, &layers, &features, &count) == NNTK_OK, "NNTKModelDescribe");
    float *w = malloc((size_t)(count > 0 ? count : 1) * sizeof(float));
    if (w == NULL) abort();
    CHECK(NNTKModelGetWeights(model, w, count) == NNTK_OK, "NNTKModelGetWeights");
    record_append(r, w, count);
    free(w);
    CHECK(NNTKModelIterations(model, &iterations) == NNTK_OK, "NNTKModelIterations");
    const float steps = (float)iterations;
    record_append(r, &steps, 1);
}

/* A model's input and one-hot target for (MODEL_BATCH, MODEL_STEPS), and its output size. */
typedef struct {
    int64_t n_in, n_out, out_steps, classes;
    float *x, *y;
} ModelData;

static ModelData model_data(NNTKModel *model) {
    ModelData d = {0};
    int64_t layers = 0, features = 0, weights = 0;
    CHECK(NNTKModelDescribe(model, &layers, &features, &weights) == NNTK_OK &&
              NNTKModelOutputShape(model, MODEL_BATCH, MODEL_STEPS, &d.out_steps, &d.classes) == NNTK_OK,
          "NNTKModelDescribe / OutputShape");
    d.n_in = MODEL_BATCH * MODEL_STEPS * features;
    d.n_out = MODEL_BATCH * d.out_steps * d.classes;
    d.x = seeded_floats(d.n_in, 40);
    d.y = calloc((size_t)(d.n_out > 0 ? d.n_out : 1), sizeof(float));
    if (d.y == NULL) abort();
    for (int64_t row = 0; d.classes > 0 && row < d.n_out / d.classes; row++)
        d.y[row * d.classes + row % d.classes] = 1;
    return d;
}

/* Loads `path` (giving it Adam when the file holds no optimizer), as every thread does. */
static NNTKModel *model_load(const char *path) {
    NNTKModel *model = NNTKModelLoad(path, MODEL_BATCH, MODEL_STEPS);
    CHECK(model != NULL, "NNTKModelLoad %s", path);
    int64_t iterations;
    if (model != NULL && NNTKModelIterations(model, &iterations) != NNTK_OK)
        CHECK(NNTKModelSetOptimizerAdam(model, 0.01, 0.9, 0.999, 1e-7, 0) == NNTK_OK,
              "NNTKModelSetOptimizerAdam %s", path);
    return model;
}

/* A training step of `model` on d, the loss kind alternating with `step`. */
static NNTKStatus model_step(NNTKModel *model, const ModelData *d, int step, float *loss) {
    const int32_t kind = step % 2 == 0 ? NNTK_LOSS_CATEGORICAL_CROSSENTROPY : NNTK_LOSS_MEAN_SQUARED_ERROR;
    return NNTKModelTrainStep(model, kind, 0, MODEL_BATCH, MODEL_STEPS, d->x, d->y, loss);
}

/* Inference, three training steps (both losses), inference, save to save_path,
 * reload: the reloaded weights, step count, inference and next step, and the
 * saved file's bytes, all recorded. */
static void model_work(const char *path, const char *save_path, FloatRecord *r) {
    NNTKModel *model = model_load(path);
    if (model == NULL) return;
    ModelData d = model_data(model);
    float *out = calloc((size_t)d.n_out, sizeof(float)), loss = 0;
    if (out == NULL) abort();
    CHECK(NNTKModelApplyInference(model, MODEL_BATCH, MODEL_STEPS, d.x, out) == NNTK_OK,
          "NNTKModelApplyInference %s", path);
    record_append(r, out, d.n_out);
    for (int step = 0; step < 3; step++) {
        CHECK(model_step(model, &d, step, &loss) == NNTK_OK, "NNTKModelTrainStep %s", path);
        record_append(r, &loss, 1);
    }
    record_model_state(r, model);
    CHECK(NNTKModelApplyInference(model, MODEL_BATCH, MODEL_STEPS, d.x, out) == NNTK_OK,
          "NNTKModelApplyInference %s after training", path);
    record_append(r, out, d.n_out);
    CHECK(NNTKModelSave(model, save_path) == NNTK_OK, "NNTKModelSave %s", save_path);
    record_file(r, save_path);
    NNTKModel *reloaded = NNTKModelLoad(save_path, MODEL_BATCH, MODEL_STEPS);
    CHECK(reloaded != NULL, "NNTKModelLoad %s", save_path);
    if (reloaded != NULL) {
        record_model_state(r, reloaded);
        CHECK(NNTKModelApplyInference(reloaded, MODEL_BATCH, MODEL_STEPS, d.x, out) == NNTK_OK,
              "NNTKModelApplyInference %s", save_path);
        record_append(r, out, d.n_out);
        CHECK(model_step(reloaded, &d, 3, &loss) == NNTK_OK, "NNTKModelTrainStep %s", save_path);
        record_append(r, &loss, 1);
        record_model_state(r, reloaded);
    }
    unlink(save_path);
    NNTKModelDestroy(reloaded);
    NNTKModelDestroy(model);
    free(out);
    free(d.x);
    free(d.y);
}

static void all_work(Work *work) {
    for (int l = 0; l < NNTK_LAYER_COUNT; l++)
        if (configs[l] != NULL)
            layer_work(&NNTK_LAYER_TABLE[l], configs[l], config_values[l], work->batch, work->steps,
                       &work->results);
    losses_and_optimizer(&work->results);
    for (int m = 0; m < model_count; m++) {
        char save_path[sizeof save_dir + 32];
        snprintf(save_path, sizeof save_path, "%s/thread%d-model%d.nntk", save_dir, work->id, m);
        model_work(model_paths[m], save_path, &work->results);
    }
}

/* --- 3. the error state is per thread -------------------------------------------------------- */

static void own_errors(int id) {
    char expected[64];
    snprintf(expected, sizeof expected, "(got %d)", -1 - id);
    for (int i = 0; i < 200; i++) {
        float loss;
        CHECK(NNTKLossCompute(0, 0, -1 - id, 1, &loss, &loss, &loss, NULL) != NNTK_OK,
              "NNTKLossCompute accepted rows < 1");
        CHECK(strstr(NNTKLastError(), expected) != NULL && NNTKLastStatus() == NNTK_ERROR_INVALID_ARGUMENT,
              "thread %d sees another thread's error", id);
    }
}

static void *thread_main(void *arg) {
    Work *work = arg;
    pthread_barrier_wait(&barrier);
    all_work(work);
    own_errors(work->id);
    return NULL;
}

/* --- 4. one handle, two threads: the overlap refused -------------------------------------- */

#define ACCEPTED 20      /* accepted calls each thread of a pair must have had */
#define DEADLINE_S 120.0 /* bound on a pair's loop (an overlap comes within milliseconds) */
#define ROWS 16          /* Dense(128, 128) at batch 16: 2^18 multiply-adds a call */
#define OPT_FLOATS ((int64_t)1 << 16)

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One handle's test bed: a Dense(128, 128) training filter and its gradient, the
 * input and upstream gradient every call uses, and their single-thread results;
 * an SGD optimizer (momentum 0: a step moves a block by -lr * grads from it alone,
 * so each thread's block depends only on how many of its own steps were accepted). */
static struct {
    NNTKDense *filter;
    NNTKDenseGradient *gradient;
    float *x, *dy, *y_inference, *y_training, *dx, *dw;
    int64_t n_w;
    NNTKOptimizer *optimizer;
} bed;

typedef struct Caller {
    const char *fn; /* the public function it calls, as messages name it */
    NNTKStatus (*call)(struct Caller *);
    int (*correct)(struct Caller *); /* after an accepted call: is its result right? */
    float *out, *dx;                 /* this thread's outputs */
    float *params, *grads;           /* this thread's optimizer block */
    char path[64];                   /* where a model Save caller saves */
    int64_t iterations, seen;        /* Iterations: its result, the largest before */
    long accepted, refused;
} Caller;

static NNTKStatus apply_inference(Caller *c) {
    return NNTKDenseApplyInference(bed.filter, ROWS, 1, bed.x, c->out);
}
static int inference_correct(Caller *c) {
    return memcmp(c->out, bed.y_inference, ROWS * WIDE * sizeof(float)) == 0;
}
static NNTKStatus apply_training(Caller *c) {
    return NNTKDenseApplyTrainingBatch(bed.filter, ROWS, 1, bed.x, c->out);
}
static int training_correct(Caller *c) {
    return memcmp(c->out, bed.y_training, ROWS * WIDE * sizeof(float)) == 0;
}
static NNTKStatus calculate_gradient(Caller *c) {
    return NNTKDenseCalculateGradient(bed.filter, bed.gradient, bed.dy, c->dx);
}
/* The weight gradient is read here, after the call: only this thread's calls write it. */
static int gradient_correct(Caller *c) {
    float *dw = NULL;
    int64_t n = 0;
    return NNTKDenseGradientGetWeights(bed.gradient, &dw, &n) == NNTK_OK && n == bed.n_w &&
           memcmp(dw, bed.dw, (size_t)n * sizeof(float)) == 0 &&
           memcmp(c->dx, bed.dx, ROWS * WIDE * sizeof(float)) == 0;
}
static NNTKStatus optimizer_step(Caller *c) {
    float *const params[1] = {c->params};
    const float *const grads[1] = {c->grads};
    const int64_t sizes[1] = {OPT_FLOATS};
    return NNTKOptimizerStep(bed.optimizer, 1, params, grads, sizes);
}
static int checked_at_the_end(Caller *c) { /* the block after all steps: optimizer_pair */
    (void)c;
    return 1;
}
static NNTKStatus optimizer_iterations(Caller *c) {
    return NNTKOptimizerIterations(bed.optimizer, &c->iterations);
}
static int iterations_correct(Caller *c) { /* never behind what was seen before */
    const int ok = c->iterations >= c->seen;
    c->seen = c->iterations;
    return ok;
}

/* A chain of the one Dense (nntk/layer.h, NNTKLayerChain): its Stream is that
 * Dense's inference. */
static NNTKLayerChain *bed_chain;
static NNTKStatus chain_stream(Caller *c) {
    return NNTKLayerChainStream(bed_chain, ROWS, 1, bed.x, NULL, c->out, NULL);
}

/* GetState during steps: with momentum 0 the SGD slot after any step is −g·lr, g the
 * stepping thread's gradient, so a whole read gives exactly that. */
static const float *state_grads;
static NNTKStatus optimizer_get_state(Caller *c) {
    const int64_t sizes[1] = {OPT_FLOATS};
    return NNTKOptimizerGetState(bed.optimizer, 1, sizes, c->params, OPT_FLOATS);
}
static int state_correct(Caller *c) {
    const float lr = 0.01f;
    for (int64_t j = 0; j < OPT_FLOATS; j++)
        if (c->params[j] != -state_grads[j] * lr) return 0;
    return 1;
}

static pthread_barrier_t pair_barrier;
static _Atomic long pair_refused;
static double pair_deadline;

static void *caller_main(void *arg) {
    Caller *c = arg;
    pthread_barrier_wait(&pair_barrier);
    while (!(c->accepted >= ACCEPTED && pair_refused > 0) && now_s() < pair_deadline) {
        const NNTKStatus s = c->call(c);
        if (s == NNTK_OK) {
            CHECK(c->correct(c), "%s: an accepted call gave a wrong result", c->fn);
            c->accepted++;
            continue;
        }
        const char *message = NNTKLastError();
        const int refusal = s == NNTK_ERROR_INVALID_STATE && strncmp(message, c->fn, strlen(c->fn)) == 0 &&
                            strstr(message, "is in use by another call") != NULL;
        CHECK(refusal, "%s: status %d is not a refusal naming the function", c->fn, (int)s);
        if (!refusal) break;
        c->refused++;
        pair_refused++;
    }
    return NULL;
}

/* Runs two callers of one handle at once; at least one call refused, ACCEPTED each. */
static void pair(const char *what, Caller *a, Caller *b) {
    pair_refused = 0;
    pair_deadline = now_s() + DEADLINE_S;
    const double start = now_s();
    pthread_t threads[2];
    Caller *callers[2] = {a, b};
    pthread_barrier_init(&pair_barrier, NULL, 2);
    for (int t = 0; t < 2; t++) pthread_create(&threads[t], NULL, caller_main, callers[t]);
    for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
    pthread_barrier_destroy(&pair_barrier);
    CHECK(a->refused + b->refused > 0, "%s: no call refused in %.0f s", what, DEADLINE_S);
    CHECK(a->accepted >= ACCEPTED && b->accepted >= ACCEPTED, "%s: %ld and %ld calls accepted",
          what, a->accepted, b->accepted);
    printf("  %s: %ld + %ld calls accepted, %ld + %ld refused (%.2f s)\n", what, a->accepted,
           b->accepted, a->refused, b->refused, now_s() - start);
}

static Caller caller(const char *fn, NNTKStatus (*call)(Caller *), int (*correct)(Caller *)) {
    Caller c = {.fn = fn, .call = call, .correct = correct, .out = calloc(ROWS * WIDE, sizeof(float)),
                .dx = calloc(ROWS * WIDE, sizeof(float))};
    if (c.out == NULL || c.dx == NULL) abort();
    return c;
}

static void caller_free(Caller *c) {
    free(c->out);
    free(c->dx);
    free(c->params);
    free(c->grads);
}

/* Two threads step one optimizer, each its own block; then each block must equal a
 * fresh optimizer's after that thread's accepted steps, and the count their sum. */
static void optimizer_pair(void) {
    Caller c[2] = {caller("NNTKOptimizerStep", optimizer_step, checked_at_the_end),
                   caller("NNTKOptimizerStep", optimizer_step, checked_at_the_end)};
    for (int t = 0; t < 2; t++) {
        c[t].params = seeded_floats(OPT_FLOATS, 20 + t);
        c[t].grads = seeded_floats(OPT_FLOATS, 30 + t);
    }
    pair("Optimizer Step x Step", &c[0], &c[1]);
    int64_t iterations = -1;
    CHECK(NNTKOptimizerIterations(bed.optimizer, &iterations) == NNTK_OK &&
              iterations == c[0].accepted + c[1].accepted,
          "Optimizer Step x Step: %lld iterations for %ld accepted steps", (long long)iterations,
          c[0].accepted + c[1].accepted);
    for (int t = 0; t < 2; t++) {
        NNTKOptimizer *fresh = NNTKOptimizerCreateSGD(0.01, 0.0, 0);
        float *params = seeded_floats(OPT_FLOATS, 20 + t);
        float *const p[1] = {params};
        const float *const g[1] = {c[t].grads};
        const int64_t sizes[1] = {OPT_FLOATS};
        for (long k = 0; k < c[t].accepted; k++)
            CHECK(NNTKOptimizerStep(fresh, 1, p, g, sizes) == NNTK_OK, "NNTKOptimizerStep");
        CHECK(memcmp(params, c[t].params, OPT_FLOATS * sizeof(float)) == 0,
              "Optimizer Step x Step: thread %d's block differs from %ld steps on one thread", t,
              c[t].accepted);
        free(params);
        NNTKOptimizerDestroy(fresh);
    }
    Caller steps = caller("NNTKOptimizerStep", optimizer_step, checked_at_the_end),
           counts = caller("NNTKOptimizerIterations", optimizer_iterations, iterations_correct);
    steps.params = c[0].params;
    steps.grads = c[0].grads;
    pair("Optimizer Step x Iterations", &steps, &counts);
    const int64_t before = iterations;
    CHECK(NNTKOptimizerIterations(bed.optimizer, &iterations) == NNTK_OK &&
              iterations == before + steps.accepted && counts.seen <= iterations,
          "Optimizer Step x Iterations: %lld iterations after %ld more steps (seen: %lld)",
          (long long)iterations, steps.accepted, (long long)counts.seen);
    Caller reads = caller("NNTKOptimizerGetState", optimizer_get_state, state_correct);
    reads.params = calloc(OPT_FLOATS, sizeof(float));
    if (reads.params == NULL) abort();
    state_grads = steps.grads;
    pair("Optimizer Step x GetState", &steps, &reads);
    caller_free(&reads);
    free(steps.out);
    free(steps.dx);
    caller_free(&counts);
    caller_free(&c[0]);
    caller_free(&c[1]);
}

/* One model handle, two threads: its input, target and single-thread results. */
static struct {
    NNTKModel *model;
    ModelData d;
    float *y_inference, *weights;
    int64_t weight_count;
    unsigned char *file; /* the model saved single-threaded */
    long file_length;
} mbed;

static NNTKStatus model_apply(Caller *c) {
    return NNTKModelApplyInference(mbed.model, MODEL_BATCH, MODEL_STEPS, mbed.d.x, c->out);
}
static int model_inference_correct(Caller *c) {
    return memcmp(c->out, mbed.y_inference, (size_t)mbed.d.n_out * sizeof(float)) == 0;
}
static NNTKStatus model_get_weights(Caller *c) {
    return NNTKModelGetWeights(mbed.model, c->params, mbed.weight_count);
}
static int model_weights_correct(Caller *c) {
    return memcmp(c->params, mbed.weights, (size_t)mbed.weight_count * sizeof(float)) == 0;
}
static NNTKStatus model_save(Caller *c) { return NNTKModelSave(mbed.model, c->path); }
static int model_file_correct(Caller *c) {
    long length = 0;
    unsigned char *data = file_bytes(c->path, &length);
    const int ok = data != NULL && length == mbed.file_length && memcmp(data, mbed.file, (size_t)length) == 0;
    free(data);
    return ok;
}
static NNTKStatus model_train(Caller *c) {
    float loss;
    (void)c;
    return model_step(mbed.model, &mbed.d, 0, &loss);
}

/* Single-threaded: a model call that fails inside the call releases the handle. */
static void model_error_exits_release(const char *path) {
    float loss;
    NNTKModel *bare = NNTKModelLoad(path, MODEL_BATCH, MODEL_STEPS);
    CHECK(bare != NULL, "NNTKModelLoad %s", path);
    if (bare == NULL) return;
    ModelData d = model_data(bare);
    float *out = calloc((size_t)d.n_out, sizeof(float));
    if (out == NULL) abort();
    int64_t iterations;
    if (NNTKModelIterations(bare, &iterations) != NNTK_OK) /* no optimizer: refused inside the call */
        CHECK(model_step(bare, &d, 0, &loss) == NNTK_ERROR_INVALID_STATE &&
                  NNTKModelSetOptimizerSGD(bare, 0.01, 0.0, 0) == NNTK_OK,
              "a model call after TrainStep without an optimizer");
    char missing[sizeof save_dir + 32];
    snprintf(missing, sizeof missing, "%s/missing/model.nntk", save_dir);
    CHECK(NNTKModelApplyInference(bare, MODEL_BATCH + 1, MODEL_STEPS, d.x, out) ==
                  NNTK_ERROR_INVALID_ARGUMENT &&
              NNTKModelTrainStep(bare, NNTK_LOSS_CATEGORICAL_CROSSENTROPY, 0, MODEL_BATCH, MODEL_STEPS + 1,
                                 d.x, d.y, &loss) == NNTK_ERROR_INVALID_ARGUMENT &&
              NNTKModelSave(bare, missing) == NNTK_ERROR_INVALID_ARGUMENT &&
              model_step(bare, &d, 0, &loss) == NNTK_OK &&
              NNTKModelApplyInference(bare, MODEL_BATCH, MODEL_STEPS, d.x, out) == NNTK_OK,
          "%s: model calls after failed ones", path);
    NNTKModelDestroy(bare);
    free(out);
    free(d.x);
    free(d.y);
}

/* Two threads call one model: inference with inference, GetWeights and Save with
 * inference (every accepted call bitwise the single-thread result, every saved
 * file the single-thread file's bytes), then TrainStep with TrainStep: the model
 * after them must equal, bitwise, one trained by the accepted steps in turn. */
static void model_pairs(const char *path) {
    mbed.model = model_load(path);
    if (mbed.model == NULL) return;
    mbed.d = model_data(mbed.model);
    int64_t layers = 0, features = 0, start = 0;
    NNTKModelDescribe(mbed.model, &layers, &features, &mbed.weight_count);
    mbed.y_inference = calloc((size_t)mbed.d.n_out, sizeof(float));
    mbed.weights = calloc((size_t)mbed.weight_count, sizeof(float));
    if (mbed.y_inference == NULL || mbed.weights == NULL) abort();
    CHECK(mbed.d.n_out <= ROWS * WIDE, "%s: output larger than a caller's buffer", path);
    char reference[sizeof save_dir + 32];
    snprintf(reference, sizeof reference, "%s/reference.nntk", save_dir);
    CHECK(NNTKModelApplyInference(mbed.model, MODEL_BATCH, MODEL_STEPS, mbed.d.x, mbed.y_inference) ==
                  NNTK_OK &&
              NNTKModelGetWeights(mbed.model, mbed.weights, mbed.weight_count) == NNTK_OK &&
              NNTKModelIterations(mbed.model, &start) == NNTK_OK &&
              NNTKModelSave(mbed.model, reference) == NNTK_OK,
          "model single-thread reference");
    mbed.file = file_bytes(reference, &mbed.file_length);
    CHECK(mbed.file != NULL, "cannot read %s", reference);
    unlink(reference);

    Caller a = caller("NNTKModelApplyInference", model_apply, model_inference_correct),
           b = caller("NNTKModelApplyInference", model_apply, model_inference_correct);
    pair("Model ApplyInference x ApplyInference", &a, &b);
    caller_free(&b);
    b = caller("NNTKModelGetWeights", model_get_weights, model_weights_correct);
    b.params = calloc((size_t)mbed.weight_count, sizeof(float));
    if (b.params == NULL) abort();
    a.accepted = a.refused = 0; /* a pair counts each caller's calls from 0 */
    pair("Model GetWeights x ApplyInference", &b, &a);
    caller_free(&b);
    b = caller("NNTKModelSave", model_save, model_file_correct);
    snprintf(b.path, sizeof b.path, "%s/saved.nntk", save_dir);
    a.accepted = a.refused = 0;
    pair("Model Save x ApplyInference", &b, &a);
    unlink(b.path);
    caller_free(&a);
    caller_free(&b);

    a = caller("NNTKModelTrainStep", model_train, checked_at_the_end);
    b = caller("NNTKModelTrainStep", model_train, checked_at_the_end);
    pair("Model TrainStep x TrainStep", &a, &b);
    NNTKModel *serial = model_load(path);
    if (serial != NULL) {
        float loss;
        for (long k = 0; k < a.accepted + b.accepted; k++)
            CHECK(model_step(serial, &mbed.d, 0, &loss) == NNTK_OK, "NNTKModelTrainStep");
        FloatRecord raced = {NULL, 0}, in_turn = {NULL, 0};
        record_model_state(&raced, mbed.model);
        record_model_state(&in_turn, serial);
        CHECK(records_equal(&raced, &in_turn) &&
                  raced.data[raced.n - 1] == (float)(start + a.accepted + b.accepted),
              "Model TrainStep x TrainStep: the model differs from %ld steps on one thread",
              a.accepted + b.accepted);
        free(raced.data);
        free(in_turn.data);
        NNTKModelDestroy(serial);
    }
    caller_free(&a);
    caller_free(&b);
    NNTKModelDestroy(mbed.model);
    free(mbed.d.x);
    free(mbed.d.y);
    free(mbed.y_inference);
    free(mbed.weights);
    free(mbed.file);
}

/* Single-threaded: a call that fails after taking the handle releases it. */
static void error_exits_release(NNTKDenseConfig *config) {
    float y[ROWS * WIDE], dx[ROWS * WIDE];
    NNTKDense *inference = NNTKDenseCreateForInference(config);
    NNTKDense *fresh = NNTKDenseCreateForTraining(config, NULL);
    NNTKDenseGradient *g = fresh != NULL ? NNTKDenseGradientCreate(fresh) : NULL;
    CHECK(inference != NULL && g != NULL, "Dense create");
    if (inference == NULL || g == NULL) return;
    CHECK(NNTKDenseApplyTrainingBatch(inference, ROWS, 1, bed.x, y) == NNTK_ERROR_INVALID_STATE &&
              NNTKDenseApplyInference(inference, ROWS, 1, bed.x, y) == NNTK_OK,
          "a call after ApplyTrainingBatch on an inference handle");
    CHECK(NNTKDenseCalculateGradient(fresh, g, bed.dy, dx) == NNTK_ERROR_INVALID_STATE &&
              strstr(NNTKLastError(), "no training batch yet") != NULL,
          "CalculateGradient before a training batch");
    CHECK(NNTKDenseApplyTrainingBatch(fresh, 0, 1, bed.x, y) == NNTK_ERROR_INVALID_ARGUMENT,
          "ApplyTrainingBatch with batch 0");
    CHECK(NNTKDenseApplyTrainingBatch(fresh, ROWS, 1, bed.x, y) == NNTK_OK &&
              NNTKDenseCalculateGradient(fresh, g, bed.dy, dx) == NNTK_OK,
          "calls after failed ones");
    NNTKOptimizer *opt = NNTKOptimizerCreateSGD(0.01, 0.0, 0);
    float w[2] = {1, 2}, dw[2] = {3, 4};
    float *const params[2] = {w, w + 1};
    const float *const grads[2] = {dw, dw + 1};
    const int64_t sizes[2] = {1, 1};
    int64_t iterations = 0;
    CHECK(opt != NULL && NNTKOptimizerStep(opt, 2, params, grads, sizes) == NNTK_OK &&
              NNTKOptimizerStep(opt, 1, params, grads, sizes) == NNTK_ERROR_INVALID_ARGUMENT &&
              NNTKOptimizerStep(opt, 2, params, grads, sizes) == NNTK_OK &&
              NNTKOptimizerIterations(opt, &iterations) == NNTK_OK && iterations == 2 &&
              NNTKOptimizerSetLearningRate(opt, 0.5) == NNTK_OK,
          "optimizer calls after a failed step");
    NNTKOptimizerDestroy(opt);
    NNTKDenseGradientDestroy(g);
    NNTKDenseDestroy(fresh);
    NNTKDenseDestroy(inference);
}

static void one_handle_two_threads(void) {
    NNTKDenseConfig *config = NNTKDenseConfigCreate(WIDE, WIDE, NNTK_ACTIVATION_LINEAR, 1);
    bed.filter = config != NULL ? NNTKDenseCreateForTraining(config, NULL) : NULL;
    bed.gradient = bed.filter != NULL ? NNTKDenseGradientCreate(bed.filter) : NULL;
    bed.optimizer = NNTKOptimizerCreateSGD(0.01, 0.0, 0);
    float *w = NULL, *dw = NULL;
    int64_t n = 0;
    CHECK(bed.gradient != NULL && bed.optimizer != NULL &&
              NNTKDenseGetWeights(bed.filter, &w, &n) == NNTK_OK,
          "Dense and SGD create");
    if (bed.gradient == NULL || bed.optimizer == NULL || w == NULL) return;
    float *init = seeded_floats(n, 13);
    memcpy(w, init, (size_t)n * sizeof(float));
    free(init);
    bed.x = seeded_floats(ROWS * WIDE, 14);
    bed.dy = seeded_floats(ROWS * WIDE, 15);
    bed.y_inference = calloc(ROWS * WIDE, sizeof(float));
    bed.y_training = calloc(ROWS * WIDE, sizeof(float));
    bed.dx = calloc(ROWS * WIDE, sizeof(float));
    bed.dw = malloc((size_t)n * sizeof(float));
    if (bed.y_inference == NULL || bed.y_training == NULL || bed.dx == NULL || bed.dw == NULL) abort();
    /* The single-thread results; the training batch stays kept for the gradients. */
    CHECK(NNTKDenseApplyInference(bed.filter, ROWS, 1, bed.x, bed.y_inference) == NNTK_OK &&
              NNTKDenseApplyTrainingBatch(bed.filter, ROWS, 1, bed.x, bed.y_training) == NNTK_OK &&
              NNTKDenseCalculateGradient(bed.filter, bed.gradient, bed.dy, bed.dx) == NNTK_OK &&
              NNTKDenseGradientGetWeights(bed.gradient, &dw, &bed.n_w) == NNTK_OK,
          "Dense single-thread reference");
    memcpy(bed.dw, dw, (size_t)bed.n_w * sizeof(float));

    error_exits_release(config);
    printf("nntk_threads: one handle, two threads (a refused call is NNTK_ERROR_INVALID_STATE):\n");
    Caller a = caller("NNTKDenseApplyInference", apply_inference, inference_correct),
           b = caller("NNTKDenseApplyInference", apply_inference, inference_correct);
    pair("Dense ApplyInference x ApplyInference", &a, &b);
    caller_free(&a);
    caller_free(&b);
    a = caller("NNTKDenseApplyTrainingBatch", apply_training, training_correct);
    b = caller("NNTKDenseCalculateGradient", calculate_gradient, gradient_correct);
    pair("Dense ApplyTrainingBatch x CalculateGradient", &a, &b);
    caller_free(&a);
    caller_free(&b);
    optimizer_pair();
    bed_chain = NNTKLayerChainCreate((NNTKLayer *)bed.filter, ROWS, 1);
    CHECK(bed_chain != NULL, "NNTKLayerChainCreate: %s", NNTKLastError());
    if (bed_chain != NULL) {
        a = caller("NNTKLayerChainStream", chain_stream, inference_correct);
        b = caller("NNTKLayerChainStream", chain_stream, inference_correct);
        pair("LayerChain Stream x Stream", &a, &b);
        caller_free(&a);
        caller_free(&b);
        NNTKLayerChainDestroy(bed_chain);
    }
    for (int m = 0; m < model_count; m++) model_error_exits_release(model_paths[m]);
    if (model_count > 0) model_pairs(model_paths[0]);

    NNTKOptimizerDestroy(bed.optimizer);
    NNTKDenseGradientDestroy(bed.gradient);
    NNTKDenseDestroy(bed.filter);
    NNTKDenseConfigDestroy(config);
    free(bed.x);
    free(bed.dy);
    free(bed.y_inference);
    free(bed.y_training);
    free(bed.dx);
    free(bed.dw);
}

/* --- 5. a race the library cannot see, on purpose -------------------------------------------- */

static void *misuse_writer(void *filter) {
    float *w = NULL;
    int64_t n = 0;
    NNTKDenseGetWeights(filter, &w, &n);
    pthread_barrier_wait(&barrier);
    for (int i = 0; i < 20; i++)
        for (int64_t j = 0; j < n; j++) w[j] = (float)(i + j % 7);
    return NULL;
}

static void *misuse_caller(void *filter) {
    float *x = seeded_floats(WIDE * 4, 12), *y = malloc(WIDE * 4 * sizeof(float));
    if (y == NULL) abort();
    pthread_barrier_wait(&barrier);
    for (int i = 0; i < 20; i++) NNTKDenseApplyInference(filter, 4, 1, x, y);
    free(x);
    free(y);
    return NULL;
}

static int misuse(void) {
    const nntk_layer_api *L = find_layer("Dense");
    void *filter = L->create_for_training(dense_config, NULL);
    if (filter == NULL) return 1;
    pthread_t threads[2];
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_create(&threads[0], NULL, misuse_writer, filter);
    pthread_create(&threads[1], NULL, misuse_caller, filter);
    for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
    pthread_barrier_destroy(&barrier);
    L->destroy(filter);
    L->config_destroy(dense_config);
    printf("nntk_threads --misuse: done (ThreadSanitizer should have reported a data race)\n");
    return 0;
}

int main(int argc, char **argv) {
    const int misuse_only = argc > 1 && strcmp(argv[1], "--misuse") == 0;
    const long rounds = argc > 1 && !misuse_only ? strtol(argv[1], NULL, 10) : 2;
    const nntk_layer_api *dense = find_layer("Dense");
    nntk_arg_value dense_v[32];
    if (dense == NULL || find_valid_config(dense, dense_v) != 0) return 1;
    for (int i = 0; i < dense->n_args; i++)
        if (strcmp(dense->args[i].name, "units") == 0 || strcmp(dense->args[i].name, "input_dim") == 0)
            dense_v[i].i64 = WIDE;
    dense_config = dense->config_create(dense_v);
    if (dense_config == NULL) return 1;
    if (misuse_only) return misuse();
    model_paths = argv + (argc > 1 ? 2 : 1);
    model_count = argc > 2 ? argc - 2 : 0;
    if (model_count > 0 && mkdtemp(save_dir) == NULL) {
        fprintf(stderr, "nntk_threads: cannot create %s\n", save_dir);
        return 1;
    }
    /* OpenBLAS's own functions, for the interposed ones (resolved before any thread). */
    *(void **)&real_set_num_threads = dlsym(RTLD_NEXT, "scipy_openblas_set_num_threads");
    *(void **)&real_sgemm = dlsym(RTLD_NEXT, "scipy_cblas_sgemm");
    const int blas = strcmp(NNTKBackend(), "openblas") == 0;
    CHECK(!blas || (real_set_num_threads != NULL && real_sgemm != NULL), "OpenBLAS not found: %s",
          dlerror());

    pthread_t threads[THREADS];
    FloatRecord first[THREADS];
    memset(first, 0, sizeof first);
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, first_calls, &first[t]);
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    for (int t = 1; t < THREADS; t++)
        CHECK(records_equal(&first[t], &first[0]), "first calls: thread %d differs from thread 0", t);
    for (int t = 0; t < THREADS; t++) free(first[t].data);
    /* Once (one OpenBLAS thread: core/ops.c); never during a product. */
    const int settings = atomic_load(&setting_calls);
    CHECK(settings == blas,
          "first calls: OpenBLAS's thread setting made %d times (%s backend)", settings, NNTKBackend());
    CHECK(!atomic_load(&product_during_setting),
          "first calls: a product started while OpenBLAS's thread setting was being made "
          "(core/ops.c: every first caller must wait for it)");
    dense->config_destroy(dense_config);

    static nntk_arg_value values[64][32];
    for (int l = 0; l < NNTK_LAYER_COUNT && l < 64; l++) {
        if (find_valid_config(&NNTK_LAYER_TABLE[l], values[l]) != 0) {
            failures++;
            continue;
        }
        configs[l] = NNTK_LAYER_TABLE[l].config_create(values[l]);
        config_values[l] = values[l];
    }
    int64_t baseline = 0, peak = 0;
    NNTKMemoryStats(&baseline, &peak);
    long runs = 0;
    for (long round = 0; round < rounds; round++) {
        Work reference = {0, 2 + round, 3 + round, {NULL, 0}}, work[THREADS];
        all_work(&reference);
        /* Odd rounds: the worker pool (docs/threads.md) of 3 threads, which one
         * caller's call holds at a time while the others' run inline; the same bits. */
        const int32_t pool = round % 2 ? 3 : 1;
        CHECK(NNTKSetThreadCount(pool) == NNTK_OK, "NNTKSetThreadCount(%d)", (int)pool);
        for (int t = 0; t < THREADS; t++) {
            work[t] = reference;
            work[t].id = t;
            work[t].results = (FloatRecord){NULL, 0};
            pthread_create(&threads[t], NULL, thread_main, &work[t]);
        }
        for (int t = 0; t < THREADS; t++) {
            pthread_join(threads[t], NULL);
            CHECK(records_equal(&work[t].results, &reference.results),
                  "round %ld: thread %d's results differ from the main thread's", round, t);
            free(work[t].results.data);
            runs++;
        }
        free(reference.results.data);
        CHECK(NNTKSetThreadCount(1) == NNTK_OK, "NNTKSetThreadCount(1)");
    }
    one_handle_two_threads();
    int64_t now = 0;
    NNTKMemoryStats(&now, &peak);
    CHECK(now == baseline, "%lld bytes still allocated after every thread finished",
          (long long)(now - baseline));
    for (int l = 0; l < NNTK_LAYER_COUNT && l < 64; l++)
        if (configs[l] != NULL) NNTK_LAYER_TABLE[l].config_destroy(configs[l]);
    pthread_barrier_destroy(&barrier);
    if (model_count > 0) CHECK(rmdir(save_dir) == 0, "%s not empty at the end", save_dir);
    printf("nntk_threads: %d threads raced the first calls (%s kernels, %s backend); %ld thread runs "
           "over %d layers, losses, an optimizer and %d model files; %ld failures\n",
           THREADS, NNTKKernelISA(), NNTKBackend(), runs, NNTK_LAYER_COUNT, model_count, (long)failures);
    return failures == 0 ? 0 : 1;
}
