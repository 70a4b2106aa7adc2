/* nntk: what the library runs on and what it holds: the compute kernels chosen
 * for this CPU and the memory the library has allocated. */
#ifndef NNTK_RUNTIME_H
#define NNTK_RUNTIME_H

#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The kernel table in use: "avx512", "avx2" (x86-64, chosen at run time from
 * the CPU; NNTK_ISA=generic|avx2 in the environment forces a lower one) or
 * "generic" (plain C, vectorised by the compiler for the build's target). */
NNTK_API const char *NNTKKernelISA(void);

/* The blocking constants of the kernels, one "name=value" per line: the sizes
 * at which a code path changes (a tile, panel or chunk fills), for tests that
 * place shapes one below, at and one above each. Shared ones by name
 * ("pack_k=128", "recurrent_panel=64", ...); each kernel table compiled in
 * (whichever the CPU runs) as "<isa>.<name>" ("avx2.tile_cols=24"). The
 * string is the calling thread's own (valid until its next call), so calls from
 * several threads are safe. */
NNTK_API const char *NNTKKernelConstants(void);

/* Bytes the library has allocated for weights, gradients, caches and
 * workspaces, now and at most since the start (or since the last
 * NNTKMemoryResetPeak). Process-wide, thread-safe. Handle structs of a few
 * dozen bytes are not counted. */
NNTK_API NNTKStatus NNTKMemoryStats(int64_t *current_bytes, int64_t *peak_bytes);

/* Starts a new peak measurement: peak = current. */
NNTK_API void NNTKMemoryResetPeak(void);

/* Threads a training call may use (1..64; default 1). With n > 1 the
 * recurrent layers split their loops over time by batch rows across n - 1
 * worker threads made here and the calling thread (docs/threads.md). Results
 * are bitwise the same for every n. One process-wide pool, used by one call at
 * a time: a call made while another thread's call holds it runs on its own
 * thread. Returns NNTK_ERROR_INVALID_STATE while a call is using the pool (set
 * the count before training, not during it), NNTK_ERROR_OUT_OF_MEMORY when a
 * thread cannot be started (the count is then unchanged). */
NNTK_API NNTKStatus NNTKSetThreadCount(int32_t threads);

/* *threads = the count NNTKSetThreadCount set (1 when never called). */
NNTK_API NNTKStatus NNTKGetThreadCount(int64_t *threads);

/* The least work, in multiply-adds, of a loop the pool splits (min_work in
 * 1..2^62; default 262144 = 2^18: below it a dispatch costs more than it saves
 * on the machines measured, docs/threads.md). A device whose threads wake
 * faster or slower may move it; 1 splits every loop the pool can split, which
 * is how the fixture replay checks every split against the plain result; 2^62
 * splits none. Results are bitwise the same for every value. Process-wide.
 * NNTK_ERROR_INVALID_ARGUMENT outside 1..2^62. */
NNTK_API NNTKStatus NNTKSetSplitMinWork(int64_t min_work);

/* *min_work = the value NNTKSetSplitMinWork set (262144 when never called). */
NNTK_API NNTKStatus NNTKGetSplitMinWork(int64_t *min_work);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_RUNTIME_H */
