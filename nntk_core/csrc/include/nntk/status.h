/* nntk: status codes, the thread-local error message, the export macro and the
 * types every layer shares (activation kinds, the training configuration). */
#ifndef NNTK_STATUS_H
#define NNTK_STATUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Only functions marked NNTK_API are exported from the shared library; the
 * library is compiled with -fvisibility=hidden. A definition given beforehand
 * wins: parity/c_api.py preprocesses the headers with -DNNTK_API=NNTK_API to
 * keep the marker. */
#if defined(NNTK_API)
/* given by the includer */
#elif defined(_WIN32)
#  if defined(NNTK_BUILDING)
#    define NNTK_API __declspec(dllexport)
#  else
#    define NNTK_API __declspec(dllimport)
#  endif
#else
#  define NNTK_API __attribute__((visibility("default")))
#endif

typedef enum NNTKStatus {
    NNTK_OK = 0,
    NNTK_ERROR_NULL_POINTER = 1,     /* a required pointer argument was NULL */
    NNTK_ERROR_INVALID_ARGUMENT = 2, /* a size, option or value is out of range */
    NNTK_ERROR_INVALID_STATE = 3,    /* wrong handle kind, or a call out of order */
    NNTK_ERROR_OUT_OF_MEMORY = 4,
} NNTKStatus;

/* The message of the last failing call on this thread: it names the function
 * and the offending argument. Valid until the next failing call on the same
 * thread; never NULL (empty when nothing failed). */
NNTK_API const char *NNTKLastError(void);

/* Status of the last failing call on this thread (NNTK_OK when none). */
NNTK_API NNTKStatus NNTKLastStatus(void);

/* Clears the thread's last error. */
NNTK_API void NNTKClearError(void);

/* Library version string, e.g. "0.1.0". */
NNTK_API const char *NNTKVersion(void);

/* The name of the matrix backend compiled in: "openblas" or "portable". */
NNTK_API const char *NNTKBackend(void);

/* Activation functions, with tf.keras (tf_keras 2.21) semantics. */
typedef enum NNTKActivationKind {
    NNTK_ACTIVATION_LINEAR = 0,
    NNTK_ACTIVATION_RELU = 1,
    NNTK_ACTIVATION_RELU6 = 2,
    NNTK_ACTIVATION_LEAKY_RELU = 3, /* the string form "leaky_relu": alpha 0.2 */
    NNTK_ACTIVATION_SIGMOID = 4,
    NNTK_ACTIVATION_HARD_SIGMOID = 5, /* clip(0.2x + 0.5, 0, 1) */
    NNTK_ACTIVATION_TANH = 6,
    NNTK_ACTIVATION_SOFTMAX = 7, /* over the last axis, max-subtracted */
    NNTK_ACTIVATION_ELU = 8,
    NNTK_ACTIVATION_SELU = 9,
    NNTK_ACTIVATION_SOFTPLUS = 10,
    NNTK_ACTIVATION_SOFTSIGN = 11,
    NNTK_ACTIVATION_SWISH = 12, /* alias silu */
    NNTK_ACTIVATION_GELU = 13,  /* exact erf form (Keras approximate=False) */
    NNTK_ACTIVATION_GELU_APPROXIMATE = 14, /* tanh form */
    NNTK_ACTIVATION_EXPONENTIAL = 15,
    NNTK_ACTIVATION_COUNT_ = 16 /* not an activation: the number of kinds */
} NNTKActivationKind;

/* Options of a layer created for training. All-zero means the defaults. */
typedef struct NNTKTrainingConfig {
    /* Capacity to reserve at creation, so that ApplyTrainingBatch and
     * CalculateGradient do not allocate for batches up to this size. 0 means
     * "reserve on first use"; a larger batch later grows the workspace. */
    int64_t max_batch;
    int64_t max_steps;
} NNTKTrainingConfig;

#ifdef __cplusplus
}
#endif

#endif /* NNTK_STATUS_H */
