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
 *     an optimizer per thread. Each thread's results must equal a run on the
 *     main thread bitwise, and no call is refused (every status is checked).
 *  3. The error state is per thread: each thread's refused call leaves its own
 *     message, whatever the other threads do meanwhile.
 *  4. One handle, two threads: the overlap refused. Two threads call one handle
 *     in a loop (Dense ApplyInference and ApplyInference; ApplyTrainingBatch and
 *     CalculateGradient, a filter and its gradient; Optimizer Step and Step;
 *     Step and Iterations) until a call has been refused and each thread has
 *     had ACCEPTED calls accepted; LayerChain Stream and Stream on one chain. Overlaps come by themselves (a call lasts
 *     far longer than the loop around it, and a thread preempted in a call
 *     holds it), so the loop ends within milliseconds; DEADLINE_S bounds it,
 *     and reaching it with no refusal is a failure. A refused call must return
 *     NNTK_ERROR_INVALID_STATE with a message naming its function and saying
 *     the handle is in use by another call; every accepted call must give the
 *     single-thread result bitwise. Before that, single-threaded: every error
 *     exit of a call releases the handle (the next call is accepted).
 *
 *  5. (--misuse) A race the library cannot see, on purpose: one thread writes
 *     a Dense handle's weights through the pointer of GetWeights (the caller's
 *     own memory access, no call) while another applies it. ThreadSanitizer
 *     must report it (ci/tsan.sh checks that it does, so a build without the
 *     sanitizer armed cannot pass unseen).
 *
 *   nntk_threads [rounds]     default 2 rounds of 2 and 3
 *   nntk_threads --misuse
 * Exits 1 on any failure (and says which), 0 otherwise. */
#define _GNU_SOURCE /* pthread barriers, clock_gettime, nanosleep under -std=c11; RTLD_NEXT */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static void all_work(Work *work) {
    for (int l = 0; l < NNTK_LAYER_COUNT; l++)
        if (configs[l] != NULL)
            layer_work(&NNTK_LAYER_TABLE[l], configs[l], config_values[l], work->batch, work->steps,
                       &work->results);
    losses_and_optimizer(&work->results);
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
    /* Once, unless NNTK_BLAS_THREADS asks for no setting (0); never during a product. */
    const int settings = atomic_load(&setting_calls);
    CHECK(getenv("NNTK_BLAS_THREADS") != NULL ? settings <= 1 : settings == blas,
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
    }
    one_handle_two_threads();
    int64_t now = 0;
    NNTKMemoryStats(&now, &peak);
    CHECK(now == baseline, "%lld bytes still allocated after every thread finished",
          (long long)(now - baseline));
    for (int l = 0; l < NNTK_LAYER_COUNT && l < 64; l++)
        if (configs[l] != NULL) NNTK_LAYER_TABLE[l].config_destroy(configs[l]);
    pthread_barrier_destroy(&barrier);
    printf("nntk_threads: %d threads raced the first calls (%s kernels, %s backend); %ld thread runs "
           "over %d layers, losses and an optimizer; %ld failures\n",
           THREADS, NNTKKernelISA(), NNTKBackend(), runs, NNTK_LAYER_COUNT, (long)failures);
    return failures == 0 ? 0 : 1;
}
