/* Activation functions and their derivatives, with tf.keras 2.x semantics
 * (docs/KERAS_SEMANTICS.md §8). Elementwise except softmax, which normalises each
 * row of `dim` values. Transcendentals use libm single precision. */
#include <float.h>
#include <math.h>

#include "core/kernels.h"
#include "core/ops.h"
#include "core/vmath.h"

#define LEAKY_RELU_ALPHA 0.2f /* the string "leaky_relu" is tf.nn.leaky_relu(alpha=0.2) */
#define SELU_ALPHA 1.6732632423543772848170429916717f
#define SELU_SCALE 1.0507009873554804934193349852946f
#define GELU_TANH_C 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_TANH_K 0.044715f
#define INV_SQRT2 0.70710678118654752f
#define INV_SQRT_2PI 0.3989422804014327f

const char *const nntk_activation_names[NNTK_ACTIVATION_COUNT_] = {
    "linear", "relu", "relu6", "leaky_relu", "sigmoid", "hard_sigmoid", "tanh", "softmax",
    "elu", "selu", "softplus", "softsign", "swish", "gelu", "gelu_approximate", "exponential"};

const char *nntk_activation_name(NNTKActivationKind kind) {
    if ((int)kind < 0 || kind >= NNTK_ACTIVATION_COUNT_) return "unknown";
    return nntk_activation_names[kind];
}

/* Sigmoid without overflow: exp only ever sees a non-positive argument. */
static inline float sigmoid(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

/* Keras softplus (TF kernel): thresholds at log(FLT_EPSILON) + 2 keep it exact
 * where log1p(exp(x)) would round to x or to exp(x). */
static inline float softplus(float x) {
    const float threshold = logf(FLT_EPSILON) + 2.0f; /* about -13.94 */
    if (x > -threshold) return x;
    if (x < threshold) return expf(x);
    return log1pf(expf(x));
}

static inline float forward_one(NNTKActivationKind kind, float x) {
    switch (kind) {
    case NNTK_ACTIVATION_LINEAR: return x;
    /* relu(NaN) = relu6(NaN) = NaN, as TF's max(x, 0) / min(max(x, 0), 6). */
    case NNTK_ACTIVATION_RELU: return x <= 0.0f ? 0.0f : x;
    case NNTK_ACTIVATION_RELU6: return x <= 0.0f ? 0.0f : (x >= 6.0f ? 6.0f : x);
    case NNTK_ACTIVATION_LEAKY_RELU: return x > 0.0f ? x : LEAKY_RELU_ALPHA * x;
    case NNTK_ACTIVATION_SIGMOID: return nntk_sigmoid(x); /* TF's float32 form, core/vmath.h */
    case NNTK_ACTIVATION_HARD_SIGMOID: {
        float y = x * 0.2f + 0.5f;
        return y < 0.0f ? 0.0f : (y > 1.0f ? 1.0f : y);
    }
    case NNTK_ACTIVATION_TANH: return nntk_tanh(x); /* TF's float32 form, core/vmath.h */
    case NNTK_ACTIVATION_ELU: return x > 0.0f ? x : expf(x) - 1.0f; /* exp(x)-1, not expm1, as Keras */
    case NNTK_ACTIVATION_SELU: return x > 0.0f ? SELU_SCALE * x : (SELU_SCALE * SELU_ALPHA) * (expf(x) - 1.0f);
    case NNTK_ACTIVATION_SOFTPLUS: return softplus(x);
    case NNTK_ACTIVATION_SOFTSIGN: return x / (1.0f + fabsf(x));
    case NNTK_ACTIVATION_SWISH: return x * sigmoid(x);
    case NNTK_ACTIVATION_GELU: return 0.5f * x * erfcf(-x * INV_SQRT2);
    case NNTK_ACTIVATION_GELU_APPROXIMATE:
        /* 0.5·x·(1 + tanh(u)) = x·σ(2u): the same function without the
         * cancellation of 1 + tanh(u) for large negative x. */
        return x * sigmoid(2.0f * GELU_TANH_C * (x + GELU_TANH_K * x * x * x));
    case NNTK_ACTIVATION_EXPONENTIAL: return expf(x);
    case NNTK_ACTIVATION_SOFTMAX: /* row-wise, handled by the caller */
    case NNTK_ACTIVATION_COUNT_: break;
    }
    return x;
}

/* d act / dx at x, given y = act(x). */
static inline float derivative_one(NNTKActivationKind kind, float x, float y) {
    switch (kind) {
    case NNTK_ACTIVATION_LINEAR: return 1.0f;
    case NNTK_ACTIVATION_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case NNTK_ACTIVATION_RELU6: return (x > 0.0f && x < 6.0f) ? 1.0f : 0.0f;
    case NNTK_ACTIVATION_LEAKY_RELU: return x > 0.0f ? 1.0f : LEAKY_RELU_ALPHA;
    case NNTK_ACTIVATION_SIGMOID: return y * (1.0f - y);
    case NNTK_ACTIVATION_HARD_SIGMOID: { /* inside the clip, as computed (see backward) */
        const float t = x * 0.2f + 0.5f;
        return (t >= 0.0f && t <= 1.0f) ? 0.2f : 0.0f;
    }
    case NNTK_ACTIVATION_TANH: return 1.0f - y * y;
    /* TF's EluGrad selects on x < 0 (so elu'(NaN) = 1, as TF). */
    case NNTK_ACTIVATION_ELU: return x < 0.0f ? y + 1.0f : 1.0f;
    /* TF's SeluGrad takes the linear branch at x = 0 (elu's branches agree there). */
    case NNTK_ACTIVATION_SELU: return x < 0.0f ? y + SELU_SCALE * SELU_ALPHA : SELU_SCALE;
    case NNTK_ACTIVATION_SOFTPLUS: return sigmoid(x);
    case NNTK_ACTIVATION_SOFTSIGN: {
        float d = 1.0f + fabsf(x);
        return 1.0f / (d * d);
    }
    case NNTK_ACTIVATION_SWISH: {
        float s = sigmoid(x);
        return s * (1.0f + x * (1.0f - s));
    }
    case NNTK_ACTIVATION_GELU:
        return 0.5f * erfcf(-x * INV_SQRT2) + x * INV_SQRT_2PI * expf(-0.5f * x * x);
    case NNTK_ACTIVATION_GELU_APPROXIMATE: { /* y = x·s, s = σ(2u), u = c(x + k x³) */
        float s = sigmoid(2.0f * GELU_TANH_C * (x + GELU_TANH_K * x * x * x));
        return s + x * s * (1.0f - s) * 2.0f * GELU_TANH_C * (1.0f + 3.0f * GELU_TANH_K * x * x);
    }
    case NNTK_ACTIVATION_EXPONENTIAL: return y;
    case NNTK_ACTIVATION_SOFTMAX:
    case NNTK_ACTIVATION_COUNT_: break;
    }
    return 1.0f;
}

void nntk_activation_forward(NNTKActivationKind kind, int64_t rows, int64_t dim, const float *x,
                             float *y) {
    if (kind == NNTK_ACTIVATION_SOFTMAX) {
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * dim; /* (dim,) */
            float *yr = y + r * dim;       /* (dim,) */
            float max = xr[0];
            for (int64_t j = 1; j < dim; j++) max = xr[j] > max ? xr[j] : max;
            float sum = 0.0f;
            for (int64_t j = 0; j < dim; j++) {
                yr[j] = expf(xr[j] - max);
                sum += yr[j];
            }
            for (int64_t j = 0; j < dim; j++) yr[j] /= sum;
        }
        return;
    }
    if (kind == NNTK_ACTIVATION_SIGMOID) { /* vectorised, same bits as forward_one */
        nntk_kernels()->sigmoid(rows * dim, x, y);
        return;
    }
    if (kind == NNTK_ACTIVATION_TANH) {
        nntk_kernels()->tanh(rows * dim, x, y);
        return;
    }
    if (kind == NNTK_ACTIVATION_LINEAR) {
        if (y != x)
            for (int64_t i = 0; i < rows * dim; i++) y[i] = x[i];
        return;
    }
    /* The cheap kinds with the kind a constant, so the loop vectorises. */
#define FORWARD_CASE(K) \
    case K: for (int64_t i = 0; i < rows * dim; i++) y[i] = forward_one(K, x[i]); return;
    switch (kind) {
        FORWARD_CASE(NNTK_ACTIVATION_RELU)
        FORWARD_CASE(NNTK_ACTIVATION_RELU6)
        FORWARD_CASE(NNTK_ACTIVATION_LEAKY_RELU)
        FORWARD_CASE(NNTK_ACTIVATION_HARD_SIGMOID)
        FORWARD_CASE(NNTK_ACTIVATION_SOFTSIGN)
    default: break;
    }
#undef FORWARD_CASE
    for (int64_t i = 0; i < rows * dim; i++) y[i] = forward_one(kind, x[i]);
}

void nntk_activation_backward(NNTKActivationKind kind, int64_t rows, int64_t dim, const float *x,
                              const float *y, const float *dy, float *dx) {
    if (kind == NNTK_ACTIVATION_SOFTMAX) {
        /* dx = y ⊙ (dy − Σ_j dy_j y_j), row by row. */
        for (int64_t r = 0; r < rows; r++) {
            const float *yr = y + r * dim;   /* (dim,) */
            const float *dyr = dy + r * dim; /* (dim,) */
            float *dxr = dx + r * dim;       /* (dim,) */
            float dot = 0.0f;
            for (int64_t j = 0; j < dim; j++) dot += dyr[j] * yr[j];
            for (int64_t j = 0; j < dim; j++) dxr[j] = yr[j] * (dyr[j] - dot);
        }
        return;
    }
    if (kind == NNTK_ACTIVATION_HARD_SIGMOID) {
        /* Keras: clip(0.2x + 0.5, 0, 1) as min/max, whose gradients *select*:
         * dy passes where 0 <= 0.2x + 0.5 <= 1 in float32 (one ulp beyond
         * ±2.5 still rounds inside) and is dropped elsewhere, NaN dy and NaN x
         * included. */
        for (int64_t i = 0; i < rows * dim; i++) {
            const float t = x[i] * 0.2f + 0.5f;
            dx[i] = (t >= 0.0f && t <= 1.0f) ? dy[i] * 0.2f : 0.0f;
        }
        return;
    }
#define BACKWARD_CASE(K)                                                                         \
    case K:                                                                                      \
        for (int64_t i = 0; i < rows * dim; i++) dx[i] = dy[i] * derivative_one(K, x[i], y[i]); \
        return;
    if (kind == NNTK_ACTIVATION_RELU) { /* dy · relu'(x), the mask a separate select so it vectorises */
        for (int64_t i = 0; i < rows * dim; i++) {
            const float mask = x[i] > 0.0f ? 1.0f : 0.0f;
            dx[i] = dy[i] * mask;
        }
        return;
    }
    switch (kind) {
        BACKWARD_CASE(NNTK_ACTIVATION_LINEAR)
        BACKWARD_CASE(NNTK_ACTIVATION_RELU6)
        BACKWARD_CASE(NNTK_ACTIVATION_LEAKY_RELU)
        BACKWARD_CASE(NNTK_ACTIVATION_SIGMOID)
        BACKWARD_CASE(NNTK_ACTIVATION_TANH)
        BACKWARD_CASE(NNTK_ACTIVATION_EXPONENTIAL)
    default: break;
    }
#undef BACKWARD_CASE
    for (int64_t i = 0; i < rows * dim; i++) dx[i] = dy[i] * derivative_one(kind, x[i], y[i]);
}
