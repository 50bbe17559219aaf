/*
 * The C SDK (sdk/c/weir.h) against the golden vectors in sdk/abi/vectors
 * (format: sdk/abi/README.md). Run by sdk/c/test.sh, with sanitizers:
 *
 *   test_vectors DIR
 *
 * weir.h decodes event batches and writes result batches, so that is what
 * is checked, byte for byte: every events vector is decoded and compared
 * with its JSON meaning, and every results vector's meaning is written with
 * weir_results_begin / weir_emit / weir_failn and compared with its bytes.
 * Skipped, and counted: join batches (the C SDK has no join world), and
 * results whose outputs keep their input's key or headers by flag (weir.h
 * always writes them). The vectors' JSON is read by the small parser below.
 */
#define _POSIX_C_SOURCE 200809L

#include "weir.h"

#include <dirent.h>
#include <stdio.h>

static int failures = 0;
static int checks = 0;
static const char *vector = "";

#define CHECK(cond)                                                                               \
    do {                                                                                          \
        checks++;                                                                                 \
        if (!(cond)) {                                                                            \
            failures++;                                                                           \
            fprintf(stderr, "%s:%d: vector %s: CHECK failed: %s\n", __FILE__, __LINE__, vector, #cond); \
        }                                                                                         \
    } while (0)

__attribute__((noreturn)) static void die(const char *what) {
    fprintf(stderr, "vector %s: %s\n", vector, what);
    exit(1);
}

/* ---------------------------------------------------------------------- */
/* Allocations of one vector, freed together.                              */
/* ---------------------------------------------------------------------- */

static void **arena = NULL;
static size_t arena_len = 0, arena_cap = 0;

/* Keeps `p` (from malloc) until arena_free. */
static void *kept(void *p) {
    if (!p) die("out of memory");
    if (arena_len == arena_cap) {
        arena_cap = arena_cap ? arena_cap * 2 : 256;
        void **a = (void **)realloc(arena, arena_cap * sizeof *a);
        if (!a) die("out of memory");
        arena = a;
    }
    arena[arena_len++] = p;
    return p;
}

static void *alloc(size_t n) {
    return kept(malloc(n ? n : 1));
}

static void arena_free(void) {
    for (size_t i = 0; i < arena_len; i++) free(arena[i]);
    arena_len = 0;
}

/* ---------------------------------------------------------------------- */
/* JSON: objects, arrays, strings, integers, null.                         */
/* ---------------------------------------------------------------------- */

typedef enum { J_NULL, J_INT, J_STR, J_ARR, J_OBJ } jkind;

typedef struct jval {
    jkind kind;
    int64_t i;             /* J_INT */
    char *s;               /* J_STR: UTF-8, never NULL, NUL-terminated, may hold NUL bytes */
    size_t len;            /* J_STR: bytes; J_ARR, J_OBJ: items */
    struct jval *items;    /* J_ARR, J_OBJ */
    const char *key;       /* a member of a J_OBJ: its name (a J_STR's s) */
} jval;

typedef struct {
    const char *p;
    const char *end;
} jparser;

static void ws(jparser *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++;
}

static void expect(jparser *j, char c) {
    ws(j);
    if (j->p >= j->end || *j->p != c) die("malformed JSON");
    j->p++;
}

static unsigned hex4(jparser *j) {
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        if (j->p >= j->end) die("malformed JSON escape");
        char c = *j->p++;
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0) die("malformed JSON escape");
        v = v * 16 + (unsigned)d;
    }
    return v;
}

/* A string's text, UTF-8, into a new buffer. */
static void string(jparser *j, jval *v) {
    expect(j, '"');
    size_t cap = 16, n = 0;
    char *s = (char *)malloc(cap);
    if (!s) die("out of memory");
    for (;;) {
        if (j->p >= j->end) die("unterminated JSON string");
        unsigned char c = (unsigned char)*j->p++;
        uint32_t cp = 0;
        bool code_point = false;
        if (c == '"') break;
        if (c == '\\') {
            if (j->p >= j->end) die("malformed JSON escape");
            char e = *j->p++;
            switch (e) {
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case '/': c = '/'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u':
                cp = hex4(j);
                if (cp >= 0xd800 && cp < 0xdc00) {
                    if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u') die("unpaired surrogate");
                    j->p += 2;
                    uint32_t lo = hex4(j);
                    if (lo < 0xdc00 || lo > 0xdfff) die("unpaired surrogate");
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                code_point = true;
                break;
            default: die("malformed JSON escape");
            }
        }
        if (n + 4 >= cap) {
            cap *= 2;
            char *t = (char *)realloc(s, cap);
            if (!t) die("out of memory");
            s = t;
        }
        if (!code_point) {
            s[n++] = (char)c;
        } else if (cp < 0x80) {
            s[n++] = (char)cp;
        } else if (cp < 0x800) {
            s[n++] = (char)(0xc0 | cp >> 6);
            s[n++] = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            s[n++] = (char)(0xe0 | cp >> 12);
            s[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            s[n++] = (char)(0x80 | (cp & 0x3f));
        } else {
            s[n++] = (char)(0xf0 | cp >> 18);
            s[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
            s[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            s[n++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    s[n] = 0; /* room left by the `n + 4 >= cap` check; member names are compared as C strings */
    v->kind = J_STR;
    v->s = (char *)kept(s);
    v->len = n;
}

/* An integer, exactly (all of s64). */
static void integer(jparser *j, jval *v) {
    bool negative = j->p < j->end && *j->p == '-';
    if (negative) j->p++;
    uint64_t m = 0;
    const char *start = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        unsigned d = (unsigned)(*j->p++ - '0');
        if (m > (UINT64_MAX - d) / 10) die("JSON integer out of range");
        m = m * 10 + d;
    }
    if (j->p == start) die("malformed JSON");
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E')) die("JSON number is not an integer");
    if (m > (negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX)) die("JSON integer out of range");
    v->kind = J_INT;
    v->i = negative ? (int64_t)(0 - m) : (int64_t)m;
}

static void value(jparser *j, jval *v);

/* The items of an array or the members of an object, until `close`. */
static void items(jparser *j, jval *v, char close, bool members) {
    size_t cap = 4;
    jval *it = (jval *)malloc(cap * sizeof *it);
    if (!it) die("out of memory");
    size_t n = 0;
    ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
    } else {
        for (;;) {
            if (n == cap) {
                cap *= 2;
                jval *t = (jval *)realloc(it, cap * sizeof *t);
                if (!t) die("out of memory");
                it = t;
            }
            memset(&it[n], 0, sizeof it[n]);
            if (members) {
                jval name;
                string(j, &name);
                expect(j, ':');
                value(j, &it[n]);
                it[n].key = name.s;
            } else {
                value(j, &it[n]);
            }
            n++;
            ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                ws(j);
                continue;
            }
            expect(j, close);
            break;
        }
    }
    v->items = (jval *)kept(it);
    v->len = n;
}

static void value(jparser *j, jval *v) {
    ws(j);
    if (j->p >= j->end) die("malformed JSON");
    char c = *j->p;
    if (c == '{') {
        j->p++;
        v->kind = J_OBJ;
        items(j, v, '}', true);
    } else if (c == '[') {
        j->p++;
        v->kind = J_ARR;
        items(j, v, ']', false);
    } else if (c == '"') {
        string(j, v);
    } else if (c == 'n' && j->end - j->p >= 4 && memcmp(j->p, "null", 4) == 0) {
        j->p += 4;
        v->kind = J_NULL;
    } else {
        integer(j, v);
    }
}

/* The member `key` of object `o` (dies if there is none). */
static const jval *get(const jval *o, const char *key) {
    if (o->kind != J_OBJ) die("not a JSON object");
    for (size_t i = 0; i < o->len; i++)
        if (strcmp(o->items[i].key, key) == 0) return &o->items[i];
    fprintf(stderr, "vector %s: no member %s\n", vector, key);
    exit(1);
}

static bool has(const jval *o, const char *key) {
    for (size_t i = 0; o->kind == J_OBJ && i < o->len; i++)
        if (strcmp(o->items[i].key, key) == 0) return true;
    return false;
}

static const jval *array(const jval *o, const char *key) {
    const jval *a = get(o, key);
    if (a->kind != J_ARR) die("not a JSON array");
    return a;
}

static int64_t integer_of(const jval *o, const char *key) {
    const jval *v = get(o, key);
    if (v->kind != J_INT) die("not a JSON integer");
    return v->i;
}

static bool is_text(const jval *v, const char *s) {
    return v->kind == J_STR && v->len == strlen(s) && memcmp(v->s, s, v->len) == 0;
}

/* ---------------------------------------------------------------------- */
/* Vectors                                                                 */
/* ---------------------------------------------------------------------- */

/* Bytes as the JSON gives them: null, {"utf8": …} or {"hex": …}. */
static weir_bytes bytes_of(const jval *v) {
    if (v->kind == J_NULL) return weir_bytes_none();
    if (has(v, "utf8")) {
        const jval *s = get(v, "utf8");
        return weir_bytes_of(s->s, s->len);
    }
    const jval *h = get(v, "hex");
    if (h->kind != J_STR || h->len % 2) die("malformed hex");
    uint8_t *b = (uint8_t *)alloc(h->len / 2);
    for (size_t i = 0; i < h->len / 2; i++) {
        unsigned byte;
        char pair[3] = {h->s[2 * i], h->s[2 * i + 1], 0};
        if (sscanf(pair, "%2x", &byte) != 1) die("malformed hex");
        b[i] = (uint8_t)byte;
    }
    return weir_bytes_of(b, h->len / 2);
}

static bool same_bytes(weir_bytes got, weir_bytes want) {
    if (got.present != want.present) return false;
    return !got.present || (got.len == want.len && (got.len == 0 || memcmp(got.ptr, want.ptr, got.len) == 0));
}

static bool same_text(weir_str got, const jval *want) {
    return want->kind == J_STR && got.len == want->len && (got.len == 0 || memcmp(got.ptr, want->s, got.len) == 0);
}

static void dump(const char *label, const uint8_t *p, size_t n) {
    fprintf(stderr, "%s (%zu bytes):", label, n);
    for (size_t i = 0; i < n && i < 64; i++) fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, n > 64 ? " …\n" : "\n");
}

/* Decodes an event batch with weir_batch_open / weir_batch_next and compares
 * every event with its meaning. */
static void check_events(const jval *meaning, const uint8_t *bin, size_t len) {
    const jval *events = array(meaning, "events");
    weir_batch b;
    weir_event e;
    CHECK(weir_batch_open(&b, bin, len) == 0);
    CHECK(b.count == events->len);
    for (size_t i = 0; i < events->len; i++) {
        const jval *m = &events->items[i];
        if (weir_batch_next(&b, &e) != 1) {
            CHECK(!"event decoded");
            return;
        }
        CHECK(e.index == i);
        CHECK(e.timestamp == integer_of(m, "timestamp"));
        CHECK(e.partition == integer_of(m, "partition"));
        CHECK(e.offset == integer_of(m, "offset"));
        CHECK(same_text(e.topic, get(m, "topic")));
        CHECK(same_bytes(e.key, bytes_of(get(m, "key"))));
        CHECK(same_bytes(e.value, bytes_of(get(m, "value"))));
        const jval *headers = array(m, "headers");
        CHECK(e.header_count == headers->len);
        weir_header_iter it = weir_event_headers(&e);
        weir_header h;
        size_t n = 0;
        while (weir_header_next(&it, &h)) {
            if (n == headers->len) break;
            const jval *hm = &headers->items[n++];
            CHECK(same_text(h.name, get(hm, "name")));
            CHECK(same_bytes(h.value, bytes_of(get(hm, "value"))));
        }
        CHECK(n == headers->len);
    }
    CHECK(weir_batch_next(&b, &e) == 0);
}

/* True when an output of the results keeps its input's key or headers. */
static bool keeps_input(const jval *results) {
    for (size_t i = 0; i < results->len; i++) {
        const jval *r = &results->items[i];
        if (!has(r, "outputs")) continue;
        const jval *outs = array(r, "outputs");
        for (size_t k = 0; k < outs->len; k++)
            if (is_text(get(&outs->items[k], "key"), "input") || is_text(get(&outs->items[k], "headers"), "input"))
                return true;
    }
    return false;
}

/* Writes a result batch from its meaning with weir_results_begin,
 * weir_emit and weir_failn, and compares it with the vector's bytes. */
static void check_results(const jval *results, const uint8_t *bin, size_t len) {
    weir_results w;
    weir_results_init(&w, 0);
    for (size_t i = 0; i < results->len; i++) {
        const jval *r = &results->items[i];
        weir_results_begin(&w);
        if (has(r, "failure")) {
            const jval *f = get(r, "failure");
            const jval *code = get(f, "code"), *message = get(f, "message");
            CHECK(weir_failn(&w, code->s, code->len, message->s, message->len) == WEIR_FAILED);
            continue;
        }
        const jval *outs = array(r, "outputs");
        for (size_t k = 0; k < outs->len; k++) {
            const jval *m = &outs->items[k];
            weir_output o;
            memset(&o, 0, sizeof o);
            o.key = bytes_of(get(m, "key"));
            o.value = bytes_of(get(m, "value"));
            const jval *headers = array(m, "headers");
            weir_header *hs = (weir_header *)alloc(headers->len * sizeof *hs);
            for (size_t n = 0; n < headers->len; n++) {
                const jval *name = get(&headers->items[n], "name");
                hs[n].name.ptr = name->s;
                hs[n].name.len = name->len;
                hs[n].value = bytes_of(get(&headers->items[n], "value"));
            }
            o.headers = hs;
            o.header_count = headers->len;
            const jval *ts = get(m, "timestamp");
            if (ts->kind == J_INT) {
                o.has_timestamp = true;
                o.timestamp = ts->i;
            }
            const jval *route = get(m, "route");
            if (route->kind == J_STR) {
                o.route.ptr = route->s; /* never NULL, even for "" */
                o.route.len = route->len;
            }
            CHECK(weir_emit(&w, &o));
        }
    }
    size_t got_len;
    uint8_t *got = weir_results_finish(&w, &got_len);
    bool same = got_len == len && memcmp(got, bin, len) == 0;
    if (!same) {
        dump("written ", got, got_len);
        dump("expected", bin, len);
    }
    CHECK(same);
    free(got);
}

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open a file of the vector");
    size_t cap = 4096, n = 0;
    uint8_t *buf = (uint8_t *)malloc(cap);
    if (!buf) die("out of memory");
    for (;;) {
        if (n == cap) {
            cap *= 2;
            uint8_t *t = (uint8_t *)realloc(buf, cap);
            if (!t) die("out of memory");
            buf = t;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    *len = n;
    return (uint8_t *)kept(buf);
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s VECTORS-DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return 1;
    }
    char **names = NULL;
    size_t count = 0;
    for (struct dirent *ent; (ent = readdir(d)) != NULL;) {
        size_t n = strlen(ent->d_name);
        if (n <= 5 || strcmp(ent->d_name + n - 5, ".json") != 0) continue;
        char **t = (char **)realloc(names, (count + 1) * sizeof *t);
        if (!t) die("out of memory");
        names = t;
        names[count] = (char *)malloc(n - 4);
        if (!names[count]) die("out of memory");
        memcpy(names[count], ent->d_name, n - 5);
        names[count][n - 5] = 0;
        count++;
    }
    closedir(d);
    qsort(names, count, sizeof *names, by_name);

    int decoded = 0, encoded = 0, pairs = 0, kept_fields = 0;
    for (size_t i = 0; i < count; i++) {
        vector = names[i];
        char path[4096];
        size_t json_len, bin_len;
        snprintf(path, sizeof path, "%s/%s.json", dir, names[i]);
        const uint8_t *json = read_file(path, &json_len);
        snprintf(path, sizeof path, "%s/%s.bin", dir, names[i]);
        const uint8_t *bin = read_file(path, &bin_len);
        jparser j = {(const char *)json, (const char *)json + json_len};
        jval meaning;
        memset(&meaning, 0, sizeof meaning);
        value(&j, &meaning);
        const jval *kind = get(&meaning, "kind");
        if (is_text(kind, "events")) {
            check_events(&meaning, bin, bin_len);
            decoded++;
        } else if (is_text(kind, "pairs")) {
            pairs++;
        } else if (is_text(kind, "results")) {
            const jval *results = array(&meaning, "results");
            if (keeps_input(results)) {
                kept_fields++;
            } else {
                check_results(results, bin, bin_len);
                encoded++;
            }
        } else {
            die("unknown kind");
        }
        arena_free();
        free(names[i]);
    }
    free(names);
    free(arena);
    vector = "(all)";
    CHECK(decoded > 0 && encoded > 0);
    printf("golden vectors: %d event batches decoded, %d result batches written, %d checks, %d failures; "
           "skipped %d join batches (no join world in the C SDK) and %d result batches that keep their "
           "input's key or headers (weir.h always writes them)\n",
           decoded, encoded, checks, failures, pairs, kept_fields);
    return failures ? 1 : 0;
}
