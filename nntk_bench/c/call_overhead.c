/* The fixed cost of one library call (docs/reliability.md §2): the time of a
 * call at the smallest size, where the arithmetic is a few floats and what is
 * left is the call itself: the argument checks and the handle's "in a call"
 * flag (docs/DESIGN.md §3, Threads). A benchmark, not a test: it prints
 * nanoseconds per call and checks nothing but the statuses.
 *
 *   nntk_call_overhead [--calls N] LIB.so [LIB.so ...]
 *
 * Each library (e.g. builds before and after a change) is loaded on its own
 * (RTLD_LOCAL) and timed in turn, repetition by repetition, so slow drifts of a
 * shared machine hit every library alike. Each figure is the fastest of the
 * repetitions (the least disturbed by other processes); default 1,000,000
 * calls per repetition, 15 repetitions. The flag alone (one
 * atomic_flag_test_and_set and one clear, inlined here) is timed too. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nntk/nntk.h"

#define REPETITIONS 15
#define MAX_LIBS 4
#define CASES 5

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* One loaded library: its functions and a Dense(1, 1) training handle, its
 * gradient and an SGD optimizer over one float. */
typedef struct {
    const char *path;
    const char *(*last_error)(void);
    NNTKStatus (*apply_inference)(NNTKDense *, int64_t, int64_t, const float *, float *);
    NNTKStatus (*apply_training)(NNTKDense *, int64_t, int64_t, const float *, float *);
    NNTKStatus (*calculate_gradient)(NNTKDense *, NNTKDenseGradient *, const float *, float *);
    NNTKStatus (*output_shape)(const NNTKDense *, int64_t, int64_t, int64_t *, int64_t *);
    NNTKStatus (*step)(NNTKOptimizer *, int64_t, float *const *, const float *const *, const int64_t *);
    NNTKDense *dense;
    NNTKDenseGradient *gradient;
    NNTKOptimizer *optimizer;
    double best[CASES];
} Lib;

static float x[1] = {0.5f}, y[1], dy[1] = {1.0f}, dx[1], param[1] = {0.25f}, grad[1] = {1e-30f};
static float *const params[1] = {param};
static const float *const grads[1] = {grad};
static const int64_t sizes[1] = {1};

static NNTKStatus one_call(const Lib *l, int c) {
    int64_t steps, features;
    switch (c) {
    case 0: return l->output_shape(l->dense, 1, 1, &steps, &features);
    case 1: return l->apply_inference(l->dense, 1, 1, x, y);
    case 2: return l->apply_training(l->dense, 1, 1, x, y);
    case 3: return l->calculate_gradient(l->dense, l->gradient, dy, dx);
    default: return l->step(l->optimizer, 1, params, grads, sizes);
    }
}

static const char *const case_names[CASES] = {
    "NNTKDenseOutputShape (takes no flag)", "NNTKDenseApplyInference (1x1)",
    "NNTKDenseApplyTrainingBatch (1x1)", "NNTKDenseCalculateGradient (1x1)",
    "NNTKOptimizerStep (SGD, 1 float)"};

#define RESOLVE(field, name)                                                                   \
    if ((*(void **)&l->field = dlsym(h, name)) == NULL) {                                      \
        fprintf(stderr, "nntk_call_overhead: %s has no %s\n", l->path, name);                   \
        return 1;                                                                              \
    }

static int load(Lib *l) {
    void *h = dlopen(l->path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "nntk_call_overhead: %s\n", dlerror());
        return 1;
    }
    NNTKDenseConfig *(*config_create)(int64_t, int64_t, int32_t, int32_t);
    NNTKDense *(*create)(const NNTKDenseConfig *, const NNTKTrainingConfig *);
    NNTKDenseGradient *(*gradient_create)(const NNTKDense *);
    NNTKOptimizer *(*sgd)(double, double, int32_t);
    *(void **)&config_create = dlsym(h, "NNTKDenseConfigCreate");
    *(void **)&create = dlsym(h, "NNTKDenseCreateForTraining");
    *(void **)&gradient_create = dlsym(h, "NNTKDenseGradientCreate");
    *(void **)&sgd = dlsym(h, "NNTKOptimizerCreateSGD");
    RESOLVE(last_error, "NNTKLastError")
    RESOLVE(apply_inference, "NNTKDenseApplyInference")
    RESOLVE(apply_training, "NNTKDenseApplyTrainingBatch")
    RESOLVE(calculate_gradient, "NNTKDenseCalculateGradient")
    RESOLVE(output_shape, "NNTKDenseOutputShape")
    RESOLVE(step, "NNTKOptimizerStep")
    if (config_create == NULL || create == NULL || gradient_create == NULL || sgd == NULL) return 1;
    NNTKDenseConfig *config = config_create(1, 1, NNTK_ACTIVATION_LINEAR, 1);
    l->dense = config != NULL ? create(config, NULL) : NULL; /* the config is kept: a benchmark */
    l->gradient = l->dense != NULL ? gradient_create(l->dense) : NULL;
    l->optimizer = sgd(0.01, 0.0, 0);
    if (l->gradient == NULL || l->optimizer == NULL || l->apply_training(l->dense, 1, 1, x, y) != NNTK_OK) {
        fprintf(stderr, "nntk_call_overhead: %s: %s\n", l->path, l->last_error());
        return 1;
    }
    return 0;
}

static double time_flag(long calls) {
    static atomic_flag flag = ATOMIC_FLAG_INIT;
    const double t0 = now_ns();
    for (long i = 0; i < calls; i++) {
        if (atomic_flag_test_and_set_explicit(&flag, memory_order_acquire)) abort();
        atomic_flag_clear_explicit(&flag, memory_order_release);
    }
    return (now_ns() - t0) / (double)calls;
}

int main(int argc, char **argv) {
    long calls = 1000000;
    Lib libs[MAX_LIBS];
    int n = 0;
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--calls") == 0 && a + 1 < argc) {
            calls = strtol(argv[++a], NULL, 10);
        } else if (n < MAX_LIBS) {
            memset(&libs[n], 0, sizeof libs[n]);
            libs[n].path = argv[a];
            if (load(&libs[n++]) != 0) return 1;
        }
    }
    if (n == 0 || calls < 1) {
        fprintf(stderr, "usage: nntk_call_overhead [--calls N] LIB.so [LIB.so ...]\n");
        return 2;
    }
    double flag_best = 0;
    for (int r = 0; r < REPETITIONS; r++) {
        for (int i = 0; i < n; i++)
            for (int c = 0; c < CASES; c++) {
                const double t0 = now_ns();
                for (long k = 0; k < calls; k++)
                    if (one_call(&libs[i], c) != NNTK_OK) {
                        fprintf(stderr, "nntk_call_overhead: %s\n", libs[i].last_error());
                        return 1;
                    }
                const double ns = (now_ns() - t0) / (double)calls;
                if (r == 0 || ns < libs[i].best[c]) libs[i].best[c] = ns;
            }
        const double ns = time_flag(calls);
        if (r == 0 || ns < flag_best) flag_best = ns;
    }
    printf("nntk_call_overhead: ns per call, fastest of %d repetitions of %ld calls\n", REPETITIONS,
           calls);
    printf("  %-38s", "");
    for (int i = 0; i < n; i++) printf(" %10s%d", "lib ", i + 1);
    printf("\n");
    for (int c = 0; c < CASES; c++) {
        printf("  %-38s", case_names[c]);
        for (int i = 0; i < n; i++) printf(" %11.1f", libs[i].best[c]);
        printf("\n");
    }
    printf("  %-38s %11.1f\n", "the flag alone (test_and_set + clear)", flag_best);
    for (int i = 0; i < n; i++) printf("  lib %d: %s\n", i + 1, libs[i].path);
    return 0;
}
