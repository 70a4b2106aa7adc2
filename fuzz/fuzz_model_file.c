/* libFuzzer harness of the model file loader (NNTKModelLoad, nntk/model.h):
 * the input is a model file (docs/MODEL_FILE.md). The seed corpus
 * (fuzz/model_corpus, fuzz/make_model_corpus.py) holds valid files of the
 * project's networks, so mutations start from files that load.
 *
 * Besides "never crash, never hang" (ASan, UBSan, libFuzzer's timeout), the
 * harness traps when the library breaks its contract:
 *   - a refused file must give NULL with NNTK_ERROR_INVALID_ARGUMENT (or out
 *     of memory) and a message "NNTKModelLoad: path '...': ...";
 *   - a file that loads must run: OutputShape and ApplyInference for a
 *     (1, steps) input (the shortest the layers take, up to the capacity),
 *     twice with bitwise the same output; a training step when it has an
 *     optimizer (or it must be refused as having none / no trainable weight);
 *   - its save must load again, and that model's save must be the same bytes
 *     (the file C writes is stable).
 * Each input runs twice: as it is (mostly refused at the checksum), and with
 * its CRC-32 recomputed when its lengths are consistent, so that mutations of
 * the config and the weights reach the loader's own checks.
 * Uses the public API only, through files in a private temporary directory.
 * With -DNNTK_FUZZ_STANDALONE it is a plain program that replays input files. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nntk/nntk.h"

enum { MAX_BATCH = 1, MAX_STEPS = 8 };

static void contract(int ok) {
    if (!ok) __builtin_trap();
}

static char directory[64];

static void path_of(char *path, size_t size, const char *name) {
    if (directory[0] == '\0') { /* once per process */
        snprintf(directory, sizeof directory, "/tmp/nntk-fuzz-model-XXXXXX");
        if (mkdtemp(directory) == NULL) abort();
    }
    snprintf(path, size, "%s/%s", directory, name);
}

static void write_file(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size)) abort();
    fclose(f);
}

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) abort();
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(n > 0 ? (size_t)n : 1);
    if (data == NULL || (n > 0 && fread(data, 1, (size_t)n, f) != (size_t)n)) abort();
    fclose(f);
    *size = (size_t)n;
    return data;
}

static int starts_with(const char *text, const char *prefix) {
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

/* Runs a loaded model: inference twice (bitwise equal), and a training step. */
static void exercise(NNTKModel *model) {
    int64_t layers, features, weights;
    contract(NNTKModelDescribe(model, &layers, &features, &weights) == NNTK_OK);
    contract(layers >= 1 && features >= 1 && weights >= 0);
    int64_t steps = 1, out_steps = 0, out_features = 0;
    while (steps <= MAX_STEPS && NNTKModelOutputShape(model, 1, steps, &out_steps, &out_features) != NNTK_OK)
        steps++;
    if (steps > MAX_STEPS) return; /* no length up to the capacity fits (a long "valid" window) */
    const size_t in_count = (size_t)(steps * features), out_count = (size_t)(out_steps * out_features);
    float *x = malloc(in_count * sizeof *x), *y = malloc(out_count * sizeof *y);
    float *again = malloc(out_count * sizeof *again), *target = calloc(out_count, sizeof *target);
    if (x == NULL || y == NULL || again == NULL || target == NULL) abort();
    for (size_t i = 0; i < in_count; i++) x[i] = (float)((i % 7) - 3) * 0.25f;
    contract(NNTKModelApplyInference(model, 1, steps, x, y) == NNTK_OK);
    contract(NNTKModelApplyInference(model, 1, steps, x, again) == NNTK_OK);
    contract(memcmp(y, again, out_count * sizeof *y) == 0);
    float loss;
    const NNTKStatus s = NNTKModelTrainStep(model, NNTK_LOSS_MEAN_SQUARED_ERROR, 0, 1, steps, x, target, &loss);
    contract(s == NNTK_OK || (s == NNTK_ERROR_INVALID_STATE && starts_with(NNTKLastError(), "NNTKModelTrainStep: model has no")));
    free(x);
    free(y);
    free(again);
    free(target);
}

/* zlib.crc32, bit by bit (the harness's own, not the library's). */
static uint32_t crc32_of(const uint8_t *data, size_t size) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++) {
        crc ^= data[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static uint64_t le(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void load_and_check(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load_and_check(data, size);
    /* the same file with its checksum made right, when its lengths add up */
    const size_t header = size >= 12 && le(data + 8, 4) == 1 ? 24 : 32;
    if (size < header + 4) return 0;
    const uint64_t config = le(data + 12, 4), weights = le(data + 16, 8);
    const uint64_t slots = header == 32 ? le(data + 24, 8) : 0;
    if (weights > size || slots > size || header + config + weights + slots + 4 != size) return 0;
    uint8_t *fixed = malloc(size);
    if (fixed == NULL) abort();
    memcpy(fixed, data, size);
    const uint32_t crc = crc32_of(fixed, size - 4);
    for (int i = 0; i < 4; i++) fixed[size - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
    if (memcmp(fixed, data, size) != 0) load_and_check(fixed, size);
    free(fixed);
    return 0;
}

static void load_and_check(const uint8_t *data, size_t size) {
    char input[96], first[96], second[96];
    path_of(input, sizeof input, "input.nntk");
    path_of(first, sizeof first, "first.nntk");
    path_of(second, sizeof second, "second.nntk");
    write_file(input, data, size);
    NNTKClearError();
    NNTKModel *model = NNTKModelLoad(input, MAX_BATCH, MAX_STEPS);
    if (model == NULL) {
        const NNTKStatus s = NNTKLastStatus();
        contract(s == NNTK_ERROR_INVALID_ARGUMENT || s == NNTK_ERROR_OUT_OF_MEMORY);
        contract(starts_with(NNTKLastError(), "NNTKModelLoad: "));
        contract(s == NNTK_ERROR_OUT_OF_MEMORY || starts_with(NNTKLastError(), "NNTKModelLoad: path '"));
        return;
    }
    exercise(model);
    contract(NNTKModelSave(model, first) == NNTK_OK);
    NNTKModelDestroy(model);
    NNTKModel *reloaded = NNTKModelLoad(first, MAX_BATCH, MAX_STEPS);
    contract(reloaded != NULL);
    contract(NNTKModelSave(reloaded, second) == NNTK_OK);
    NNTKModelDestroy(reloaded);
    size_t n1, n2;
    uint8_t *a = read_file(first, &n1), *b = read_file(second, &n2);
    contract(n1 == n2 && memcmp(a, b, n1) == 0);
    free(a);
    free(b);
}

#ifdef NNTK_FUZZ_STANDALONE
/* Replays input files (no libFuzzer): to rerun a crash, and for valgrind. */
int main(int argc, char **argv) {
    int ran = 0;
    for (int i = 1; i < argc; i++) {
        size_t n;
        uint8_t *data = read_file(argv[i], &n);
        LLVMFuzzerTestOneInput(data, n);
        free(data);
        ran++;
    }
    char path[96];
    const char *const names[] = {"input.nntk", "first.nntk", "second.nntk"};
    for (int k = 0; k < 3 && directory[0] != '\0'; k++) {
        path_of(path, sizeof path, names[k]);
        remove(path);
    }
    if (directory[0] != '\0') rmdir(directory);
    printf("fuzz_model_file (standalone): replayed %d inputs\n", ran);
    return 0;
}
#endif
