/* A model: the layers of an nntk model file (docs/MODEL_FILE.md, written by
 * Python's Sequential.save or by NNTKModelSave), run for inference and trained
 * step by step, then saved again, from C alone.
 *
 *   NNTKModel *model = NNTKModelLoad("detector.nntk", 8, 50);  // capacity: 8 x 50 steps
 *   NNTKModelApplyInference(model, 1, 50, x, y);
 *   NNTKModelTrainStep(model, NNTK_LOSS_CATEGORICAL_CROSSENTROPY, 0, 8, 50, xs, ys, &loss);
 *   NNTKModelSave(model, "detector.nntk");                      // atomically
 *   NNTKModelDestroy(model);
 *
 * Load reads and checks the whole file before it builds anything (magic,
 * version, length, CRC-32, the config, every layer's arguments, the weights'
 * names and shapes, that the layers chain, the optimizer), as nn.load does,
 * then creates every layer through the generic layer API (nntk/layer.h), sets
 * the weights (BatchNorm's moving statistics included) and restores the
 * optimizer the file holds (type, hyperparameters, step count, slots). Any
 * problem gives NULL and a message naming the path and the problem; nothing is
 * left allocated.
 *
 * Capacity. Load reserves, for batches of up to max_batch sequences of up to
 * max_steps steps, every buffer a call needs: every layer's training
 * workspace and gradient, the activations between layers, the optimizer's
 * slots. ApplyInference and TrainStep then allocate nothing; a larger batch
 * or a longer sequence is refused (NNTK_ERROR_INVALID_ARGUMENT naming batch or
 * steps), never grown.
 *
 * Shapes: x (batch, steps, input_features) float32, row-major (a model whose
 * first layer takes (batch, features) is given steps = 1); the output
 * (batch, out_steps, out_features) as NNTKModelOutputShape gives (out_steps is
 * 1 when the last layer drops the time axis).
 *
 * Streaming (a live microphone's frames): NNTKModelStream runs the model on
 * one chunk of a sequence, the recurrent layers' states carried from call to
 * call in the caller's buffers; fed chunk by chunk it gives ApplyInference's
 * output for the whole sequence bit for bit. Which models stream is
 * nntk/layer.h's rule for a layer chain (per-step and recurrent layers, and a
 * first Conv1d with padding valid given its window of input frames whole);
 * Load builds the chain for it when they do (two more activation buffers of
 * the capacity), and the stream functions refuse the others naming the layer.
 *
 *   int64_t width;  NNTKModelStreamStates(model, &width);   // floats per sequence
 *   float states[2][width];                                   // alternate them
 *   NNTKModelStream(model, 1, 5, window, NULL, y, states[0]); // the first frame: zeros
 *   NNTKModelStream(model, 1, 5, next, states[0], y, states[1]);
 *
 * One handle takes one call at a time (docs/DESIGN.md §3, Threads): Apply,
 * Stream, TrainStep, Save, SetOptimizer and GetWeights refuse a second concurrent call
 * on the same model with NNTK_ERROR_INVALID_STATE. */
#ifndef NNTK_MODEL_H
#define NNTK_MODEL_H

#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct NNTKModel NNTKModel;

/* The model in the file at `path` (a model file of version 1 or 2), with the
 * capacity max_batch >= 1, max_steps >= 1 (see above). NULL on error. */
NNTK_API NNTKModel *NNTKModelLoad(const char *path, int64_t max_batch, int64_t max_steps);

/* NULL-safe. */
NNTK_API void NNTKModelDestroy(NNTKModel *model);

/* Writes the model to exactly `path`, in the format of docs/MODEL_FILE.md
 * (version 2: the layers as loaded, the current weights and moving
 * statistics, and the optimizer's type, hyperparameters, step count and slots
 * when the model has one), atomically: a temporary file in the same directory,
 * fsync, rename onto path, fsync of the directory. On error `path` is left as
 * it was. nn.load (Python) reads the file. */
NNTK_API NNTKStatus NNTKModelSave(NNTKModel *model, const char *path);

/* *layer_count = the number of layers; *input_features = the size of the
 * input's last axis; *weight_count = the number of floats of every weight
 * (NNTKModelGetWeights). */
NNTK_API NNTKStatus NNTKModelDescribe(const NNTKModel *model, int64_t *layer_count,
                                      int64_t *input_features, int64_t *weight_count);

/* The output's shape for an input of (batch, steps): *out_steps (1 when the
 * last layer drops the time axis) and *out_features. Checks the input as
 * ApplyInference does (the capacity, every layer's own length checks). */
NNTK_API NNTKStatus NNTKModelOutputShape(const NNTKModel *model, int64_t batch, int64_t steps,
                                         int64_t *out_steps, int64_t *out_features);

/* Inference: in (batch, steps, input_features) -> out (batch, out_steps,
 * out_features). BatchNorm uses its moving statistics. */
NNTK_API NNTKStatus NNTKModelApplyInference(NNTKModel *model, int64_t batch, int64_t steps,
                                            const float *in, float *out);

/* *state_width = the floats of a state buffer per sequence of the batch (0:
 * no recurrent layer): NNTKModelStream's states hold batch * state_width
 * floats, the recurrent layers' states in model order (nntk/layer.h,
 * NNTKLayerChainDescribe). NNTK_ERROR_INVALID_STATE, naming the layer, when
 * the model cannot stream. */
NNTK_API NNTKStatus NNTKModelStreamStates(const NNTKModel *model, int64_t *state_width);

/* Inference on one chunk of a sequence: in (batch, steps, input_features) ->
 * out (batch, out_steps, out_features) (NNTKModelOutputShape), within the
 * capacity. initial_states (batch * state_width floats, see
 * NNTKModelStreamStates) may be NULL (zeros: a sequence's start, the reset);
 * final_states (the same layout) may be NULL (not wanted): the states the next
 * chunk starts from. in, out and the two state buffers must not overlap.
 * BatchNorm uses its moving statistics. Allocates nothing. */
NNTK_API NNTKStatus NNTKModelStream(NNTKModel *model, int64_t batch, int64_t steps, const float *in,
                                    const float *initial_states, float *out, float *final_states);

/* Copies every weight into weights (count floats, count = the weight_count of
 * NNTKModelDescribe): each layer's weights in tf.keras Model.get_weights()
 * order, BatchNorm's moving statistics included, as in the model file. */
NNTK_API NNTKStatus NNTKModelGetWeights(NNTKModel *model, float *weights, int64_t count);

/* Gives the model a new optimizer (nntk/optimizer.h; the same arguments and
 * checks as NNTKOptimizerCreateSGD / NNTKOptimizerCreateAdam), replacing the
 * one it has (from the file, or an earlier call): step count 0 and zero slots,
 * reserved now for the model's trainable weights. On error the model keeps
 * its optimizer. */
NNTK_API NNTKStatus NNTKModelSetOptimizerSGD(NNTKModel *model, double learning_rate,
                                             double momentum, int32_t nesterov);
NNTK_API NNTKStatus NNTKModelSetOptimizerAdam(NNTKModel *model, double learning_rate,
                                              double beta_1, double beta_2, double epsilon,
                                              int32_t amsgrad);

/* *iterations = the optimizer's completed steps (NNTK_ERROR_INVALID_STATE when
 * the model has no optimizer). */
NNTK_API NNTKStatus NNTKModelIterations(const NNTKModel *model, int64_t *iterations);

/* One training step, as nntk_core's Sequential.train_step and a tf.keras custom
 * training step (GradientTape + apply_gradients): every layer forward in
 * training mode (BatchNorm: batch statistics, moving statistics updated), the
 * loss (nntk/loss.h: `loss` an NNTKLossKind, from_logits 0 or 1), every
 * layer's gradient in reverse order, then one step of the model's optimizer
 * over every trainable weight. x (batch, steps, input_features), y the target
 * (batch, out_steps, out_features); *loss_value = the loss before the update.
 * As in tf.keras, the categorical cross-entropy on probabilities after a last
 * Activation("softmax") or Dense(softmax) is computed from the softmax's
 * logits (docs/KERAS_SEMANTICS.md §9). Everything is checked before anything
 * runs: on error no weight, statistic or slot changes. Allocates nothing. */
NNTK_API NNTKStatus NNTKModelTrainStep(NNTKModel *model, int32_t loss, int32_t from_logits,
                                       int64_t batch, int64_t steps, const float *x,
                                       const float *y, float *loss_value);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_MODEL_H */
