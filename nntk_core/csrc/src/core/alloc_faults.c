/* Allocation-failure injection, compiled only into a test build
 * (cmake -DNNTK_ALLOC_FAULTS=ON; never in a release or wheel build).
 *
 * The library is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc
 * there, so every allocation the library's own code makes — the counted
 * buffers of nntk_alloc_bytes and the handle structs alike — comes through
 * the functions below; allocations inside libc or OpenBLAS do not. A test
 * arms the hook with NNTKTestFailAllocation(n): the n-th allocation from then
 * on returns NULL, once. tests/c/alloc_faults.c loops n over every public
 * path; docs/reliability.md describes the contract it checks. */
#ifdef NNTK_ALLOC_FAULTS
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "nntk/status.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *p, size_t size);

static _Atomic int64_t allocations = 0; /* since the last NNTKTestFailAllocation */
static _Atomic int64_t fail_at = 0;      /* 0: inject nothing */

/* Test build only: makes the n-th library allocation from now fail (n >= 1;
 * 0 disarms) and restarts the count. */
NNTK_API void NNTKTestFailAllocation(int64_t n) {
    atomic_store(&fail_at, n);
    atomic_store(&allocations, 0);
}

/* Test build only: library allocations since the last NNTKTestFailAllocation. */
NNTK_API int64_t NNTKTestAllocationCount(void) { return atomic_load(&allocations); }

static int injected(void) {
    const int64_t n = atomic_fetch_add(&allocations, 1) + 1;
    return n == atomic_load(&fail_at);
}

void *__wrap_malloc(size_t size);
void *__wrap_malloc(size_t size) { return injected() ? NULL : __real_malloc(size); }
void *__wrap_calloc(size_t count, size_t size);
void *__wrap_calloc(size_t count, size_t size) { return injected() ? NULL : __real_calloc(count, size); }
void *__wrap_realloc(void *p, size_t size);
void *__wrap_realloc(void *p, size_t size) { return injected() ? NULL : __real_realloc(p, size); }
#else
typedef int nntk_alloc_faults_not_built; /* ISO C: a translation unit must declare something */
#endif
