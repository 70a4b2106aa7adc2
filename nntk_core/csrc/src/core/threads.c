/* The worker pool behind nntk_parallel_rows (core/threads.h, docs/threads.md).
 *
 * NNTKSetThreadCount(n) makes n - 1 workers that sleep on a condition variable
 * between dispatches; nothing is allocated or started per call. One process-wide
 * pool serves one call at a time (the atomic `pool_busy`): a call that finds it
 * taken runs on its own thread, which gives the same bits. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/internal.h"
#include "core/threads.h"
#include "nntk/runtime.h"

/* The most threads NNTKSetThreadCount accepts. */
#define MAX_THREADS 64

typedef struct Pool Pool;

typedef struct {
    Pool *pool;
    int index; /* 1 .. threads-1: the part it runs */
} Worker;

struct Pool {
    int threads; /* the caller's + the workers' */
    pthread_t handles[MAX_THREADS];
    Worker workers[MAX_THREADS];
    pthread_mutex_t lock;
    pthread_cond_t wake, finished;
    /* Under lock: the dispatch (a new generation wakes the workers) */
    uint64_t generation;
    int pending; /* workers still running the current dispatch */
    int stop;
    NNTKRowsFn fn;
    void *context;
    int64_t rows;
    int parts;
};

/* The pool (NULL: one thread) and whether a call is using it. */
static _Atomic(Pool *) pool_now = NULL;
static atomic_flag pool_busy = ATOMIC_FLAG_INIT;

static void run_part(NNTKRowsFn fn, void *context, int64_t rows, int parts, int i) {
    const int64_t first = rows * i / parts, end = rows * (i + 1) / parts;
    if (end > first) fn(context, first, end);
}

static void *worker_main(void *arg) {
    const Worker *self = arg;
    Pool *p = self->pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->generation == seen && !p->stop) pthread_cond_wait(&p->wake, &p->lock);
        if (p->stop) break;
        seen = p->generation;
        const NNTKRowsFn fn = p->fn;
        void *context = p->context;
        const int64_t rows = p->rows;
        const int parts = p->parts;
        pthread_mutex_unlock(&p->lock);
        if (self->index < parts) run_part(fn, context, rows, parts, self->index);
        pthread_mutex_lock(&p->lock);
        if (--p->pending == 0) pthread_cond_signal(&p->finished);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

void nntk_parallel_rows(int64_t rows, NNTKRowsFn fn, void *context) {
    /* No pool (the default): no atomic read-modify-write on the shared flag either. */
    if (rows < 2 || atomic_load_explicit(&pool_now, memory_order_relaxed) == NULL ||
        atomic_flag_test_and_set_explicit(&pool_busy, memory_order_acquire)) {
        fn(context, 0, rows);
        return;
    }
    Pool *p = atomic_load_explicit(&pool_now, memory_order_acquire); /* stable while held */
    if (p == NULL) {
        atomic_flag_clear_explicit(&pool_busy, memory_order_release);
        fn(context, 0, rows);
        return;
    }
    const int parts = rows < p->threads ? (int)rows : p->threads;
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->context = context;
    p->rows = rows;
    p->parts = parts;
    p->pending = p->threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    run_part(fn, context, rows, parts, 0);
    pthread_mutex_lock(&p->lock);
    while (p->pending > 0) pthread_cond_wait(&p->finished, &p->lock);
    pthread_mutex_unlock(&p->lock);
    atomic_flag_clear_explicit(&pool_busy, memory_order_release);
}

/* Stops and joins the first `started` workers and frees the pool. */
static void pool_destroy(Pool *p, int started) {
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i <= started; i++) pthread_join(p->handles[i], NULL);
    pthread_cond_destroy(&p->finished);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static NNTKStatus pool_create(const char *fn, int threads, Pool **out) {
    Pool *p = calloc(1, sizeof *p);
    if (p == NULL) return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory for the pool", fn);
    p->threads = threads;
    /* GCOVR_EXCL_BR_START: pthread set-up fails only when the system is out of resources */
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: cannot create a mutex", fn);
    }
    if (pthread_cond_init(&p->wake, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: cannot create a condition variable", fn);
    }
    if (pthread_cond_init(&p->finished, NULL) != 0) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: cannot create a condition variable", fn);
    }
    for (int i = 1; i < threads; i++) {
        p->workers[i] = (Worker){p, i};
        if (pthread_create(&p->handles[i], NULL, worker_main, &p->workers[i]) != 0) {
            pool_destroy(p, i - 1);
            return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: cannot start worker thread %d of %d",
                             fn, i, threads - 1);
        }
    }
    /* GCOVR_EXCL_BR_STOP */
    *out = p;
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKSetThreadCount(int32_t threads) {
    static const char fn[] = "NNTKSetThreadCount";
    if (threads < 1 || threads > MAX_THREADS)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: threads=%d is not in 1..%d", fn,
                         (int)threads, MAX_THREADS);
    if (atomic_flag_test_and_set_explicit(&pool_busy, memory_order_acquire))
        return nntk_fail(NNTK_ERROR_INVALID_STATE,
                         "%s: the pool is in use by a call on another thread", fn);
    Pool *fresh = NULL;
    NNTKStatus s = threads > 1 ? pool_create(fn, threads, &fresh) : NNTK_OK;
    if (s == NNTK_OK) {
        Pool *old = atomic_exchange_explicit(&pool_now, fresh, memory_order_acq_rel);
        if (old) pool_destroy(old, old->threads - 1);
    }
    atomic_flag_clear_explicit(&pool_busy, memory_order_release);
    return s;
}

NNTK_API NNTKStatus NNTKGetThreadCount(int64_t *threads) {
    NNTKStatus s = nntk_check_pointer("NNTKGetThreadCount", "threads", threads);
    if (s != NNTK_OK) return s;
    const Pool *p = atomic_load_explicit(&pool_now, memory_order_acquire);
    *threads = p ? p->threads : 1;
    return NNTK_OK;
}
