/* keyword_detector_layers.c: the keyword detector's training step composed by
 * hand from the layer API, with the nntk C API alone (no Python, no model file).
 * keyword_detector.c does the same with NNTKModel (nntk/model.h) in a few calls;
 * this version shows what one NNTKModelTrainStep is made of, and how to drive
 * the layers of a network that is not a plain stack.
 *
 *   Conv1d(40 -> 64, kernel 5, padding same) -> BatchNorm -> Activation(relu)
 *   -> GRU(64, return_sequences) -> BatchNorm -> GRU(64, return_sequences)
 *   -> TimeDistributedDense(2, softmax)                  (BatchNorm momentum 0.9)
 *
 * It builds the layers for training, loads their weights, trains STEPS Adam steps
 * on synthetic utterances (40 features per frame of noise; in half of them a
 * "word", a bump sweeping across the features, at a random time; every frame
 * labelled word / not word), printing the loss of each step, then runs
 * inference on two fresh utterances. Any failing call prints NNTKLastError()
 * and exits with status 1.
 *
 * Usage: keyword_detector_layers [WEIGHTS.f32]
 *   WEIGHTS.f32: every weight as raw little-endian float32 in tf.keras
 *   model.get_weights() order, concatenated, e.g. from Python
 *       np.concatenate([w.ravel() for w in model.get_weights()]).astype("<f4").tofile(path)
 *   for the tf.keras (or nntk) model of the same architecture. Without it the
 *   weights are deterministic pseudo-random (Glorot-uniform-like) draws.
 *
 * One training step is what tf.keras's custom training step does:
 *   forward:  each layer's ApplyTrainingBatch, in order (BatchNorm updates its
 *             moving statistics);
 *   loss:     NNTKLossCompute (categorical cross-entropy on the probabilities,
 *             as Keras does after TimeDistributed(Dense(softmax)));
 *   backward: each layer's CalculateGradient, in reverse order;
 *   update:   one NNTKOptimizerStep over every trainable weight block. A
 *             BatchNorm block is [gamma, beta, moving_mean, moving_variance]:
 *             only its first 2C floats (gamma, beta) are trainable.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXAMPLE_NAME "keyword_detector_layers"
#include <nntk/nntk.h>

#include "example_support.h"

enum {
    FEATURES = 40,
    FILTERS = 64,
    KERNEL = 5,
    UNITS = 64,
    CLASSES = 2,
    BATCH = 8,
    FRAMES = 50,      /* 0.5 s of 10 ms frames */
    WORD_FRAMES = 12, /* how long the word lasts */
    BATCHES = 4,      /* distinct training batches, cycled */
    STEPS = 16,
    LAYERS = 7,
    TRAINABLE_BLOCKS = 6, /* every layer but the activation */
};
static const double LEARNING_RATE = 0.01;
static const double BN_MOMENTUM = 0.9;

/* U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)), as Keras's glorot_uniform. */
static void glorot(float *w, int64_t count, int64_t fan_in, int64_t fan_out) {
    double limit = sqrt(6.0 / (double)(fan_in + fan_out));
    for (int64_t i = 0; i < count; i++) w[i] = (float)((2.0 * uniform() - 1.0) * limit);
}

/* -- the model ---------------------------------------------------------------------- */
typedef struct Model {
    NNTKConv1d *conv;
    NNTKBatchNorm *bn1;
    NNTKActivation *relu;
    NNTKGRU *gru1;
    NNTKBatchNorm *bn2;
    NNTKGRU *gru2;
    NNTKTimeDistributedDense *head;
    NNTKConv1dGradient *g_conv;
    NNTKBatchNormGradient *g_bn1;
    NNTKActivationGradient *g_relu;
    NNTKGRUGradient *g_gru1;
    NNTKBatchNormGradient *g_bn2;
    NNTKGRUGradient *g_gru2;
    NNTKTimeDistributedDenseGradient *g_head;
    /* out[i]: output of layer i, (B, T, width of layer i); d[i]: its gradient. */
    float *out[LAYERS];
    float *d[LAYERS];
} Model;

static const int64_t WIDTH[LAYERS] = {FILTERS, FILTERS, FILTERS, UNITS, UNITS, UNITS, CLASSES};

static Model *model_create(void) {
    Model *m = xcalloc(1, sizeof *m);
    NNTKTrainingConfig training = {.max_batch = BATCH, .max_steps = FRAMES};

    NNTKConv1dConfig *conv = CREATE(NNTKConv1dConfigCreate(
        FEATURES, FILTERS, KERNEL, 1, NNTK_PADDING_SAME, 1, NNTK_ACTIVATION_LINEAR, 1));
    NNTKBatchNormConfig *bn1 = CREATE(NNTKBatchNormConfigCreate(FILTERS, BN_MOMENTUM, 1e-3, 1, 1));
    NNTKActivationConfig *relu = CREATE(NNTKActivationConfigCreate(NNTK_ACTIVATION_RELU, FILTERS));
    /* GRU with Keras's defaults: tanh, sigmoid gates, bias, reset_after. */
    NNTKGRUConfig *gru1 = CREATE(NNTKGRUConfigCreate(
        FILTERS, UNITS, NNTK_ACTIVATION_TANH, NNTK_ACTIVATION_SIGMOID, 1, 1, 1, 0));
    NNTKBatchNormConfig *bn2 = CREATE(NNTKBatchNormConfigCreate(UNITS, BN_MOMENTUM, 1e-3, 1, 1));
    NNTKGRUConfig *gru2 = CREATE(NNTKGRUConfigCreate(
        UNITS, UNITS, NNTK_ACTIVATION_TANH, NNTK_ACTIVATION_SIGMOID, 1, 1, 1, 0));
    NNTKTimeDistributedDenseConfig *head = CREATE(
        NNTKTimeDistributedDenseConfigCreate(UNITS, CLASSES, NNTK_ACTIVATION_SOFTMAX, 1));

    m->conv = CREATE(NNTKConv1dCreateForTraining(conv, &training));
    m->bn1 = CREATE(NNTKBatchNormCreateForTraining(bn1, &training));
    m->relu = CREATE(NNTKActivationCreateForTraining(relu, &training));
    m->gru1 = CREATE(NNTKGRUCreateForTraining(gru1, &training));
    m->bn2 = CREATE(NNTKBatchNormCreateForTraining(bn2, &training));
    m->gru2 = CREATE(NNTKGRUCreateForTraining(gru2, &training));
    m->head = CREATE(NNTKTimeDistributedDenseCreateForTraining(head, &training));
    NNTKConv1dConfigDestroy(conv);
    NNTKBatchNormConfigDestroy(bn1);
    NNTKActivationConfigDestroy(relu);
    NNTKGRUConfigDestroy(gru1);
    NNTKBatchNormConfigDestroy(bn2);
    NNTKGRUConfigDestroy(gru2);
    NNTKTimeDistributedDenseConfigDestroy(head);

    m->g_conv = CREATE(NNTKConv1dGradientCreate(m->conv));
    m->g_bn1 = CREATE(NNTKBatchNormGradientCreate(m->bn1));
    m->g_relu = CREATE(NNTKActivationGradientCreate(m->relu));
    m->g_gru1 = CREATE(NNTKGRUGradientCreate(m->gru1));
    m->g_bn2 = CREATE(NNTKBatchNormGradientCreate(m->bn2));
    m->g_gru2 = CREATE(NNTKGRUGradientCreate(m->gru2));
    m->g_head = CREATE(NNTKTimeDistributedDenseGradientCreate(m->head));

    /* "same" padding keeps the number of frames: every activation is (B, T, width). */
    int64_t out_steps = 0, out_features = 0;
    CHECK(NNTKConv1dOutputShape(m->conv, BATCH, FRAMES, &out_steps, &out_features));
    if (out_steps != FRAMES || out_features != FILTERS) {
        fprintf(stderr, "keyword_detector: unexpected Conv1d output shape\n");
        exit(EXIT_FAILURE);
    }
    for (int i = 0; i < LAYERS; i++) {
        m->out[i] = xcalloc((size_t)(BATCH * FRAMES * WIDTH[i]), sizeof(float));
        m->d[i] = xcalloc((size_t)(BATCH * FRAMES * WIDTH[i]), sizeof(float));
    }
    return m;
}

static void model_destroy(Model *m) {
    NNTKConv1dGradientDestroy(m->g_conv);
    NNTKBatchNormGradientDestroy(m->g_bn1);
    NNTKActivationGradientDestroy(m->g_relu);
    NNTKGRUGradientDestroy(m->g_gru1);
    NNTKBatchNormGradientDestroy(m->g_bn2);
    NNTKGRUGradientDestroy(m->g_gru2);
    NNTKTimeDistributedDenseGradientDestroy(m->g_head);
    NNTKConv1dDestroy(m->conv);
    NNTKBatchNormDestroy(m->bn1);
    NNTKActivationDestroy(m->relu);
    NNTKGRUDestroy(m->gru1);
    NNTKBatchNormDestroy(m->bn2);
    NNTKGRUDestroy(m->gru2);
    NNTKTimeDistributedDenseDestroy(m->head);
    for (int i = 0; i < LAYERS; i++) {
        free(m->out[i]);
        free(m->d[i]);
    }
    free(m);
}

/* The layers' weight blocks, in layer order (= tf.keras model.get_weights() order).
 * trainable[i]: how many floats at the start of block i an optimizer updates. */
typedef struct Blocks {
    float *weights[TRAINABLE_BLOCKS];
    int64_t count[TRAINABLE_BLOCKS];
    int64_t trainable[TRAINABLE_BLOCKS];
} Blocks;

static Blocks weight_blocks(Model *m) {
    Blocks b;
    CHECK(NNTKConv1dGetWeights(m->conv, &b.weights[0], &b.count[0]));
    CHECK(NNTKBatchNormGetWeights(m->bn1, &b.weights[1], &b.count[1]));
    CHECK(NNTKGRUGetWeights(m->gru1, &b.weights[2], &b.count[2]));
    CHECK(NNTKBatchNormGetWeights(m->bn2, &b.weights[3], &b.count[3]));
    CHECK(NNTKGRUGetWeights(m->gru2, &b.weights[4], &b.count[4]));
    CHECK(NNTKTimeDistributedDenseGetWeights(m->head, &b.weights[5], &b.count[5]));
    for (int i = 0; i < TRAINABLE_BLOCKS; i++) b.trainable[i] = b.count[i];
    b.trainable[1] = 2 * FILTERS; /* gamma, beta; not the moving statistics */
    b.trainable[3] = 2 * UNITS;
    return b;
}

/* Deterministic weights, in the layout of each block (see the layers' headers);
 * BatchNorm keeps the values it was created with (Keras's initial values). */
static void generate_weights(Model *m) {
    Blocks b = weight_blocks(m);
    float *w = b.weights[0]; /* conv: kernel (K, D, F), bias (F,) = 0 */
    glorot(w, KERNEL * FEATURES * FILTERS, KERNEL * FEATURES, KERNEL * FILTERS);
    for (int s = 2; s <= 4; s += 2) { /* GRU: kernel (D, 3U), recurrent (U, 3U), bias 0 */
        int64_t in = s == 2 ? FILTERS : UNITS;
        w = b.weights[s];
        glorot(w, in * 3 * UNITS, in, 3 * UNITS);
        glorot(w + in * 3 * UNITS, UNITS * 3 * UNITS, UNITS, 3 * UNITS);
    }
    glorot(b.weights[5], UNITS * CLASSES, UNITS, CLASSES); /* head: kernel (U, 2), bias 0 */
}

/* Weights from a raw float32 file in tf.keras model.get_weights() order. */
static void load_weights(Model *m, const char *path) {
    Blocks b = weight_blocks(m);
    int64_t total = 0;
    for (int i = 0; i < TRAINABLE_BLOCKS; i++) total += b.count[i];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "keyword_detector_layers: cannot open weights file %s\n", path);
        exit(EXIT_FAILURE);
    }
    int64_t read = 0;
    for (int i = 0; i < TRAINABLE_BLOCKS; i++)
        read += (int64_t)fread(b.weights[i], sizeof(float), (size_t)b.count[i], f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (read != total || extra) {
        fprintf(stderr,
                "keyword_detector_layers: %s must hold exactly %lld float32 values (the model's "
                "weights in tf.keras order); it holds %s%lld\n",
                path, (long long)total, extra ? "more than " : "", (long long)read);
        exit(EXIT_FAILURE);
    }
    printf("loaded %lld weights from %s\n", (long long)total, path);
}

/* -- one training step and inference -------------------------------------------------- */
static float train_step(Model *m, NNTKOptimizer *adam, const float *x, const float *y) {
    const int64_t B = BATCH, T = FRAMES;
    /* forward, training mode */
    CHECK(NNTKConv1dApplyTrainingBatch(m->conv, B, T, x, m->out[0]));
    CHECK(NNTKBatchNormApplyTrainingBatch(m->bn1, B, T, m->out[0], m->out[1]));
    CHECK(NNTKActivationApplyTrainingBatch(m->relu, B, T, m->out[1], m->out[2]));
    CHECK(NNTKGRUApplyTrainingBatch(m->gru1, B, T, m->out[2], m->out[3]));
    CHECK(NNTKBatchNormApplyTrainingBatch(m->bn2, B, T, m->out[3], m->out[4]));
    CHECK(NNTKGRUApplyTrainingBatch(m->gru2, B, T, m->out[4], m->out[5]));
    CHECK(NNTKTimeDistributedDenseApplyTrainingBatch(m->head, B, T, m->out[5], m->out[6]));
    /* loss over the B*T frames, and d loss / d probabilities */
    float loss = 0.0f;
    CHECK(NNTKLossCompute(NNTK_LOSS_CATEGORICAL_CROSSENTROPY, 0, B * T, CLASSES, m->out[6], y,
                          &loss, m->d[6]));
    /* backward, in reverse: d[i] = gradient of layer i's output */
    CHECK(NNTKTimeDistributedDenseCalculateGradient(m->head, m->g_head, m->d[6], m->d[5]));
    CHECK(NNTKGRUCalculateGradient(m->gru2, m->g_gru2, m->d[5], m->d[4]));
    CHECK(NNTKBatchNormCalculateGradient(m->bn2, m->g_bn2, m->d[4], m->d[3]));
    CHECK(NNTKGRUCalculateGradient(m->gru1, m->g_gru1, m->d[3], m->d[2]));
    CHECK(NNTKActivationCalculateGradient(m->relu, m->g_relu, m->d[2], m->d[1]));
    CHECK(NNTKBatchNormCalculateGradient(m->bn1, m->g_bn1, m->d[1], m->d[0]));
    CHECK(NNTKConv1dCalculateGradient(m->conv, m->g_conv, m->d[0], NULL));
    /* update every trainable block (the gradient blocks have the weights' layout) */
    Blocks w = weight_blocks(m);
    float *grads[TRAINABLE_BLOCKS];
    int64_t count = 0;
    CHECK(NNTKConv1dGradientGetWeights(m->g_conv, &grads[0], &count));
    CHECK(NNTKBatchNormGradientGetWeights(m->g_bn1, &grads[1], &count));
    CHECK(NNTKGRUGradientGetWeights(m->g_gru1, &grads[2], &count));
    CHECK(NNTKBatchNormGradientGetWeights(m->g_bn2, &grads[3], &count));
    CHECK(NNTKGRUGradientGetWeights(m->g_gru2, &grads[4], &count));
    CHECK(NNTKTimeDistributedDenseGradientGetWeights(m->g_head, &grads[5], &count));
    const float *const_grads[TRAINABLE_BLOCKS];
    for (int i = 0; i < TRAINABLE_BLOCKS; i++) const_grads[i] = grads[i];
    CHECK(NNTKOptimizerStep(adam, TRAINABLE_BLOCKS, w.weights, const_grads, w.trainable));
    return loss;
}

/* Inference mode (BatchNorm uses its moving statistics): x (n, T, D) -> out[6] (n, T, 2). */
static void infer(Model *m, int64_t n, const float *x) {
    const int64_t T = FRAMES;
    CHECK(NNTKConv1dApplyInference(m->conv, n, T, x, m->out[0]));
    CHECK(NNTKBatchNormApplyInference(m->bn1, n, T, m->out[0], m->out[1]));
    CHECK(NNTKActivationApplyInference(m->relu, n, T, m->out[1], m->out[2]));
    CHECK(NNTKGRUApplyInference(m->gru1, n, T, m->out[2], m->out[3]));
    CHECK(NNTKBatchNormApplyInference(m->bn2, n, T, m->out[3], m->out[4]));
    CHECK(NNTKGRUApplyInference(m->gru2, n, T, m->out[4], m->out[5]));
    CHECK(NNTKTimeDistributedDenseApplyInference(m->head, n, T, m->out[5], m->out[6]));
}

int main(int argc, char **argv) {
    if (argc > 2) {
        fprintf(stderr, "usage: %s [WEIGHTS.f32]\n", argv[0]);
        return 2;
    }
    printf("nntk %s (%s backend): keyword detector, Conv1d(%d->%d, k%d) BN relu GRU(%d) BN "
           "GRU(%d) TimeDistributedDense(%d, softmax)\n",
           NNTKVersion(), NNTKBackend(), FEATURES, FILTERS, KERNEL, UNITS, UNITS, CLASSES);
    Model *m = model_create();
    if (argc == 2) {
        load_weights(m, argv[1]);
    } else {
        generate_weights(m);
    }

    /* BATCHES training batches of BATCH utterances, half of them with the word. */
    const int64_t per_batch = BATCH * FRAMES;
    float *x, *y;
    training_utterances(BATCHES * BATCH, FRAMES, FEATURES, WORD_FRAMES, &x, &y);

    NNTKOptimizer *adam = CREATE(NNTKOptimizerCreateAdam(LEARNING_RATE, 0.9, 0.999, 1e-7, 0));
    printf("training: %d Adam steps (learning rate %g), batches of %d utterances x %d frames\n",
           STEPS, LEARNING_RATE, BATCH, FRAMES);
    float first = 0.0f, last = 0.0f;
    for (int step = 0; step < STEPS; step++) {
        int b = step % BATCHES;
        float loss = train_step(m, adam, x + b * per_batch * FEATURES, y + b * per_batch * CLASSES);
        report_loss(step, loss, &first, &last);
    }
    printf("loss %.6f -> %.6f\n", first, last);

    /* Inference on two fresh utterances: one with the word, one without. */
    float test_x[2 * FRAMES * FEATURES], test_y[2 * FRAMES * CLASSES];
    int64_t test_start[2];
    const int test_has_word[2] = {1, 0};
    utterances(2, FRAMES, FEATURES, WORD_FRAMES, test_has_word, test_x, test_y, test_start);
    infer(m, 2, test_x);
    for (int i = 0; i < 2; i++)
        report_detection(i, FRAMES, WORD_FRAMES, test_start[i], m->out[6] + i * FRAMES * CLASSES);

    NNTKOptimizerDestroy(adam);
    model_destroy(m);
    free(x);
    free(y);
    return EXIT_SUCCESS;
}
