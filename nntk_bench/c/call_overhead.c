/* The fixed cost of one library call (docs/reliability.md §2): the time of a
 * call at the smallest size, where the arithmetic is a few floats and what is
 * left is the call itself: the argument checks and the handle's "in a call"
 * flag (docs/DESIGN.md §3, Threads). A benchmark, not a test: it prints
 * nanoseconds per call and checks nothing but the statuses.
 *
 *   nntk_call_overhead [calls]    default 2,000,000 calls per repetition
 *
 * Each figure is the fastest of 9 repetitions (the least disturbed by other
 * processes on a shared machine). To compare two builds, run the same program
 * against each library (LD_LIBRARY_PATH), alternating. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nntk/nntk.h"

#define REPETITIONS 9

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static NNTKDense *dense;
static NNTKDenseGradient *gradient;
static NNTKOptimizer *optimizer;
static float x[1] = {0.5f}, y[1], dy[1] = {1.0f}, dx[1], param[1] = {0.25f}, grad[1] = {1e-30f};
static float *params[1] = {param};
static const float *grads[1] = {grad};
static const int64_t sizes[1] = {1};

static int apply_inference(void) { return NNTKDenseApplyInference(dense, 1, 1, x, y); }
static int apply_training(void) { return NNTKDenseApplyTrainingBatch(dense, 1, 1, x, y); }
static int calculate_gradient(void) { return NNTKDenseCalculateGradient(dense, gradient, dy, dx); }
static int optimizer_step(void) { return NNTKOptimizerStep(optimizer, 1, params, grads, sizes); }
static int output_shape(void) { /* takes no flag: the reference of a bare checked call */
    int64_t steps, features;
    return NNTKDenseOutputShape(dense, 1, 1, &steps, &features);
}

static double time_call(int (*call)(void), long calls) {
    double best = 0;
    for (int r = 0; r < REPETITIONS; r++) {
        const double t0 = now_ns();
        for (long i = 0; i < calls; i++)
            if (call() != NNTK_OK) {
                fprintf(stderr, "nntk_call_overhead: %s\n", NNTKLastError());
                exit(1);
            }
        const double ns = (now_ns() - t0) / (double)calls;
        if (r == 0 || ns < best) best = ns;
    }
    return best;
}

int main(int argc, char **argv) {
    const long calls = argc > 1 ? strtol(argv[1], NULL, 10) : 2000000;
    NNTKDenseConfig *config = NNTKDenseConfigCreate(1, 1, NNTK_ACTIVATION_LINEAR, 1);
    dense = config != NULL ? NNTKDenseCreateForTraining(config, NULL) : NULL;
    gradient = dense != NULL ? NNTKDenseGradientCreate(dense) : NULL;
    optimizer = NNTKOptimizerCreateSGD(0.01, 0.0, 0);
    if (gradient == NULL || optimizer == NULL) {
        fprintf(stderr, "nntk_call_overhead: %s\n", NNTKLastError());
        return 1;
    }
    static const struct {
        const char *name;
        int (*call)(void);
    } cases[] = {
        {"NNTKDenseOutputShape (no flag)", output_shape},
        {"NNTKDenseApplyInference (1x1)", apply_inference},
        {"NNTKDenseApplyTrainingBatch (1x1)", apply_training},
        {"NNTKDenseCalculateGradient (1x1)", calculate_gradient},
        {"NNTKOptimizerStep (SGD, 1 float)", optimizer_step},
    };
    printf("nntk_call_overhead: %ld calls, fastest of %d (%s kernels, %s backend)\n", calls,
           REPETITIONS, NNTKKernelISA(), NNTKBackend());
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        printf("  %-36s %7.1f ns/call\n", cases[c].name, time_call(cases[c].call, calls));
    NNTKOptimizerDestroy(optimizer);
    NNTKDenseGradientDestroy(gradient);
    NNTKDenseDestroy(dense);
    NNTKDenseConfigDestroy(config);
    return 0;
}
