/* nntk: the umbrella header. Include this to get the whole public C API.
 *
 * Conventions shared by every layer (see each header for its shapes):
 *  - float32, row-major, batch-major, channels-last: a sequence batch is
 *    (B, T, D); a (B, D) input is passed with steps = 1.
 *  - Each layer's weights are one contiguous block holding the tf.keras
 *    get_weights() tensors in that order and with those shapes.
 *  - Every function returns an NNTKStatus (constructors return NULL) and
 *    leaves a message naming the function and the argument in NNTKLastError().
 *    The library never prints, aborts or exits.
 *  - No hidden state: every call of a recurrent layer starts from its initial
 *    state; streaming is an explicit API. */
#ifndef NNTK_NNTK_H
#define NNTK_NNTK_H

#include "nntk/status.h"

#include "nntk/layer.h"
#include "nntk/loss.h"
#include "nntk/model.h"
#include "nntk/optimizer.h"
#include "nntk/runtime.h"

/* Every layer's header (generated from the layer sources at build time). */
#include "nntk/layers.h"

#endif /* NNTK_NNTK_H */
