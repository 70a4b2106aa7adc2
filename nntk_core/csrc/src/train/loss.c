/* Losses: value and gradient w.r.t. the prediction, SUM_OVER_BATCH_SIZE
 * reduction (the mean over the `rows` positions). Each loss is one function
 * per row, value and gradient side by side; sums in double. See nntk/loss.h
 * for the formulas. */
#include <math.h>

#include "core/internal.h"
#include "core/threads.h"
#include "nntk/loss.h"

/* keras.backend.epsilon(): the clip of the probability cross-entropy. */
#define CCE_EPSILON 1e-7

/* Rows per block of the split loss: each block's row values wait in a stack buffer of
 * this many doubles (16 KiB) for the sum. */
#define LOSS_BLOCK 2048

/* Mean squared error of one row. Returns Σ_c (ŷ − y)² (the caller divides by
 * rows·C); d (C,) = scale·2(ŷ − y) unless d is NULL. */
static double mse_row(int64_t c, const float *y_pred /* (C,) */, const float *y_true /* (C,) */,
                      double scale, float *d /* (C,) or NULL */) {
    double sum = 0.0;
    for (int64_t j = 0; j < c; j++) {
        const double diff = (double)y_pred[j] - (double)y_true[j];
        sum += diff * diff;
        if (d != NULL) d[j] = (float)(2.0 * diff * scale);
    }
    return sum;
}

/* Cross-entropy on probabilities, one row. Returns −Σ_c y_c log q̃_c with
 * q = p/Σp and q̃ = clip(q, ε, 1 − ε); d (C,) = scale · d/dp unless NULL.
 *
 * Forward:  s = Σ p;  q = p/s;  q̃ = clip(q);  L = −Σ y log q̃.
 * Backward: g = dL/dq = −y/q̃ where the clip passes (ε <= q <= 1 − ε, bounds
 *           included, as TF's ClipByValue gradient), else 0;
 *           dL/dp_j = Σ_k g_k (δ_jk − q_k)/s = (g_j − Σ_k g_k q_k)/s. */
static double cce_probabilities_row(int64_t c, const float *p /* (C,) */, const float *y /* (C,) */,
                                    double scale, float *d /* (C,) or NULL */) {
    double s = 0.0;
    for (int64_t j = 0; j < c; j++) s += (double)p[j];
    double loss = 0.0, g_dot_q = 0.0;
    for (int64_t j = 0; j < c; j++) {
        const double q = (double)p[j] / s;
        const double q_clipped = q < CCE_EPSILON ? CCE_EPSILON : (q > 1.0 - CCE_EPSILON ? 1.0 - CCE_EPSILON : q);
        loss -= (double)y[j] * log(q_clipped);
        /* where the clip passes, g_j q_j = (−y_j/q_j)·q_j = −y_j exactly */
        if (q >= CCE_EPSILON && q <= 1.0 - CCE_EPSILON) g_dot_q -= (double)y[j];
    }
    if (d != NULL) {
        for (int64_t j = 0; j < c; j++) {
            const double q = (double)p[j] / s;
            const double g = (q >= CCE_EPSILON && q <= 1.0 - CCE_EPSILON) ? -(double)y[j] / q : 0.0;
            d[j] = (float)((g - g_dot_q) / s * scale);
        }
    }
    return loss;
}

/* Cross-entropy on logits, one row. Returns Σ_c y_c (logsumexp(z) − z_c),
 * computed as Σ_c y_c (log Σ_k exp(z_k − max) − (z_c − max)), TF's form: the
 * shifted logits never cancel against max (with max + log Σ first, logits of
 * 1e30 all equal lose the log C entirely and give 0);
 * d (C,) = scale·(softmax(z) − y) unless NULL (TF's kernel gradient). */
static double cce_logits_row(int64_t c, const float *z /* (C,) */, const float *y /* (C,) */,
                             double scale, float *d /* (C,) or NULL */) {
    double max = (double)z[0];
    for (int64_t j = 1; j < c; j++)
        if ((double)z[j] > max) max = (double)z[j];
    double sum_exp = 0.0;
    for (int64_t j = 0; j < c; j++) sum_exp += exp((double)z[j] - max);
    const double log_sum = log(sum_exp);
    double loss = 0.0;
    for (int64_t j = 0; j < c; j++) loss += (double)y[j] * (log_sum - ((double)z[j] - max));
    if (d != NULL)
        for (int64_t j = 0; j < c; j++)
            d[j] = (float)((exp((double)z[j] - max) / sum_exp - (double)y[j]) * scale);
    return loss;
}

/* The rows of one block of a loss (docs/threads.md): a row's value and gradient
 * depend on that row only, so the pool may split them; the values are summed after,
 * one chain in row order, whatever the split. */
typedef struct {
    int32_t kind, from_logits;
    int64_t classes;
    double scale;
    const float *y_pred, *y_true; /* (rows, C) */
    float *d_pred;                /* (rows, C) or NULL */
    int64_t first;                /* the block's first row */
    double *values;               /* (block rows,) each row's value */
} Rows;

/* Rows [first + r0, first + r1): their values into values[r0, r1), their gradients. */
static void loss_rows(void *context, int64_t r0, int64_t r1) {
    const Rows *p = context;
    const int64_t c = p->classes;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t row = p->first + r;
        const float *pred = p->y_pred + row * c;                    /* (C,) */
        const float *target = p->y_true + row * c;                  /* (C,) */
        float *d = p->d_pred != NULL ? p->d_pred + row * c : NULL; /* (C,) */
        if (p->kind == NNTK_LOSS_MEAN_SQUARED_ERROR)
            p->values[r] = mse_row(c, pred, target, p->scale, d);
        else if (p->from_logits)
            p->values[r] = cce_logits_row(c, pred, target, p->scale, d);
        else
            p->values[r] = cce_probabilities_row(c, pred, target, p->scale, d);
    }
}

/* GCOVR_EXCL_BR_START: argument validation */
NNTKStatus nntk_check_loss(const char *fn, const char *arg, int32_t kind, int32_t from_logits) {
    if (kind < 0 || kind >= NNTK_LOSS_COUNT_)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s = %d is not a known NNTKLossKind", fn, arg,
                         (int)kind);
    if (from_logits != 0 && from_logits != 1)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: from_logits must be 0 or 1 (got %d)", fn,
                         (int)from_logits);
    if (from_logits && kind != NNTK_LOSS_CATEGORICAL_CROSSENTROPY)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: from_logits = 1 is only meaningful for NNTK_LOSS_CATEGORICAL_CROSSENTROPY "
                         "(%s = %d)",
                         fn, arg, (int)kind);
    return NNTK_OK;
}
/* GCOVR_EXCL_BR_STOP */

NNTK_API NNTKStatus NNTKLossCompute(int32_t kind, int32_t from_logits, int64_t rows, int64_t classes,
                                    const float *y_pred, const float *y_true, float *loss,
                                    float *d_pred) {
    static const char fn[] = "NNTKLossCompute";
    NNTKStatus s;
    if ((s = nntk_check_loss(fn, "kind", kind, from_logits)) != NNTK_OK) return s;
    /* GCOVR_EXCL_BR_START: argument validation */
    if ((s = nntk_check_size(fn, "rows", rows, NNTK_MAX_ELEMENTS)) != NNTK_OK) return s;
    if ((s = nntk_check_size(fn, "classes", classes, NNTK_MAX_ELEMENTS)) != NNTK_OK) return s;
    if (rows > NNTK_MAX_ELEMENTS / classes)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: rows*classes = %lld*%lld exceeds the largest tensor (%lld elements)", fn,
                         (long long)rows, (long long)classes, (long long)NNTK_MAX_ELEMENTS);
    if ((s = nntk_check_pointer(fn, "y_pred", y_pred)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "y_true", y_true)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "loss", loss)) != NNTK_OK) return s;
    if (d_pred != NULL && ((const float *)d_pred == y_pred || (const float *)d_pred == y_true))
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: d_pred must not be the same buffer as %s", fn,
                         (const float *)d_pred == y_pred ? "y_pred" : "y_true");
    /* GCOVR_EXCL_BR_STOP */

    /* SUM_OVER_BATCH_SIZE: the mean over the rows positions; MSE also takes the
     * mean over the class axis first. */
    const double row_scale = 1.0 / (double)rows;
    const double scale = kind == NNTK_LOSS_MEAN_SQUARED_ERROR ? row_scale / (double)classes : row_scale;
    double row_values[LOSS_BLOCK];
    Rows p = {kind, from_logits, classes, scale, y_pred, y_true, d_pred, 0, row_values};
    /* The work of an element in multiply-adds' time: the cross-entropies take a log or
     * an exp and divisions in double (about 16 ns per element measured, W4's loss),
     * the squared error a few operations. */
    const int64_t element_work = kind == NNTK_LOSS_MEAN_SQUARED_ERROR ? 8 : 128;
    const int64_t blocks = (rows + LOSS_BLOCK - 1) / LOSS_BLOCK; /* of equal size */
    double total = 0.0;
    for (int64_t b = 0; b < blocks; b++) {
        p.first = rows * b / blocks;
        const int64_t n = rows * (b + 1) / blocks - p.first;
        nntk_split_rows(element_work * n * classes, n, loss_rows, &p);
        for (int64_t r = 0; r < n; r++) total += row_values[r]; /* one chain, rows in order */
    }
    *loss = (float)(total * scale);
    return NNTK_OK;
}
