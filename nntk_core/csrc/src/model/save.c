/* NNTKModelSave: the model file (docs/MODEL_FILE.md, version 2) of a model,
 * written atomically as Python's model_file.save does. The config is what
 * Python's json.dumps writes for the same model: the layers as the loaded
 * file held them (they do not change), and the optimizer's entry in
 * Optimizer.get_config() / get_state() order with Python's number forms, so
 * that a file loaded and saved again unchanged is the same bytes. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "model/json.h"
#include "model/model.h"

static const char FN[] = "NNTKModelSave";

/* --- the bytes ---------------------------------------------------------------------------- */
/* Appends to a buffer, or only counts when it is NULL (the first pass). */
typedef struct Writer {
    unsigned char *data;
    size_t length;
} Writer;

static void put(Writer *w, const void *bytes, size_t n) {
    if (w->data != NULL) memcpy(w->data + w->length, bytes, n);
    w->length += n;
}

static void put_text(Writer *w, const char *text) { put(w, text, strlen(text)); }

static void put_u32(Writer *w, uint32_t v) {
    const unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                                (unsigned char)(v >> 24)};
    put(w, b, 4);
}

static void put_u64(Writer *w, uint64_t v) {
    put_u32(w, (uint32_t)v);
    put_u32(w, (uint32_t)(v >> 32));
}

static void put_floats(Writer *w, const float *values, int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        uint32_t bits;
        memcpy(&bits, &values[j], sizeof bits);
        put_u32(w, bits); /* little-endian float32 */
    }
}

/* Python's repr of a finite float (what json.dumps writes): the shortest
 * digits that read back as x; positional for exponents in [-4, 16), with at
 * least one digit after the point, else d.ddde±XX. */
static void python_float(double x, char *out, size_t size) {
    if (x == 0.0) {
        snprintf(out, size, "%s", signbit(x) ? "-0.0" : "0.0");
        return;
    }
    char e_form[40];
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(e_form, sizeof e_form, "%.*e", precision - 1, x);
        if (strtod(e_form, NULL) == x) break;
    }
    /* e_form: [-]d[.ddd]e±XX */
    char digits[24];
    size_t n = 0;
    const char *p = e_form;
    const int negative = *p == '-';
    if (negative) p++;
    for (; *p != 'e'; p++)
        if (*p != '.') digits[n++] = *p;
    digits[n] = '\0';
    const int exponent = atoi(p + 1);
    char *o = out;
    const char *end = out + size - 1;
#define OUT(c) (o < end ? (void)(*o++ = (c)) : (void)0)
    if (negative) OUT('-');
    if (exponent >= -4 && exponent < 16) {
        if (exponent < 0) {
            OUT('0');
            OUT('.');
            for (int z = 0; z < -exponent - 1; z++) OUT('0');
            for (size_t i = 0; i < n; i++) OUT(digits[i]);
        } else {
            for (int i = 0; i <= exponent; i++) OUT((size_t)i < n ? digits[i] : '0');
            OUT('.');
            if ((size_t)exponent + 1 >= n) OUT('0');
            for (size_t i = (size_t)exponent + 1; i < n; i++) OUT(digits[i]);
        }
    } else {
        OUT(digits[0]);
        if (n > 1) OUT('.');
        for (size_t i = 1; i < n; i++) OUT(digits[i]);
        char tail[16];
        snprintf(tail, sizeof tail, "e%c%02d", exponent < 0 ? '-' : '+', abs(exponent));
        for (const char *t = tail; *t; t++) OUT(*t);
    }
#undef OUT
    *o = '\0';
}

/* The config's JSON: {"layers": ..., "optimizer": {...}} as json.dumps writes it. */
static void put_config(Writer *w, const NNTKModel *model) {
    NNTKCLocale c_locale; /* python_float's %e and strtod: a point, whatever the app's locale */
    nntk_c_locale_enter(&c_locale);
    put_text(w, "{\"layers\": ");
    put(w, model->layers_json, model->layers_json_length);
    if (model->optimizer != NULL) {
        const ModelOptimizerType *t = &nntk_model_optimizer_types[model->optimizer_kind];
        char text[64];
        put_text(w, ", \"optimizer\": {\"type\": \"");
        put_text(w, t->name);
        put_text(w, "\", \"config\": {");
        for (int32_t a = 0; a < t->arg_count; a++) {
            put_text(w, a ? ", \"" : "\"");
            put_text(w, t->args[a]);
            put_text(w, "\": ");
            if (t->is_flag[a]) snprintf(text, sizeof text, "%s", model->optimizer_args[a] != 0 ? "true" : "false");
            else python_float(model->optimizer_args[a], text, sizeof text);
            put_text(w, text);
        }
        int64_t iterations = 0;
        NNTKOptimizerIterations(model->optimizer, &iterations);
        snprintf(text, sizeof text, "}, \"iterations\": %lld, \"variable_shapes\": ", (long long)iterations);
        put_text(w, text);
        if (!model->optimizer_bound) {
            put_text(w, "null");
        } else {
            put_text(w, "[");
            int first = 1;
            for (int32_t i = 0; i < model->count; i++) {
                const ModelLayer *l = &model->layers[i];
                for (int32_t b = 0; b < l->block_count; b++) {
                    if (!l->blocks[b].trainable) continue;
                    put_text(w, first ? "[" : ", [");
                    first = 0;
                    for (int32_t d = 0; d < l->blocks[b].rank; d++) {
                        snprintf(text, sizeof text, "%s%lld", d ? ", " : "", (long long)l->blocks[b].shape[d]);
                        put_text(w, text);
                    }
                    put_text(w, "]");
                }
            }
            put_text(w, "]");
        }
        put_text(w, "}");
    }
    put_text(w, "}");
    nntk_c_locale_leave(&c_locale);
}

/* The file's bytes into w (w->data NULL: only their count); slots: the
 * optimizer's state (slot_count floats) or NULL. */
static void put_file(Writer *w, const NNTKModel *model, const float *slots, int64_t slot_count) {
    Writer config = {NULL, 0};
    put_config(&config, model);
    const size_t start = w->length;
    put(w, NNTK_MODEL_MAGIC, NNTK_MODEL_MAGIC_SIZE);
    put_u32(w, NNTK_MODEL_VERSION);
    put_u32(w, (uint32_t)config.length);
    put_u64(w, 4 * (uint64_t)model->weight_count);
    put_u64(w, 4 * (uint64_t)slot_count);
    put_config(w, model);
    for (int32_t i = 0; i < model->count; i++)
        put_floats(w, model->layers[i].layer->weights, model->layers[i].layer->weight_count);
    if (slots != NULL) put_floats(w, slots, slot_count);
    const uint32_t crc = w->data != NULL ? nntk_crc32(0, w->data + start, w->length - start) : 0;
    put_u32(w, crc);
}

/* --- the atomic write ---------------------------------------------------------------------- */
static NNTKStatus io_error(const char *where, const char *what, int error) {
    return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s (errno %d)", where, what, error);
}

static NNTKStatus write_all(int fd, const unsigned char *data, size_t length) {
    while (length > 0) {
        const ssize_t n = write(fd, data, length);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return NNTK_ERROR_INVALID_ARGUMENT;
        data += n;
        length -= (size_t)n;
    }
    return NNTK_OK;
}

/* Writes data to a temporary file beside path, fsyncs it, renames it onto
 * path and fsyncs the directory; on error path is untouched and the temporary
 * file removed. */
static NNTKStatus write_atomically(const char *where, const char *path, const unsigned char *data,
                                   size_t length) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: is a directory, not a model file", where);
    const char *slash = strrchr(path, '/');
    const size_t dir_length = slash == NULL ? 0 : (size_t)(slash - path);
    const char *name = slash == NULL ? path : slash + 1;
    if (*name == '\0')
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: names no file (it ends in '/')", where);
    char *directory = malloc(dir_length + 2);
    char *temp = malloc(strlen(path) + 48);
    if (directory == NULL || temp == NULL) {
        free(directory);
        free(temp);
        return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", FN);
    }
    if (slash == NULL) snprintf(directory, dir_length + 2, ".");
    else if (dir_length == 0) snprintf(directory, 2, "/");
    else snprintf(directory, dir_length + 1, "%s", path);
    NNTKStatus s = NNTK_OK;
    if (stat(directory, &st) != 0 || !S_ISDIR(st.st_mode))
        s = nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: no directory '%.100s'", where, directory);
    /* .<name>.<random>.tmp, created exclusively (a name taken: another) */
    int fd = -1;
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&fd;
    for (int attempt = 0; s == NNTK_OK && fd < 0 && attempt < 100; attempt++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        snprintf(temp, strlen(path) + 48, "%.*s%s.%s.%08llx.tmp", (int)dir_length, path,
                 slash == NULL ? "" : "/", name, (unsigned long long)(seed >> 32));
        fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd < 0 && errno != EEXIST) s = io_error(where, "cannot create a temporary file beside it", errno);
    }
    if (s == NNTK_OK && fd < 0) s = io_error(where, "cannot create a temporary file beside it", EEXIST);
    if (s == NNTK_OK) {
        int error = 0;
        if (write_all(fd, data, length) != NNTK_OK) error = errno != 0 ? errno : EIO;
        else if (fsync(fd) != 0) error = errno;
        if (close(fd) != 0 && error == 0) error = errno;
        if (error == 0 && rename(temp, path) != 0) error = errno;
        if (error != 0) {
            unlink(temp);
            s = io_error(where, "cannot be written", error);
        }
    }
    if (s == NNTK_OK) { /* the rename itself made durable (a file system may refuse: fine) */
        const int dir = open(directory, O_RDONLY);
        if (dir >= 0) {
            (void)fsync(dir);
            close(dir);
        }
    }
    free(directory);
    free(temp);
    return s;
}

static NNTKStatus save_in_call(const char *where, NNTKModel *model, const char *path) {
    int64_t slot_count = 0;
    float *slots = NULL;
    NNTKStatus s;
    if (model->optimizer != NULL && model->optimizer_bound) {
        if ((s = NNTKOptimizerStateSize(model->optimizer, model->parameter_total, &slot_count)) != NNTK_OK)
            return nntk_relabel(FN, s);
        if ((slots = nntk_alloc_floats(slot_count)) == NULL)
            return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory for the optimizer's slots", FN);
        if ((s = NNTKOptimizerGetState(model->optimizer, model->n_params, model->sizes, slots, slot_count)) !=
            NNTK_OK) {
            nntk_free(slots);
            return nntk_relabel(FN, s);
        }
    }
    Writer w = {NULL, 0};
    put_file(&w, model, slots, slot_count);
    w.data = malloc(w.length);
    if (w.data == NULL) {
        nntk_free(slots);
        return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory for the file (%zu bytes)", FN, w.length);
    }
    const size_t length = w.length;
    w.length = 0;
    put_file(&w, model, slots, slot_count);
    nntk_free(slots);
    s = write_atomically(where, path, w.data, length);
    free(w.data);
    return s;
}

NNTK_API NNTKStatus NNTKModelSave(NNTKModel *model, const char *path) {
    NNTKStatus s;
    if ((s = nntk_check_handle(FN, "model", model, NNTK_MODEL_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(FN, "path", path)) != NNTK_OK) return s;
    char where[160];
    snprintf(where, sizeof where, "%s: path '%.100s%s'", FN, path, strlen(path) > 100 ? "..." : "");
    if ((s = nntk_call_enter(FN, "model", &model->in_call)) != NNTK_OK) return s;
    s = save_in_call(where, model, path);
    nntk_call_leave(&model->in_call);
    return s;
}
