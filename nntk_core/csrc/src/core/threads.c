/* The worker pool behind nntk_parallel_rows (core/threads.h, docs/threads.md).
 *
 * NNTKSetThreadCount(n) makes n - 1 workers; nothing is allocated or started per
 * call. One process-wide pool serves one call at a time (the atomic `pool_busy`): a
 * call that finds it taken runs on its own thread, which gives the same bits.
 *
 * A dispatch is published by a new `generation` (release) and finished when `pending`
 * reaches 0. Between dispatches a worker polls `generation` for up to SPIN_NS before it
 * sleeps on a condition variable, and the caller polls `pending` as long before it
 * sleeps: a training call makes its dispatches microseconds apart, and waking a
 * sleeping thread costs more than that (docs/threads.md, measured). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "core/internal.h"
#include "core/threads.h"
#include "nntk/runtime.h"

/* The most threads NNTKSetThreadCount accepts. */
#define MAX_THREADS 64
/* The largest least work NNTKSetSplitMinWork accepts: above any call's work (a
 * product of three sizes of at most 2^24 each is below 2^72, but the largest tensor
 * is 2^31 elements, so no loop here reaches 2^62), so it turns the splits off. */
#define MAX_SPLIT_MIN_WORK ((int64_t)1 << 62)
/* How long a waiting thread polls before it sleeps (nanoseconds). */
#define SPIN_NS 50000

typedef struct Pool Pool;

typedef struct {
    Pool *pool;
    int index; /* 1 .. threads-1: the part it runs */
} Worker;

struct Pool {
    int threads; /* the caller's + the workers' */
    pthread_t handles[MAX_THREADS];
    Worker workers[MAX_THREADS];
    /* The dispatch: written by the caller before it publishes a new generation, read
     * by the workers after they see it. */
    NNTKRowsFn fn;
    void *context;
    int64_t rows;
    int parts;
    _Atomic uint64_t generation; /* a new value: a new dispatch (or stop) */
    atomic_int pending;          /* workers still running the current dispatch */
    atomic_int stop;
    /* Sleeping: under lock */
    pthread_mutex_t lock;
    pthread_cond_t wake, finished;
    int sleepers;      /* workers asleep on wake */
    int caller_asleep; /* the caller asleep on finished */
};

/* The pool (NULL: one thread) and whether a call is using it. */
static _Atomic(Pool *) pool_now = NULL;
static atomic_flag pool_busy = ATOMIC_FLAG_INIT;
/* The least work nntk_split_rows / nntk_split_columns split (NNTKSetSplitMinWork). */
static _Atomic int64_t split_min_work = NNTK_SPLIT_MIN_WORK;

static void run_part(NNTKRowsFn fn, void *context, int64_t rows, int parts, int i) {
    const int64_t first = rows * i / parts, end = rows * (i + 1) / parts;
    if (end > first) fn(context, first, end);
}

static int64_t clock_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

/* One round of polling: the CPU's pause hint, and every 64th round the clock and a
 * sched_yield, so that a thread waiting for this core (on a loaded machine, maybe the
 * one whose part is awaited) runs. Returns 0 once SPIN_NS have passed since start. */
static int keep_polling(int round, int64_t start) {
    cpu_relax();
    if (round % 64 != 0) return 1;
    sched_yield();
    return clock_ns() - start <= SPIN_NS;
}

/* Polls until generation differs from `seen` (returns 1, *now the new value) or
 * SPIN_NS have passed (returns 0). */
static int spin_for_dispatch(Pool *p, uint64_t seen, uint64_t *now) {
    const int64_t start = clock_ns();
    for (int round = 1;; round++) {
        *now = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (*now != seen) return 1;
        if (!keep_polling(round, start)) return 0;
    }
}

/* Polls until pending is 0 (returns 1) or SPIN_NS have passed (returns 0). */
static int spin_for_workers(Pool *p) {
    const int64_t start = clock_ns();
    for (int round = 1;; round++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0) return 1;
        if (!keep_polling(round, start)) return 0;
    }
}

/* The next generation after `seen`: polled, then slept for. */
static uint64_t next_dispatch(Pool *p, uint64_t seen) {
    uint64_t now;
    if (spin_for_dispatch(p, seen, &now)) return now;
    pthread_mutex_lock(&p->lock);
    p->sleepers++;
    while ((now = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen)
        pthread_cond_wait(&p->wake, &p->lock);
    p->sleepers--;
    pthread_mutex_unlock(&p->lock);
    return now;
}

static void *worker_main(void *arg) {
    const Worker *self = arg;
    Pool *p = self->pool;
    uint64_t seen = 0;
    for (;;) {
        seen = next_dispatch(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        if (self->index < p->parts) run_part(p->fn, p->context, p->rows, p->parts, self->index);
        /* The last worker to finish wakes the caller if it sleeps. */
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->lock);
            if (p->caller_asleep) pthread_cond_signal(&p->finished);
            pthread_mutex_unlock(&p->lock);
        }
    }
    return NULL;
}

/* Publishes a new generation and wakes the sleeping workers. */
static void publish(Pool *p) {
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_mutex_lock(&p->lock);
    if (p->sleepers > 0) pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
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
    p->fn = fn;
    p->context = context;
    p->rows = rows;
    p->parts = parts;
    atomic_store_explicit(&p->pending, p->threads - 1, memory_order_relaxed);
    publish(p);
    run_part(fn, context, rows, parts, 0);
    if (!spin_for_workers(p)) {
        pthread_mutex_lock(&p->lock);
        p->caller_asleep = 1;
        while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0)
            pthread_cond_wait(&p->finished, &p->lock);
        p->caller_asleep = 0;
        pthread_mutex_unlock(&p->lock);
    }
    atomic_flag_clear_explicit(&pool_busy, memory_order_release);
}

typedef struct {
    NNTKRowsFn fn;
    void *context;
    int64_t n, width, units;
} Columns;

/* The first column of unit `unit` (n for the last unit's end). */
static int64_t first_column(const Columns *c, int64_t unit) {
    return unit >= c->units ? c->n : unit * c->width;
}

static void column_part(void *context, int64_t first, int64_t end) {
    const Columns *c = context;
    c->fn(c->context, first_column(c, first), first_column(c, end));
}

void nntk_parallel_columns(int64_t n, int64_t width, NNTKRowsFn fn, void *context) {
    Columns c = {fn, context, n, width, n / width};
    if (c.units < 2)
        fn(context, 0, n);
    else
        nntk_parallel_rows(c.units, column_part, &c);
}

void nntk_split_rows(int64_t work, int64_t rows, NNTKRowsFn fn, void *context) {
    if (work < atomic_load_explicit(&split_min_work, memory_order_relaxed))
        fn(context, 0, rows);
    else
        nntk_parallel_rows(rows, fn, context);
}

void nntk_split_columns(int64_t work, int64_t n, int64_t width, NNTKRowsFn fn, void *context) {
    if (work < atomic_load_explicit(&split_min_work, memory_order_relaxed))
        fn(context, 0, n);
    else
        nntk_parallel_columns(n, width, fn, context);
}

/* Stops and joins the first `started` workers and frees the pool. */
static void pool_destroy(Pool *p, int started) {
    atomic_store_explicit(&p->stop, 1, memory_order_release);
    publish(p);
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

NNTK_API NNTKStatus NNTKSetSplitMinWork(int64_t min_work) {
    NNTKStatus s = nntk_check_size("NNTKSetSplitMinWork", "min_work", min_work, MAX_SPLIT_MIN_WORK);
    if (s != NNTK_OK) return s;
    atomic_store_explicit(&split_min_work, min_work, memory_order_relaxed);
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKGetSplitMinWork(int64_t *min_work) {
    NNTKStatus s = nntk_check_pointer("NNTKGetSplitMinWork", "min_work", min_work);
    if (s != NNTK_OK) return s;
    *min_work = atomic_load_explicit(&split_min_work, memory_order_relaxed);
    return NNTK_OK;
}
