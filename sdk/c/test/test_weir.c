/*
 * Native unit tests of sdk/c/weir.h: the event-batch decoder, the
 * result-batch writer, the processor driver, UTF-8 and the JSON validator.
 * Run by sdk/c/test.sh (with -fsanitize=address,undefined).
 *
 *   test_weir               run the tests
 *   test_weir --json-lines  read hex-encoded inputs, one per line, from stdin
 *                           and print "<valid> <level-is-ERROR>" per line
 *                           (used by json_diff.py to compare against Python)
 */
#include "weir.h"

#include <stdarg.h>
#include <stdio.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                       \
    do {                                                                  \
        checks++;                                                         \
        if (!(cond)) {                                                    \
            failures++;                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                 \
    } while (0)

/* ---------------------------------------------------------------------- */
/* An independent little encoder for building expected bytes by hand.     */
/* ---------------------------------------------------------------------- */

typedef struct {
    uint8_t b[8192];
    size_t n;
} tbuf;

static void t_u8(tbuf *t, uint8_t v) { t->b[t->n++] = v; }
static void t_u32(tbuf *t, uint32_t v) {
    for (int i = 0; i < 4; i++) t_u8(t, (uint8_t)(v >> (8 * i)));
}
static void t_u64(tbuf *t, uint64_t v) {
    for (int i = 0; i < 8; i++) t_u8(t, (uint8_t)(v >> (8 * i)));
}
static void t_raw(tbuf *t, const void *p, size_t n) {
    memcpy(t->b + t->n, p, n);
    t->n += n;
}
static void t_str(tbuf *t, const char *s) {
    t_u32(t, (uint32_t)strlen(s));
    t_raw(t, s, strlen(s));
}
/* s == NULL: none */
static void t_opt(tbuf *t, const char *s) {
    if (!s) {
        t_u32(t, 0xffffffffu);
        return;
    }
    t_str(t, s);
}
static void t_event(tbuf *t, int64_t ts, int32_t part, int64_t off, const char *topic, const char *key,
                    const char *value, int nh, ...) {
    t_u64(t, (uint64_t)ts);
    t_u32(t, (uint32_t)part);
    t_u64(t, (uint64_t)off);
    t_str(t, topic);
    t_opt(t, key);
    t_opt(t, value);
    t_u32(t, (uint32_t)nh);
    va_list ap;
    va_start(ap, nh);
    for (int i = 0; i < nh; i++) {
        const char *name = va_arg(ap, const char *);
        const char *val = va_arg(ap, const char *);
        t_str(t, name);
        t_opt(t, val);
    }
    va_end(ap);
}

static bool bytes_is(weir_bytes b, const char *s) {
    if (!s) return !b.present && b.ptr == NULL && b.len == 0;
    return weir_bytes_eq_cstr(b, s);
}

static void dump(const char *label, const uint8_t *p, size_t n) {
    fprintf(stderr, "%s (%zu):", label, n);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, "\n");
}

static bool same_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn) {
    if (an == bn && memcmp(a, b, an) == 0) return true;
    dump("got ", a, an);
    dump("want", b, bn);
    return false;
}

/* ---------------------------------------------------------------------- */
/* Decoder                                                                 */
/* ---------------------------------------------------------------------- */

static void build_sample_batch(tbuf *t) {
    t->n = 0;
    t_u32(t, 3);
    t_event(t, 1700000000123LL, 7, 42, "orders", "k1", "{\"level\":\"ERROR\"}", 2, "trace", "abc", "empty", NULL);
    t_event(t, -5, -1, INT64_MAX, "", NULL, "", 0);
    t_event(t, 0, 0, 0, "t\xc3\xa9", "", NULL, 1, "h", "");
}

static void test_decode(void) {
    tbuf t;
    build_sample_batch(&t);
    weir_batch b;
    weir_event e;
    CHECK(weir_batch_open(&b, t.b, t.n) == 0);
    CHECK(b.count == 3);

    CHECK(weir_batch_next(&b, &e) == 1);
    CHECK(e.index == 0);
    CHECK(e.timestamp == 1700000000123LL);
    CHECK(e.partition == 7);
    CHECK(e.offset == 42);
    CHECK(weir_str_eq_cstr(e.topic, "orders"));
    CHECK(bytes_is(e.key, "k1"));
    CHECK(bytes_is(e.value, "{\"level\":\"ERROR\"}"));
    CHECK(e.header_count == 2);
    /* zero-copy: pointers into the input buffer */
    CHECK(e.value.ptr > t.b && e.value.ptr < t.b + t.n);
    CHECK(e.headers_raw > t.b && e.headers_raw + e.headers_raw_len <= t.b + t.n);
    CHECK(e.headers_raw_len == 4 + (4 + 5 + 4 + 3) + (4 + 5 + 4));
    {
        weir_header_iter it = weir_event_headers(&e);
        weir_header h;
        CHECK(weir_header_next(&it, &h));
        CHECK(weir_str_eq_cstr(h.name, "trace"));
        CHECK(bytes_is(h.value, "abc"));
        CHECK(weir_header_next(&it, &h));
        CHECK(weir_str_eq_cstr(h.name, "empty"));
        CHECK(bytes_is(h.value, NULL));
        CHECK(!weir_header_next(&it, &h));
        CHECK(!weir_header_next(&it, &h));
        weir_bytes v;
        CHECK(weir_event_header(&e, "trace", &v) && bytes_is(v, "abc"));
        CHECK(weir_event_header(&e, "empty", &v) && !v.present);
        CHECK(!weir_event_header(&e, "missing", &v));
        CHECK(!weir_event_header(&e, "trac", NULL));
    }

    CHECK(weir_batch_next(&b, &e) == 1);
    CHECK(e.index == 1);
    CHECK(e.timestamp == -5);
    CHECK(e.partition == -1);
    CHECK(e.offset == INT64_MAX);
    CHECK(e.topic.len == 0);
    CHECK(bytes_is(e.key, NULL));
    CHECK(e.value.present && e.value.len == 0 && e.value.ptr != NULL); /* present, empty */
    CHECK(e.header_count == 0 && e.headers_raw_len == 4);

    CHECK(weir_batch_next(&b, &e) == 1);
    CHECK(e.index == 2);
    CHECK(weir_str_eq_cstr(e.topic, "t\xc3\xa9"));
    CHECK(e.key.present && e.key.len == 0);
    CHECK(bytes_is(e.value, NULL));
    CHECK(e.header_count == 1);
    {
        weir_bytes v;
        CHECK(weir_event_header(&e, "h", &v) && v.present && v.len == 0);
    }

    CHECK(weir_batch_next(&b, &e) == 0);
    CHECK(weir_batch_next(&b, &e) == 0);

    /* an empty batch */
    {
        uint8_t z[4] = {0, 0, 0, 0};
        CHECK(weir_batch_open(&b, z, 4) == 0);
        CHECK(weir_batch_next(&b, &e) == 0);
    }
}

/* Every truncation of a valid batch, and trailing bytes, are rejected without
 * reading out of bounds (the buffer is copied to an exactly sized heap block
 * so ASan catches any overread). */
static int decode_all(const uint8_t *p, size_t n) {
    uint8_t *copy = (uint8_t *)malloc(n ? n : 1);
    if (n) memcpy(copy, p, n);
    weir_batch b;
    weir_event e;
    int rc = weir_batch_open(&b, n ? copy : NULL, n);
    if (rc == 0) {
        while ((rc = weir_batch_next(&b, &e)) == 1) {
            weir_header_iter it = weir_event_headers(&e);
            weir_header h;
            while (weir_header_next(&it, &h)) {
            }
        }
    }
    free(copy);
    return rc;
}

static void test_decode_malformed(void) {
    tbuf t;
    build_sample_batch(&t);
    CHECK(decode_all(t.b, t.n) == 0);
    for (size_t cut = 0; cut < t.n; cut++) {
        if (decode_all(t.b, cut) != -1) {
            fprintf(stderr, "truncation at %zu not rejected\n", cut);
            CHECK(0);
        }
    }
    /* trailing garbage */
    t_u8(&t, 0);
    CHECK(decode_all(t.b, t.n) == -1);

    /* count larger than the events present */
    build_sample_batch(&t);
    t.b[0] = 4;
    CHECK(decode_all(t.b, t.n) == -1);
    /* absurd count */
    t.b[0] = t.b[1] = t.b[2] = t.b[3] = 0xff;
    CHECK(decode_all(t.b, t.n) == -1);
    /* count smaller: leftover bytes */
    build_sample_batch(&t);
    t.b[0] = 2;
    CHECK(decode_all(t.b, t.n) == -1);
    /* a huge topic length */
    build_sample_batch(&t);
    t.b[4 + 20 + 3] = 0x7f;
    CHECK(decode_all(t.b, t.n) == -1);
    /* key length 0xfffffffe (not the none marker) */
    build_sample_batch(&t);
    {
        size_t key_at = 4 + 20 + 4 + 6;
        CHECK(weir__ld_u32(t.b + key_at) == 2);
        weir__st_u32(t.b + key_at, 0xfffffffeu);
        CHECK(decode_all(t.b, t.n) == -1);
    }
    /* tiny buffers */
    CHECK(decode_all(NULL, 0) == -1);
    {
        uint8_t z[3] = {0, 0, 0};
        CHECK(decode_all(z, 3) == -1);
    }

    /* random corruption must never crash */
    uint32_t seed = 12345;
    for (int round = 0; round < 20000; round++) {
        build_sample_batch(&t);
        int flips = 1 + round % 4;
        for (int k = 0; k < flips; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % t.n;
            seed = seed * 1103515245u + 12345u;
            t.b[at] = (uint8_t)(seed >> 16);
        }
        seed = seed * 1103515245u + 12345u;
        size_t len = (round % 3 == 0) ? (seed >> 8) % (t.n + 1) : t.n;
        (void)decode_all(t.b, len);
    }
}

/* ---------------------------------------------------------------------- */
/* Writer                                                                  */
/* ---------------------------------------------------------------------- */

static void test_writer(void) {
    tbuf in;
    build_sample_batch(&in);
    weir_batch b;
    weir_event e;
    CHECK(weir_batch_open(&b, in.b, in.n) == 0);
    CHECK(weir_batch_next(&b, &e) == 1);

    weir_results w;
    weir_results_init(&w, 0); /* tiny: forces growth */

    /* result 0: two outputs */
    weir_results_begin(&w);
    {
        weir_header hs[2] = {
            {{"a", 1}, {(const uint8_t *)"xy", 2, true}},
            {{"b", 1}, {NULL, 0, false}},
        };
        weir_output o;
        memset(&o, 0, sizeof o);
        o.key = weir_bytes_cstr("K");
        o.value = weir_bytes_none();
        o.headers = hs;
        o.header_count = 2;
        o.has_timestamp = true;
        o.timestamp = -2;
        o.route = weir_str_cstr("audit");
        CHECK(weir_emit(&w, &o));
        CHECK(weir_emit_forward(&w, &e));
    }
    /* result 1: outputs, then a failure that replaces them */
    weir_results_begin(&w);
    {
        weir_output o;
        memset(&o, 0, sizeof o); /* all defaults: no key, no value, no headers */
        CHECK(weir_emit(&w, &o));
        CHECK(weir_fail(&w, "bad-thing", "it went wrong") == WEIR_FAILED);
        CHECK(weir_results_failed(&w));
        CHECK(!weir_emit(&w, &o)); /* ignored after a failure */
    }
    /* result 2: no outputs */
    weir_results_begin(&w);
    /* result 3: a failure with invalid UTF-8 in the message, and an empty
     * present value output before it */
    weir_results_begin(&w);
    weir_failn(&w, "x", 1, "a\xff", 2);
    /* result 4: an output with an empty present key and value and an empty route */
    weir_results_begin(&w);
    {
        weir_output o;
        memset(&o, 0, sizeof o);
        o.key = weir_bytes_of(NULL, 0);
        o.value = weir_bytes_of("", 0);
        o.route = weir_str_cstr("");
        CHECK(weir_emit(&w, &o));
    }
    size_t n;
    uint8_t *out = weir_results_finish(&w, &n);
    CHECK(w.buf == NULL);

    tbuf x;
    x.n = 0;
    t_u32(&x, 5);
    /* result 0 */
    t_u8(&x, 0);
    t_u32(&x, 2);
    t_u8(&x, 3);          /* timestamp + route */
    t_u64(&x, (uint64_t)-2);
    t_opt(&x, "K");
    t_opt(&x, NULL);
    t_u32(&x, 2);
    t_str(&x, "a");
    t_opt(&x, "xy");
    t_str(&x, "b");
    t_opt(&x, NULL);
    t_str(&x, "audit");
    t_u8(&x, 0); /* forwarded: flags 0, key, value, the input's headers */
    t_opt(&x, "k1");
    t_opt(&x, "{\"level\":\"ERROR\"}");
    t_u32(&x, 2);
    t_str(&x, "trace");
    t_opt(&x, "abc");
    t_str(&x, "empty");
    t_opt(&x, NULL);
    /* result 1 */
    t_u8(&x, 1);
    t_str(&x, "bad-thing");
    t_str(&x, "it went wrong");
    /* result 2 */
    t_u8(&x, 0);
    t_u32(&x, 0);
    /* result 3: 0xff became U+FFFD */
    t_u8(&x, 1);
    t_str(&x, "x");
    t_str(&x, "a\xef\xbf\xbd");
    /* result 4 */
    t_u8(&x, 0);
    t_u32(&x, 1);
    t_u8(&x, 2);
    t_opt(&x, "");
    t_opt(&x, "");
    t_u32(&x, 0);
    t_str(&x, "");

    CHECK(same_bytes(out, n, x.b, x.n));
    free(out);

    /* an empty batch */
    weir_results_init(&w, 1000);
    out = weir_results_finish(&w, &n);
    CHECK(n == 4 && weir__ld_u32(out) == 0);
    free(out);

    /* fail before begin is a no-op; free of an unfinished batch */
    weir_results_init(&w, 0);
    CHECK(weir_fail(&w, "c", "m") == WEIR_FAILED);
    CHECK(!weir_emit(&w, &(weir_output){0}));
    CHECK(w.len == 4);
    weir_results_begin(&w);
    weir_results_free(&w);

    /* growth: many large outputs */
    weir_results_init(&w, 0);
    static uint8_t big[100000];
    memset(big, 'v', sizeof big);
    for (int i = 0; i < 50; i++) {
        weir_results_begin(&w);
        weir_output o;
        memset(&o, 0, sizeof o);
        o.value = weir_bytes_of(big, sizeof big);
        weir_emit(&w, &o);
    }
    out = weir_results_finish(&w, &n);
    CHECK(n == 4 + 50 * (1 + 4 + 1 + 4 + 4 + sizeof big + 4));
    CHECK(weir__ld_u32(out) == 50);
    free(out);
}

/* ---------------------------------------------------------------------- */
/* Driver                                                                  */
/* ---------------------------------------------------------------------- */

/* value "fail" -> failure; "explode" -> WEIR_FAILED without weir_fail;
 * "twice" -> the event twice; absent -> nothing; else forward */
static weir_status test_fn(const weir_event *e, weir_results *out) {
    if (!e->value.present) return WEIR_OK;
    if (weir_bytes_eq_cstr(e->value, "fail")) return weir_fail(out, "nope", "value was fail");
    if (weir_bytes_eq_cstr(e->value, "explode")) return WEIR_FAILED;
    weir_emit_forward(out, e);
    if (weir_bytes_eq_cstr(e->value, "twice")) weir_emit_forward(out, e);
    return WEIR_OK;
}

static void test_driver(void) {
    tbuf in;
    in.n = 0;
    t_u32(&in, 5);
    t_event(&in, 1, 0, 0, "t", "a", "fail", 0);
    t_event(&in, 2, 0, 1, "t", "b", "twice", 1, "h", "v");
    t_event(&in, 3, 0, 2, "t", NULL, NULL, 0);
    t_event(&in, 4, 0, 3, "t", "d", "explode", 0);
    t_event(&in, 5, 0, 4, "t", "e", "x", 0);
    size_t n;
    uint8_t *out = weir_process_batch(in.b, in.n, test_fn, &n);
    CHECK(out != NULL);

    tbuf x;
    x.n = 0;
    t_u32(&x, 5);
    t_u8(&x, 1);
    t_str(&x, "nope");
    t_str(&x, "value was fail");
    t_u8(&x, 0);
    t_u32(&x, 2);
    for (int i = 0; i < 2; i++) {
        t_u8(&x, 0);
        t_opt(&x, "b");
        t_opt(&x, "twice");
        t_u32(&x, 1);
        t_str(&x, "h");
        t_opt(&x, "v");
    }
    t_u8(&x, 0);
    t_u32(&x, 0);
    t_u8(&x, 1);
    t_str(&x, "failed");
    t_str(&x, "the operator returned WEIR_FAILED without a failure");
    t_u8(&x, 0);
    t_u32(&x, 1);
    t_u8(&x, 0);
    t_opt(&x, "e");
    t_opt(&x, "x");
    t_u32(&x, 0);
    if (out) CHECK(same_bytes(out, n, x.b, x.n));
    free(out);

    /* malformed input -> NULL */
    CHECK(weir_process_batch(in.b, in.n - 1, test_fn, &n) == NULL && n == 0);
    CHECK(weir_process_batch(in.b, 2, test_fn, &n) == NULL);
}

/* ---------------------------------------------------------------------- */
/* UTF-8                                                                   */
/* ---------------------------------------------------------------------- */

static void test_utf8(void) {
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"", true},
        {"plain ascii", true},
        {"caf\xc3\xa9", true},
        {"\xe2\x82\xac", true},             /* U+20AC */
        {"\xf0\x9f\x98\x80", true},         /* U+1F600 */
        {"\xf4\x8f\xbf\xbf", true},         /* U+10FFFF */
        {"\xef\xbf\xbd", true},             /* U+FFFD */
        {"\xed\x9f\xbf", true},             /* U+D7FF */
        {"\xee\x80\x80", true},             /* U+E000 */
        {"\x80", false},                    /* lone continuation */
        {"\xc3", false},                    /* truncated */
        {"\xc3\x28", false},                /* bad continuation */
        {"\xc0\xaf", false},                /* overlong '/' */
        {"\xc1\xbf", false},                /* overlong */
        {"\xe0\x80\xaf", false},            /* overlong */
        {"\xe0\x9f\xbf", false},            /* overlong */
        {"\xed\xa0\x80", false},            /* U+D800 surrogate */
        {"\xed\xbf\xbf", false},            /* U+DFFF surrogate */
        {"\xf0\x80\x80\xaf", false},        /* overlong */
        {"\xf4\x90\x80\x80", false},        /* > U+10FFFF */
        {"\xf5\x80\x80\x80", false},
        {"\xff", false},
        {"\xfe", false},
        {"a\xe2\x82", false},               /* truncated at end */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = weir_utf8_valid(cases[i].s, strlen(cases[i].s));
        if (got != cases[i].ok) {
            fprintf(stderr, "utf8 case %zu: got %d\n", i, got);
            CHECK(0);
        }
        checks++;
    }
}

/* ---------------------------------------------------------------------- */
/* JSON                                                                    */
/* ---------------------------------------------------------------------- */

typedef struct {
    const char *json;
    size_t len;   /* 0: strlen */
    int expect;   /* weir_json_member_equals(json, "level", "ERROR") */
} jcase;

#define INV WEIR_JSON_INVALID

static const jcase json_cases[] = {
    /* matches */
    {"{\"level\":\"ERROR\"}", 0, 1},
    {" \t\r\n{ \"level\" : \"ERROR\" , \"msg\" : \"boom\" } \n", 0, 1},
    {"{\"msg\":\"x\",\"level\":\"ERROR\"}", 0, 1},
    {"{\"a\":{\"level\":\"INFO\"},\"level\":\"ERROR\",\"b\":[1,2,{\"level\":\"x\"}]}", 0, 1},
    {"{\"lev\\u0065l\":\"\\u0045RROR\"}", 0, 1},          /* escapes decoded before comparing */
    {"{\"level\":\"ERR\\u004fR\"}", 0, 1},
    {"{\"level\":\"INFO\",\"level\":\"ERROR\"}", 0, 1},   /* duplicate: last wins */
    /* valid, no match */
    {"{\"level\":\"ERROR\",\"level\":\"INFO\"}", 0, 0},
    {"{\"level\":\"error\"}", 0, 0},
    {"{\"level\":\"ERROR \"}", 0, 0},
    {"{\"level\":\"ERRO\"}", 0, 0},
    {"{\"level\":\"ERRORS\"}", 0, 0},
    {"{\"level\":\"\"}", 0, 0},
    {"{\"Level\":\"ERROR\"}", 0, 0},
    {"{\"level \":\"ERROR\"}", 0, 0},
    {"{\"levels\":\"ERROR\"}", 0, 0},
    {"{\"leve\":\"ERROR\"}", 0, 0},
    {"{\"level\":[\"ERROR\"]}", 0, 0},
    {"{\"level\":{\"level\":\"ERROR\"}}", 0, 0},
    {"{\"level\":null}", 0, 0},
    {"{\"level\":true}", 0, 0},
    {"{\"level\":1}", 0, 0},
    {"{\"msg\":\"\\\"level\\\":\\\"ERROR\\\"\"}", 0, 0},  /* escaped quotes inside a string */
    {"{\"x\":\"{\\\"level\\\":\\\"ERROR\\\"}\"}", 0, 0},
    {"{\"nested\":{\"level\":\"ERROR\"}}", 0, 0},         /* nested level does not count */
    {"{\"a\":[{\"level\":\"ERROR\"}]}", 0, 0},
    {"[{\"level\":\"ERROR\"}]", 0, 0},                    /* not an object */
    {"\"ERROR\"", 0, 0},
    {"\"{\\\"level\\\":\\\"ERROR\\\"}\"", 0, 0},
    {"{}", 0, 0},
    {"[]", 0, 0},
    {"0", 0, 0},
    {"-0.5e+10", 0, 0},
    {"1E400", 0, 0},
    {"123456789012345678901234567890", 0, 0},
    {"true", 0, 0},
    {"false", 0, 0},
    {"null", 0, 0},
    {"\"\"", 0, 0},
    {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\"", 0, 0},
    {"\"\\ud800\"", 0, 0},                                 /* lone surrogate escape: accepted */
    {"\"\\udc00\\ud800x\"", 0, 0},
    {"{\"level\":\"ERROR\\ud800\"}", 0, 0},
    {"\"caf\xc3\xa9 \xf0\x9f\x98\x80\"", 0, 0},
    {"[1,[2,[3,{\"a\":[true,false,null]}]],-1.25e-3,\"x\"]", 0, 0},
    {"{\"a\":1,\"b\":[],\"c\":{}}", 0, 0},
    {"\"\x7f\"", 0, 0},                                    /* DEL is allowed */
    /* invalid */
    {"", 0, INV},
    {"   ", 0, INV},
    {"{", 0, INV},
    {"}", 0, INV},
    {"[", 0, INV},
    {"[1,]", 0, INV},
    {"[,1]", 0, INV},
    {"[1 2]", 0, INV},
    {"{\"level\":\"ERROR\",}", 0, INV},
    {"{\"level\":\"ERROR\"} x", 0, INV},                  /* trailing garbage */
    {"{\"level\":\"ERROR\"}{}", 0, INV},
    {"{\"level\":\"ERROR\"}]", 0, INV},
    {"{\"level\":\"ERROR\"", 0, INV},
    {"{\"level\" \"ERROR\"}", 0, INV},
    {"{\"level\":}", 0, INV},
    {"{level:\"ERROR\"}", 0, INV},
    {"{'level':'ERROR'}", 0, INV},
    {"{\"a\" 1}", 0, INV},
    {"{1:2}", 0, INV},
    {"{\"a\":1,}", 0, INV},
    {"{,}", 0, INV},
    {"[}", 0, INV},
    {"{]", 0, INV},
    {"[1}", 0, INV},
    {"{\"a\":1]", 0, INV},
    {"\"abc", 0, INV},
    {"\"a\nb\"", 0, INV},                                  /* raw control char */
    {"\"a\tb\"", 0, INV},
    {"\"\\x41\"", 0, INV},
    {"\"\\u12\"", 0, INV},
    {"\"\\u12G4\"", 0, INV},
    {"\"\\", 0, INV},
    {"\"\\u", 0, INV},
    {"\"\xff\"", 0, INV},                                  /* invalid UTF-8 in a string */
    {"\"\xc3\"", 0, INV},
    {"\"\xed\xa0\x80\"", 0, INV},                          /* UTF-8-encoded surrogate */
    {"\xef\xbb\xbf{}", 0, INV},                            /* BOM */
    {"{\"level\":\"ERROR\"}\xff", 0, INV},
    {"01", 0, INV},
    {"-", 0, INV},
    {"-01", 0, INV},
    {"+1", 0, INV},
    {"1.", 0, INV},
    {".5", 0, INV},
    {"1.e5", 0, INV},
    {"1e", 0, INV},
    {"1e+", 0, INV},
    {"0x10", 0, INV},
    {"NaN", 0, INV},
    {"Infinity", 0, INV},
    {"-Infinity", 0, INV},
    {"tru", 0, INV},
    {"truex", 0, INV},
    {"nul", 0, INV},
    {"True", 0, INV},
    {"[1]x", 0, INV},
    {"\"a\"\"b\"", 0, INV},
    {"1 2", 0, INV},
    {"\f1", 0, INV},                                       /* form feed is not whitespace */
    {"\x00", 1, INV},
    {"{\"level\":\"ERROR\"}\x00", 18, INV},
    {"\"a\x00\"", 4, INV},
};

static void test_json(void) {
    for (size_t i = 0; i < sizeof json_cases / sizeof json_cases[0]; i++) {
        const jcase *c = &json_cases[i];
        size_t len = c->len ? c->len : strlen(c->json);
        /* exact-size heap copy so ASan catches overreads */
        char *copy = (char *)malloc(len ? len : 1);
        memcpy(copy, c->json, len);
        int got = weir_json_member_equals(copy, len, "level", "ERROR");
        bool valid = weir_json_valid(copy, len);
        checks++;
        if (got != c->expect || valid != (c->expect != INV)) {
            failures++;
            fprintf(stderr, "json case %zu %.*s: got %d (valid %d), want %d\n", i, (int)len, c->json, got, valid,
                    c->expect);
        }
        free(copy);
    }

    /* other member/want values, including empty ones */
    CHECK(weir_json_member_equals("{\"\":\"\"}", 7, "", "") == 1);
    CHECK(weir_json_member_equals("{\"k\":\"caf\\u00e9\"}", 17, "k", "caf\xc3\xa9") == 1);
    CHECK(weir_json_member_equals("{\"k\":\"\\uD83D\\uDE00\"}", 20, "k", "\xf0\x9f\x98\x80") == 1);
    CHECK(weir_json_member_equals("{\"k\":\"\\uD83D\\uDE00\"}", 20, "k", "\xf0\x9f\x98") == 0);
    CHECK(weir_json_member_equalsn("{\"a\\u0000b\":\"x\"}", 16, "a\0b", 3, "x", 1) == 1);
    CHECK(weir_json_member_equals("{\"level\":\"ERROR\"}", 17, "level", "ERROR") == 1);
    CHECK(weir_json_member_equals(NULL, 0, "level", "ERROR") == INV);
    CHECK(!weir_json_valid(NULL, 0));

    /* depth limit: WEIR_JSON_MAX_DEPTH nested arrays are fine, one more is not */
    for (int extra = 0; extra <= 1; extra++) {
        size_t d = WEIR_JSON_MAX_DEPTH + (size_t)extra;
        char *s = (char *)malloc(2 * d);
        memset(s, '[', d);
        memset(s + d, ']', d);
        CHECK(weir_json_valid(s, 2 * d) == (extra == 0));
        free(s);
    }
    {
        /* {"a":[{"a":[ ... ]}]} with depth exactly the limit */
        char buf[4096];
        size_t n = 0, d = WEIR_JSON_MAX_DEPTH;
        for (size_t k = 0; k < d; k++) {
            if (k % 2 == 0) {
                memcpy(buf + n, "{\"a\":", 5);
                n += 5;
            } else {
                buf[n++] = '[';
            }
        }
        buf[n++] = '1';
        for (size_t k = d; k-- > 0;) buf[n++] = (k % 2 == 0) ? '}' : ']';
        CHECK(weir_json_valid(buf, n));
        CHECK(weir_json_member_equals(buf, n, "level", "ERROR") == 0);
        CHECK(!weir_json_valid(buf, n - 1));
    }

    /* random mutations of valid documents must never crash (ASan) */
    static const char *seeds[] = {
        "{\"level\":\"ERROR\",\"a\":[1,2.5e3,true,false,null,{\"b\":\"\\u00e9\\\"x\"}]}",
        "[\"\\uD83D\\uDE00\",-0.0,{},[],\"caf\xc3\xa9\"]",
    };
    uint32_t seed = 99;
    for (int round = 0; round < 50000; round++) {
        const char *src = seeds[round % 2];
        size_t n = strlen(src);
        char *s = (char *)malloc(n);
        memcpy(s, src, n);
        int flips = 1 + round % 3;
        for (int k = 0; k < flips; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % n;
            seed = seed * 1103515245u + 12345u;
            static const char alphabet[] = "{}[]\",:\\u0e-+.truefalsn \x80\xc3\xff\x01";
            s[at] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        seed = seed * 1103515245u + 12345u;
        size_t len = (round % 4 == 0) ? (seed >> 8) % (n + 1) : n;
        int r = weir_json_member_equals(s, len, "level", "ERROR");
        bool v = weir_json_valid(s, len);
        CHECK((r != INV) == v);
        if (v) CHECK(weir_utf8_valid(s, len)); /* valid JSON implies UTF-8 */
        free(s);
    }
}

/* ---------------------------------------------------------------------- */

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int json_lines(void) {
    static char line[1 << 20];
    static uint8_t buf[1 << 19];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = 0;
        for (size_t i = 0; line[i] && line[i + 1] && hexval(line[i]) >= 0; i += 2)
            buf[n++] = (uint8_t)(hexval(line[i]) << 4 | hexval(line[i + 1]));
        int r = weir_json_member_equals(buf, n, "level", "ERROR");
        printf("%d %d\n", r != INV, r == 1);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--json-lines") == 0) return json_lines();
    test_decode();
    test_decode_malformed();
    test_writer();
    test_driver();
    test_utf8();
    test_json();
    /* native import stubs link and run */
    weir_log(WEIR_LOG_DEBUG, "log stub works");
    weir_logn(WEIR_LOG_DEBUG, "bad \xff utf-8", 12);
    CHECK(weir_config_get("anything", NULL) == NULL);
    size_t nent;
    CHECK(weir_config_entries(&nent) == NULL && nent == 0);
    weir_counter_add("c", 1);
    if (failures) {
        fprintf(stderr, "test_weir: %d of %d checks FAILED\n", failures, checks);
        return 1;
    }
    printf("test_weir: all %d checks passed\n", checks);
    return 0;
}
