/*
 * weir.h — the C guest SDK for Weir operators.
 *
 * Header-only, C99 or later, no generated bindings. It implements, by hand,
 * the part of the Component Model canonical ABI that the `process` world of
 * wit/weir.wit needs, plus the flat batch encoding described at the top of
 * that file, so an operator is one C function:
 *
 *     #include "weir.h"
 *
 *     static weir_status my_process(const weir_event *e, weir_results *out) {
 *         if (!e->value.present)
 *             return weir_fail(out, "no-value", "the record has no value");
 *         weir_emit_forward(out, e);          // forward the event unchanged
 *         return WEIR_OK;
 *     }
 *
 *     WEIR_PROCESSOR(my_process);
 *
 * Build it with clang --target=wasm32-wasi -mexec-model=reactor into a core
 * module, then `weir componentize CORE.wasm --world process -o OUT.wasm`
 * (see sdk/c/README.md).
 *
 * ---------------------------------------------------------------------------
 * Contents
 *   1. Basic types: weir_bytes, weir_str, weir_header
 *   2. UTF-8 validation
 *   3. Event-batch decoder (zero-copy): weir_batch, weir_event, headers
 *   4. Result-batch writer: weir_results, weir_output, weir_emit, weir_fail
 *   5. JSON validator: weir_json_valid, weir_json_member_equals
 *   6. Host imports: weir_log, weir_config_get, weir_config_entries,
 *      weir_counter_add
 *   7. The processor driver and WEIR_PROCESSOR (the core-module exports)
 *
 * ---------------------------------------------------------------------------
 * The ABI implemented here (process world, weir:stream@0.1.0)
 *
 * Component-level signature, and its core-wasm lowering by the canonical ABI
 * (MAX_FLAT_PARAMS = 16, MAX_FLAT_RESULTS = 1; strings and lists flatten to
 * (i32 ptr, i32 len); an enum to its i32 discriminant; u64 to i64):
 *
 *   export weir:stream/processor@0.1.0  process: func(list<u8>) -> list<u8>
 *     core export "weir:stream/processor@0.1.0#process"  (i32 ptr, i32 len) -> i32
 *       Two flat results exceed MAX_FLAT_RESULTS, so the lifted function
 *       returns a pointer to a return area holding {u32 ptr, u32 len}. The
 *       argument buffer was allocated by the host through cabi_realloc and is
 *       owned (and freed) by the guest.
 *     core export "cabi_post_weir:stream/processor@0.1.0#process"  (i32) -> ()
 *       Called with the returned pointer once the host has copied the result
 *       out; frees the result buffer.
 *     core export "cabi_realloc"  (i32 old_ptr, i32 old_size, i32 align, i32 new_size) -> i32
 *     core export "memory" (clang exports it by default)
 *
 *   import weir:stream/log@0.1.0      log: func(level, string)
 *     core import "weir:stream/log@0.1.0" "log"  (i32 level, i32 ptr, i32 len) -> ()
 *   import weir:stream/config@0.1.0   get: func(string) -> option<string>
 *     core import "weir:stream/config@0.1.0" "get"  (i32 ptr, i32 len, i32 ret) -> ()
 *       The 3 flat results exceed MAX_FLAT_RESULTS, so the caller passes a
 *       return area: u8 discriminant at +0, string ptr at +4, len at +8
 *       (size 12, align 4). The string is allocated with our cabi_realloc.
 *   import weir:stream/config@0.1.0   entries: func() -> list<tuple<string, string>>
 *     core import "weir:stream/config@0.1.0" "entries"  (i32 ret) -> ()
 *       ret: {u32 ptr, u32 len}; elements are 16 bytes:
 *       key ptr, key len, value ptr, value len.
 *   import weir:stream/metrics@0.1.0  counter-add: func(string, u64)
 *     core import "weir:stream/metrics@0.1.0" "counter-add"  (i32, i32, i64) -> ()
 *
 * Imports that an operator never calls are dropped by the linker, so the core
 * module only imports what it uses.
 *
 * Strings handed to the host (log messages, counter names, config keys,
 * failure codes and messages, routes, header names) must be UTF-8 or the host
 * traps / rejects the batch; every function in this SDK that sends one
 * replaces invalid UTF-8 with U+FFFD first, so a bad string never kills a
 * batch.
 *
 * ---------------------------------------------------------------------------
 * Native builds
 *
 * When compiled for anything but wasm (e.g. with the host gcc, for unit
 * tests), the imports become stubs (log prints to stderr, config is empty,
 * counters are ignored) and WEIR_PROCESSOR(fn) defines
 *     uint8_t *weir_native_process(const uint8_t *in, size_t len, size_t *out_len)
 * which runs `fn` over an encoded event batch and returns a malloc'd
 * result batch (NULL if the input is malformed), so an operator can be tested
 * natively with the same bytes the host would send.
 *
 * ---------------------------------------------------------------------------
 * Memory: the SDK uses malloc/realloc/free from wasi-libc. Out of memory
 * traps (wasm) or aborts (native). Nothing returned by the decoder needs
 * freeing: events, keys, values and headers point into the input buffer,
 * which stays alive until the operator function returns for the last event
 * of the batch — copy anything you need to keep across batches.
 */
#ifndef WEIR_H
#define WEIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__wasm__)
#define WEIR_WASM 1
#else
#define WEIR_WASM 0
#include <stdio.h>
#endif

/* Every SDK function is static inline: unused ones cost nothing, and the
 * header can be included from several translation units (WEIR_PROCESSOR must
 * appear in exactly one). */
#define WEIR_API static inline

/* Maximum nesting of JSON arrays/objects accepted by the JSON validator.
 * 127 matches serde_json's default recursion limit (the Rust SDK's parser),
 * so deep documents fail the same way in both languages. */
#ifndef WEIR_JSON_MAX_DEPTH
#define WEIR_JSON_MAX_DEPTH 127
#endif

/* ======================================================================== */
/* Internals: trap, little-endian load/store                                 */
/* ======================================================================== */

/* Stops the operator: a wasm trap (the host handles the batch per the stage's
 * error policy), or abort() natively. */
__attribute__((noreturn)) WEIR_API void weir__trap(void) {
#if WEIR_WASM
    __builtin_trap();
#else
    abort();
#endif
}

WEIR_API uint32_t weir__ld_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

WEIR_API uint64_t weir__ld_u64(const uint8_t *p) {
    return (uint64_t)weir__ld_u32(p) | (uint64_t)weir__ld_u32(p + 4) << 32;
}

WEIR_API void weir__st_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

WEIR_API void weir__st_u64(uint8_t *p, uint64_t v) {
    weir__st_u32(p, (uint32_t)v);
    weir__st_u32(p + 4, (uint32_t)(v >> 32));
}

/* The `opt-bytes` length that means "none". */
#define WEIR__NONE_LEN 0xffffffffu

/* ======================================================================== */
/* 1. Basic types                                                           */
/* ======================================================================== */

/* Optional bytes (keys, values, header values): `present == false` is none
 * (ptr NULL, len 0); a present empty value has len 0 and present true.
 * A zero-initialised weir_bytes is "none". */
typedef struct weir_bytes {
    const uint8_t *ptr;
    size_t len;
    bool present;
} weir_bytes;

/* A UTF-8 string slice, not NUL-terminated. */
typedef struct weir_str {
    const char *ptr;
    size_t len;
} weir_str;

/* One Kafka record header. Names need not be unique; order is kept. */
typedef struct weir_header {
    weir_str name;
    weir_bytes value;
} weir_header;

/* None. */
WEIR_API weir_bytes weir_bytes_none(void) {
    weir_bytes b = {NULL, 0, false};
    return b;
}

/* Present bytes `ptr[0..len)` (not copied). */
WEIR_API weir_bytes weir_bytes_of(const void *ptr, size_t len) {
    weir_bytes b = {(const uint8_t *)ptr, len, true};
    return b;
}

/* Present bytes: the NUL-terminated string `s` without its NUL (not copied). */
WEIR_API weir_bytes weir_bytes_cstr(const char *s) {
    return weir_bytes_of(s, strlen(s));
}

/* A string slice of the NUL-terminated `s` (not copied). */
WEIR_API weir_str weir_str_cstr(const char *s) {
    weir_str r = {s, strlen(s)};
    return r;
}

/* True when `b` is present and byte-equal to `s`. */
WEIR_API bool weir_bytes_eq_cstr(weir_bytes b, const char *s) {
    size_t n = strlen(s);
    return b.present && b.len == n && (n == 0 || memcmp(b.ptr, s, n) == 0);
}

/* True when `a` is byte-equal to `s`. */
WEIR_API bool weir_str_eq_cstr(weir_str a, const char *s) {
    size_t n = strlen(s);
    return a.len == n && (n == 0 || memcmp(a.ptr, s, n) == 0);
}

/* ======================================================================== */
/* 2. UTF-8                                                                 */
/* ======================================================================== */

/* Length (1-4) of the well-formed UTF-8 sequence at p[0..avail), or 0 if it is
 * not well-formed (overlong forms, surrogates, > U+10FFFF and truncated
 * sequences are rejected, exactly as Rust's str::from_utf8). avail >= 1. */
WEIR_API size_t weir__utf8_seq(const uint8_t *p, size_t avail) {
    uint8_t c = p[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        return (avail >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3) return 0;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c == 0xE0) lo = 0xA0;      /* no overlongs */
        else if (c == 0xED) hi = 0x9F; /* no UTF-16 surrogates */
        if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80) return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4) return 0;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c == 0xF0) lo = 0x90;      /* no overlongs */
        else if (c == 0xF4) hi = 0x8F; /* <= U+10FFFF */
        if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        return 4;
    }
    return 0;
}

/* True when p[0..len) is well-formed UTF-8. */
WEIR_API bool weir_utf8_valid(const void *data, size_t len) {
    const uint8_t *p = (const uint8_t *)data;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = weir__utf8_seq(p + i, len - i);
        if (k == 0) return false;
        i += k;
    }
    return true;
}

/* If s[0..len) is not UTF-8, returns a malloc'd copy with each byte that is not
 * part of a well-formed sequence replaced by U+FFFD, and its length in
 * *out_len; returns NULL when s is already valid (use it as is). */
WEIR_API char *weir__utf8_lossy(const char *s, size_t len, size_t *out_len) {
    if (weir_utf8_valid(s, len)) return NULL;
    if (len > SIZE_MAX / 3) weir__trap();
    char *r = (char *)malloc(len * 3 + 1);
    if (!r) weir__trap();
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t k = weir__utf8_seq(p + i, len - i);
        if (k == 0) {
            r[o++] = (char)0xEF;
            r[o++] = (char)0xBF;
            r[o++] = (char)0xBD;
            i++;
        } else {
            memcpy(r + o, p + i, k);
            o += k;
            i += k;
        }
    }
    *out_len = o;
    return r;
}

/* Makes (*s, *len) fit to hand to the host as a string: NULL becomes "", and
 * invalid UTF-8 becomes a malloc'd copy with U+FFFD, which is returned for the
 * caller to free() after use (NULL when nothing was copied). */
WEIR_API char *weir__utf8_fix(const char **s, size_t *len) {
    if (!*s) {
        *s = "";
        *len = 0;
        return NULL;
    }
    size_t fixed_len = 0;
    char *fixed = *len ? weir__utf8_lossy(*s, *len, &fixed_len) : NULL;
    if (fixed) {
        *s = fixed;
        *len = fixed_len;
    }
    return fixed;
}

/* ======================================================================== */
/* 3. Event-batch decoder (zero-copy)                                       */
/* ======================================================================== */
/*
 *   event-batch := u32 count, event{count}
 *   event       := s64 timestamp, s32 partition, s64 offset, str topic,
 *                  opt-bytes key, opt-bytes value, headers
 *   headers     := u32 count, (str name, opt-bytes value){count}
 *
 * Usage:
 *     weir_batch b;
 *     weir_event e;
 *     int rc;
 *     if (weir_batch_open(&b, buf, len) != 0) ...malformed...
 *     while ((rc = weir_batch_next(&b, &e)) == 1) { ...use e... }
 *     if (rc < 0) ...malformed...
 *
 * Every length is checked against the buffer; a malformed batch makes
 * weir_batch_open/next return -1 and never reads out of bounds. A batch must
 * hold exactly `count` events and nothing after them.
 */

/* Bounds-checked reader over [p, end). */
typedef struct weir__rd {
    const uint8_t *p;
    const uint8_t *end;
} weir__rd;

WEIR_API bool weir__rd_u32(weir__rd *r, uint32_t *v) {
    if ((size_t)(r->end - r->p) < 4) return false;
    *v = weir__ld_u32(r->p);
    r->p += 4;
    return true;
}

WEIR_API bool weir__rd_u64(weir__rd *r, uint64_t *v) {
    if ((size_t)(r->end - r->p) < 8) return false;
    *v = weir__ld_u64(r->p);
    r->p += 8;
    return true;
}

WEIR_API bool weir__rd_span(weir__rd *r, uint32_t n, const uint8_t **out) {
    if ((size_t)(r->end - r->p) < (size_t)n) return false;
    *out = r->p;
    r->p += n;
    return true;
}

WEIR_API bool weir__rd_str(weir__rd *r, weir_str *s) {
    uint32_t n;
    const uint8_t *q;
    if (!weir__rd_u32(r, &n) || !weir__rd_span(r, n, &q)) return false;
    s->ptr = (const char *)q;
    s->len = n;
    return true;
}

WEIR_API bool weir__rd_opt(weir__rd *r, weir_bytes *b) {
    uint32_t n;
    if (!weir__rd_u32(r, &n)) return false;
    if (n == WEIR__NONE_LEN) {
        *b = weir_bytes_none();
        return true;
    }
    const uint8_t *q;
    if (!weir__rd_span(r, n, &q)) return false;
    b->ptr = q;
    b->len = n;
    b->present = true;
    return true;
}

/* One input event. All pointers point into the batch buffer. */
typedef struct weir_event {
    uint32_t index;     /* 0-based position in the batch */
    int64_t timestamp;  /* event time, ms since the Unix epoch */
    int32_t partition;  /* provenance: Kafka partition */
    int64_t offset;     /* provenance: Kafka offset */
    weir_str topic;     /* provenance: topic name (UTF-8) */
    weir_bytes key;
    weir_bytes value;
    uint32_t header_count;
    /* The encoded `headers` block (u32 count, then the headers), as it
     * appears in the batch: iterate it with weir_event_headers, or copy it
     * verbatim into an output with weir_output.headers_raw. */
    const uint8_t *headers_raw;
    size_t headers_raw_len;
} weir_event;

/* Decoder state. */
typedef struct weir_batch {
    weir__rd rd;
    uint32_t count; /* number of events announced by the batch */
    uint32_t next;  /* index of the next event */
    bool bad;       /* a malformed event was seen */
} weir_batch;

/* The smallest possible encoded event: timestamp, partition, offset, topic
 * length, key length, value length, header count. */
#define WEIR__MIN_EVENT_SIZE (8 + 4 + 8 + 4 + 4 + 4 + 4)

/* Starts decoding buf[0..len). Returns 0, or -1 if the buffer cannot be a
 * batch (too short for its count). The buffer is not copied. */
WEIR_API int weir_batch_open(weir_batch *b, const void *buf, size_t len) {
    b->count = 0;
    b->next = 0;
    b->bad = true;
    b->rd.p = b->rd.end = NULL;
    if (buf == NULL || len < 4) return -1;
    b->rd.p = (const uint8_t *)buf;
    b->rd.end = b->rd.p + len;
    if (!weir__rd_u32(&b->rd, &b->count)) return -1;
    if (b->count > (len - 4) / WEIR__MIN_EVENT_SIZE) return -1;
    b->bad = false;
    return 0;
}

/* Decodes the next event into *e. Returns 1 (an event), 0 (no more events and
 * the whole buffer was consumed) or -1 (malformed; also on every later
 * call). */
WEIR_API int weir_batch_next(weir_batch *b, weir_event *e) {
    if (b->bad) return -1;
    if (b->next == b->count) {
        if (b->rd.p != b->rd.end) {
            b->bad = true;
            return -1;
        }
        return 0;
    }
    weir__rd *r = &b->rd;
    uint64_t ts, off;
    uint32_t part, hc;
    if (!weir__rd_u64(r, &ts) || !weir__rd_u32(r, &part) || !weir__rd_u64(r, &off) ||
        !weir__rd_str(r, &e->topic) || !weir__rd_opt(r, &e->key) || !weir__rd_opt(r, &e->value)) {
        b->bad = true;
        return -1;
    }
    const uint8_t *hstart = r->p;
    if (!weir__rd_u32(r, &hc)) {
        b->bad = true;
        return -1;
    }
    for (uint32_t i = 0; i < hc; i++) {
        weir_str name;
        weir_bytes value;
        if (!weir__rd_str(r, &name) || !weir__rd_opt(r, &value)) {
            b->bad = true;
            return -1;
        }
    }
    e->index = b->next++;
    e->timestamp = (int64_t)ts;
    e->partition = (int32_t)part;
    e->offset = (int64_t)off;
    e->header_count = hc;
    e->headers_raw = hstart;
    e->headers_raw_len = (size_t)(r->p - hstart);
    return 1;
}

/* Iterator over an event's headers. */
typedef struct weir_header_iter {
    weir__rd rd;
    uint32_t remaining;
} weir_header_iter;

/* An iterator over e's headers, in order. */
WEIR_API weir_header_iter weir_event_headers(const weir_event *e) {
    weir_header_iter it;
    it.remaining = 0;
    it.rd.p = e->headers_raw;
    it.rd.end = e->headers_raw ? e->headers_raw + e->headers_raw_len : NULL;
    if (e->headers_raw && !weir__rd_u32(&it.rd, &it.remaining)) it.remaining = 0;
    return it;
}

/* Stores the next header in *h and returns true, or returns false at the
 * end. */
WEIR_API bool weir_header_next(weir_header_iter *it, weir_header *h) {
    if (it->remaining == 0) return false;
    if (!weir__rd_str(&it->rd, &h->name) || !weir__rd_opt(&it->rd, &h->value)) {
        it->remaining = 0;
        return false;
    }
    it->remaining--;
    return true;
}

/* Finds the first header named `name` (exact bytes); stores its value in
 * *value (may be NULL) and returns true, or returns false. */
WEIR_API bool weir_event_header(const weir_event *e, const char *name, weir_bytes *value) {
    weir_header_iter it = weir_event_headers(e);
    weir_header h;
    while (weir_header_next(&it, &h)) {
        if (weir_str_eq_cstr(h.name, name)) {
            if (value) *value = h.value;
            return true;
        }
    }
    return false;
}

/* ======================================================================== */
/* 4. Result-batch writer                                                   */
/* ======================================================================== */
/*
 *   result-batch := u32 count, result{count}       count = number of inputs
 *   result       := u8 0, u32 n, output{n}          zero or more outputs
 *                 | u8 1, str code, str message     a typed failure
 *   output       := u8 flags, [s64 timestamp], opt-bytes key, opt-bytes value,
 *                   headers, [str route]
 *                   flags bit 0: a timestamp follows; bit 1: a route follows
 *                   (bits 2 and 3, which keep the input's key or headers
 *                   instead of writing them, are optional: wit/weir.wit)
 *
 * Operators normally only call weir_emit / weir_emit_forward / weir_fail on
 * the `out` they are given; the driver (WEIR_PROCESSOR) opens and closes one
 * result per input event. The lower-level calls (init, begin, end, finish)
 * are for building batches by hand, e.g. in tests.
 */

/* One output record. Zero-initialise it (`weir_output o = {0};`) for: no
 * key, no value, no headers, the input's timestamp, the default route. */
typedef struct weir_output {
    weir_bytes key;
    weir_bytes value;
    /* Headers, either as an array ... */
    const weir_header *headers;
    size_t header_count;
    /* ... or as an already encoded `headers` block (u32 count then headers),
     * e.g. weir_event.headers_raw to keep the input's headers. When
     * headers_raw is non-NULL it is copied verbatim and `headers` is
     * ignored. */
    const uint8_t *headers_raw;
    size_t headers_raw_len;
    /* If has_timestamp, the output's event time (ms since the epoch); else
     * the input event's timestamp is kept. */
    bool has_timestamp;
    int64_t timestamp;
    /* A named route of the stage; route.ptr == NULL means the stage's next
     * hop / default sink. */
    weir_str route;
} weir_output;

/* An output that forwards `e` unchanged: its key, value and headers, with
 * no timestamp (the input's is kept) and no route. */
WEIR_API weir_output weir_output_forward(const weir_event *e) {
    weir_output o;
    memset(&o, 0, sizeof o);
    o.key = e->key;
    o.value = e->value;
    o.headers_raw = e->headers_raw;
    o.headers_raw_len = e->headers_raw_len;
    return o; /* headers_raw NULL (event not from the decoder): no headers */
}

enum { WEIR__IDLE = 0, WEIR__OPEN = 1, WEIR__FAILED = 2 };

/* A growable result-batch buffer. */
typedef struct weir_results {
    uint8_t *buf;
    size_t len;
    size_t cap;
    uint32_t count;    /* results begun so far */
    size_t result_at;  /* offset of the current result's tag byte */
    uint32_t outputs;  /* outputs in the current result */
    int state;         /* WEIR__IDLE / WEIR__OPEN / WEIR__FAILED */
} weir_results;

/* What an operator function returns. */
typedef enum weir_status {
    WEIR_OK = 0,     /* the outputs emitted for this event stand */
    WEIR_FAILED = 1  /* the event failed (see weir_fail) */
} weir_status;

WEIR_API void weir__reserve(weir_results *w, size_t extra) {
    if (extra <= w->cap - w->len) return;
    if (extra > SIZE_MAX - w->len) weir__trap();
    size_t need = w->len + extra;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < need) cap = (cap > SIZE_MAX / 2) ? need : cap * 2;
    uint8_t *nb = (uint8_t *)realloc(w->buf, cap);
    if (!nb) weir__trap();
    w->buf = nb;
    w->cap = cap;
}

WEIR_API void weir__put(weir_results *w, const void *p, size_t n) {
    if (n == 0) return;
    weir__reserve(w, n);
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

WEIR_API void weir__put_u8(weir_results *w, uint8_t v) {
    weir__reserve(w, 1);
    w->buf[w->len++] = v;
}

WEIR_API void weir__put_u32(weir_results *w, uint32_t v) {
    weir__reserve(w, 4);
    weir__st_u32(w->buf + w->len, v);
    w->len += 4;
}

WEIR_API void weir__put_u64(weir_results *w, uint64_t v) {
    weir__reserve(w, 8);
    weir__st_u64(w->buf + w->len, v);
    w->len += 8;
}

WEIR_API uint32_t weir__len32(size_t n) {
    if (n >= (size_t)WEIR__NONE_LEN) weir__trap(); /* cannot be encoded */
    return (uint32_t)n;
}

/* `str`: u32 len, UTF-8 bytes (invalid UTF-8 becomes U+FFFD). */
WEIR_API void weir__put_str(weir_results *w, const char *s, size_t n) {
    char *fixed = weir__utf8_fix(&s, &n);
    weir__put_u32(w, weir__len32(n));
    weir__put(w, s, n);
    free(fixed);
}

/* `opt-bytes`. */
WEIR_API void weir__put_opt(weir_results *w, weir_bytes b) {
    if (!b.present) {
        weir__put_u32(w, WEIR__NONE_LEN);
        return;
    }
    size_t n = b.ptr ? b.len : 0;
    weir__put_u32(w, weir__len32(n));
    weir__put(w, b.ptr, n);
}

/* Starts an empty batch; `capacity` is a size hint in bytes (0: default). */
WEIR_API void weir_results_init(weir_results *w, size_t capacity) {
    memset(w, 0, sizeof *w);
    weir__reserve(w, capacity > 4 ? capacity : 64);
    weir__put_u32(w, 0); /* count, patched by weir_results_finish */
}

/* Closes the current result (if any): patches its output count. */
WEIR_API void weir_results_end(weir_results *w) {
    if (w->state == WEIR__OPEN) weir__st_u32(w->buf + w->result_at + 1, w->outputs);
    w->state = WEIR__IDLE;
}

/* Starts the result of the next input event (closing the current one). */
WEIR_API void weir_results_begin(weir_results *w) {
    weir_results_end(w);
    if (w->count == UINT32_MAX) weir__trap();
    w->count++;
    w->result_at = w->len;
    w->outputs = 0;
    w->state = WEIR__OPEN;
    weir__put_u8(w, 0);
    weir__put_u32(w, 0); /* output count, patched by weir_results_end */
}

/* Adds an output to the current result. Returns false (and adds nothing) if
 * the event has already failed or no result is open. */
WEIR_API bool weir_emit(weir_results *w, const weir_output *o) {
    if (w->state != WEIR__OPEN) return false;
    uint8_t flags = (uint8_t)((o->has_timestamp ? 1u : 0u) | (o->route.ptr ? 2u : 0u));
    weir__put_u8(w, flags);
    if (o->has_timestamp) weir__put_u64(w, (uint64_t)o->timestamp);
    weir__put_opt(w, o->key);
    weir__put_opt(w, o->value);
    if (o->headers_raw) {
        weir__put(w, o->headers_raw, o->headers_raw_len);
    } else {
        size_t hc = o->headers ? o->header_count : 0;
        weir__put_u32(w, weir__len32(hc));
        for (size_t i = 0; i < hc; i++) {
            weir__put_str(w, o->headers[i].name.ptr, o->headers[i].name.len);
            weir__put_opt(w, o->headers[i].value);
        }
    }
    if (o->route.ptr) weir__put_str(w, o->route.ptr, o->route.len);
    w->outputs++;
    return true;
}

/* Forwards `e` unchanged (key, value, headers; input timestamp; default
 * route). Same return value as weir_emit. */
WEIR_API bool weir_emit_forward(weir_results *w, const weir_event *e) {
    weir_output o = weir_output_forward(e);
    return weir_emit(w, &o);
}

/* Makes the current event a typed failure, discarding any outputs already
 * emitted for it; later weir_emit calls for this event are ignored. A second
 * weir_fail replaces the first. `code` is short and machine-readable (e.g.
 * "invalid-json"), `message` is for people. Returns WEIR_FAILED so an
 * operator can `return weir_failn(...)`. */
WEIR_API weir_status weir_failn(weir_results *w, const char *code, size_t code_len,
                                const char *message, size_t message_len) {
    if (w->state == WEIR__IDLE) return WEIR_FAILED; /* no result open */
    w->len = w->result_at;
    w->outputs = 0;
    weir__put_u8(w, 1);
    weir__put_str(w, code, code_len);
    weir__put_str(w, message, message_len);
    w->state = WEIR__FAILED;
    return WEIR_FAILED;
}

/* weir_failn with NUL-terminated strings (message may be NULL: empty). */
WEIR_API weir_status weir_fail(weir_results *w, const char *code, const char *message) {
    return weir_failn(w, code, code ? strlen(code) : 0, message, message ? strlen(message) : 0);
}

/* True if the current event has failed. */
WEIR_API bool weir_results_failed(const weir_results *w) {
    return w->state == WEIR__FAILED;
}

/* Closes the batch: returns the malloc'd buffer (caller frees) and its
 * length, and leaves *w empty. */
WEIR_API uint8_t *weir_results_finish(weir_results *w, size_t *len) {
    weir_results_end(w);
    weir__st_u32(w->buf, w->count);
    uint8_t *buf = w->buf;
    *len = w->len;
    memset(w, 0, sizeof *w);
    return buf;
}

/* Frees an unfinished batch. */
WEIR_API void weir_results_free(weir_results *w) {
    free(w->buf);
    memset(w, 0, sizeof *w);
}

/* ======================================================================== */
/* 5. JSON validator                                                        */
/* ======================================================================== */
/*
 * A strict RFC 8259 validator that allocates nothing and does not recurse:
 *   - exactly one value, optionally surrounded by whitespace (space, \t, \n,
 *     \r); anything after it is an error; an empty input is an error;
 *   - objects, arrays, strings, numbers, true, false, null;
 *   - strings: no raw control characters (< 0x20), only the escapes
 *     \" \\ \/ \b \f \n \r \t \uXXXX, well-formed UTF-8 (see weir_utf8_valid);
 *     \u escapes of unpaired surrogates are accepted (as RFC 8259's grammar,
 *     Python's json and JavaScript's JSON.parse do);
 *   - numbers: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? of any
 *     magnitude; NaN/Infinity, leading '+', leading zeros, "1." are errors;
 *   - nesting deeper than WEIR_JSON_MAX_DEPTH arrays/objects is an error;
 *   - a byte-order mark is an error.
 * Valid JSON is therefore always valid UTF-8 (bytes >= 0x80 may only occur
 * inside strings, where they are checked).
 */

#define WEIR_JSON_INVALID (-1)

/* Compares the decoded content of a JSON string, byte by byte, against an
 * expected value. */
typedef struct weir__jcmp {
    const uint8_t *want; /* NULL: no comparison */
    size_t want_len;
    size_t at;
    bool ok;
} weir__jcmp;

WEIR_API void weir__jcmp_byte(weir__jcmp *c, uint8_t b) {
    if (c->ok && c->at < c->want_len && c->want[c->at] == b)
        c->at++;
    else
        c->ok = false;
}

WEIR_API int weir__hex(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads 4 hex digits at s[i..i+4) into *v. */
WEIR_API bool weir__hex4(const uint8_t *s, size_t n, size_t i, uint32_t *v) {
    if (n - i < 4) return false;
    uint32_t r = 0;
    for (int k = 0; k < 4; k++) {
        int h = weir__hex(s[i + (size_t)k]);
        if (h < 0) return false;
        r = r << 4 | (uint32_t)h;
    }
    *v = r;
    return true;
}

/* Scans the string starting at the opening quote s[*pos]; on success moves
 * *pos past the closing quote and, if cmp is given, sets *equal to whether
 * the decoded string equals cmp->want exactly. */
WEIR_API bool weir__json_string(const uint8_t *s, size_t n, size_t *pos, weir__jcmp *cmp, bool *equal) {
    size_t i = *pos + 1;
    for (;;) {
        if (i >= n) return false;
        uint8_t c = s[i];
        if (c == '"') {
            i++;
            break;
        }
        if (c < 0x20) return false;
        if (c == '\\') {
            if (i + 1 >= n) return false;
            uint8_t e = s[i + 1];
            uint32_t cp;
            i += 2;
            switch (e) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = 0x08; break;
            case 'f': cp = 0x0C; break;
            case 'n': cp = 0x0A; break;
            case 'r': cp = 0x0D; break;
            case 't': cp = 0x09; break;
            case 'u': {
                if (!weir__hex4(s, n, i, &cp)) return false;
                i += 4;
                /* a high surrogate followed by \u-escaped low surrogate is one
                 * code point; anything else stays an unpaired surrogate */
                uint32_t lo;
                if (cp >= 0xD800 && cp <= 0xDBFF && n - i >= 6 && s[i] == '\\' && s[i + 1] == 'u' &&
                    weir__hex4(s, n, i + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
                break;
            }
            default:
                return false;
            }
            if (cmp) {
                /* compare the UTF-8 encoding of cp (unpaired surrogates get
                 * their 3-byte form, which never matches valid UTF-8) */
                if (cp < 0x80) {
                    weir__jcmp_byte(cmp, (uint8_t)cp);
                } else if (cp < 0x800) {
                    weir__jcmp_byte(cmp, (uint8_t)(0xC0 | cp >> 6));
                    weir__jcmp_byte(cmp, (uint8_t)(0x80 | (cp & 0x3F)));
                } else if (cp < 0x10000) {
                    weir__jcmp_byte(cmp, (uint8_t)(0xE0 | cp >> 12));
                    weir__jcmp_byte(cmp, (uint8_t)(0x80 | ((cp >> 6) & 0x3F)));
                    weir__jcmp_byte(cmp, (uint8_t)(0x80 | (cp & 0x3F)));
                } else {
                    weir__jcmp_byte(cmp, (uint8_t)(0xF0 | cp >> 18));
                    weir__jcmp_byte(cmp, (uint8_t)(0x80 | ((cp >> 12) & 0x3F)));
                    weir__jcmp_byte(cmp, (uint8_t)(0x80 | ((cp >> 6) & 0x3F)));
                    weir__jcmp_byte(cmp, (uint8_t)(0x80 | (cp & 0x3F)));
                }
            }
            continue;
        }
        size_t k = 1;
        if (c >= 0x80) {
            k = weir__utf8_seq(s + i, n - i);
            if (k == 0) return false;
        }
        if (cmp)
            for (size_t j = 0; j < k; j++) weir__jcmp_byte(cmp, s[i + j]);
        i += k;
    }
    if (cmp) *equal = cmp->ok && cmp->at == cmp->want_len;
    *pos = i;
    return true;
}

WEIR_API bool weir__json_number(const uint8_t *s, size_t n, size_t *pos) {
    size_t i = *pos;
    if (i < n && s[i] == '-') i++;
    if (i >= n) return false;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    } else {
        return false;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9') return false;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= n || s[i] < '0' || s[i] > '9') return false;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    *pos = i;
    return true;
}

WEIR_API size_t weir__json_ws(const uint8_t *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

/* The validator. If member != NULL, also reports in *matched whether the
 * top-level value is an object whose `member` member (after unescaping; the
 * last one if repeated, as most JSON parsers keep) is a string equal to
 * `want`. Returns true when s[0..n) is valid JSON. */
WEIR_API bool weir__json_scan(const uint8_t *s, size_t n, const uint8_t *member, size_t member_len,
                              const uint8_t *want, size_t want_len, bool *matched) {
    /* one bit per open container: 1 = object, 0 = array */
    uint8_t stack[(WEIR_JSON_MAX_DEPTH + 7) / 8 + 1];
    size_t depth = 0;
    size_t i = weir__json_ws(s, n, 0);
    bool is_member_value = false; /* the value about to be parsed is member's */
    bool result = false;
    if (matched) *matched = false;

#define WEIR__TOP_IS_OBJECT() ((stack[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1)

    for (;;) {
        /* ---- parse a value starting at s[i] (whitespace skipped) ---- */
        if (i >= n) return false;
        bool mine = is_member_value;
        is_member_value = false;
        uint8_t c = s[i];
        if (c == '{' || c == '[') {
            if (mine) result = false;
            if (depth >= WEIR_JSON_MAX_DEPTH) return false;
            if (c == '{')
                stack[depth / 8] = (uint8_t)(stack[depth / 8] | (1u << (depth % 8)));
            else
                stack[depth / 8] = (uint8_t)(stack[depth / 8] & ~(1u << (depth % 8)));
            depth++;
            i = weir__json_ws(s, n, i + 1);
            if (i >= n) return false;
            if (s[i] == (c == '{' ? '}' : ']')) {
                depth--;
                i++;
                goto after_value;
            }
            if (c == '[') continue; /* first element */
            goto object_key;        /* first member */
        } else if (c == '"') {
            bool eq = false;
            weir__jcmp cmp = {want, want_len, 0, true};
            if (!weir__json_string(s, n, &i, mine ? &cmp : NULL, &eq)) return false;
            if (mine) result = eq;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (!weir__json_number(s, n, &i)) return false;
            if (mine) result = false;
        } else if (c == 't' && n - i >= 4 && memcmp(s + i, "true", 4) == 0) {
            i += 4;
            if (mine) result = false;
        } else if (c == 'f' && n - i >= 5 && memcmp(s + i, "false", 5) == 0) {
            i += 5;
            if (mine) result = false;
        } else if (c == 'n' && n - i >= 4 && memcmp(s + i, "null", 4) == 0) {
            i += 4;
            if (mine) result = false;
        } else {
            return false;
        }

    after_value:
        /* ---- after a complete value ---- */
        i = weir__json_ws(s, n, i);
        if (depth == 0) {
            if (i != n) return false; /* trailing garbage */
            if (matched) *matched = result;
            return true;
        }
        if (i >= n) return false;
        c = s[i];
        if (c == ',') {
            i = weir__json_ws(s, n, i + 1);
            if (WEIR__TOP_IS_OBJECT()) goto object_key;
            continue; /* next array element */
        }
        if (c == (WEIR__TOP_IS_OBJECT() ? '}' : ']')) {
            depth--;
            i++;
            goto after_value;
        }
        return false;

    object_key:
        /* ---- "key" : at s[i] (whitespace skipped), then a value ---- */
        if (i >= n || s[i] != '"') return false;
        {
            bool eq = false;
            weir__jcmp cmp = {member, member_len, 0, true};
            bool check = member && depth == 1;
            if (!weir__json_string(s, n, &i, check ? &cmp : NULL, &eq)) return false;
            is_member_value = check && eq;
        }
        i = weir__json_ws(s, n, i);
        if (i >= n || s[i] != ':') return false;
        i = weir__json_ws(s, n, i + 1);
    }
#undef WEIR__TOP_IS_OBJECT
}

/* True when json[0..len) is valid JSON (see above). */
WEIR_API bool weir_json_valid(const void *json, size_t len) {
    if (!json) return false;
    return weir__json_scan((const uint8_t *)json, len, NULL, 0, NULL, 0, NULL);
}

/* Validates json[0..len) and checks one top-level member. Returns
 * WEIR_JSON_INVALID (-1) if it is not valid JSON; 1 if it is an object whose
 * member named member[0..member_len) (compared after unescaping; the last one
 * if the name repeats) is a string equal to want[0..want_len) (after
 * unescaping, exact and case-sensitive); otherwise 0 (not an object, no such
 * member, or a different value or type). Members of nested objects never
 * count. */
WEIR_API int weir_json_member_equalsn(const void *json, size_t len, const char *member, size_t member_len,
                                      const char *want, size_t want_len) {
    bool matched = false;
    if (!json) return WEIR_JSON_INVALID;
    if (!weir__json_scan((const uint8_t *)json, len, (const uint8_t *)member, member_len,
                         (const uint8_t *)want, want_len, &matched))
        return WEIR_JSON_INVALID;
    return matched ? 1 : 0;
}

/* weir_json_member_equalsn with NUL-terminated member and want, e.g.
 * weir_json_member_equals(v.ptr, v.len, "level", "ERROR"). */
WEIR_API int weir_json_member_equals(const void *json, size_t len, const char *member, const char *want) {
    return weir_json_member_equalsn(json, len, member, strlen(member), want, strlen(want));
}

/* ======================================================================== */
/* 6. Host imports                                                          */
/* ======================================================================== */

/* weir:stream/log level (the enum's discriminants). */
typedef enum weir_log_level {
    WEIR_LOG_TRACE = 0,
    WEIR_LOG_DEBUG = 1,
    WEIR_LOG_INFO = 2,
    WEIR_LOG_WARN = 3,
    WEIR_LOG_ERROR = 4
} weir_log_level;

/* A configuration entry: malloc'd, NUL-terminated copies. */
typedef struct weir_config_entry {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
} weir_config_entry;

#if WEIR_WASM
__attribute__((import_module("weir:stream/log@0.1.0"), import_name("log")))
extern void weir__import_log(int32_t level, const char *msg, size_t msg_len);

__attribute__((import_module("weir:stream/config@0.1.0"), import_name("get")))
extern void weir__import_config_get(const char *key, size_t key_len, uint8_t *ret_area);

__attribute__((import_module("weir:stream/config@0.1.0"), import_name("entries")))
extern void weir__import_config_entries(uint8_t *ret_area);

__attribute__((import_module("weir:stream/metrics@0.1.0"), import_name("counter-add")))
extern void weir__import_counter_add(const char *name, size_t name_len, uint64_t delta);
#endif

/* Turns a string the host allocated with cabi_realloc (ptr, len) into a
 * malloc'd NUL-terminated one. Zero-length strings may come with a dummy
 * pointer (see weir__cabi_realloc) that must not be freed. */
WEIR_API char *weir__host_string(uint32_t ptr, uint32_t len) {
    char *p = (char *)(uintptr_t)ptr;
    char *r;
    if (len == 0) {
        r = (char *)malloc(1);
    } else {
        r = (char *)realloc(p, (size_t)len + 1);
    }
    if (!r) weir__trap();
    r[len] = '\0';
    return r;
}

/* Logs msg[0..len) at `level` into the host's log (tagged with the module).
 * Invalid UTF-8 is replaced by U+FFFD. */
WEIR_API void weir_logn(weir_log_level level, const char *msg, size_t len) {
    char *fixed = weir__utf8_fix(&msg, &len);
#if WEIR_WASM
    weir__import_log((int32_t)level, msg, len);
#else
    static const char *const names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR"};
    fprintf(stderr, "[weir %s] %.*s\n", (unsigned)level < 5 ? names[level] : "?", (int)len, msg);
#endif
    free(fixed);
}

/* Logs the NUL-terminated msg. */
WEIR_API void weir_log(weir_log_level level, const char *msg) {
    weir_logn(level, msg, msg ? strlen(msg) : 0);
}

/* The value of configuration key key[0..key_len), as a malloc'd
 * NUL-terminated string (free it with free()), its length in *value_len if
 * value_len != NULL; NULL if the key is not set. Natively: always NULL. */
WEIR_API char *weir_config_getn(const char *key, size_t key_len, size_t *value_len) {
#if WEIR_WASM
    char *fixed = weir__utf8_fix(&key, &key_len);
    uint8_t ret[12] __attribute__((aligned(4)));
    memset(ret, 0, sizeof ret);
    weir__import_config_get(key, key_len, ret);
    free(fixed);
    if (ret[0] == 0) return NULL;
    uint32_t len = weir__ld_u32(ret + 8);
    char *value = weir__host_string(weir__ld_u32(ret + 4), len);
    if (value_len) *value_len = len;
    return value;
#else
    (void)key;
    (void)key_len;
    if (value_len) *value_len = 0;
    return NULL;
#endif
}

/* weir_config_getn with a NUL-terminated key. */
WEIR_API char *weir_config_get(const char *key, size_t *value_len) {
    return weir_config_getn(key, key ? strlen(key) : 0, value_len);
}

/* Every configuration entry: a malloc'd array of *count entries (NULL when
 * there are none); free it with weir_config_entries_free. Natively: none. */
WEIR_API weir_config_entry *weir_config_entries(size_t *count) {
    *count = 0;
#if WEIR_WASM
    uint8_t ret[8] __attribute__((aligned(4)));
    memset(ret, 0, sizeof ret);
    weir__import_config_entries(ret);
    uint32_t list = weir__ld_u32(ret), n = weir__ld_u32(ret + 4);
    if (n == 0) return NULL; /* list may be a dummy pointer: not freed */
    const uint8_t *elems = (const uint8_t *)(uintptr_t)list;
    weir_config_entry *out = (weir_config_entry *)malloc(sizeof(weir_config_entry) * n);
    if (!out) weir__trap();
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *el = elems + (size_t)i * 16;
        uint32_t klen = weir__ld_u32(el + 4), vlen = weir__ld_u32(el + 12);
        out[i].key = weir__host_string(weir__ld_u32(el), klen);
        out[i].key_len = klen;
        out[i].value = weir__host_string(weir__ld_u32(el + 8), vlen);
        out[i].value_len = vlen;
    }
    free((void *)(uintptr_t)list);
    *count = n;
    return out;
#else
    return NULL;
#endif
}

/* Frees what weir_config_entries returned. */
WEIR_API void weir_config_entries_free(weir_config_entry *entries, size_t count) {
    if (!entries) return;
    for (size_t i = 0; i < count; i++) {
        free(entries[i].key);
        free(entries[i].value);
    }
    free(entries);
}

/* Adds delta to the counter name[0..name_len) (created at zero on first use;
 * the host exports it as a metric). Natively: ignored. */
WEIR_API void weir_counter_addn(const char *name, size_t name_len, uint64_t delta) {
#if WEIR_WASM
    char *fixed = weir__utf8_fix(&name, &name_len);
    weir__import_counter_add(name, name_len, delta);
    free(fixed);
#else
    (void)name;
    (void)name_len;
    (void)delta;
#endif
}

/* weir_counter_addn with a NUL-terminated name. */
WEIR_API void weir_counter_add(const char *name, uint64_t delta) {
    weir_counter_addn(name, name ? strlen(name) : 0, delta);
}

/* ======================================================================== */
/* 7. The processor driver and the core-module exports                      */
/* ======================================================================== */

/* The function an operator writes: called once per input event, in order.
 * It emits zero or more outputs with weir_emit / weir_emit_forward, or fails
 * the event with weir_fail (which discards that event's outputs). Returning
 * WEIR_FAILED without having called weir_fail fails the event with code
 * "failed". The event (and everything it points to) is only valid during the
 * call. */
typedef weir_status (*weir_process_fn)(const weir_event *event, weir_results *out);

/* Runs fn over every event of the batch in[0..len) and returns the encoded
 * result batch (malloc'd; length in *out_len), or NULL if the input batch is
 * malformed. */
WEIR_API uint8_t *weir_process_batch(const void *in, size_t len, weir_process_fn fn, size_t *out_len) {
    weir_batch b;
    weir_event e;
    weir_results w;
    int rc;
    *out_len = 0;
    if (weir_batch_open(&b, in, len) != 0) return NULL;
    /* outputs are often about as big as the input (filters, maps) */
    weir_results_init(&w, len + 5u * (size_t)b.count + 64);
    while ((rc = weir_batch_next(&b, &e)) == 1) {
        weir_results_begin(&w);
        weir_status st = fn(&e, &w);
        if (st != WEIR_OK && !weir_results_failed(&w))
            weir_fail(&w, "failed", "the operator returned WEIR_FAILED without a failure");
        weir_results_end(&w);
    }
    if (rc < 0) {
        weir_results_free(&w);
        return NULL;
    }
    return weir_results_finish(&w, out_len);
}

/* The SDK's name and version, written by WEIR_PROCESSOR into a `weir-sdk`
 * custom section of the module (`weir validate` reports it). */
#define WEIR_SDK_ID "weir-sdk-c 0.1.0"

#if WEIR_WASM

/* A custom section `weir-sdk` holding WEIR_SDK_ID, written with assembler
 * directives (clang 14 cannot put a C variable into a custom section). */
#define WEIR__SDK_SECTION                                                     \
    __asm__(".section \".custom_section.weir-sdk\",\"\",@\n"                    \
            ".ascii \"" WEIR_SDK_ID "\"\n"                                     \
            ".text\n");

/* cabi_realloc, as the canonical ABI calls it: allocate (old_ptr == 0),
 * grow/shrink, with alignment `align` (at most 8 in the canonical ABI;
 * malloc's alignment covers it). A zero-size request returns `align` itself,
 * a non-null, aligned dummy pointer that is never dereferenced or freed (an
 * old block, if any, is freed). */
WEIR_API void *weir__cabi_realloc(void *old_ptr, size_t old_size, size_t align, size_t new_size) {
    if (new_size == 0) {
        if (old_size != 0) free(old_ptr);
        return (void *)align;
    }
    if (align > 16) weir__trap();
    if (old_size == 0) old_ptr = NULL; /* a dummy pointer from above */
    void *r = realloc(old_ptr, new_size);
    if (!r) weir__trap();
    return r;
}

/* The body of the `process` export: decodes, runs fn, frees the argument
 * (owned by the callee under the canonical ABI), and returns a pointer to a
 * static return area {ptr, len} of the result batch. A malformed batch is a
 * host bug: it traps. */
WEIR_API uint8_t *weir__export_process(uint8_t *in, size_t len, weir_process_fn fn) {
    static uint32_t ret_area[2] __attribute__((aligned(8)));
    size_t out_len;
    uint8_t *out = weir_process_batch(in, len, fn, &out_len);
    if (len) free(in);
    if (!out) {
        weir_log(WEIR_LOG_ERROR, "weir C SDK: malformed event batch");
        weir__trap();
    }
    ret_area[0] = (uint32_t)(uintptr_t)out;
    ret_area[1] = (uint32_t)out_len;
    return (uint8_t *)ret_area;
}

/* The post-return of `process`: frees the result batch. */
WEIR_API void weir__export_process_post(uint8_t *ret) {
    uint32_t ptr = weir__ld_u32(ret);
    free((void *)(uintptr_t)ptr);
}

/* Defines the core-module exports of the `process` world around fn, a
 * weir_process_fn. Use it exactly once per module, at file scope, followed
 * by a semicolon: WEIR_PROCESSOR(my_process); */
#define WEIR_PROCESSOR(fn)                                                                                    \
    WEIR__SDK_SECTION                                                                                         \
    __attribute__((export_name("cabi_realloc"))) void *weir_cabi_realloc(void *old_ptr, size_t old_size,      \
                                                                         size_t align, size_t new_size);      \
    void *weir_cabi_realloc(void *old_ptr, size_t old_size, size_t align, size_t new_size) {                  \
        return weir__cabi_realloc(old_ptr, old_size, align, new_size);                                        \
    }                                                                                                         \
    __attribute__((export_name("weir:stream/processor@0.1.0#process"))) uint8_t *weir_export_process(         \
        uint8_t *ptr, size_t len);                                                                            \
    uint8_t *weir_export_process(uint8_t *ptr, size_t len) { return weir__export_process(ptr, len, (fn)); }   \
    __attribute__((export_name("cabi_post_weir:stream/processor@0.1.0#process"))) void                        \
    weir_export_process_post(uint8_t *ret);                                                                   \
    void weir_export_process_post(uint8_t *ret) { weir__export_process_post(ret); }                           \
    uint8_t *weir_export_process(uint8_t *ptr, size_t len) /* the user's ';' ends this redeclaration */

#else /* native */

uint8_t *weir_native_process(const uint8_t *in, size_t len, size_t *out_len);

/* Natively: defines weir_native_process(in, len, &out_len) running fn over an
 * encoded event batch (see "Native builds" above). */
#define WEIR_PROCESSOR(fn)                                                        \
    uint8_t *weir_native_process(const uint8_t *in, size_t len, size_t *out_len) { \
        return weir_process_batch(in, len, (fn), out_len);                         \
    }                                                                              \
    uint8_t *weir_native_process(const uint8_t *in, size_t len, size_t *out_len)

#endif /* WEIR_WASM */

#endif /* WEIR_H */
