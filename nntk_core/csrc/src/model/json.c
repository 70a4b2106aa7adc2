/* The model file's JSON reader (model/json.h). Two passes over the text: the
 * first validates it and counts the values and the decoded string bytes, the
 * second (into buffers of exactly those sizes) fills them. */
#define _POSIX_C_SOURCE 200809L
#include "model/json.h"

#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

typedef struct Parser {
    const char *fn, *where;
    const char *text;
    size_t length, pos;
    /* NULL in the counting pass */
    NNTKJsonValue *values;
    char *strings;
    int32_t count;       /* values so far */
    size_t string_bytes; /* decoded string bytes so far (with their NULs) */
} Parser;

static NNTKStatus syntax(Parser *p, const char *what) {
    return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: the config is not JSON (%s at byte %zu)",
                     p->where, what, p->pos);
}

static void skip_space(Parser *p) {
    while (p->pos < p->length) {
        const char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
        p->pos++;
    }
}

static int peek(const Parser *p) {
    return p->pos < p->length ? (unsigned char)p->text[p->pos] : -1;
}

/* A new value (its index), linked nowhere yet. */
static NNTKStatus new_value(Parser *p, NNTKJsonKind kind, int32_t *index) {
    if (p->count == INT32_MAX) return syntax(p, "too many values");
    *index = p->count++;
    if (p->values != NULL)
        p->values[*index] = (NNTKJsonValue){.kind = kind, .first = -1, .next = -1};
    return NNTK_OK;
}

static void put_byte(Parser *p, char c) {
    if (p->strings != NULL) p->strings[p->string_bytes] = c;
    p->string_bytes++;
}

static void put_code_point(Parser *p, uint32_t c) {
    if (c < 0x80) {
        put_byte(p, (char)c);
    } else if (c < 0x800) {
        put_byte(p, (char)(0xC0 | (c >> 6)));
        put_byte(p, (char)(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        put_byte(p, (char)(0xE0 | (c >> 12)));
        put_byte(p, (char)(0x80 | ((c >> 6) & 0x3F)));
        put_byte(p, (char)(0x80 | (c & 0x3F)));
    } else {
        put_byte(p, (char)(0xF0 | (c >> 18)));
        put_byte(p, (char)(0x80 | ((c >> 12) & 0x3F)));
        put_byte(p, (char)(0x80 | ((c >> 6) & 0x3F)));
        put_byte(p, (char)(0x80 | (c & 0x3F)));
    }
}

/* The length of the UTF-8 sequence at text[pos] (1 .. 4), or 0 when it is not
 * valid UTF-8 (overlong forms, surrogates and values above U+10FFFF refused, as
 * Python's decoder does). */
static size_t utf8_length(const Parser *p) {
    const unsigned char *s = (const unsigned char *)p->text + p->pos;
    const size_t left = p->length - p->pos;
    if (s[0] < 0x80) return 1;
    size_t n;
    uint32_t c, min;
    if ((s[0] & 0xE0) == 0xC0) n = 2, c = s[0] & 0x1F, min = 0x80;
    else if ((s[0] & 0xF0) == 0xE0) n = 3, c = s[0] & 0x0F, min = 0x800;
    else if ((s[0] & 0xF8) == 0xF0) n = 4, c = s[0] & 0x07, min = 0x10000;
    else return 0;
    if (left < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    return n;
}

static int hex4(const Parser *p, size_t at, uint32_t *value) {
    if (p->length - at < 4) return 0;
    uint32_t v = 0;
    for (size_t i = 0; i < 4; i++) {
        const char c = p->text[at + i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *value = v;
    return 1;
}

/* A string at p->pos (the opening quote): decoded into the string buffer;
 * *start its offset there, *length its bytes. */
static NNTKStatus parse_string(Parser *p, size_t *start, size_t *length) {
    p->pos++; /* the quote */
    *start = p->string_bytes;
    for (;;) {
        if (p->pos >= p->length) return syntax(p, "unterminated string");
        const unsigned char c = (unsigned char)p->text[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) return syntax(p, "control character in a string");
        if (c != '\\') {
            const size_t n = utf8_length(p);
            if (n == 0) return syntax(p, "invalid UTF-8");
            for (size_t i = 0; i < n; i++) put_byte(p, p->text[p->pos + i]);
            p->pos += n;
            continue;
        }
        if (p->pos + 1 >= p->length) return syntax(p, "unterminated string");
        const char e = p->text[p->pos + 1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e != '\0' && simple != NULL && e != 'u') {
            static const char decoded[] = "\"\\/\b\f\n\r\t";
            put_byte(p, decoded[simple - "\"\\/bfnrt"]);
            p->pos += 2;
            continue;
        }
        uint32_t code;
        if (e != 'u' || !hex4(p, p->pos + 2, &code)) return syntax(p, "invalid escape");
        p->pos += 6;
        uint32_t low;
        if (code >= 0xD800 && code <= 0xDBFF && p->length - p->pos >= 6 &&
            p->text[p->pos] == '\\' && p->text[p->pos + 1] == 'u' && hex4(p, p->pos + 2, &low) &&
            low >= 0xDC00 && low <= 0xDFFF) {
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            p->pos += 6;
        }
        put_code_point(p, code); /* a lone surrogate as its 3 bytes, as Python keeps it */
    }
    *length = p->string_bytes - *start;
    put_byte(p, '\0');
    return NNTK_OK;
}

static NNTKStatus parse_number(Parser *p, int32_t index) {
    const size_t start = p->pos;
    int is_int = 1;
    if (peek(p) == '-') p->pos++;
    if (peek(p) == '0') {
        p->pos++;
    } else if (peek(p) >= '1' && peek(p) <= '9') {
        while (peek(p) >= '0' && peek(p) <= '9') p->pos++;
    } else {
        return syntax(p, "invalid number");
    }
    if (peek(p) == '.') {
        is_int = 0;
        p->pos++;
        if (!(peek(p) >= '0' && peek(p) <= '9')) return syntax(p, "invalid number");
        while (peek(p) >= '0' && peek(p) <= '9') p->pos++;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        is_int = 0;
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-') p->pos++;
        if (!(peek(p) >= '0' && peek(p) <= '9')) return syntax(p, "invalid number");
        while (peek(p) >= '0' && peek(p) <= '9') p->pos++;
    }
    if (p->values == NULL) return NNTK_OK;
    /* strtod / strtoll on a NUL-terminated copy (the text is not terminated) */
    const size_t n = p->pos - start;
    char small[64];
    char *copy = n < sizeof small ? small : malloc(n + 1);
    if (copy == NULL) return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", p->fn);
    memcpy(copy, p->text + start, n);
    copy[n] = '\0';
    NNTKJsonValue *v = &p->values[index];
    v->is_int = is_int;
    v->number = strtod(copy, NULL);
    if (is_int) {
        /* beyond int64: saturated (every range check then refuses it) */
        v->integer = strtoll(copy, NULL, 10);
    }
    if (copy != small) free(copy);
    return NNTK_OK;
}

static NNTKStatus parse_value(Parser *p, int depth, int32_t *index);

/* An array or an object at p->pos (its opening bracket). */
static NNTKStatus parse_container(Parser *p, int depth, int32_t index, int object) {
    const char close = object ? '}' : ']';
    p->pos++;
    skip_space(p);
    if (peek(p) == close) {
        p->pos++;
        return NNTK_OK;
    }
    int32_t previous = -1;
    size_t items = 0;
    for (;;) {
        skip_space(p);
        size_t key_start = 0, key_length = 0;
        NNTKStatus s;
        if (object) {
            if (peek(p) != '"') return syntax(p, "expected a key");
            if ((s = parse_string(p, &key_start, &key_length)) != NNTK_OK) return s;
            skip_space(p);
            if (peek(p) != ':') return syntax(p, "expected ':'");
            p->pos++;
            skip_space(p);
        }
        int32_t item = 0;
        if ((s = parse_value(p, depth + 1, &item)) != NNTK_OK) return s;
        items++;
        if (p->values != NULL) {
            if (object) {
                p->values[item].key = p->strings + key_start;
                p->values[item].key_length = key_length;
            }
            if (previous < 0) p->values[index].first = item;
            else p->values[previous].next = item;
        }
        previous = item;
        skip_space(p);
        if (peek(p) == ',') {
            p->pos++;
            continue;
        }
        if (peek(p) == close) {
            p->pos++;
            break;
        }
        return syntax(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    if (p->values != NULL) p->values[index].length = items;
    return NNTK_OK;
}

static int literal(Parser *p, const char *word) {
    const size_t n = strlen(word);
    if (p->length - p->pos < n || memcmp(p->text + p->pos, word, n) != 0) return 0;
    p->pos += n;
    return 1;
}

static NNTKStatus parse_token(Parser *p, int depth, int32_t *index);

/* A value, with where its text starts and ends. */
static NNTKStatus parse_value(Parser *p, int depth, int32_t *index) {
    if (depth > NNTK_JSON_MAX_DEPTH) return syntax(p, "nested too deeply");
    skip_space(p);
    const size_t start = p->pos;
    const NNTKStatus s = parse_token(p, depth, index);
    if (s == NNTK_OK && p->values != NULL) {
        p->values[*index].text_start = start;
        p->values[*index].text_end = p->pos;
    }
    return s;
}

static NNTKStatus parse_token(Parser *p, int depth, int32_t *index) {
    const int c = peek(p);
    NNTKStatus s;
    if (c == '{' || c == '[') {
        if ((s = new_value(p, c == '{' ? NNTK_JSON_OBJECT : NNTK_JSON_ARRAY, index)) != NNTK_OK)
            return s;
        return parse_container(p, depth, *index, c == '{');
    }
    if (c == '"') {
        if ((s = new_value(p, NNTK_JSON_STRING, index)) != NNTK_OK) return s;
        size_t start, length;
        if ((s = parse_string(p, &start, &length)) != NNTK_OK) return s;
        if (p->values != NULL) {
            p->values[*index].string = p->strings + start;
            p->values[*index].length = length;
        }
        return NNTK_OK;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        if ((s = new_value(p, NNTK_JSON_NUMBER, index)) != NNTK_OK) return s;
        return parse_number(p, *index);
    }
    if (literal(p, "null")) return new_value(p, NNTK_JSON_NULL, index);
    if (literal(p, "true")) return new_value(p, NNTK_JSON_TRUE, index);
    if (literal(p, "false")) return new_value(p, NNTK_JSON_FALSE, index);
    return syntax(p, c < 0 ? "unexpected end" : "unexpected character");
}

static NNTKStatus parse_document(Parser *p) {
    int32_t root = 0;
    NNTKStatus s = parse_value(p, 0, &root);
    if (s != NNTK_OK) return s;
    skip_space(p);
    if (p->pos != p->length) return syntax(p, "extra data");
    return NNTK_OK;
}

NNTKStatus nntk_json_parse(const char *fn, const char *where, const char *text, size_t length,
                           NNTKJson *json) {
    *json = (NNTKJson){0};
    Parser p = {.fn = fn, .where = where, .text = text, .length = length};
    NNTKStatus s = parse_document(&p); /* counting (reads no number: no locale needed) */
    if (s != NNTK_OK) return s;
    const int32_t count = p.count;
    const size_t string_bytes = p.string_bytes;
    NNTKJsonValue *values = malloc((size_t)count * sizeof *values);
    char *strings = malloc(string_bytes > 0 ? string_bytes : 1);
    if (values == NULL || strings == NULL) {
        free(values);
        free(strings);
        return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory for the config", fn);
    }
    p = (Parser){.fn = fn, .where = where, .text = text, .length = length, .values = values,
                 .strings = strings};
    /* strtod reads "0.9" with the C locale's point whatever locale the app set */
    NNTKCLocale c_locale;
    nntk_c_locale_enter(&c_locale);
    s = parse_document(&p);
    nntk_c_locale_leave(&c_locale);
    if (s != NNTK_OK) { /* only out of memory (a long number) */
        free(values);
        free(strings);
        return s;
    }
    *json = (NNTKJson){values, count, strings};
    return NNTK_OK;
}

void nntk_json_free(NNTKJson *json) {
    free(json->values);
    free(json->strings);
    *json = (NNTKJson){0};
}

const NNTKJsonValue *nntk_json_next(const NNTKJson *json, const NNTKJsonValue *parent,
                                    const NNTKJsonValue *value) {
    const int32_t i = value == NULL ? parent->first : value->next;
    return i < 0 ? NULL : &json->values[i];
}

const NNTKJsonValue *nntk_json_get(const NNTKJson *json, const NNTKJsonValue *object,
                                   const char *key) {
    if (object == NULL || object->kind != NNTK_JSON_OBJECT) return NULL;
    const NNTKJsonValue *found = NULL;
    for (const NNTKJsonValue *m = nntk_json_next(json, object, NULL); m != NULL;
         m = nntk_json_next(json, object, m))
        if (nntk_json_key_is(m, key)) found = m;
    return found;
}

int nntk_json_key_is(const NNTKJsonValue *m, const char *key) {
    return m->key != NULL && m->key_length == strlen(key) && memcmp(m->key, key, m->key_length) == 0;
}
