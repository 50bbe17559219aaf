/*
 * A test-only operator that exercises every host import of the C SDK, so
 * run_core.mjs can check their core-wasm lowering (config.get's return area,
 * config.entries' list of string pairs, metrics.counter-add's i64, log).
 * Per event: the value names a config key; the output's value is that key's
 * config value (absent if unset), or for the key "*" every entry as
 * "k=v;k=v;". Each event bumps the counter "probe-events" by its partition
 * number + 1 and logs the key at INFO.
 */
#include "weir.h"

static weir_status probe(const weir_event *e, weir_results *out) {
    if (!e->value.present) return weir_fail(out, "no-value", "");
    weir_logn(WEIR_LOG_INFO, (const char *)e->value.ptr, e->value.len);
    weir_counter_add("probe-events", (uint64_t)e->partition + 1);
    weir_output o = {0};
    o.key = e->key;
    if (e->value.len == 1 && e->value.ptr[0] == '*') {
        size_t count;
        weir_config_entry *ents = weir_config_entries(&count);
        size_t total = 0;
        for (size_t i = 0; i < count; i++) total += ents[i].key_len + ents[i].value_len + 2;
        char *s = malloc(total + 1);
        size_t at = 0;
        for (size_t i = 0; i < count; i++) {
            memcpy(s + at, ents[i].key, ents[i].key_len);
            at += ents[i].key_len;
            s[at++] = '=';
            memcpy(s + at, ents[i].value, ents[i].value_len);
            at += ents[i].value_len;
            s[at++] = ';';
        }
        weir_config_entries_free(ents, count);
        o.value = weir_bytes_of(s, at);
        weir_emit(out, &o);
        free(s);
        return WEIR_OK;
    }
    size_t vlen = 0;
    char *v = weir_config_getn((const char *)e->value.ptr, e->value.len, &vlen);
    if (v) o.value = weir_bytes_of(v, vlen);
    o.has_timestamp = true;
    o.timestamp = e->timestamp + 1;
    o.route = weir_str_cstr("probe");
    weir_emit(out, &o);
    free(v);
    return WEIR_OK;
}

WEIR_PROCESSOR(probe);
