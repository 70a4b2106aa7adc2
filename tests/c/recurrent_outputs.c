/* Prints the inference outputs of RNN, GRU (reset_after both ways) and LSTM for
 * fixed weights and inputs, one hex float per line, so that two builds (two
 * CPUs, two kernel tables) can be compared bit for bit (ci/aarch64.sh).
 * Shapes: 40 inputs, 64 and 37 units, batch 1 x 100 steps (the batch-1
 * panel product and the matvec kernel) and batch 3 x 17 steps (the tiles).
 *
 *   nntk_recurrent_outputs > outputs.txt     (exits 1 on a library error) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "nntk/nntk.h"

/* A fixed pattern in [-0.4, 0.4]: the same on every machine. */
static float pattern(int64_t i) { return (float)((i * 7919) % 2001 - 1000) / 2500.0f; }

enum { D = 40, MAX_B = 3, MAX_T = 100, MAX_U = 64 };

static int run(int kind, int64_t units, int64_t batch, int64_t steps, int reset_after) {
    static float x[MAX_B * MAX_T * D], y[MAX_B * MAX_T * MAX_U];
    for (int64_t i = 0; i < batch * steps * D; i++) x[i] = 2.0f * pattern(i + 17);
    const int32_t tanh_ = NNTK_ACTIVATION_TANH, sigmoid = NNTK_ACTIVATION_SIGMOID;
    void *layer = NULL;
    float *w = NULL;
    int64_t count = 0;
    NNTKStatus s = NNTK_OK;
    if (kind == 0) {
        NNTKRNNConfig *c = NNTKRNNConfigCreate(D, units, tanh_, 1, 1, 0);
        layer = c ? NNTKRNNCreateForInference(c) : NULL;
        if (layer) s = NNTKRNNGetWeights(layer, &w, &count);
        NNTKRNNConfigDestroy(c);
    } else if (kind == 1) {
        NNTKGRUConfig *c = NNTKGRUConfigCreate(D, units, tanh_, sigmoid, 1, reset_after, 1, 0);
        layer = c ? NNTKGRUCreateForInference(c) : NULL;
        if (layer) s = NNTKGRUGetWeights(layer, &w, &count);
        NNTKGRUConfigDestroy(c);
    } else {
        NNTKLSTMConfig *c = NNTKLSTMConfigCreate(D, units, tanh_, sigmoid, 1, 1, 0);
        layer = c ? NNTKLSTMCreateForInference(c) : NULL;
        if (layer) s = NNTKLSTMGetWeights(layer, &w, &count);
        NNTKLSTMConfigDestroy(c);
    }
    if (layer == NULL || s != NNTK_OK) {
        fprintf(stderr, "recurrent_outputs: %s\n", NNTKLastError());
        return 1;
    }
    for (int64_t i = 0; i < count; i++) w[i] = pattern(3 * i + 1);
    if (kind == 0) s = NNTKRNNApplyInference(layer, batch, steps, x, y);
    else if (kind == 1) s = NNTKGRUApplyInference(layer, batch, steps, x, y);
    else s = NNTKLSTMApplyInference(layer, batch, steps, x, y);
    if (s != NNTK_OK) {
        fprintf(stderr, "recurrent_outputs: %s\n", NNTKLastError());
        return 1;
    }
    for (int64_t i = 0; i < batch * steps * units; i++) printf("%a\n", (double)y[i]);
    if (kind == 0) NNTKRNNDestroy(layer);
    else if (kind == 1) NNTKGRUDestroy(layer);
    else NNTKLSTMDestroy(layer);
    return 0;
}

int main(void) {
    static const int64_t shapes[][3] = {{64, 1, 100}, {37, 1, 100}, {64, 3, 17}, {37, 3, 17}};
    for (int kind = 0; kind < 3; kind++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            for (int reset_after = 1; reset_after >= (kind == 1 ? 0 : 1); reset_after--)
                if (run(kind, shapes[i][0], shapes[i][1], shapes[i][2], reset_after) != 0) return 1;
    return 0;
}
