/*
 * errors-only — a filter (process world), written against the C SDK.
 *
 * Behaviour (guest-examples/SPEC.md, identical in every language):
 *   - the value must be JSON (UTF-8); an absent value, invalid UTF-8 or
 *     invalid JSON fails the event with code `invalid-json`;
 *   - a JSON object whose top-level "level" member is the string "ERROR"
 *     (exactly, case-sensitive) is forwarded unchanged: one output with the
 *     input's key, value and headers, no timestamp, no route;
 *   - anything else (another level, no level, an array/number/string...)
 *     gives no output.
 *
 * Build: guest-examples/c/build.sh OUT_DIR  (see sdk/c/README.md)
 */
#include "weir.h"

static weir_status errors_only(const weir_event *e, weir_results *out) {
    if (!e->value.present)
        return weir_fail(out, "invalid-json", "the record has no value");

    int r = weir_json_member_equals(e->value.ptr, e->value.len, "level", "ERROR");
    if (r == WEIR_JSON_INVALID) {
        if (!weir_utf8_valid(e->value.ptr, e->value.len))
            return weir_fail(out, "invalid-json", "the value is not valid UTF-8");
        return weir_fail(out, "invalid-json", "the value is not valid JSON");
    }
    if (r == 1)
        weir_emit_forward(out, e);
    return WEIR_OK;
}

WEIR_PROCESSOR(errors_only);
