/* The avx512 kernel table (see kernels.h, kernels_impl.inc). Compiled with
 * its instruction-set flags on x86-64 only (CMakeLists.txt); used only when the
 * CPU reports them at run time. */
#if defined(__x86_64__) && defined(NNTK_X86_KERNELS)
#define NNTK_ISA_NAME avx512
#define NNTK_ISA_STRING "avx512"
#include "core/kernels_impl.inc"
#else
/* Not built for this target: an empty unit (ISO C forbids an empty file). */
typedef int nntk_kernels_avx512_unused;
#endif
