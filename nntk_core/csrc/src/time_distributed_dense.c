/* TimeDistributed(Dense): Dense over the (batch·steps, D) view of the input,
 * which is what Dense does already; its layer type lives beside Dense's in
 * dense.c (same fields, weights and ops), nothing of Dense is repeated here. */
#include "core/layer.h"
#include "nntk/time_distributed_dense.h"

NNTK_API NNTKTimeDistributedDenseConfig *NNTKTimeDistributedDenseConfigCreate(int64_t input_dim,
                                                                              int64_t units,
                                                                              int32_t activation,
                                                                              int32_t use_bias) {
    const NNTKLayerValue values[] = {{.i = input_dim}, {.i = units}, {.i = activation}, {.i = use_bias}};
    return (NNTKTimeDistributedDenseConfig *)nntk_layer_config_create(
        "NNTKTimeDistributedDenseConfigCreate", &nntk_time_distributed_dense_type, values);
}

NNTK_DEFINE_LAYER(TimeDistributedDense, nntk_time_distributed_dense_type)
