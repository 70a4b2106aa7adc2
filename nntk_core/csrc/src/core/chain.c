/* A chain of layers streamed chunk by chunk in one call (nntk/layer.h,
 * NNTKLayerChain): each layer's NNTKLayerApply in inference mode, in order,
 * between two activation buffers reserved beforehand, the states of the
 * layers with states read from and written to the caller's state buffers. */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/layer.h"

#define CHAIN_TAG NNTK_TAG('C', 'h', 'a', 'n')

typedef struct ChainLink {
    NNTKLayer *layer; /* borrowed */
    uint32_t tag;     /* the layer's tag when appended (its type's filter tag) */
    int64_t out_features;
    int64_t state_offset; /* floats per sequence of the batch before this layer's states */
    int64_t state_width;  /* floats per sequence of the batch of its states (0: none) */
    int64_t steps;        /* the steps it takes in the current Stream call */
    int64_t out_steps;    /* the steps it gives in the current Stream call */
} ChainLink;

struct NNTKLayerChain {
    uint32_t tag;
    atomic_flag in_call; /* one Stream at a time (docs/DESIGN.md §3) */
    int32_t count;
    ChainLink *links; /* (count,) */
    int64_t max_batch, max_steps;
    int64_t input_features, state_width;
    int32_t has_states; /* a layer with states is in the chain: no WINDOW layer after it */
    int32_t drops_steps; /* the last layer gives (batch, features) */
    /* Two activation buffers of max_batch * max_steps * buffer_width floats
     * (the widest output of a layer before the last): layers alternate. */
    float *buffers[2];
    int64_t buffer_capacity[2]; /* floats (nntk_reserve) */
    int64_t buffer_width;
    /* The chunk (batch, steps) that links[].steps and .out_steps were last worked out
     * for by a chunk_shape that passed (0, 0: none since the last Append). A Stream of
     * the same chunk needs only each layer's tag checked again (same_chunk): a layer's
     * shapes depend on its config and the chunk only, and neither changes. */
    int64_t shaped_batch, shaped_steps;
};

/* Checks `layer` may come after the chain's layers (all of them when chain is
 * NULL: a first layer), and gives its link. */
static NNTKStatus check_link(const char *fn, const NNTKLayerChain *chain, NNTKLayer *layer,
                             ChainLink *link) {
    NNTKStatus s;
    if ((s = nntk_layer_check_handle(fn, "layer", layer, NULL, NNTK_ROLE_FILTER)) != NNTK_OK) return s;
    const NNTKLayerConfig *config = &layer->config;
    const NNTKLayerType *type = config->type;
    const int32_t kind = type->streams != NULL ? type->streams(config) : NNTK_STREAM_NONE;
    if (kind == NNTK_STREAM_NONE)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: layer (%s) cannot stream: its output steps depend on steps outside "
                         "a chunk (padding at the chunk's edges, a pooling over it, or a backward "
                         "direction)",
                         fn, type->name);
    if (kind == NNTK_STREAM_WINDOW && chain != NULL && chain->has_states)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: layer (%s, padding valid) needs whole windows of its input in each "
                         "chunk, which only a layer before every layer with states gets (its input "
                         "is then the caller's chunk)",
                         fn, type->name);
    if (chain != NULL) {
        const ChainLink *last = &chain->links[chain->count - 1];
        const int64_t wanted = nntk_layer_input_features(config);
        if (wanted != last->out_features)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                             "%s: layer (%s) takes %lld input features but the chain's last layer "
                             "(%s) gives %lld",
                             fn, type->name, (long long)wanted, last->layer->type->name,
                             (long long)last->out_features);
        if (chain->drops_steps && type->sequence_input)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                             "%s: layer (%s) takes (batch, steps, features) but the chain's last "
                             "layer (%s) gives (batch, features)",
                             fn, type->name, last->layer->type->name);
    }
    int64_t widths[NNTK_MAX_STATES];
    const int32_t n = nntk_layer_state_widths(config, widths);
    link->layer = layer;
    link->tag = layer->tag;
    link->state_offset = chain != NULL ? chain->state_width : 0;
    link->state_width = 0;
    for (int32_t i = 0; i < n; i++) link->state_width += widths[i];
    return nntk_layer_output_features(fn, layer, &link->out_features);
}

/* Grows the activation buffers to hold an output of `width` features (each
 * keeps its floats' capacity: nntk_reserve only grows). */
static NNTKStatus reserve_buffers(const char *fn, NNTKLayerChain *chain, int64_t width) {
    if (width <= chain->buffer_width) return NNTK_OK;
    if (width > NNTK_MAX_ELEMENTS / chain->max_batch / chain->max_steps)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: max_batch * max_steps * %lld features is too large", fn,
                         (long long)width);
    const int64_t floats = chain->max_batch * chain->max_steps * width;
    for (int i = 0; i < 2; i++) {
        NNTKStatus s = nntk_reserve(fn, &chain->buffers[i], &chain->buffer_capacity[i], floats);
        if (s != NNTK_OK) return s;
    }
    chain->buffer_width = width;
    return NNTK_OK;
}

static int32_t link_drops_steps(const ChainLink *link) {
    const NNTKLayerConfig *config = &link->layer->config;
    return config->type->drops_steps != NULL && config->type->drops_steps(config);
}

static void add_link(NNTKLayerChain *chain, ChainLink *links, const ChainLink *link) {
    chain->shaped_batch = chain->shaped_steps = 0; /* the new link's steps are not worked out */
    links[chain->count] = *link;
    chain->links = links;
    chain->count++;
    chain->state_width += link->state_width;
    if (link->state_width > 0) chain->has_states = 1;
    if (link_drops_steps(link)) chain->drops_steps = 1;
}

NNTK_API NNTKLayerChain *NNTKLayerChainCreate(NNTKLayer *layer, int64_t max_batch, int64_t max_steps) {
    static const char fn[] = "NNTKLayerChainCreate";
    ChainLink link;
    if (check_link(fn, NULL, layer, &link) != NNTK_OK ||
        nntk_check_size(fn, "max_batch", max_batch, NNTK_MAX_DIM) != NNTK_OK ||
        nntk_check_size(fn, "max_steps", max_steps, NNTK_MAX_DIM) != NNTK_OK ||
        nntk_check_batch(fn, max_batch, max_steps, nntk_layer_input_features(&layer->config)) != NNTK_OK)
        return NULL;
    NNTKLayerChain *chain = nntk_alloc_bytes(sizeof *chain);
    ChainLink *links = nntk_alloc_bytes(sizeof *links);
    if (chain == NULL || links == NULL) {
        nntk_free(chain);
        nntk_free(links);
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    memset(chain, 0, sizeof *chain);
    chain->tag = CHAIN_TAG;
    atomic_flag_clear(&chain->in_call);
    chain->max_batch = max_batch;
    chain->max_steps = max_steps;
    chain->input_features = nntk_layer_input_features(&layer->config);
    add_link(chain, links, &link);
    return chain;
}

NNTK_API void NNTKLayerChainDestroy(NNTKLayerChain *chain) {
    if (chain == NULL || chain->tag != CHAIN_TAG) return;
    chain->tag = NNTK_TAG_DEAD;
    nntk_free(chain->buffers[0]);
    nntk_free(chain->buffers[1]);
    nntk_free(chain->links);
    nntk_free(chain);
}

NNTK_API NNTKStatus NNTKLayerChainAppend(NNTKLayerChain *chain, NNTKLayer *layer) {
    static const char fn[] = "NNTKLayerChainAppend";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "chain", chain, CHAIN_TAG)) != NNTK_OK) return s;
    if ((s = nntk_call_enter(fn, "chain", &chain->in_call)) != NNTK_OK) return s;
    ChainLink link;
    ChainLink *links = NULL;
    /* The buffers hold the outputs of every layer but the last: the current
     * last layer's, once `layer` follows it. */
    if ((s = check_link(fn, chain, layer, &link)) == NNTK_OK &&
        (s = reserve_buffers(fn, chain, chain->links[chain->count - 1].out_features)) == NNTK_OK) {
        links = nntk_alloc_bytes((int64_t)sizeof *links * (chain->count + 1));
        if (links == NULL) s = nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    if (s == NNTK_OK) {
        memcpy(links, chain->links, sizeof *links * (size_t)chain->count);
        nntk_free(chain->links);
        add_link(chain, links, &link);
    }
    nntk_call_leave(&chain->in_call);
    return s;
}

NNTK_API NNTKStatus NNTKLayerChainDescribe(const NNTKLayerChain *chain, int64_t *layer_count,
                                           int64_t *input_features, int64_t *output_features,
                                           int64_t *state_width) {
    static const char fn[] = "NNTKLayerChainDescribe";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "chain", chain, CHAIN_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "layer_count", layer_count)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "input_features", input_features)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "output_features", output_features)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "state_width", state_width)) != NNTK_OK) return s;
    *layer_count = chain->count;
    *input_features = chain->input_features;
    *output_features = chain->links[chain->count - 1].out_features;
    *state_width = chain->state_width;
    return NNTK_OK;
}

/* Checks a chunk (batch, steps) against the capacity and every layer's own
 * checks (its handle too); links[i].steps and .out_steps = the steps layer i
 * takes and gives (links NULL: not wanted). */
static NNTKStatus chunk_shape(const char *fn, const NNTKLayerChain *chain, int64_t batch,
                              int64_t steps, ChainLink *links, int64_t *out_steps,
                              int64_t *out_features) {
    NNTKStatus s;
    if ((s = nntk_check_size(fn, "batch", batch, chain->max_batch)) != NNTK_OK) return s;
    if ((s = nntk_check_size(fn, "steps", steps, chain->max_steps)) != NNTK_OK) return s;
    int64_t at = steps, features = chain->input_features;
    for (int32_t i = 0; i < chain->count; i++) {
        if (links != NULL) links[i].steps = at;
        if ((s = nntk_layer_output_shape(fn, NULL, chain->links[i].layer, batch, at, &at,
                                         &features)) != NNTK_OK)
            return s;
        if (links != NULL) links[i].out_steps = at;
    }
    *out_steps = at;
    *out_features = features;
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKLayerChainOutputShape(const NNTKLayerChain *chain, int64_t batch,
                                              int64_t steps, int64_t *out_steps,
                                              int64_t *out_features) {
    static const char fn[] = "NNTKLayerChainOutputShape";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "chain", chain, CHAIN_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_steps", out_steps)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_features", out_features)) != NNTK_OK) return s;
    int64_t o_steps, o_features;
    if ((s = chunk_shape(fn, chain, batch, steps, NULL, &o_steps, &o_features)) != NNTK_OK) return s;
    *out_steps = o_steps;
    *out_features = o_features;
    return NNTK_OK;
}

/* 1 when (batch, steps) is the chunk links[].steps were worked out for and every
 * layer still carries the tag it had when appended (a destroyed one does not): what
 * chunk_shape would check again, it would find the same. Else chunk_shape runs (and
 * gives its error, when there is one). Saves ~0.1 us a call at seven layers (W6). */
static int same_chunk(const NNTKLayerChain *chain, int64_t batch, int64_t steps) {
    if (batch != chain->shaped_batch || steps != chain->shaped_steps) return 0;
    for (int32_t i = 0; i < chain->count; i++) {
        uint32_t found;
        memcpy(&found, chain->links[i].layer, sizeof found); /* as nntk_check_handle reads it */
        if (found != chain->links[i].tag) return 0;
    }
    return 1;
}

/* NNTKLayerChainStream once the chain is checked and its call flag taken. */
static NNTKStatus stream_in_call(const char *fn, NNTKLayerChain *chain, int64_t batch, int64_t steps,
                                 const float *in, const float *initial_states, float *out,
                                 float *final_states) {
    NNTKStatus s;
    if (!same_chunk(chain, batch, steps)) {
        chain->shaped_batch = chain->shaped_steps = 0;
        int64_t out_steps, out_features;
        s = chunk_shape(fn, chain, batch, steps, chain->links, &out_steps, &out_features);
        if (s != NNTK_OK) return s;
        chain->shaped_batch = batch;
        chain->shaped_steps = steps;
    }
    const float *x = in;
    for (int32_t i = 0; i < chain->count; i++) {
        const ChainLink *link = &chain->links[i];
        float *y = i == chain->count - 1 ? out : chain->buffers[i % 2];
        const int64_t offset = batch * link->state_offset;
        const int has = link->state_width > 0;
        /* checked by chunk_shape (this call or the last of this chunk): the handles and
         * every layer's shape */
        s = nntk_layer_apply_shaped(fn, link->layer, batch, link->steps, link->out_steps, x,
                                    has && initial_states != NULL ? initial_states + offset : NULL,
                                    y, has && final_states != NULL ? final_states + offset : NULL);
        if (s != NNTK_OK) return s;
        x = y;
    }
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKLayerChainStream(NNTKLayerChain *chain, int64_t batch, int64_t steps,
                                         const float *in, const float *initial_states, float *out,
                                         float *final_states) {
    static const char fn[] = "NNTKLayerChainStream";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "chain", chain, CHAIN_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "in", in)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out", out)) != NNTK_OK) return s;
    if ((s = nntk_call_enter(fn, "chain", &chain->in_call)) != NNTK_OK) return s;
    s = stream_in_call(fn, chain, batch, steps, in, initial_states, out, final_states);
    nntk_call_leave(&chain->in_call);
    return s;
}
