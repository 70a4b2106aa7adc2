/* keyword_detector.c: a keyword detector from an nntk model file, run and
 * personalised on device with the C API alone (nntk/model.h):
 *
 *   1. NNTKModelLoad the model file (saved by Python's Sequential.save, or by
 *      this program), reserving the capacity of a training batch;
 *   2. inference on two utterances (one with the word, one without);
 *   3. STEPS training steps (NNTKModelTrainStep: forward, categorical
 *      cross-entropy, backward, the optimizer the file holds, or Adam(0.01)
 *      when it holds none) on synthetic utterances, printing each loss;
 *   4. NNTKModelSave to OUT.nntk (atomically), NNTKModelLoad it again and
 *      check that the reloaded model gives bitwise the trained model's output
 *      and step count.
 *
 * The model takes (batch, frames, features) and gives (batch, frames, 2)
 * word / not-word probabilities, e.g. Conv1d -> BatchNorm -> relu -> GRU ->
 * BatchNorm -> GRU -> TimeDistributedDense(2, softmax) (ci/c-example.sh writes
 * one from Python: nntk_core, no TensorFlow). The utterances: noise, and in
 * half of them a "word", a bump sweeping across the features, at a random
 * time; every frame labelled word / not word. Any failing call prints
 * NNTKLastError() and exits with status 1.
 *
 * Usage: keyword_detector MODEL.nntk OUT.nntk
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nntk/nntk.h>

#include "example_support.h"

enum {
    BATCH = 8,
    FRAMES = 50,      /* 0.5 s of 10 ms frames */
    WORD_FRAMES = 12, /* how long the word lasts */
    BATCHES = 4,      /* distinct training batches, cycled */
    STEPS = 16,
    CLASSES = 2,
};
static const double LEARNING_RATE = 0.01;

/* Inference on the two test utterances, into probs (2, FRAMES, CLASSES). */
static void infer(NNTKModel *model, const float *x, float *probs) {
    CHECK(NNTKModelApplyInference(model, 2, FRAMES, x, probs));
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.nntk OUT.nntk\n", argv[0]);
        return 2;
    }
    printf("nntk %s (%s backend)\n", NNTKVersion(), NNTKBackend());
    NNTKModel *model = CREATE(NNTKModelLoad(argv[1], BATCH, FRAMES));
    int64_t layers, features, weights, out_steps, classes;
    CHECK(NNTKModelDescribe(model, &layers, &features, &weights));
    CHECK(NNTKModelOutputShape(model, BATCH, FRAMES, &out_steps, &classes));
    printf("loaded %s: %lld layers, %lld weights, (batch, %d, %lld) -> (batch, %lld, %lld)\n",
           argv[1], (long long)layers, (long long)weights, FRAMES, (long long)features,
           (long long)out_steps, (long long)classes);
    if (out_steps != FRAMES || classes != CLASSES) {
        fprintf(stderr, "keyword_detector: the model must give (batch, %d, %d) word probabilities\n",
                FRAMES, CLASSES);
        return EXIT_FAILURE;
    }

    /* Two test utterances, one with the word; BATCHES training batches of BATCH. */
    float *test_x = xcalloc((size_t)(2 * FRAMES * features), sizeof(float));
    float test_y[2 * FRAMES * CLASSES], probs[2 * FRAMES * CLASSES];
    int64_t test_start[2];
    const int test_has_word[2] = {1, 0};
    utterances(2, FRAMES, features, WORD_FRAMES, test_has_word, test_x, test_y, test_start);
    const int64_t per_batch = BATCH * FRAMES;
    float *x, *y;
    training_utterances(BATCHES * BATCH, FRAMES, features, WORD_FRAMES, &x, &y);

    printf("before training:\n");
    infer(model, test_x, probs);
    for (int i = 0; i < 2; i++)
        report_detection(i, FRAMES, WORD_FRAMES, test_start[i], probs + i * FRAMES * CLASSES);

    int64_t iterations;
    if (NNTKModelIterations(model, &iterations) != NNTK_OK) { /* the file holds no optimizer */
        CHECK(NNTKModelSetOptimizerAdam(model, LEARNING_RATE, 0.9, 0.999, 1e-7, 0));
        iterations = 0;
        printf("training: the file holds no optimizer; Adam(learning_rate=%g)\n", LEARNING_RATE);
    } else {
        printf("training: the file's optimizer, after its %lld steps\n", (long long)iterations);
    }
    printf("%d steps, batches of %d utterances x %d frames\n", STEPS, BATCH, FRAMES);
    float first = 0.0f, last = 0.0f;
    for (int step = 0; step < STEPS; step++) {
        const int b = step % BATCHES;
        float loss;
        CHECK(NNTKModelTrainStep(model, NNTK_LOSS_CATEGORICAL_CROSSENTROPY, 0, BATCH, FRAMES,
                                 x + b * per_batch * features, y + b * per_batch * CLASSES, &loss));
        report_loss(step, loss, &first, &last);
    }
    printf("loss %.6f -> %.6f\n", first, last);
    printf("after training:\n");
    infer(model, test_x, probs);
    for (int i = 0; i < 2; i++)
        report_detection(i, FRAMES, WORD_FRAMES, test_start[i], probs + i * FRAMES * CLASSES);

    /* Save, reload, and check the reloaded model is the trained one. */
    CHECK(NNTKModelSave(model, argv[2]));
    NNTKModel *reloaded = CREATE(NNTKModelLoad(argv[2], BATCH, FRAMES));
    float again[2 * FRAMES * CLASSES];
    infer(reloaded, test_x, again);
    int64_t steps_before, steps_after;
    CHECK(NNTKModelIterations(model, &steps_before));
    CHECK(NNTKModelIterations(reloaded, &steps_after));
    if (memcmp(again, probs, sizeof probs) != 0 || steps_after != steps_before ||
        steps_before != iterations + STEPS) {
        fprintf(stderr, "keyword_detector: the model reloaded from %s is not the trained one\n",
                argv[2]);
        return EXIT_FAILURE;
    }
    printf("saved %s; reloaded: the same output bit for bit, optimizer at step %lld\n", argv[2],
           (long long)steps_after);

    NNTKModelDestroy(reloaded);
    NNTKModelDestroy(model);
    free(test_x);
    free(x);
    free(y);
    return EXIT_SUCCESS;
}
