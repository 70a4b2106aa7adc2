/* libFuzzer harness over the whole layer API (issue #7).
 *
 * The layers come from the generated table (tests/c/gen_api_table.py), so a
 * new layer is fuzzed without edits here. The input is read from both ends:
 * control bytes from the front (which layer, its ConfigCreate arguments, the
 * handle kind, then a sequence of operations with their sizes), float data
 * from the back (weights, inputs, upstream gradients; mostly small values,
 * sometimes NaN, ±Inf, huge or subnormal).
 *
 * Besides "never crash" (ASan, UBSan), the harness traps when the library
 * breaks its contract: a refused call without a status and message naming an
 * NNTK function; OutputShape accepting sizes the Apply functions then refuse
 * (or the reverse); an inference handle accepted by a training call;
 * CalculateGradient after a successful training batch refusing valid buffers,
 * or succeeding before any; ApplyInference not bitwise repeatable.
 *
 * Buffers are heap blocks of exactly the size the contract implies, so any
 * out-of-bounds access is reported. Build: ci/fuzz.sh. With
 * -DNNTK_FUZZ_STANDALONE it is a plain program that replays input files
 * (valgrind runs the corpus through it). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nntk_api_table.h"

typedef struct {
    const uint8_t *front; /* control */
    const uint8_t *back;  /* one past the float data still unread */
} reader;

static uint8_t u8(reader *r) {
    if (r->front >= r->back) return 0;
    return *r->front++;
}

static uint8_t data_byte(reader *r) {
    if (r->back <= r->front) return 128;
    return *--r->back;
}

/* Sizes: mostly 1..8, sometimes 0 or negative, rarely beyond every limit. Never a
 * large valid size: that would only measure the allocator. */
static int64_t rd_size(reader *r) {
    static const int64_t extreme[] = {INT64_MIN, -(INT64_C(1) << 31), -2, (INT64_C(1) << 24) + 1,
                                      INT64_C(1) << 40, INT64_MAX};
    const uint8_t b = u8(r);
    if (b < 224) return 1 + b % 8;
    if (b < 240) return b % 2 == 0 ? 0 : -1;
    return extreme[b % 6];
}

/* Options and flags: mostly -2..21, sometimes far out of range. */
static int32_t rd_i32(reader *r) {
    static const int32_t extreme[] = {INT32_MIN, INT32_MAX, 1000, -1000};
    const uint8_t b = u8(r);
    if (b < 232) return (int32_t)(b % 24) - 2;
    return extreme[b % 4];
}

static double rd_f64(reader *r) {
    static const double table[] = {0.5, 0.99, 0.001, 0.0, 1.0, 0.1, 0.9, 1e-7,
                                   -1.0, NAN, INFINITY, -INFINITY, 4.9e-324, 1e30, 2.0, 1e-3};
    const uint8_t b = u8(r);
    if (b < 240) return table[b % 16];
    double d; /* raw bits */
    uint8_t bytes[sizeof d];
    for (size_t i = 0; i < sizeof d; i++) bytes[i] = u8(r);
    memcpy(&d, bytes, sizeof d);
    return d;
}

static float rd_float(reader *r) {
    static const float special[] = {NAN, INFINITY, -INFINITY, 1e30f, -1e30f, 1e-40f, -0.0f, FLT_MAX};
    const uint8_t b = data_byte(r);
    if (b < 248) return ((float)b - 124.0f) / 32.0f;
    return special[b % 8];
}

static void fail(const char *layer, const char *what) {
    fprintf(stderr, "contract broken: %s: %s [last error: %s]\n", layer, what, NNTKLastError());
    __builtin_trap();
}

/* A refused call must leave a status and a message that starts with an NNTK name. */
static void expect_refusal_reported(const char *layer) {
    const char *message = NNTKLastError();
    if (NNTKLastStatus() == NNTK_OK || strncmp(message, "NNTK", 4) != 0)
        fail(layer, "refused without a status and a message naming the function");
}

static float *floats(reader *r, int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (p == NULL) abort();
    for (int64_t i = 0; i < n; i++) p[i] = rd_float(r);
    return p;
}

#define MAX_ELEMENTS (INT64_C(1) << 20) /* the harness never allocates more per buffer */

typedef struct {
    const nntk_layer_api *L;
    void *filter;
    void *gradient;
    int training;
    int64_t width;       /* input features */
    int64_t weight_count;
    int has_batch;       /* a training batch succeeded */
    int64_t n_in, n_out; /* its input and output sizes */
} state;

/* ApplyInference or ApplyTrainingBatch with fuzzed sizes. */
static void op_apply(state *s, reader *r, int training_call) {
    const nntk_layer_api *L = s->L;
    NNTKStatus (*apply)(void *, int64_t, int64_t, const float *, float *) =
        training_call ? L->apply_training_batch : L->apply_inference;
    const int64_t batch = rd_size(r), steps = rd_size(r);
    int64_t out_steps = -1, out_features = -1;
    NNTKClearError();
    if (L->output_shape(s->filter, batch, steps, &out_steps, &out_features) != NNTK_OK) {
        expect_refusal_reported(L->name);
        float one_in = 0.0f, one_out = 0.0f; /* the Apply functions must refuse the same sizes */
        if (apply(s->filter, batch, steps, &one_in, &one_out) == NNTK_OK)
            fail(L->name, "Apply accepted sizes OutputShape refused");
        expect_refusal_reported(L->name);
        return;
    }
    if (out_steps < 1 || out_features < 1) fail(L->name, "OutputShape gave an empty shape");
    const int64_t n_in = batch * steps * s->width, n_out = batch * out_steps * out_features;
    if (n_in > MAX_ELEMENTS || n_out > MAX_ELEMENTS) return;
    float *in = floats(r, n_in), *out = malloc((size_t)n_out * sizeof(float));
    if (out == NULL) abort();
    const NNTKStatus status = apply(s->filter, batch, steps, in, out);
    if (training_call && !s->training) {
        if (status == NNTK_OK) fail(L->name, "ApplyTrainingBatch accepted an inference handle");
        expect_refusal_reported(L->name);
    } else if (status != NNTK_OK) {
        fail(L->name, "Apply refused sizes OutputShape accepted");
    } else if (training_call) {
        s->has_batch = 1;
        s->n_in = n_in;
        s->n_out = n_out;
    } else { /* bitwise repeatable, NaN payloads included */
        float *again = malloc((size_t)n_out * sizeof(float));
        if (again == NULL) abort();
        if (apply(s->filter, batch, steps, in, again) != NNTK_OK ||
            memcmp(out, again, (size_t)n_out * sizeof(float)) != 0)
            fail(L->name, "ApplyInference is not repeatable");
        free(again);
    }
    free(in);
    free(out);
}

static void op_gradient_create(state *s) {
    s->L->gradient_destroy(s->gradient);
    NNTKClearError();
    s->gradient = s->L->gradient_create(s->filter);
    if (s->training && s->gradient == NULL) fail(s->L->name, "GradientCreate refused a training handle");
    if (!s->training) {
        if (s->gradient != NULL) fail(s->L->name, "GradientCreate accepted an inference handle");
        expect_refusal_reported(s->L->name);
    }
}

static void op_calculate(state *s, reader *r) {
    if (s->gradient == NULL) return;
    const int with_d_in = u8(r) & 1;
    float *d_out = floats(r, s->has_batch ? s->n_out : 1);
    float *d_in = with_d_in ? malloc((size_t)(s->has_batch ? s->n_in : 1) * sizeof(float)) : NULL;
    NNTKClearError();
    const NNTKStatus status = s->L->calculate_gradient(s->filter, s->gradient, d_out, d_in);
    if (s->has_batch && status != NNTK_OK) fail(s->L->name, "CalculateGradient refused after a batch");
    if (!s->has_batch) {
        if (status == NNTK_OK) fail(s->L->name, "CalculateGradient accepted before any batch");
        expect_refusal_reported(s->L->name);
    }
    free(d_out);
    free(d_in);
}

static void op_read_gradients(state *s) {
    if (s->gradient == NULL) return;
    float *w = NULL;
    int64_t count = -1;
    if (s->L->gradient_get_weights(s->gradient, &w, &count) != NNTK_OK || count != s->weight_count)
        fail(s->L->name, "GradientGetWeights");
    volatile float sum = 0.0f; /* touch every element */
    for (int64_t i = 0; i < count; i++) sum += w[i];
    (void)sum;
}

static void op_write_weights(state *s, reader *r) {
    float *w = NULL;
    int64_t count = -1;
    if (s->L->get_weights(s->filter, &w, &count) != NNTK_OK || count != s->weight_count)
        fail(s->L->name, "GetWeights");
    const int64_t n = count < 8 ? count : 8;
    for (int64_t k = 0; k < n; k++) w[(int64_t)u8(r) % count] = rd_float(r);
}

/* Arguments the contract refuses: each call must fail and say why. */
static void op_misuse(state *s, reader *r) {
    const nntk_layer_api *L = s->L;
    float buffer[4] = {0}, *w = NULL;
    int64_t a = 0, b = 0;
    NNTKStatus status = NNTK_OK;
    NNTKClearError();
    switch (u8(r) % 8) {
    case 0: status = L->apply_inference(s->filter, 1, 1, NULL, buffer); break;
    case 1: status = L->apply_inference(s->filter, 1, 1, buffer, NULL); break;
    case 2: status = L->apply_training_batch(NULL, 1, 1, buffer, buffer); break;
    case 3: status = L->output_shape(s->filter, 1, 1, NULL, &b); break;
    case 4: status = L->get_weights(s->filter, NULL, &a); break;
    case 5: status = L->get_weights(s->filter, &w, NULL); break;
    case 6: /* a handle of another kind: the gradient (or NULL) where the filter goes */
        status = L->calculate_gradient(s->gradient, s->gradient, buffer, buffer);
        break;
    case 7: status = L->calculate_gradient(s->filter, s->gradient, NULL, buffer); break;
    }
    if (status == NNTK_OK) fail(L->name, "a call with a NULL or foreign argument succeeded");
    expect_refusal_reported(L->name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    reader r = {data, data + size};
    state s;
    memset(&s, 0, sizeof s);
    s.L = &NNTK_LAYER_TABLE[u8(&r) % NNTK_LAYER_COUNT];
    const nntk_layer_api *L = s.L;

    nntk_arg_value args[32];
    memset(args, 0, sizeof args);
    if (L->n_args > 32) return 0;
    for (int i = 0; i < L->n_args; i++) {
        switch (L->args[i].kind) {
        case NNTK_ARG_I64: args[i].i64 = rd_size(&r); break;
        case NNTK_ARG_I32: args[i].i32 = rd_i32(&r); break;
        case NNTK_ARG_F64: args[i].f64 = rd_f64(&r); break;
        case NNTK_ARG_F32: args[i].f32 = (float)rd_f64(&r); break;
        }
    }
    NNTKClearError();
    void *config = L->config_create(args);
    if (config == NULL) {
        expect_refusal_reported(L->name);
        return 0;
    }
    const uint8_t flags = u8(&r);
    s.training = flags & 1;
    NNTKTrainingConfig capacity = {0, 0};
    if (flags & 2) {
        capacity.max_batch = rd_size(&r);
        capacity.max_steps = rd_size(&r);
    }
    NNTKClearError();
    s.filter = s.training ? L->create_for_training(config, (flags & 2) ? &capacity : NULL)
                          : L->create_for_inference(config);
    if (flags & 4) { /* a filter outlives its config */
        L->config_destroy(config);
        config = NULL;
    }
    if (s.filter == NULL) {
        expect_refusal_reported(L->name);
        L->config_destroy(config);
        return 0;
    }
    s.width = args[L->input_width_arg].i64;
    float *w = NULL;
    if (L->get_weights(s.filter, &w, &s.weight_count) != NNTK_OK || s.weight_count < 0)
        fail(L->name, "GetWeights on a new filter");
    for (int64_t i = 0; i < s.weight_count; i++) w[i] = rd_float(&r) * 0.25f;

    const int n_ops = u8(&r) % 24;
    for (int k = 0; k < n_ops; k++) {
        switch (u8(&r) % 8) {
        case 0: op_apply(&s, &r, 0); break;
        case 1:
        case 2: op_apply(&s, &r, 1); break;
        case 3: op_gradient_create(&s); break;
        case 4: op_calculate(&s, &r); break;
        case 5: op_read_gradients(&s); break;
        case 6: op_write_weights(&s, &r); break;
        case 7: op_misuse(&s, &r); break;
        }
    }
    L->gradient_destroy(s.gradient);
    L->destroy(s.filter);
    L->config_destroy(config);
    L->destroy(NULL);
    L->config_destroy(NULL);
    L->gradient_destroy(NULL);
    return 0;
}

#ifdef NNTK_FUZZ_STANDALONE
/* Replays input files (no libFuzzer): for valgrind, and to rerun a crash. */
int main(int argc, char **argv) {
    int ran = 0;
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 2;
        }
        static uint8_t buffer[1 << 20];
        const size_t n = fread(buffer, 1, sizeof buffer, f);
        fclose(f);
        uint8_t *copy = malloc(n > 0 ? n : 1); /* exact size, as libFuzzer gives it */
        if (copy == NULL) return 2;
        memcpy(copy, buffer, n);
        LLVMFuzzerTestOneInput(copy, n);
        free(copy);
        ran++;
    }
    printf("fuzz_layers (standalone): replayed %d inputs\n", ran);
    return 0;
}
#endif
