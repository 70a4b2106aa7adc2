/* A small strict JSON reader for the model file's config (docs/MODEL_FILE.md),
 * read by Python's json.loads on the other side. Not part of the public API.
 *
 * The whole document is parsed into one array of values (an object's members
 * and an array's items are linked by index), with every string decoded into
 * one buffer: two allocations, both sized from the text's length (a value
 * takes at least one byte of text, a decoded string never more than its
 * source), freed by nntk_json_free. Numbers keep Python's distinction: a number
 * without a fraction or an exponent is an integer (is_int, in int64's range or
 * refused), any other a double. Nesting is limited (NNTK_JSON_MAX_DEPTH, as
 * Python's recursion limit), the text must be UTF-8, strings may not hold
 * control characters, and NaN / Infinity are not JSON: each is refused with a
 * message giving the byte offset. */
#ifndef NNTK_MODEL_JSON_H
#define NNTK_MODEL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "nntk/status.h"

#include <locale.h>

#define NNTK_JSON_MAX_DEPTH 64

/* The calling thread switched to the C locale for numbers (strtod, printf's %e)
 * and back (uselocale, POSIX 2008: the app's own locale, e.g. a decimal comma,
 * is never seen and never changed). If the C locale cannot be made, numbers are
 * read in the thread's locale. */
typedef struct NNTKCLocale {
    locale_t c, previous;
} NNTKCLocale;
static inline void nntk_c_locale_enter(NNTKCLocale *l) {
    l->c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    l->previous = l->c != (locale_t)0 ? uselocale(l->c) : (locale_t)0;
}
static inline void nntk_c_locale_leave(NNTKCLocale *l) {
    if (l->c == (locale_t)0) return;
    uselocale(l->previous);
    freelocale(l->c);
}

typedef enum NNTKJsonKind {
    NNTK_JSON_NULL,
    NNTK_JSON_FALSE,
    NNTK_JSON_TRUE,
    NNTK_JSON_NUMBER,
    NNTK_JSON_STRING,
    NNTK_JSON_ARRAY,
    NNTK_JSON_OBJECT
} NNTKJsonKind;

typedef struct NNTKJsonValue {
    NNTKJsonKind kind;
    int32_t is_int;     /* NUMBER: written without fraction or exponent */
    int64_t integer;    /* NUMBER with is_int */
    double number;      /* NUMBER (also for an integer) */
    const char *string; /* STRING: decoded, NUL-terminated (may hold NULs: see length) */
    size_t length;      /* STRING: bytes; ARRAY / OBJECT: items / members */
    const char *key;    /* a member of an OBJECT: its key (decoded), else NULL */
    size_t key_length;  /* its bytes (a key may hold a NUL: nntk_json_key_is) */
    int32_t first;      /* ARRAY / OBJECT: the first item / member, -1 when empty */
    int32_t next;       /* the next item / member of the parent, -1 at the end */
    size_t text_start, text_end; /* where its text is: text[text_start .. text_end) */
} NNTKJsonValue;

typedef struct NNTKJson {
    NNTKJsonValue *values; /* values[0] is the document */
    int32_t count;
    char *strings;
} NNTKJson;

/* Parses text[0 .. length) into *json. On error records "<where>: the config
 * is not JSON (<what> at byte N)" (NNTK_ERROR_INVALID_ARGUMENT; `where` starts
 * with the function's name) or "<fn>: out of memory", and *json holds nothing
 * to free. */
NNTKStatus nntk_json_parse(const char *fn, const char *where, const char *text, size_t length,
                           NNTKJson *json);
void nntk_json_free(NNTKJson *json);

/* The member `key` of an object (the last one of that key, as Python's dict
 * keeps), or NULL when it has none or `object` is not an object. */
const NNTKJsonValue *nntk_json_get(const NNTKJson *json, const NNTKJsonValue *object,
                                   const char *key);
/* Whether member `m`'s key is exactly `key`. */
int nntk_json_key_is(const NNTKJsonValue *m, const char *key);
/* The item / member after `value` in its parent, or the first of `parent` when
 * value is NULL; NULL at the end. */
const NNTKJsonValue *nntk_json_next(const NNTKJson *json, const NNTKJsonValue *parent,
                                    const NNTKJsonValue *value);

#endif /* NNTK_MODEL_JSON_H */
