/* W6's frames driven from C (nntk_bench/nntk_runners.py compiles this at run time
 * into a shared library of its own and loads it with ctypes). A frame is a row of
 * calls prepared by the bench, each with its buffers, as an app streaming audio would
 * make them: a function of the (handle, batch, steps, in, out) form of the layers'
 * Apply functions, or of the (handle, batch, steps, in, initial_state, out,
 * final_state) form of NNTKLayerChainStream and the recurrent layers'
 * ApplyInferenceWithState (W6: one NNTKLayerChainStream per frame). No nntk header is
 * needed: the functions come as pointers in the table.
 *
 *   nntk_bench_frames(calls, per_frame, frames, first, count)
 *       runs frames first, first+1, ... (count of them, cycling over the table's
 *       `frames` rows); returns the first non-zero status, else 0.
 *   nntk_bench_ns_per_frame(calls, per_frame, frames, count)
 *       the same from frame 0 for `count` frames, timed here in C in the calling
 *       thread's CPU time (a loaded machine delays the frames but does not make the
 *       core slower, as the bench's sgemm peak): nanoseconds per frame, or a negative
 *       value if a call failed. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, CLOCK_THREAD_CPUTIME_ID under -std=c11 */
#include <stdint.h>
#include <time.h>

typedef int32_t (*Apply)(void *, int64_t, int64_t, const float *, float *);
typedef int32_t (*ApplyWithState)(void *, int64_t, int64_t, const float *, const float *, float *,
                                  float *);

/* One call: apply_with_state when it is not NULL, else apply. */
typedef struct {
    Apply apply;
    ApplyWithState apply_with_state;
    void *handle;
    int64_t batch, steps;
    const float *in, *initial_state;
    float *out, *final_state;
} NNTKBenchCall;

int32_t nntk_bench_frames(const NNTKBenchCall *calls, int64_t per_frame, int64_t frames,
                          int64_t first, int64_t count);
double nntk_bench_ns_per_frame(const NNTKBenchCall *calls, int64_t per_frame, int64_t frames,
                               int64_t count);

int32_t nntk_bench_frames(const NNTKBenchCall *calls, int64_t per_frame, int64_t frames,
                          int64_t first, int64_t count) {
    int32_t failed = 0;
    for (int64_t n = 0; n < count; n++) {
        const NNTKBenchCall *row = calls + ((first + n) % frames) * per_frame;
        for (int64_t i = 0; i < per_frame; i++) {
            const NNTKBenchCall *c = row + i;
            const int32_t status =
                c->apply_with_state
                    ? c->apply_with_state(c->handle, c->batch, c->steps, c->in, c->initial_state,
                                          c->out, c->final_state)
                    : c->apply(c->handle, c->batch, c->steps, c->in, c->out);
            if (status != 0 && failed == 0) failed = status;
        }
    }
    return failed;
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

double nntk_bench_ns_per_frame(const NNTKBenchCall *calls, int64_t per_frame, int64_t frames,
                               int64_t count) {
    const double t0 = now_ns();
    const int32_t status = nntk_bench_frames(calls, per_frame, frames, 0, count);
    const double elapsed = now_ns() - t0;
    return status != 0 ? -1.0 : elapsed / (double)count;
}
