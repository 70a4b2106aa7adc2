/* Concurrency tests (issue #15 §2; docs/reliability.md), run under
 * ThreadSanitizer by ci/tsan.sh. The contract (docs/DESIGN.md, C conventions):
 * distinct handles may be used from any number of threads at once; one handle
 * must not be used by two calls at the same time.
 *
 *  1. The once-only initialisation raced: the process's very first library
 *     calls come from THREADS threads released together by a barrier, each
 *     choosing the kernel table (NNTKKernelISA) and running a product large
 *     enough for OpenBLAS (its one-time thread setting) in the BLAS build.
 *  2. Distinct handles in many threads: every layer of the generated table
 *     (nntk_api_table.h) created from one shared config by every thread at once,
 *     trained, its gradient computed, run for inference and streamed; every loss;
 *     an optimizer per thread. Each thread's results must equal a run on the
 *     main thread bitwise.
 *  3. The error state is per thread: each thread's refused call leaves its own
 *     message, whatever the other threads do meanwhile.
 *
 *  4. (--misuse) The contract broken on purpose: two threads train one Dense
 *     handle at once. ThreadSanitizer must report it (ci/tsan.sh checks that it
 *     does, so a build without the sanitizer armed cannot pass unseen).
 *
 *   nntk_threads [rounds]     default 2 rounds of 2 and 3
 *   nntk_threads --misuse
 * Exits 1 on any failure (and says which), 0 otherwise. */
#define _POSIX_C_SOURCE 200809L /* pthread barriers under -std=c11 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c_test_support.h"

#define THREADS 4
static _Atomic long failures;

static pthread_barrier_t barrier;

/* --- 1. the first calls of the process, raced ----------------------------------------------- */

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

/* --- 4. one handle, two threads: a data race on purpose ---------------------------------- */

static void *misuse_thread(void *filter) {
    const nntk_layer_api *L = find_layer("Dense");
    float *x = seeded_floats(WIDE * 4, 12), *y = malloc(WIDE * 4 * sizeof(float));
    if (y == NULL) abort();
    pthread_barrier_wait(&barrier);
    for (int i = 0; i < 20; i++) L->apply_training_batch(filter, 4, 1, x, y);
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
    for (int t = 0; t < 2; t++) pthread_create(&threads[t], NULL, misuse_thread, filter);
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

    pthread_t threads[THREADS];
    FloatRecord first[THREADS];
    memset(first, 0, sizeof first);
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, first_calls, &first[t]);
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    for (int t = 1; t < THREADS; t++)
        CHECK(records_equal(&first[t], &first[0]), "first calls: thread %d differs from thread 0", t);
    for (int t = 0; t < THREADS; t++) free(first[t].data);
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
