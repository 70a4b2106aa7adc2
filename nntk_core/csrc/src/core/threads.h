/* The library's worker threads (docs/threads.md): a fixed pool made by
 * NNTKSetThreadCount, used to split work whose bits do not depend on the split.
 * Not part of the public API. */
#ifndef NNTK_THREADS_H
#define NNTK_THREADS_H

#include <stdint.h>

/* The least work a split is made for by default, in multiply-adds (or elements of a
 * loop doing about as much per element): below it a dispatch costs more than it saves.
 * NNTKSetSplitMinWork (nntk/runtime.h) changes it. */
#define NNTK_SPLIT_MIN_WORK ((int64_t)1 << 18)

/* One part of a split: rows [first, end) of the caller's work. */
typedef void (*NNTKRowsFn)(void *context, int64_t first, int64_t end);

/* Runs fn over rows [0, rows) in contiguous parts, one per pool thread (the
 * caller runs the first and waits for the others), or in one part on the
 * calling thread when there is no pool, rows < 2, or another call holds the
 * pool. fn must give every row the same bits whichever part holds it: the
 * thread count never changes a result. */
void nntk_parallel_rows(int64_t rows, NNTKRowsFn fn, void *context);

/* The same over columns [0, n) in whole units of `width` columns, the last part
 * taking the remainder: fn(context, first column, end column). In one part on the
 * calling thread when n holds fewer than two units. */
void nntk_parallel_columns(int64_t n, int64_t width, NNTKRowsFn fn, void *context);

/* nntk_parallel_rows / nntk_parallel_columns when `work` (multiply-adds, or loop
 * elements costing about as much) reaches the split's least work (NNTK_SPLIT_MIN_WORK
 * unless NNTKSetSplitMinWork set another); below it fn runs over
 * everything on the calling thread, as a dispatch would cost more than it saves. */
void nntk_split_rows(int64_t work, int64_t rows, NNTKRowsFn fn, void *context);
void nntk_split_columns(int64_t work, int64_t n, int64_t width, NNTKRowsFn fn, void *context);

#endif /* NNTK_THREADS_H */
