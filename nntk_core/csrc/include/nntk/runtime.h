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

#ifdef __cplusplus
}
#endif

#endif /* NNTK_RUNTIME_H */
