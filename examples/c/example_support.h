/* What the two keyword detector examples share: failing calls reported with
 * NNTKLastError(), a small deterministic generator, and the synthetic
 * utterances they train on (noise; in some, a "word": a bump sweeping across
 * the features at a random time; every frame labelled word / not word). */
#ifndef NNTK_EXAMPLE_SUPPORT_H
#define NNTK_EXAMPLE_SUPPORT_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <nntk/nntk.h>

#ifndef EXAMPLE_NAME
#define EXAMPLE_NAME "keyword_detector"
#endif

/* -- errors ------------------------------------------------------------------------ */
static void check(NNTKStatus status, const char *call) {
    if (status != NNTK_OK) {
        fprintf(stderr, EXAMPLE_NAME ": %s failed: %s\n", call, NNTKLastError());
        exit(EXIT_FAILURE);
    }
}
static void *check_created(void *handle, const char *call) {
    if (handle == NULL) {
        fprintf(stderr, EXAMPLE_NAME ": %s failed: %s\n", call, NNTKLastError());
        exit(EXIT_FAILURE);
    }
    return handle;
}
#define CHECK(call) check((call), #call)
#define CREATE(call) check_created((void *)(call), #call)

static void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count, size);
    if (p == NULL) {
        fprintf(stderr, EXAMPLE_NAME ": out of memory\n");
        exit(EXIT_FAILURE);
    }
    return p;
}

/* -- a small deterministic generator (splitmix64) ------------------------------------ */
static uint64_t rng_state = 0x6e6e746bULL; /* "nntk" */
static double uniform(void) {              /* [0, 1) */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}
static double normal(void) { /* Box-Muller */
    double u = uniform(), v = uniform();
    return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v);
}

/* -- synthetic utterances --------------------------------------------------------------- */
/* x (n, frames, features): noise, plus a word_frames-long word in the utterances
 * with has_word[i]; y (n, frames, 2) one-hot (not word, word). start[i]: where
 * the word begins (-1: no word). */
static void utterances(int64_t n, int64_t frames, int64_t features, int64_t word_frames,
                       const int *has_word, float *x, float *y, int64_t *start) {
    for (int64_t i = 0; i < n * frames * features; i++) x[i] = (float)normal();
    for (int64_t i = 0; i < n; i++) {
        start[i] = has_word[i] ? (int64_t)(uniform() * (double)(frames - word_frames + 1)) : -1;
        double gain = 0.8 + 0.4 * uniform();
        for (int64_t t = 0; t < frames; t++) {
            int64_t k = t - start[i];
            int in_word = start[i] >= 0 && k >= 0 && k < word_frames;
            float *frame = x + (i * frames + t) * features;
            if (in_word) { /* a bump rising across the features */
                double s = (double)k / (double)(word_frames - 1);
                double center = (double)features * (0.2 + 0.6 * s), width = (double)features / 10.0;
                double envelope = sin(3.141592653589793 * (0.15 + 0.7 * s));
                for (int64_t f = 0; f < features; f++) {
                    double z = ((double)f - center) / width;
                    frame[f] += (float)(2.5 * gain * envelope * exp(-z * z));
                }
            }
            y[(i * frames + t) * 2 + 0] = in_word ? 0.0f : 1.0f;
            y[(i * frames + t) * 2 + 1] = in_word ? 1.0f : 0.0f;
        }
    }
}

/* n training utterances of `frames`, every other one with the word: *x (n, frames,
 * features) and *y (n, frames, 2), allocated here (the caller frees them). */
static void training_utterances(int64_t n, int64_t frames, int64_t features, int64_t word_frames,
                                float **x, float **y) {
    *x = xcalloc((size_t)(n * frames * features), sizeof(float));
    *y = xcalloc((size_t)(n * frames * 2), sizeof(float));
    int64_t *starts = xcalloc((size_t)n, sizeof(int64_t));
    int *has_word = xcalloc((size_t)n, sizeof(int));
    for (int64_t i = 0; i < n; i++) has_word[i] = (int)(i % 2);
    utterances(n, frames, features, word_frames, has_word, *x, *y, starts);
    free(starts);
    free(has_word);
}

/* Prints a training step's loss and keeps the first and the last; a loss that is
 * not finite ends the program. */
static void report_loss(int step, float loss, float *first, float *last) {
    printf("step %2d  loss %.6f\n", step + 1, loss);
    if (step == 0) *first = loss;
    *last = loss;
    if (!isfinite(loss)) {
        fprintf(stderr, EXAMPLE_NAME ": the loss is not finite\n");
        exit(EXIT_FAILURE);
    }
}

/* Prints where utterance i's word was said and where probs (frames, 2) detect it. */
static void report_detection(int i, int64_t frames, int64_t word_frames, int64_t start,
                             const float *probs) {
    int64_t first_frame = -1, last_frame = -1, detected = 0;
    for (int64_t t = 0; t < frames; t++) {
        if (probs[t * 2 + 1] > 0.5f) {
            if (first_frame < 0) first_frame = t;
            last_frame = t;
            detected++;
        }
    }
    printf("utterance %d: ", i + 1);
    if (start >= 0)
        printf("word said at frames %lld-%lld; ", (long long)start, (long long)(start + word_frames - 1));
    else
        printf("no word said; ");
    if (detected > 0)
        printf("detected in %lld frames (%lld-%lld)\n", (long long)detected, (long long)first_frame,
               (long long)last_frame);
    else
        printf("not detected\n");
}

#endif /* NNTK_EXAMPLE_SUPPORT_H */
