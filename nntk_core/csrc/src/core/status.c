/* Thread-local error state, argument checks and allocation helpers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nntk/runtime.h"

#ifndef NNTK_VERSION_STRING
#define NNTK_VERSION_STRING "0.0.0"
#endif

static _Thread_local char last_error[sizeof ((NNTKSavedError *)0)->message];
static _Thread_local NNTKStatus last_status = NNTK_OK;

NNTKStatus nntk_fail(NNTKStatus status, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, args);
    va_end(args);
    last_status = status;
    return status;
}

NNTKStatus nntk_relabel(const char *fn, NNTKStatus status) {
    /* GCOVR_EXCL_BR_START: relabels only a failure (argument validation, out of memory) */
    if (status == NNTK_OK) return status;
    /* GCOVR_EXCL_BR_STOP */
    char inner[sizeof last_error]; /* the message is formatted into last_error itself */
    memcpy(inner, last_error, sizeof inner);
    return nntk_fail(status, "%s: %s", fn, inner);
}

void nntk_error_save(NNTKSavedError *saved) {
    saved->status = last_status;
    memcpy(saved->message, last_error, sizeof saved->message);
}

void nntk_error_restore(const NNTKSavedError *saved) {
    last_status = saved->status;
    memcpy(last_error, saved->message, sizeof last_error);
}

NNTK_API const char *NNTKLastError(void) { return last_error; }

NNTK_API NNTKStatus NNTKLastStatus(void) { return last_status; }

NNTK_API void NNTKClearError(void) {
    last_error[0] = '\0';
    last_status = NNTK_OK;
}

NNTK_API const char *NNTKVersion(void) { return NNTK_VERSION_STRING; }

/* GCOVR_EXCL_BR_START: the shared argument checkers */
NNTKStatus nntk_check_pointer(const char *fn, const char *arg, const void *p) {
    if (p == NULL) return nntk_fail(NNTK_ERROR_NULL_POINTER, "%s: %s is NULL", fn, arg);
    return NNTK_OK;
}

NNTKStatus nntk_check_handle(const char *fn, const char *arg, const void *handle, uint32_t tag) {
    if (handle == NULL) return nntk_fail(NNTK_ERROR_NULL_POINTER, "%s: %s is NULL", fn, arg);
    uint32_t found;
    memcpy(&found, handle, sizeof found);
    if (found == NNTK_TAG_DEAD)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: %s was already destroyed", fn, arg);
    if (found != tag)
        return nntk_fail(NNTK_ERROR_INVALID_STATE,
                         "%s: %s is not a handle of the expected kind (created by another layer?)", fn, arg);
    return NNTK_OK;
}

NNTKStatus nntk_check_size(const char *fn, const char *arg, int64_t value, int64_t limit) {
    if (value < 1)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s must be >= 1 (got %lld)", fn, arg,
                         (long long)value);
    if (value > limit)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s must be <= %lld (got %lld)", fn, arg,
                         (long long)limit, (long long)value);
    return NNTK_OK;
}

NNTKStatus nntk_check_batch(const char *fn, int64_t batch, int64_t steps, int64_t width) {
    NNTKStatus s;
    if ((s = nntk_check_size(fn, "batch", batch, NNTK_MAX_DIM)) != NNTK_OK) return s;
    if ((s = nntk_check_size(fn, "steps", steps, NNTK_MAX_DIM)) != NNTK_OK) return s;
    /* batch, steps < 2^24 each, so batch*steps < 2^48 and cannot overflow. */
    if (batch * steps > NNTK_MAX_ELEMENTS / (width > 0 ? width : 1))
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: batch*steps*features = %lld*%lld*%lld exceeds the largest tensor (%lld elements)",
                         fn, (long long)batch, (long long)steps, (long long)width,
                         (long long)NNTK_MAX_ELEMENTS);
    return NNTK_OK;
}
/* GCOVR_EXCL_BR_STOP */

NNTKStatus nntk_training_capacity(const char *fn, const NNTKTrainingConfig *training_config,
                                  int64_t *max_batch, int64_t *max_steps) {
    *max_batch = 0;
    *max_steps = 0;
    if (training_config == NULL || (training_config->max_batch == 0 && training_config->max_steps == 0))
        return NNTK_OK;
    NNTKStatus s;
    if ((s = nntk_check_size(fn, "training_config.max_batch", training_config->max_batch, NNTK_MAX_DIM)) != NNTK_OK)
        return s;
    int64_t steps = training_config->max_steps == 0 ? 1 : training_config->max_steps;
    if ((s = nntk_check_size(fn, "training_config.max_steps", steps, NNTK_MAX_DIM)) != NNTK_OK) return s;
    /* Both < 2^24, so the product cannot overflow; bounding it keeps every
     * rows * width a layer reserves from it far below INT64_MAX. */
    /* GCOVR_EXCL_BR_START: argument validation */
    if (training_config->max_batch * steps > NNTK_MAX_ELEMENTS)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: training_config.max_batch*max_steps = %lld*%lld exceeds the largest tensor "
                         "(%lld elements)",
                         fn, (long long)training_config->max_batch, (long long)steps,
                         (long long)NNTK_MAX_ELEMENTS);
    /* GCOVR_EXCL_BR_STOP */
    *max_batch = training_config->max_batch;
    *max_steps = steps;
    return NNTK_OK;
}

/* GCOVR_EXCL_BR_START: the shared argument checker */
NNTKStatus nntk_check_activation(const char *fn, const char *arg, int32_t kind) {
    if (kind < 0 || kind >= NNTK_ACTIVATION_COUNT_)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s = %d is not a known NNTKActivationKind",
                         fn, arg, (int)kind);
    return NNTK_OK;
}
/* GCOVR_EXCL_BR_STOP */

/* Counted, 64-byte aligned allocations: a 64-byte header in front of each
 * block keeps the pointer malloc returned and the size, so nntk_free can
 * subtract it. The counters are process-wide (atomic). */
static _Atomic int64_t allocated_now = 0;
static _Atomic int64_t allocated_peak = 0;

#define HEADER 64
typedef struct {
    void *raw;
    int64_t bytes;
} Header;

void *nntk_alloc_bytes(int64_t bytes) {
    /* GCOVR_EXCL_BR_START: sizes were validated by every caller: cannot fail */
    if (bytes <= 0 || bytes > NNTK_MAX_ELEMENTS * 16) return NULL;
    /* GCOVR_EXCL_BR_STOP */
    unsigned char *raw = malloc((size_t)bytes + 2 * HEADER);
    if (raw == NULL) return NULL;
    unsigned char *p = (unsigned char *)(((uintptr_t)raw + 2 * HEADER - 1) & ~(uintptr_t)(HEADER - 1));
    Header h = {raw, bytes};
    memcpy(p - sizeof h, &h, sizeof h);
    memset(p, 0, (size_t)bytes);
    const int64_t now = atomic_fetch_add(&allocated_now, bytes) + bytes;
    int64_t peak = atomic_load(&allocated_peak);
    /* GCOVR_EXCL_BR_START: the retry runs only when another thread raced this one */
    while (now > peak && !atomic_compare_exchange_weak(&allocated_peak, &peak, now)) {
    }
    /* GCOVR_EXCL_BR_STOP */
    return p;
}

void nntk_free(void *p) {
    if (p == NULL) return;
    Header h;
    memcpy(&h, (unsigned char *)p - sizeof h, sizeof h);
    atomic_fetch_sub(&allocated_now, h.bytes);
    free(h.raw);
}

NNTK_API NNTKStatus NNTKMemoryStats(int64_t *current_bytes, int64_t *peak_bytes) {
    static const char fn[] = "NNTKMemoryStats";
    NNTKStatus s;
    if ((s = nntk_check_pointer(fn, "current_bytes", current_bytes)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "peak_bytes", peak_bytes)) != NNTK_OK) return s;
    *current_bytes = atomic_load(&allocated_now);
    *peak_bytes = atomic_load(&allocated_peak);
    return NNTK_OK;
}

NNTK_API void NNTKMemoryResetPeak(void) { atomic_store(&allocated_peak, atomic_load(&allocated_now)); }

float *nntk_alloc_floats(int64_t n) {
    /* GCOVR_EXCL_BR_START: sizes were validated by every caller: cannot fail */
    if (n <= 0 || n > NNTK_MAX_ELEMENTS * 4) return NULL;
    /* GCOVR_EXCL_BR_STOP */
    return (float *)nntk_alloc_bytes(n * (int64_t)sizeof(float));
}

NNTKStatus nntk_reserve(const char *fn, float **buf, int64_t *capacity, int64_t needed) {
    if (needed <= *capacity) return NNTK_OK;
    float *grown = nntk_alloc_floats(needed);
    if (grown == NULL)
        return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory allocating %lld floats", fn,
                         (long long)needed);
    nntk_free(*buf);
    *buf = grown;
    *capacity = needed;
    return NNTK_OK;
}

void nntk_copy(float *dst, const float *src, int64_t n) {
    if (n > 0) memcpy(dst, src, (size_t)n * sizeof(float));
}
