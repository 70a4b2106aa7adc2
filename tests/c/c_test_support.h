/* What the C test programs share (tests/c/smoke.c, tests/c/alloc_faults.c,
 * tests/c/threads.c): the CHECK macro, a valid config for any layer of the
 * generated table (nntk_api_table.h), deterministic inputs and a growable
 * record of floats for bitwise comparisons. */
#ifndef NNTK_C_TEST_SUPPORT_H
#define NNTK_C_TEST_SUPPORT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nntk_api_table.h"

/* Counts a failure in the program's `failures` and says where and why. */
#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                         \
            fprintf(stderr, __VA_ARGS__);                                                \
            fprintf(stderr, " [last error: %s]\n", NNTKLastError());                     \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

/* n floats in [-0.5, 0.5), the same for the same seed (free them). */
static inline float *seeded_floats(int64_t n, uint32_t seed) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (p == NULL) abort();
    uint32_t s = seed * 2654435761u + 1u;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        p[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    return p;
}

/* Floats appended one block after another, compared bitwise. */
typedef struct {
    float *data;
    int64_t n;
} FloatRecord;

static inline void record_append(FloatRecord *r, const float *p, int64_t n) {
    if (n <= 0) return;
    float *grown = realloc(r->data, (size_t)(r->n + n) * sizeof(float));
    if (grown == NULL) abort();
    memcpy(grown + r->n, p, (size_t)n * sizeof(float));
    r->data = grown;
    r->n += n;
}

static inline int records_equal(const FloatRecord *a, const FloatRecord *b) {
    return a->n == b->n && (a->n == 0 || memcmp(a->data, b->data, (size_t)a->n * sizeof(float)) == 0);
}

static const int64_t I64_START[] = {2, 3, 1, 4, 5, 8};
static const int32_t I32_START[] = {0, 1, 2, 3, 4, 5, 6, 7};
static const double F64_START[] = {0.5, 0.1, 0.01, 0.9, 1.0, 2.0, 0.0};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int candidate_count(nntk_arg_kind kind) {
    return kind == NNTK_ARG_I64 ? COUNT(I64_START)
           : kind == NNTK_ARG_I32 ? COUNT(I32_START)
                                  : COUNT(F64_START);
}

static nntk_arg_value candidate(nntk_arg_kind kind, int i) {
    nntk_arg_value v;
    memset(&v, 0, sizeof v);
    switch (kind) {
    case NNTK_ARG_I64: v.i64 = I64_START[i]; break;
    case NNTK_ARG_I32: v.i32 = I32_START[i]; break;
    case NNTK_ARG_F64: v.f64 = F64_START[i]; break;
    case NNTK_ARG_F32: v.f32 = (float)F64_START[i]; break;
    }
    return v;
}

/* Position of `name` as a whole word in `message` (after the "Fn: " prefixes), or -1. */
static long word_at(const char *message, const char *name) {
    const size_t n = strlen(name);
    for (const char *p = strstr(message, name); p != NULL; p = strstr(p + 1, name)) {
        const char before = p == message ? ' ' : p[-1];
        const char after = p[n];
        const int word_before = before == '_' || before == '.' || (before >= 'a' && before <= 'z') ||
                                (before >= 'A' && before <= 'Z') || (before >= '0' && before <= '9');
        const int word_after = after == '_' || (after >= 'a' && after <= 'z') ||
                               (after >= 'A' && after <= 'Z') || (after >= '0' && after <= '9');
        if (!word_before && !word_after) return (long)(p - message);
    }
    return -1;
}

/* Fills v (32 values) with a config the layer accepts; 0 on success, else 1 (and says so on stderr). */
static int find_valid_config(const nntk_layer_api *L, nntk_arg_value *v) {
    int index[32] = {0};
    memset(v, 0, 32 * sizeof *v);
    if (L->n_args > 32) {
        fprintf(stderr, "FAIL %s: more than 32 config arguments\n", L->name);
        return 1;
    }
    for (int i = 0; i < L->n_args; i++) v[i] = candidate(L->args[i].kind, 0);
    for (int attempt = 0; attempt < 128; attempt++) {
        void *config = L->config_create(v);
        if (config != NULL) {
            L->config_destroy(config);
            return 0;
        }
        const char *message = NNTKLastError();
        int which = -1;
        long best = -1;
        for (int i = 0; i < L->n_args; i++) {
            long at = word_at(message, L->args[i].name);
            if (at >= 0 && (best < 0 || at < best)) best = at, which = i;
        }
        if (which < 0 || ++index[which] >= candidate_count(L->args[which].kind)) break;
        v[which] = candidate(L->args[which].kind, index[which]);
    }
    fprintf(stderr, "FAIL %s: no valid config found (%s)\n", L->name, NNTKLastError());
    return 1;
}

#endif /* NNTK_C_TEST_SUPPORT_H */
