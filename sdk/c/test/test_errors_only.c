/*
 * Native test of guest-examples/c/errors-only.c: linked with it (compiled
 * natively, where WEIR_PROCESSOR defines weir_native_process), feeds it an
 * encoded event batch and checks the result batch against
 * guest-examples/SPEC.md. Run by sdk/c/test.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint8_t *weir_native_process(const uint8_t *in, size_t len, size_t *out_len);

static int failures = 0;

typedef struct {
    uint8_t *b;
    size_t n, cap;
} buf;

static void put(buf *t, const void *p, size_t n) {
    if (t->n + n > t->cap) {
        t->cap = (t->n + n) * 2;
        t->b = realloc(t->b, t->cap);
    }
    memcpy(t->b + t->n, p, n);
    t->n += n;
}
static void put_u32(buf *t, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(t, x, 4);
}
static void put_u64(buf *t, uint64_t v) {
    put_u32(t, (uint32_t)v);
    put_u32(t, (uint32_t)(v >> 32));
}
static void put_opt(buf *t, const char *s, size_t n) {
    if (!s) {
        put_u32(t, 0xffffffffu);
        return;
    }
    put_u32(t, (uint32_t)n);
    put(t, s, n);
}

typedef struct {
    const char *value; /* NULL: absent */
    size_t len;        /* 0: strlen */
    int want;          /* 1 forwarded, 0 dropped, -1 failure invalid-json */
} tcase;

static const tcase cases[] = {
    {"{\"level\":\"ERROR\",\"msg\":\"disk full\"}", 0, 1},
    {"{\"level\":\"INFO\",\"msg\":\"ok\"}", 0, 0},
    {"{\"msg\":\"no level\"}", 0, 0},
    {"{\"level\":\"error\"}", 0, 0},
    {"[{\"level\":\"ERROR\"}]", 0, 0},
    {"42", 0, 0},
    {"\"ERROR\"", 0, 0},
    {"{\"ctx\":{\"level\":\"ERROR\"},\"level\":\"WARN\"}", 0, 0},
    {"{\"msg\":\"say \\\"level\\\":\\\"ERROR\\\"\",\"level\":\"ERROR\"}", 0, 1},
    {"not json", 0, -1},
    {"{\"level\":\"ERROR\"} trailing", 0, -1},
    {"{\"level\":\"\xff\"}", 0, -1}, /* invalid UTF-8 */
    {"", 0, -1},                    /* present but empty */
    {NULL, 0, -1},                  /* absent */
};
#define NCASES (sizeof cases / sizeof cases[0])

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define EXPECT(cond, ...)                                   \
    do {                                                    \
        if (!(cond)) {                                      \
            failures++;                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                   \
            fprintf(stderr, "\n");                          \
        }                                                   \
    } while (0)

int main(void) {
    buf in = {0};
    put_u32(&in, (uint32_t)NCASES);
    /* remember each event's key/value/headers encoding for comparison */
    size_t kv_at[NCASES], kv_len[NCASES];
    for (size_t i = 0; i < NCASES; i++) {
        put_u64(&in, 1000 + i);
        put_u32(&in, 3);
        put_u64(&in, 77 + i);
        put_opt(&in, "logs", 4);
        kv_at[i] = in.n;
        char key[16];
        snprintf(key, sizeof key, "k%zu", i);
        if (i % 3 == 2)
            put_opt(&in, NULL, 0); /* some events have no key */
        else
            put_opt(&in, key, strlen(key));
        const char *v = cases[i].value;
        put_opt(&in, v, v ? (cases[i].len ? cases[i].len : strlen(v)) : 0);
        /* headers: two, one with no value */
        put_u32(&in, 2);
        put_opt(&in, "source", 6);
        put_opt(&in, "svc-a", 5);
        put_opt(&in, "flag", 4);
        put_opt(&in, NULL, 0);
        kv_len[i] = in.n - kv_at[i];
    }

    size_t n = 0;
    uint8_t *out = weir_native_process(in.b, in.n, &n);
    EXPECT(out != NULL, "weir_native_process returned NULL");
    if (!out) return 1;
    size_t p = 0;
    EXPECT(n >= 4 && rd32(out) == NCASES, "result count");
    p = 4;
    for (size_t i = 0; i < NCASES && p < n; i++) {
        uint8_t tag = out[p++];
        if (cases[i].want == -1) {
            EXPECT(tag == 1, "case %zu: want failure, got tag %u", i, tag);
            if (tag != 1) break;
            uint32_t cl = rd32(out + p);
            EXPECT(cl == 12 && memcmp(out + p + 4, "invalid-json", 12) == 0, "case %zu: code", i);
            p += 4 + cl;
            uint32_t ml = rd32(out + p);
            EXPECT(ml > 0, "case %zu: empty message", i);
            p += 4 + ml;
            continue;
        }
        EXPECT(tag == 0, "case %zu: want outputs, got tag %u", i, tag);
        if (tag != 0) break;
        uint32_t count = rd32(out + p);
        p += 4;
        EXPECT(count == (uint32_t)cases[i].want, "case %zu: %u outputs, want %d", i, count, cases[i].want);
        if (count == 1) {
            EXPECT(out[p] == 0, "case %zu: flags %u (no timestamp, no route expected)", i, out[p]);
            p++;
            /* key, value and headers byte-identical to the input's */
            EXPECT(p + kv_len[i] <= n && memcmp(out + p, in.b + kv_at[i], kv_len[i]) == 0,
                   "case %zu: forwarded bytes differ", i);
            p += kv_len[i];
        } else if (count != 0) {
            break;
        }
    }
    EXPECT(p == n, "trailing bytes in the result batch (%zu of %zu used)", p, n);
    free(out);

    /* malformed batch -> NULL */
    EXPECT(weir_native_process(in.b, in.n - 1, &n) == NULL, "truncated batch accepted");
    free(in.b);
    if (failures) {
        fprintf(stderr, "test_errors_only: %d FAILED\n", failures);
        return 1;
    }
    printf("test_errors_only: all %zu cases passed\n", NCASES);
    return 0;
}
