/* Internal helpers shared by every layer: error reporting, argument checks,
 * object tags, and allocation. Not part of the public API. */
#ifndef NNTK_INTERNAL_H
#define NNTK_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "nntk/status.h"

/* Records the error for NNTKLastError() and returns `status`. The message
 * must start with the public function's name. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
NNTKStatus nntk_fail(NNTKStatus status, const char *fmt, ...);

/* For a layer that calls another layer's public function: when `status` is an
 * error, prefixes the inner message with `fn` ("fn: inner message"). Returns
 * `status`. */
NNTKStatus nntk_relabel(const char *fn, NNTKStatus status);

/* The thread's last error, kept while a call tries something that may fail without the
 * call failing (NNTKModelLoad's stream chain): NNTKLastError names the last failing
 * public call and stays until the next one (nntk/status.h), so such a call puts it back. */
typedef struct {
    NNTKStatus status;
    char message[512]; /* status.c's buffer size */
} NNTKSavedError;
void nntk_error_save(NNTKSavedError *saved);
void nntk_error_restore(const NNTKSavedError *saved);

/* Every handle starts with a tag so a handle of the wrong kind (a Dense
 * gradient passed to a Conv1d call, a freed or foreign pointer that still
 * happens to be readable) is refused instead of misused. */
#define NNTK_TAG(a, b, c, d) \
    ((uint32_t)(a) | ((uint32_t)(b) << 8) | ((uint32_t)(c) << 16) | ((uint32_t)(d) << 24))
#define NNTK_TAG_DEAD NNTK_TAG('d', 'e', 'a', 'd')

/* Checks `handle` is non-NULL and carries `tag`; names `arg` in the error. */
NNTKStatus nntk_check_handle(const char *fn, const char *arg, const void *handle, uint32_t tag);

/* One call at a time per handle (docs/DESIGN.md §3, Threads). A handle whose
 * calls change state (or read what other calls change) carries an `in_call`
 * flag, cleared at creation. nntk_call_enter sets it for the length of such a
 * call; a call that finds it already set is refused with
 * NNTK_ERROR_INVALID_STATE (it never waits). Every exit after a successful
 * enter must nntk_call_leave. Acquire on entry and release on exit also order
 * the accepted calls: what one call wrote, the next call on the handle sees,
 * whichever thread makes it. Cost: one uncontended atomic exchange and one
 * store per call (docs/reliability.md §2). */
static inline NNTKStatus nntk_call_enter(const char *fn, const char *arg, atomic_flag *in_call) {
    if (atomic_flag_test_and_set_explicit(in_call, memory_order_acquire))
        return nntk_fail(NNTK_ERROR_INVALID_STATE,
                         "%s: %s is in use by another call (one call at a time per handle)", fn, arg);
    return NNTK_OK;
}

static inline void nntk_call_leave(atomic_flag *in_call) {
    atomic_flag_clear_explicit(in_call, memory_order_release);
}

/* Checks `p` is non-NULL. */
NNTKStatus nntk_check_pointer(const char *fn, const char *arg, const void *p);

/* Checks 1 <= value <= limit. */
NNTKStatus nntk_check_size(const char *fn, const char *arg, int64_t value, int64_t limit);

/* Checks batch, steps >= 1 and that batch*steps*width fits comfortably. */
NNTKStatus nntk_check_batch(const char *fn, int64_t batch, int64_t steps, int64_t width);

/* Reads an optional training config: *max_batch, *max_steps = the capacity to
 * reserve at creation (both 0 when training_config is NULL or all-zero; a
 * max_steps of 0 with a max_batch means 1 step). */
NNTKStatus nntk_training_capacity(const char *fn, const NNTKTrainingConfig *training_config,
                                  int64_t *max_batch, int64_t *max_steps);

/* Checks a loss (nntk/loss.h): `kind` (named `arg`) an NNTKLossKind, from_logits
 * 0 or 1, and 1 only for the categorical cross-entropy (train/loss.c). */
NNTKStatus nntk_check_loss(const char *fn, const char *arg, int32_t kind, int32_t from_logits);

/* Checks that `kind` is a valid NNTKActivationKind. */
NNTKStatus nntk_check_activation(const char *fn, const char *arg, int32_t kind);

/* Largest size any single dimension may have: keeps every product of three
 * dimensions far below INT64_MAX and BLAS's 32-bit int for one matrix side. */
#define NNTK_MAX_DIM ((int64_t)1 << 24)
/* Largest number of elements in one tensor (fits a 32-bit BLAS index). */
#define NNTK_MAX_ELEMENTS ((int64_t)1 << 31)

/* Zeroed allocation of n floats, 64-byte aligned, or NULL (n == 0 returns
 * NULL too). Counted (NNTKMemoryStats): free it with nntk_free. */
float *nntk_alloc_floats(int64_t n);

/* Zeroed, aligned, counted allocation of `bytes` (> 0), or NULL. */
void *nntk_alloc_bytes(int64_t bytes);

/* Frees what nntk_alloc_floats / nntk_alloc_bytes / nntk_reserve returned (NULL: nothing). */
void nntk_free(void *p);

/* Ensures *buf holds at least `needed` floats (grows, never shrinks; the
 * contents are not kept). Returns NNTK_OK or NNTK_ERROR_OUT_OF_MEMORY. */
NNTKStatus nntk_reserve(const char *fn, float **buf, int64_t *capacity, int64_t needed);

/* Copies n floats. */
void nntk_copy(float *dst, const float *src, int64_t n);

#endif /* NNTK_INTERNAL_H */
