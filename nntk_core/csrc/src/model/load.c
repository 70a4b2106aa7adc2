/* NNTKModelLoad: reads a model file (docs/MODEL_FILE.md) and checks all of it
 * as nn.load does (nntk_core/model_file.py), in the same order and with the
 * same words, before it builds the model: the sections (magic, version,
 * length, CRC-32), the config (JSON; every layer's type, its arguments exactly,
 * each value's kind, the library's own checks, the weights' names and shapes,
 * the weight bytes, that the layers chain), then the optimizer. Only then are
 * the layers created (the generic layer API, with the model's capacity) and
 * the weights and the optimizer's state set. Any failure frees everything.
 *
 * The file records the Python classes' constructor arguments, which are the
 * library's fields (nntk/layer.h) plus what the binding adds; that is, in one
 * place here:
 *   - a layer with states that does not wrap (RNN, GRU, LSTM) also takes the
 *     flag `return_state` (nntk_core/recurrent.py), false in a model;
 *   - an Activation's input_dim may be null: it takes the size the layer
 *     before it produces (nntk_core/activation.py);
 *   - a wrapper's (Bidirectional's) own arguments are its fields; its inner
 *     layer is the entry's "layer", and its weights are named forward_<name>
 *     and backward_<name> after the inner layer's (nntk_core/bidirectional.py);
 *   - an enum's null is "linear" where that is one of its names (an
 *     activation; a merge_mode of null, two outputs, cannot be in a model). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/json.h"
#include "model/model.h"

static const char FN[] = "NNTKModelLoad";

#define WHERE_SIZE 160
#define LAYER_WHERE_SIZE 256

/* The header of each version: its size (magic, version, config length, weights
 * length, and from version 2 the slots length). */
static size_t header_size(uint32_t version) { return version == 1 ? 24 : version == 2 ? 32 : 0; }

static uint32_t u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t u64(const unsigned char *p) { return (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32; }

/* --- the file ----------------------------------------------------------------------------- */
static NNTKStatus read_file(const char *where, const char *path, unsigned char **data, size_t *size) {
    const int fd = open(path, O_RDONLY);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: no such file", where);
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: cannot be opened (errno %d)", where, errno);
    }
    struct stat st;
    NNTKStatus s = NNTK_OK;
    if (fstat(fd, &st) != 0)
        s = nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: cannot be read (errno %d)", where, errno);
    else if (S_ISDIR(st.st_mode))
        s = nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: is a directory, not a model file", where);
    else if (!S_ISREG(st.st_mode)) /* a pipe or a device could block the read for ever */
        s = nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: is not a regular file", where);
    else if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX / 2)
        s = nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %lld bytes, too large for this process", where,
                      (long long)st.st_size);
    unsigned char *buffer = NULL;
    size_t length = s == NNTK_OK ? (size_t)st.st_size : 0;
    if (s == NNTK_OK && (buffer = malloc(length > 0 ? length : 1)) == NULL)
        s = nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory for the file (%zu bytes)", where,
                      length);
    size_t done = 0;
    while (s == NNTK_OK && done < length) {
        const ssize_t n = read(fd, buffer + done, length - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { /* shortened while read: what was there is what it holds */
            if (n < 0) s = nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: read error (errno %d)", where, errno);
            break;
        }
        done += (size_t)n;
    }
    close(fd);
    if (s != NNTK_OK) {
        free(buffer);
        return s;
    }
    *data = buffer;
    *size = done;
    return NNTK_OK;
}

typedef struct Sections {
    const char *config;
    size_t config_length;
    const unsigned char *weights;
    uint64_t weights_length;
    const unsigned char *slots;
    uint64_t slots_length;
} Sections;

/* model_file._sections: magic, version, lengths, checksum, in that order. */
static NNTKStatus sections(const char *where, const unsigned char *data, size_t size, Sections *out) {
    const size_t magic = NNTK_MODEL_MAGIC_SIZE;
    if (size < magic || memcmp(data, NNTK_MODEL_MAGIC, magic) != 0) {
        if (size < magic && memcmp(data, NNTK_MODEL_MAGIC, size) == 0)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: truncated (%zu bytes, inside the magic)",
                             where, size);
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: not an nntk model file (no nntk magic)", where);
    }
    if (size < magic + 4)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: truncated (%zu bytes, inside the header)",
                         where, size);
    const uint32_t version = u32(data + magic);
    const size_t header = header_size(version);
    if (header == 0)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: format version %lu; this nntk reads versions 1, 2", where,
                         (unsigned long)version);
    if (size < header)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: truncated (%zu bytes, inside the header)",
                         where, size);
    const uint64_t config_length = u32(data + 12);
    const uint64_t weights_length = u64(data + 16);
    const uint64_t slots_length = version >= 2 ? u64(data + 24) : 0;
    /* header + C + W + S + 4, in 128 bits' worth: two halves that cannot overflow */
    const uint64_t limit = UINT64_MAX / 4;
    const int huge = weights_length > limit || slots_length > limit;
    const uint64_t expected = huge ? 0 : header + config_length + weights_length + slots_length + 4;
    if (huge || size < expected) {
        if (huge)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: truncated (%zu bytes of more than %llu)",
                             where, size, (unsigned long long)limit);
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: truncated (%zu bytes of %llu)", where, size,
                         (unsigned long long)expected);
    }
    if (size > expected)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %llu bytes after the end of the model", where,
                         (unsigned long long)(size - expected));
    const size_t body = size - 4;
    if (nntk_crc32(0, data, body) != u32(data + body))
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: checksum mismatch (the file is corrupted)",
                         where);
    *out = (Sections){(const char *)data + header, (size_t)config_length,
                      data + header + config_length, weights_length,
                      data + header + config_length + weights_length, slots_length};
    return NNTK_OK;
}

/* --- the layers' configs ------------------------------------------------------------------ */
/* One layer entry, built: its config (owned) and what the checks after it need. */
typedef struct Built {
    NNTKLayerConfig *config;
    int32_t adapts; /* an Activation with input_dim null: input_dim set when chained */
    int64_t weight_count;
} Built;

static int is_string(const NNTKJsonValue *v, const char *text) {
    return v != NULL && v->kind == NNTK_JSON_STRING && v->length == strlen(text) &&
           memcmp(v->string, text, v->length) == 0;
}

static const char *kind_name(const NNTKJsonValue *v) {
    static const char *const names[] = {"null", "false", "true", "a number", "a string", "a list",
                                        "an object"};
    return v == NULL ? "missing" : names[v->kind];
}

/* Whether `v` names the enum value `name` as the binding reads it
 * (nntk_core/layer.py _check_enum): exactly, through an alias
 * (nntk_core/activations.py ALIASES), or in another case. */
static int is_enum_name(const NNTKJsonValue *v, const char *name) {
    static const char *const aliases[][2] = {{"silu", "swish"}};
    if (v == NULL || v->kind != NNTK_JSON_STRING) return 0;
    const char *key = v->string;
    size_t length = v->length;
    for (size_t a = 0; a < sizeof aliases / sizeof aliases[0]; a++)
        if (is_string(v, aliases[a][0])) key = aliases[a][1], length = strlen(key);
    if (length != strlen(name)) return 0;
    if (memcmp(key, name, length) == 0) return 1;
    for (size_t i = 0; i < length; i++) { /* key.lower() == name */
        const char c = key[i];
        if ((c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c) != name[i]) return 0;
    }
    return 1;
}

/* The binding's flags of a type (see the file's comment): return_state. */
static int has_return_state(const NNTKLayerType *type) { return type->states != NULL && !type->wraps; }

static int is_argument(const NNTKLayerType *type, const NNTKJsonValue *member) {
    if (nntk_json_key_is(member, "return_state")) return has_return_state(type);
    for (int32_t i = 0; i < type->field_count; i++)
        if (nntk_json_key_is(member, type->fields[i].name)) return 1;
    return 0;
}

/* The value of `field` from the config's JSON. */
static NNTKStatus field_value(const char *where, const NNTKLayerType *type, const NNTKLayerField *f,
                              const NNTKJsonValue *v, int *adapts, NNTKLayerValue *out) {
    switch (f->kind) {
    case NNTK_FIELD_INT:
        if (v->kind == NNTK_JSON_NULL && f->min == 0) {
            out->i = 0; /* tf.keras's None */
            return NNTK_OK;
        }
        if (v->kind == NNTK_JSON_NULL && strcmp(f->name, "input_dim") == 0 &&
            strcmp(type->name, "Activation") == 0) {
            *adapts = 1;
            out->i = 1; /* until the layer before it says (chain) */
            return NNTK_OK;
        }
        if (v->kind != NNTK_JSON_NUMBER || !v->is_int)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s must be an integer, got %s", where,
                             f->name, kind_name(v));
        out->i = v->integer;
        return NNTK_OK;
    case NNTK_FIELD_BOOL:
        if (v->kind != NNTK_JSON_TRUE && v->kind != NNTK_JSON_FALSE)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s must be true or false, got %s", where,
                             f->name, kind_name(v));
        out->i = v->kind == NNTK_JSON_TRUE;
        return NNTK_OK;
    case NNTK_FIELD_FLOAT:
        if (v->kind != NNTK_JSON_NUMBER)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s must be a real number, got %s", where,
                             f->name, kind_name(v));
        if (!isfinite(v->number)) /* 1e400 reads as inf */
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s must be finite, got %g", where, f->name,
                             v->number);
        out->f = v->number;
        return NNTK_OK;
    case NNTK_FIELD_ENUM:
        for (int32_t k = 0; k < f->enum_count; k++)
            if (is_enum_name(v, f->enum_names[k]) ||
                (v->kind == NNTK_JSON_NULL && strcmp(f->enum_names[k], "linear") == 0)) {
                out->i = k;
                return NNTK_OK;
            }
        if (v->kind == NNTK_JSON_NULL)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                             "%s: %s is null (two outputs): a layer in a model must return a single "
                             "tensor",
                             where, f->name);
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s is %s%s%s, not one of its names", where,
                         f->name, v->kind == NNTK_JSON_STRING ? "'" : "",
                         v->kind == NNTK_JSON_STRING ? v->string : kind_name(v),
                         v->kind == NNTK_JSON_STRING ? "'" : "");
    }
    return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s has an unknown kind", where, f->name);
}

/* The config of a layer entry {"type", "config"[, "layer"]} (model_file._build):
 * *built->config, owned by the caller on success. */
static NNTKStatus build_config(const NNTKJson *json, const NNTKJsonValue *entry, const char *where,
                               Built *built) {
    if (entry->kind != NNTK_JSON_OBJECT)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s is not a JSON object", where);
    const NNTKJsonValue *kind = nntk_json_get(json, entry, "type");
    const NNTKLayerType *type = NULL;
    for (int32_t t = 0; t < nntk_layer_type_count() && type == NULL; t++)
        if (is_string(kind, nntk_layer_type_at(t)->name)) type = nntk_layer_type_at(t);
    if (type == NULL) {
        if (kind != NULL && kind->kind == NNTK_JSON_STRING)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: unknown layer type '%.40s'", where,
                             kind->string);
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: unknown layer type (%s)", where,
                         kind_name(kind));
    }
    char here[LAYER_WHERE_SIZE];
    snprintf(here, sizeof here, "%s (%s)", where, type->name);
    const NNTKJsonValue *config = nntk_json_get(json, entry, "config");
    if (config == NULL || config->kind != NNTK_JSON_OBJECT)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s config is not a JSON object", where);
    /* exactly the constructor's arguments */
    for (const NNTKJsonValue *m = nntk_json_next(json, config, NULL); m != NULL;
         m = nntk_json_next(json, config, m))
        if (!is_argument(type, m))
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: the config has the argument '%.40s'; %s does not take it",
                             here, m->key, type->name);
    for (int32_t i = 0; i < type->field_count; i++)
        if (nntk_json_get(json, config, type->fields[i].name) == NULL)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: the config has no argument '%s'", here,
                             type->fields[i].name);
    if (has_return_state(type)) {
        const NNTKJsonValue *flag = nntk_json_get(json, config, "return_state");
        if (flag == NULL)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: the config has no argument 'return_state'",
                             here);
        if (flag->kind != NNTK_JSON_TRUE && flag->kind != NNTK_JSON_FALSE)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: return_state must be true or false, got %s",
                             here, kind_name(flag));
        if (flag->kind == NNTK_JSON_TRUE)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                             "%s: return_state is true: a layer in a model must return a single tensor",
                             here);
    }
    NNTKLayerValue values[NNTK_LAYER_MAX_FIELDS] = {{0}};
    int adapts = 0;
    NNTKStatus s;
    for (int32_t i = 0; i < type->field_count; i++) {
        const NNTKLayerField *f = &type->fields[i];
        if ((s = field_value(here, type, f, nntk_json_get(json, config, f->name), &adapts, &values[i])) !=
            NNTK_OK)
            return s;
    }
    NNTKLayerConfig *made;
    if (type->wraps) {
        char inner_where[LAYER_WHERE_SIZE];
        snprintf(inner_where, sizeof inner_where, "%s inner layer", where);
        const NNTKJsonValue *inner_entry = nntk_json_get(json, entry, "layer");
        if (inner_entry == NULL)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s is not a JSON object", inner_where);
        Built inner = {0};
        if ((s = build_config(json, inner_entry, inner_where, &inner)) != NNTK_OK) return s;
        made = inner.adapts ? NULL : type->create_for(here, inner.config, values);
        if (inner.adapts)
            nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: its inner layer has no input_dim", here);
        nntk_layer_config_destroy(inner.config, NULL);
    } else {
        made = nntk_layer_config_create(here, type, values);
    }
    if (made == NULL) return NNTKLastStatus();
    NNTKWeightBlock blocks[NNTK_LAYER_MAX_WEIGHTS];
    const int32_t n = nntk_layer_weight_blocks(made, blocks);
    built->weight_count = 0;
    for (int32_t b = 0; b < n; b++) built->weight_count += nntk_layer_block_size(&blocks[b]);
    built->config = made;
    built->adapts = adapts;
    return NNTK_OK;
}

/* The name the file gives weight block b of n (a wrapper's halves prefixed). */
static void block_name(const NNTKLayerConfig *config, const NNTKWeightBlock *block, int32_t b, int32_t n,
                       char *name, size_t size) {
    if (config->type->wraps)
        snprintf(name, size, "%s_%s", b < n / 2 ? "forward" : "backward", block->name);
    else
        snprintf(name, size, "%s", block->name);
}

/* Whether every member of `object` is `a` or `b` (a dict with those keys). */
static int only_keys(const NNTKJson *json, const NNTKJsonValue *object, const char *a, const char *b) {
    for (const NNTKJsonValue *m = nntk_json_next(json, object, NULL); m != NULL;
         m = nntk_json_next(json, object, m))
        if (!nntk_json_key_is(m, a) && !nntk_json_key_is(m, b)) return 0;
    return 1;
}

/* model_file._check_weights: the entry's "weights" are the layer's, exactly. */
static NNTKStatus check_weights(const NNTKJson *json, const NNTKJsonValue *entry,
                                const NNTKLayerConfig *config, const char *where) {
    NNTKWeightBlock blocks[NNTK_LAYER_MAX_WEIGHTS];
    const int32_t n = nntk_layer_weight_blocks(config, blocks);
    const NNTKJsonValue *declared = nntk_json_get(json, entry, "weights");
    int same = declared != NULL && declared->kind == NNTK_JSON_ARRAY && declared->length == (size_t)n;
    const NNTKJsonValue *item = same ? nntk_json_next(json, declared, NULL) : NULL;
    for (int32_t b = 0; same && b < n; b++, item = nntk_json_next(json, declared, item)) {
        char name[96];
        block_name(config, &blocks[b], b, n, name, sizeof name);
        const NNTKJsonValue *shape = nntk_json_get(json, item, "shape");
        same = item->kind == NNTK_JSON_OBJECT && only_keys(json, item, "name", "shape") &&
               is_string(nntk_json_get(json, item, "name"), name) && shape != NULL &&
               shape->kind == NNTK_JSON_ARRAY && shape->length == (size_t)blocks[b].rank;
        const NNTKJsonValue *dim = same ? nntk_json_next(json, shape, NULL) : NULL;
        for (int32_t d = 0; same && d < blocks[b].rank; d++, dim = nntk_json_next(json, shape, dim))
            /* Python compares with ==: 3 == 3.0 == True... as numbers */
            same = (dim->kind == NNTK_JSON_NUMBER && dim->number == (double)blocks[b].shape[d]) ||
                   (dim->kind == NNTK_JSON_TRUE && blocks[b].shape[d] == 1);
    }
    if (same) return NNTK_OK;
    char wanted[200] = "";
    size_t used = 0;
    for (int32_t b = 0; b < n && used < sizeof wanted; b++) {
        char name[96];
        block_name(config, &blocks[b], b, n, name, sizeof name);
        int w = snprintf(wanted + used, sizeof wanted - used, "%s%s (", b ? ", " : "", name);
        used += w > 0 ? (size_t)w : 0;
        for (int32_t d = 0; d < blocks[b].rank && used < sizeof wanted; d++) {
            w = snprintf(wanted + used, sizeof wanted - used, "%s%lld", d ? ", " : "",
                         (long long)blocks[b].shape[d]);
            used += w > 0 ? (size_t)w : 0;
        }
        if (used < sizeof wanted) {
            w = snprintf(wanted + used, sizeof wanted - used, ")");
            used += w > 0 ? (size_t)w : 0;
        }
    }
    return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                     "%s (%s): the file's weights are not the layer's [%s]", where,
                     config->type->name, wanted);
}

/* --- the optimizer ------------------------------------------------------------------------ */
typedef struct OptimizerEntry {
    int present;
    ModelOptimizerKind kind;
    double args[MODEL_OPTIMIZER_MAX_ARGS];
    int64_t iterations;
    int bound; /* variable_shapes given (not null) */
} OptimizerEntry;

static int is_integer_value(const NNTKJsonValue *v) { return v != NULL && v->kind == NNTK_JSON_NUMBER && v->is_int; }

/* model_file._build_optimizer's checks of the entry (the shapes against the
 * model's trainable blocks; the slot bytes' count once the kind is known). */
static NNTKStatus read_optimizer(const NNTKJson *json, const NNTKJsonValue *entry, const char *where,
                                 const NNTKLayerConfig *const *configs, int32_t count,
                                 uint64_t slot_bytes, OptimizerEntry *out) {
    char here[LAYER_WHERE_SIZE];
    snprintf(here, sizeof here, "%s: the optimizer", where);
    if (entry->kind != NNTK_JSON_OBJECT)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s is not a JSON object", here);
    static const char *const keys[] = {"config", "iterations", "type", "variable_shapes"};
    int distinct = 0;
    for (int k = 0; k < 4; k++) distinct += nntk_json_get(json, entry, keys[k]) != NULL;
    for (const NNTKJsonValue *m = nntk_json_next(json, entry, NULL); m != NULL;
         m = nntk_json_next(json, entry, m)) {
        int known = 0;
        for (int k = 0; k < 4; k++) known |= nntk_json_key_is(m, keys[k]);
        if (!known) distinct = -1;
    }
    if (distinct != 4)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s must have exactly the keys config, iterations, type and variable_shapes",
                         here);
    const NNTKJsonValue *kind = nntk_json_get(json, entry, "type");
    int found = -1;
    for (int k = 0; k < MODEL_OPTIMIZER_KINDS; k++)
        if (is_string(kind, nntk_model_optimizer_types[k].name)) found = k;
    if (found < 0)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: unknown optimizer type %s%.40s%s", here,
                         kind->kind == NNTK_JSON_STRING ? "'" : "(",
                         kind->kind == NNTK_JSON_STRING ? kind->string : kind_name(kind),
                         kind->kind == NNTK_JSON_STRING ? "'" : ")");
    const ModelOptimizerType *t = &nntk_model_optimizer_types[found];
    /* the shapes: null or the model's trainable blocks, in order */
    const NNTKJsonValue *shapes = nntk_json_get(json, entry, "variable_shapes");
    int same = shapes->kind == NNTK_JSON_NULL;
    if (shapes->kind == NNTK_JSON_ARRAY) {
        same = 1;
        const NNTKJsonValue *shape = nntk_json_next(json, shapes, NULL);
        for (int32_t i = 0; i < count && same; i++) {
            NNTKWeightBlock blocks[NNTK_LAYER_MAX_WEIGHTS];
            const int32_t n = nntk_layer_weight_blocks(configs[i], blocks);
            for (int32_t b = 0; b < n && same; b++) {
                if (!blocks[b].trainable) continue;
                same = shape != NULL && shape->kind == NNTK_JSON_ARRAY &&
                       shape->length == (size_t)blocks[b].rank;
                const NNTKJsonValue *dim = same ? nntk_json_next(json, shape, NULL) : NULL;
                for (int32_t d = 0; same && d < blocks[b].rank; d++, dim = nntk_json_next(json, shape, dim))
                    same = (dim->kind == NNTK_JSON_NUMBER && dim->number == (double)blocks[b].shape[d]) ||
                           (dim->kind == NNTK_JSON_TRUE && blocks[b].shape[d] == 1);
                shape = same ? nntk_json_next(json, shapes, shape) : NULL;
            }
        }
        same = same && shape == NULL;
    }
    if (!same)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: variable_shapes are not the model's trainable variables", here);
    if (slot_bytes % 4 != 0)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %llu bytes of slots, not float32 values", here,
                         (unsigned long long)slot_bytes);
    /* the constructor's arguments: known names, each of its kind; missing ones default */
    const NNTKJsonValue *config = nntk_json_get(json, entry, "config");
    if (config->kind != NNTK_JSON_OBJECT)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s config is not a JSON object", here);
    for (int a = 0; a < t->arg_count; a++) out->args[a] = t->defaults[a];
    for (const NNTKJsonValue *m = nntk_json_next(json, config, NULL); m != NULL;
         m = nntk_json_next(json, config, m)) {
        int a = 0;
        while (a < t->arg_count && !nntk_json_key_is(m, t->args[a])) a++;
        if (a == t->arg_count)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s (%s): unexpected argument '%.40s'", here,
                             t->name, m->key);
        const int ok = t->is_flag[a] ? (m->kind == NNTK_JSON_TRUE || m->kind == NNTK_JSON_FALSE)
                                     : m->kind == NNTK_JSON_NUMBER;
        if (!ok)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s (%s): %s must be %s, got %s", here, t->name,
                             t->args[a], t->is_flag[a] ? "true or false" : "a real number",
                             kind_name(m));
        out->args[a] = t->is_flag[a] ? (double)(m->kind == NNTK_JSON_TRUE) : m->number;
    }
    const NNTKJsonValue *iterations = nntk_json_get(json, entry, "iterations");
    if (!is_integer_value(iterations))
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s (%s): iterations must be an int, got %s", here,
                         t->name, kind_name(iterations));
    if (iterations->integer < 0 || iterations->integer > ((int64_t)1 << 62) ||
        iterations->number > 4.7e18 /* saturated beyond int64 */)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s (%s): iterations must be in [0, 2^62], got %.17g",
                         here, t->name, iterations->number);
    if (shapes->kind == NNTK_JSON_NULL && slot_bytes != 0)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s (%s): %llu bytes of slots but variable_shapes is null", here, t->name,
                         (unsigned long long)slot_bytes);
    out->present = 1;
    out->kind = (ModelOptimizerKind)found;
    out->iterations = iterations->integer;
    out->bound = shapes->kind != NNTK_JSON_NULL;
    return NNTK_OK;
}

/* --- building ----------------------------------------------------------------------------- */
static int32_t drops_steps(const NNTKLayerConfig *config) {
    return config->type->drops_steps != NULL && config->type->drops_steps(config);
}

/* Creates the layers from the configs (capacity reserved), chaining them as
 * Sequential does, and sets their weights from the file. */
static NNTKStatus create_layers(const char *where, NNTKModel *model, Built *built,
                                const unsigned char *weights) {
    const NNTKTrainingConfig capacity = {model->max_batch, model->max_steps};
    int64_t produced = 0;
    int32_t producer = -1, rank = 3;
    const unsigned char *w = weights;
    NNTKStatus s;
    for (int32_t i = 0; i < model->count; i++) {
        char here[LAYER_WHERE_SIZE];
        const NNTKLayerConfig *config = built[i].config;
        snprintf(here, sizeof here, "%s: layers[%d] (%s)", where, (int)i, config->type->name);
        if (built[i].adapts) { /* input_dim null: the size before it */
            if (producer < 0)
                return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                                 "%s: input_dim is null and no layer before it gives the input size "
                                 "(a model needs its first layer's input_dim)",
                                 here);
            NNTKLayerValue values[NNTK_LAYER_MAX_FIELDS];
            memcpy(values, config->values, sizeof values);
            values[nntk_layer_field_index(config->type, "input_dim")].i = produced;
            NNTKLayerConfig *sized = nntk_layer_config_create(here, config->type, values);
            if (sized == NULL) return NNTKLastStatus();
            nntk_layer_config_destroy(built[i].config, NULL);
            built[i].config = sized;
            config = sized;
        }
        const int64_t wanted = nntk_layer_input_features(config);
        if (producer >= 0 && wanted != produced)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                             "%s: the layers do not form a model: layers[%d] (%s) expects input_dim=%lld "
                             "but layers[%d] (%s) produces %lld features",
                             where, (int)i, config->type->name, (long long)wanted, (int)producer,
                             built[producer].config->type->name, (long long)produced);
        if (i > 0 && rank == 2 && config->type->sequence_input)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                             "%s: the layers do not form a model: layers[%d] (%s) takes (batch, steps, "
                             "features) inputs but layers[%d] returns (batch, features)",
                             where, (int)i, config->type->name, (int)(i - 1));
        ModelLayer *l = &model->layers[i];
        if ((l->layer = nntk_layer_create(here, NULL, config, 1, &capacity)) == NULL ||
            (l->gradient = nntk_layer_gradient_create(here, NULL, l->layer)) == NULL)
            return NNTKLastStatus();
        if ((s = nntk_layer_output_features(here, l->layer, &l->out_features)) != NNTK_OK) return s;
        l->in_features = wanted;
        l->block_count = nntk_layer_weight_blocks(config, l->blocks);
        /* the weights: little-endian float32 in the file */
        for (int64_t j = 0; j < l->layer->weight_count; j++, w += 4) {
            const uint32_t bits = u32(w);
            memcpy(&l->layer->weights[j], &bits, sizeof bits);
        }
        if (i == 0) model->input_features = wanted;
        produced = l->out_features;
        producer = i;
        if (drops_steps(config)) rank = 2;
    }
    return NNTK_OK;
}

static NNTKStatus load(const char *where, const unsigned char *data, size_t size, NNTKModel *model,
                       NNTKJson *json, Built **built_out, OptimizerEntry *optimizer) {
    Sections sec = {0};
    NNTKStatus s;
    if ((s = sections(where, data, size, &sec)) != NNTK_OK) return s;
    if ((s = nntk_json_parse(FN, where, sec.config, sec.config_length, json)) != NNTK_OK) return s;
    const NNTKJsonValue *root = &json->values[0];
    if (root->kind != NNTK_JSON_OBJECT)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: the config is not a JSON object", where);
    const NNTKJsonValue *entries = nntk_json_get(json, root, "layers");
    const NNTKJsonValue *optimizer_entry = nntk_json_get(json, root, "optimizer");
    if (optimizer_entry == NULL && sec.slots_length != 0)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %llu bytes of slots but no optimizer", where,
                         (unsigned long long)sec.slots_length);
    if (entries == NULL || entries->kind != NNTK_JSON_ARRAY || entries->length == 0)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: the config has no list of layers", where);
    if (entries->length > (size_t)INT32_MAX / 2)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: too many layers", where);
    const int32_t count = (int32_t)entries->length;
    Built *built = calloc((size_t)count, sizeof *built);
    if (built == NULL) return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: %s: out of memory", FN, where);
    *built_out = built;
    model->count = count;
    uint64_t weight_count = 0;
    const NNTKJsonValue *entry = nntk_json_next(json, entries, NULL);
    for (int32_t i = 0; i < count; i++, entry = nntk_json_next(json, entries, entry)) {
        char here[LAYER_WHERE_SIZE];
        snprintf(here, sizeof here, "%s: layers[%d]", where, (int)i);
        if ((s = build_config(json, entry, here, &built[i])) != NNTK_OK) return s;
        if ((s = check_weights(json, entry, built[i].config, here)) != NNTK_OK) return s;
        weight_count += (uint64_t)built[i].weight_count;
    }
    if (sec.weights_length != 4 * weight_count)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: %llu bytes of weights; the layers hold %llu float32 (%llu bytes)", where,
                         (unsigned long long)sec.weights_length, (unsigned long long)weight_count,
                         (unsigned long long)(4 * weight_count));
    if (optimizer_entry != NULL) {
        const NNTKLayerConfig *configs[1];
        const NNTKLayerConfig **all = count == 1 ? configs : malloc((size_t)count * sizeof *all);
        if (all == NULL) return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: %s: out of memory", FN, where);
        for (int32_t i = 0; i < count; i++) all[i] = built[i].config;
        s = read_optimizer(json, optimizer_entry, where, all, count, sec.slots_length, optimizer);
        if (all != configs) free((void *)all);
        if (s != NNTK_OK) return s;
    }
    /* The layers' text, kept for the save. */
    model->layers = calloc((size_t)count, sizeof *model->layers);
    model->layers_json_length = entries->text_end - entries->text_start;
    model->layers_json = malloc(model->layers_json_length + 1);
    if (model->layers == NULL || model->layers_json == NULL)
        return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: %s: out of memory", FN, where);
    memcpy(model->layers_json, sec.config + entries->text_start, model->layers_json_length);
    model->layers_json[model->layers_json_length] = '\0';
    if ((s = create_layers(where, model, built, sec.weights)) != NNTK_OK) return s;
    model->weight_count = (int64_t)weight_count;
    if ((s = nntk_model_reserve(FN, model)) != NNTK_OK) return s;
    if (optimizer->present) {
        char here[LAYER_WHERE_SIZE];
        snprintf(here, sizeof here, "%s: the optimizer (%s)", where,
                 nntk_model_optimizer_types[optimizer->kind].name);
        if ((s = nntk_model_set_optimizer(here, model, optimizer->kind, optimizer->args)) != NNTK_OK)
            return s;
        const uint64_t slots = sec.slots_length / 4;
        int64_t wanted = 0;
        NNTKOptimizerStateSize(model->optimizer, model->parameter_total > 0 ? model->parameter_total : 1,
                               &wanted);
        if (optimizer->bound && slots != (uint64_t)wanted)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                             "%s: the optimizer (%s): %llu float32 of slots; its slots for the model's "
                             "variables hold %lld",
                             where, nntk_model_optimizer_types[optimizer->kind].name,
                             (unsigned long long)slots, (long long)wanted);
        if (optimizer->bound && model->n_params > 0) {
            float *state = nntk_alloc_floats(wanted);
            if (state == NULL)
                return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory for the slots", FN);
            for (uint64_t j = 0; j < slots; j++) {
                const uint32_t bits = u32(sec.slots + 4 * j);
                memcpy(&state[j], &bits, sizeof bits);
            }
            s = NNTKOptimizerSetState(model->optimizer, model->n_params, model->sizes, state, wanted);
            nntk_free(state);
            if (s != NNTK_OK) return nntk_relabel(here, s);
        }
        if ((s = NNTKOptimizerSetIterations(model->optimizer, optimizer->iterations)) != NNTK_OK)
            return nntk_relabel(here, s);
        model->optimizer_bound = optimizer->bound;
    }
    return NNTK_OK;
}

NNTK_API NNTKModel *NNTKModelLoad(const char *path, int64_t max_batch, int64_t max_steps) {
    NNTKStatus s;
    if ((s = nntk_check_pointer(FN, "path", path)) != NNTK_OK) return NULL;
    const NNTKTrainingConfig capacity = {max_batch, max_steps};
    int64_t batch, steps;
    if ((s = nntk_check_size(FN, "max_batch", max_batch, NNTK_MAX_DIM)) != NNTK_OK) return NULL;
    if ((s = nntk_check_size(FN, "max_steps", max_steps, NNTK_MAX_DIM)) != NNTK_OK) return NULL;
    if ((s = nntk_training_capacity(FN, &capacity, &batch, &steps)) != NNTK_OK) return NULL;
    char where[WHERE_SIZE];
    snprintf(where, sizeof where, "%s: path '%.100s%s'", FN, path, strlen(path) > 100 ? "..." : "");
    unsigned char *data = NULL;
    size_t size = 0;
    if (read_file(where, path, &data, &size) != NNTK_OK) return NULL;
    NNTKModel *model = calloc(1, sizeof *model);
    NNTKJson json = {0};
    Built *built = NULL;
    OptimizerEntry optimizer = {0};
    if (model == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", FN);
    } else {
        model->tag = NNTK_MODEL_TAG;
        atomic_flag_clear(&model->in_call);
        model->max_batch = max_batch;
        model->max_steps = max_steps;
        s = load(where, data, size, model, &json, &built, &optimizer);
    }
    if (built != NULL)
        for (int32_t i = 0; i < model->count; i++) nntk_layer_config_destroy(built[i].config, NULL);
    free(built);
    nntk_json_free(&json);
    free(data);
    if (model != NULL && s != NNTK_OK) {
        nntk_model_free(model);
        return NULL;
    }
    return model;
}
