/* recurrent_pairs.c: W7a or W7b (GRU / LSTM 40 -> 256 units, inference at B = 1, T = 100)
 * on several builds of libnntk in one process, call by call in alternation (the order
 * reversed every round), so that the builds meet the same machine state; thread CPU
 * time. Prints each build's median and minimum, and whether its last output is bit for
 * bit the first build's.
 *
 *   cc -std=c11 -O2 tools/recurrent_pairs.c -o recurrent_pairs -ldl
 *   ./recurrent_pairs gru|lstm ROUNDS LIBNNTK.so [LIBNNTK.so ...]      (up to 4 builds)
 *
 * The builds' weights are the same uniform draws (srand(1)); NNTKActivationKind tanh
 * and sigmoid, use_bias, GRU reset_after, return_sequences off (nntk/status.h, gru.h,
 * lstm.h). Used for docs/bench/README.md's W7 sections. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { D = 40, U = 256, T = 100, MAX_BUILDS = 4, TANH = 6, SIGMOID = 4 };

typedef void *(*GruConfig)(int64_t, int64_t, int32_t, int32_t, int32_t, int32_t, int32_t, int32_t);
typedef void *(*LstmConfig)(int64_t, int64_t, int32_t, int32_t, int32_t, int32_t, int32_t);
typedef void *(*Create)(const void *);
typedef int32_t (*GetWeights)(void *, float **, int64_t *);
typedef int32_t (*Apply)(void *, int64_t, int64_t, const float *, float *);

typedef struct {
    void *layer;
    Apply apply;
} Build;

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *symbol(void *library, const char *name) {
    void *s = dlsym(library, name);
    if (s == NULL) {
        fprintf(stderr, "recurrent_pairs: %s not found\n", name);
        exit(1);
    }
    return s;
}

static Build load(const char *path, int lstm) {
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        fprintf(stderr, "recurrent_pairs: %s\n", dlerror());
        exit(1);
    }
    const char *kind = lstm ? "LSTM" : "GRU";
    char name[64];
    void *config;
    if (lstm) {
        config = ((LstmConfig)symbol(library, "NNTKLSTMConfigCreate"))(D, U, TANH, SIGMOID, 1, 0, 0);
    } else {
        config = ((GruConfig)symbol(library, "NNTKGRUConfigCreate"))(D, U, TANH, SIGMOID, 1, 1, 0, 0);
    }
    snprintf(name, sizeof name, "NNTK%sCreateForInference", kind);
    Build b = {((Create)symbol(library, name))(config), NULL};
    float *weights;
    int64_t count;
    snprintf(name, sizeof name, "NNTK%sGetWeights", kind);
    if (b.layer == NULL || ((GetWeights)symbol(library, name))(b.layer, &weights, &count) != 0) {
        fprintf(stderr, "recurrent_pairs: %s: cannot create the layer\n", path);
        exit(1);
    }
    srand(1);
    for (int64_t i = 0; i < count; i++) weights[i] = ((float)rand() / (float)RAND_MAX - 0.5f) * 0.2f;
    snprintf(name, sizeof name, "NNTK%sApplyInference", kind);
    b.apply = (Apply)symbol(library, name);
    return b;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 3 + MAX_BUILDS || (strcmp(argv[1], "gru") && strcmp(argv[1], "lstm"))) {
        fprintf(stderr, "usage: recurrent_pairs gru|lstm ROUNDS LIBNNTK.so [LIBNNTK.so ...] (up to %d)\n",
                MAX_BUILDS);
        return 2;
    }
    const int lstm = strcmp(argv[1], "lstm") == 0, rounds = atoi(argv[2]), builds = argc - 3;
    if (rounds < 1) {
        fprintf(stderr, "recurrent_pairs: ROUNDS must be >= 1\n");
        return 2;
    }
    Build b[MAX_BUILDS];
    float *x = malloc(sizeof(float) * T * D), *y[MAX_BUILDS]; /* x (1, T, D), y (1, U) */
    double *seconds[MAX_BUILDS];
    for (int i = 0; i < builds; i++) {
        b[i] = load(argv[3 + i], lstm);
        y[i] = calloc(U, sizeof(float));
        seconds[i] = malloc(sizeof(double) * (size_t)rounds);
    }
    srand(2);
    for (int i = 0; i < T * D; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < builds; i++) {
            const int j = r % 2 ? builds - 1 - i : i;
            const double start = cpu_seconds();
            if (b[j].apply(b[j].layer, 1, T, x, y[j]) != 0) {
                fprintf(stderr, "recurrent_pairs: %s: the call failed\n", argv[3 + j]);
                return 1;
            }
            seconds[j][r] = cpu_seconds() - start;
        }
    for (int i = 0; i < builds; i++) {
        qsort(seconds[i], (size_t)rounds, sizeof(double), by_value);
        printf("%s %s: median %.4f ms, min %.4f ms, output %s\n", lstm ? "W7b" : "W7a", argv[3 + i],
               1e3 * seconds[i][rounds / 2], 1e3 * seconds[i][0],
               memcmp(y[i], y[0], sizeof(float) * U) == 0 ? "bit for bit the first build's" : "DIFFERS");
    }
    return 0;
}
