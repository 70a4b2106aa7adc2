/* The C smoke test: every layer of the public API (the generated table,
 * tests/c/gen_api_table.py) driven through its standard functions with
 * exactly-sized heap buffers, so valgrind and the sanitizers see every
 * out-of-bounds access, leak and uninitialised read.
 *
 * For each layer: a valid config is found by the library's own error messages
 * (the argument a message names moves to its next candidate value); then each
 * ConfigCreate argument is swept over a range of values, and every accepted
 * config runs create -> set weights -> OutputShape -> ApplyInference (twice,
 * bitwise equal) -> ApplyTrainingBatch -> GradientCreate -> CalculateGradient
 * (with and without d_in, equal weight gradients) -> GradientGetWeights ->
 * destroy, at several batch sizes and lengths, for inference and training
 * handles, with and without a reserved capacity.
 *
 *   nntk_smoke [rounds]     rounds of the whole sweep (default 1)
 *
 * Exits 1 on any failure (and says which), 0 otherwise. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c_test_support.h"

static long failures, cycles, configs;

static uint32_t rng_state = 12345u;
static float uniform(void) { /* [-0.5, 0.5) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (float)(rng_state >> 8) / 16777216.0f - 0.5f;
}

static float *random_floats(int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (p == NULL) abort();
    for (int64_t i = 0; i < n; i++) p[i] = uniform();
    return p;
}

/* One create ... destroy cycle of `L` with config values v. */
static void run_cycle(const nntk_layer_api *L, const nntk_arg_value *v, int training,
                      const NNTKTrainingConfig *capacity, int64_t batch, int64_t steps) {
    void *config = L->config_create(v);
    CHECK(config != NULL, "%s: ConfigCreate", L->name);
    if (config == NULL) return;
    void *filter = training ? L->create_for_training(config, capacity) : L->create_for_inference(config);
    L->config_destroy(config); /* a filter must not depend on its config */
    CHECK(filter != NULL, "%s: Create", L->name);
    if (filter == NULL) return;
    cycles++;

    float *weights = NULL;
    int64_t count = -1;
    CHECK(L->get_weights(filter, &weights, &count) == NNTK_OK && count >= 0, "%s: GetWeights",
          L->name);
    /* small positive weights: meaningful for every layer (a BatchNorm variance is
     * >= 0) and no explosion over a few recurrent steps. Outputs are not checked
     * for finiteness (an exponential activation may overflow legitimately): this
     * program is about memory, the contract and repeatability; the values are
     * the parity suite's job. */
    for (int64_t i = 0; i < count; i++) weights[i] = 0.07f + uniform() * 0.1f;

    const int64_t width = v[L->input_width_arg].i64;
    int64_t out_steps = 0, out_features = 0;
    if (L->output_shape(filter, batch, steps, &out_steps, &out_features) != NNTK_OK) {
        L->destroy(filter); /* a length this config refuses (e.g. shorter than a kernel) */
        return;
    }
    CHECK(out_steps >= 1 && out_features >= 1, "%s: OutputShape %lld %lld", L->name,
          (long long)out_steps, (long long)out_features);
    const int64_t n_in = batch * steps * width, n_out = batch * out_steps * out_features;
    float *x = random_floats(n_in);
    float *y = random_floats(n_out), *y2 = random_floats(n_out);
    CHECK(L->apply_inference(filter, batch, steps, x, y) == NNTK_OK, "%s: ApplyInference", L->name);
    CHECK(L->apply_inference(filter, batch, steps, x, y2) == NNTK_OK, "%s: ApplyInference", L->name);
    CHECK(memcmp(y, y2, (size_t)n_out * sizeof(float)) == 0, "%s: inference not deterministic",
          L->name);

    void *gradient = L->gradient_create(filter);
    if (!training) {
        CHECK(gradient == NULL, "%s: GradientCreate accepted an inference handle", L->name);
        CHECK(L->apply_training_batch(filter, batch, steps, x, y) != NNTK_OK,
              "%s: ApplyTrainingBatch accepted an inference handle", L->name);
    } else {
        CHECK(gradient != NULL, "%s: GradientCreate", L->name);
        float *dy = random_floats(n_out), *dx = random_floats(n_in), *dx2 = random_floats(n_in);
        CHECK(L->calculate_gradient(filter, gradient, dy, dx) != NNTK_OK,
              "%s: CalculateGradient before a training batch", L->name);
        CHECK(L->apply_training_batch(filter, batch, steps, x, y) == NNTK_OK,
              "%s: ApplyTrainingBatch", L->name);
        CHECK(L->calculate_gradient(filter, gradient, dy, dx) == NNTK_OK, "%s: CalculateGradient",
              L->name);
        float *dw = NULL;
        int64_t dw_count = -1;
        CHECK(L->gradient_get_weights(gradient, &dw, &dw_count) == NNTK_OK && dw_count == count,
              "%s: GradientGetWeights count %lld (weights %lld)", L->name, (long long)dw_count,
              (long long)count);
        float *dw_copy = random_floats(dw_count);
        if (dw_count > 0) memcpy(dw_copy, dw, (size_t)dw_count * sizeof(float));
        /* again, and without d_in: the same weight gradients, the same d_in */
        CHECK(L->calculate_gradient(filter, gradient, dy, NULL) == NNTK_OK,
              "%s: CalculateGradient(d_in = NULL)", L->name);
        CHECK(dw_count <= 0 || memcmp(dw, dw_copy, (size_t)dw_count * sizeof(float)) == 0,
              "%s: weight gradients differ without d_in", L->name);
        CHECK(L->calculate_gradient(filter, gradient, dy, dx2) == NNTK_OK, "%s: CalculateGradient",
              L->name);
        CHECK(memcmp(dx, dx2, (size_t)n_in * sizeof(float)) == 0, "%s: d_in not deterministic",
              L->name);
        free(dw_copy);
        free(dy);
        free(dx);
        free(dx2);
        L->gradient_destroy(gradient);
    }
    L->gradient_destroy(NULL);
    L->destroy(filter);
    L->destroy(NULL);
    free(x);
    free(y);
    free(y2);
}

static void run_config(const nntk_layer_api *L, const nntk_arg_value *v) {
    static const int64_t shapes[][2] = {{1, 1}, {2, 3}, {3, 7}};
    const NNTKTrainingConfig capacity = {4, 8};
    configs++;
    for (int s = 0; s < COUNT(shapes); s++) run_cycle(L, v, 1, NULL, shapes[s][0], shapes[s][1]);
    run_cycle(L, v, 1, &capacity, 2, 5);
    run_cycle(L, v, 0, NULL, 2, 3);
}

/* Values each ConfigCreate argument is swept over (one argument at a time). */
static const int64_t I64_SWEEP[] = {1, 2, 3, 5};
static const double F64_SWEEP[] = {0.0, 1e-3, 0.5, 0.99, 1.0};
#define I32_SWEEP_MAX 20

static void sweep_layer(const nntk_layer_api *L) {
    nntk_arg_value base[32];
    if (find_valid_config(L, base) != 0) {
        failures++;
        return;
    }
    run_config(L, base);
    for (int i = 0; i < L->n_args; i++) {
        nntk_arg_value v[32];
        const int n = L->args[i].kind == NNTK_ARG_I64   ? COUNT(I64_SWEEP)
                      : L->args[i].kind == NNTK_ARG_I32 ? I32_SWEEP_MAX
                                                        : COUNT(F64_SWEEP);
        for (int k = 0; k < n; k++) {
            memcpy(v, base, sizeof v);
            switch (L->args[i].kind) {
            case NNTK_ARG_I64: v[i].i64 = I64_SWEEP[k]; break;
            case NNTK_ARG_I32: v[i].i32 = k; break;
            case NNTK_ARG_F64: v[i].f64 = F64_SWEEP[k]; break;
            case NNTK_ARG_F32: v[i].f32 = (float)F64_SWEEP[k]; break;
            }
            if (memcmp(&v[i], &base[i], sizeof v[i]) == 0) continue; /* the base config */
            void *config = L->config_create(v);
            if (config == NULL) { /* refused: it must say why, naming the function */
                CHECK(strncmp(NNTKLastError(), "NNTK", 4) == 0 && NNTKLastStatus() != NNTK_OK,
                      "%s: ConfigCreate refused without a message", L->name);
                continue;
            }
            L->config_destroy(config);
            run_config(L, v);
        }
    }
}

int main(int argc, char **argv) {
    const long rounds = argc > 1 ? strtol(argv[1], NULL, 10) : 1;
    for (long r = 0; r < rounds; r++)
        for (int l = 0; l < NNTK_LAYER_COUNT; l++) sweep_layer(&NNTK_LAYER_TABLE[l]);
    printf("nntk_smoke: %d layers, %ld configs, %ld create/destroy cycles over %ld rounds, "
           "%ld failures (%s backend)\n",
           NNTK_LAYER_COUNT, configs, cycles, rounds, failures, NNTKBackend());
    return failures == 0 ? 0 : 1;
}
