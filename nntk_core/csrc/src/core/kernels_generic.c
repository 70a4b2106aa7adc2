/* The generic kernel table (see kernels.h, kernels_impl.inc). Baseline flags:
 * runs on any CPU the library is built for. */

#define NNTK_ISA_NAME generic
#define NNTK_PLAIN_C /* no intrinsics even if the build targets a wider CPU */
#define NNTK_ISA_STRING "generic"
#include "core/kernels_impl.inc"

