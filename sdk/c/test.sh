#!/usr/bin/env bash
# Tests of the C SDK (sdk/c/weir.h) and the C example operators.
#
#   sdk/c/test.sh
#
# 1. native unit tests of the decoder, writer, driver, UTF-8 and JSON code
#    (test/test_weir.c), under AddressSanitizer and UBSan;
# 2. the golden vectors in sdk/abi/vectors (test/test_vectors.c): every event
#    batch decoded and every result batch written, byte for byte, under the
#    same sanitizers;
# 3. guest-examples/c/errors-only.c compiled natively and run on an encoded
#    batch (test/test_errors_only.c);
# 4. a differential test of the JSON validator against Python's json
#    (test/json_diff.py; skipped without python3; JSON_DIFF_N inputs, default 30000);
# 5. the wasm core modules of errors-only and test/probe.c: imports/exports
#    checked against the process world's canonical-ABI lowering
#    (test/wasm_info.py), then run in Node's WebAssembly engine with the
#    host's side of the canonical ABI played by test/run_core.mjs (skipped
#    without clang/wasi-libc or node);
# 6. only if $WEIR is set (a command running the weir CLI, e.g.
#    WEIR=target/debug/weir): both componentized and run with `weir test`.
#
# Environment: CC (native compiler, default cc), WASI_CC / WASI_SYSROOT (see
# wasi-cc.sh), WEIR, JSON_DIFF_N, WEIR_C_BUILD_DIR (default <repo>/target/c-guest).
set -euo pipefail

SDK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SDK/../.." && pwd)
BUILD=${WEIR_C_BUILD_DIR:-$REPO/target/c-guest}
mkdir -p "$BUILD"
CC=${CC:-cc}
NATIVE_FLAGS=(-std=c11 -O1 -g -Wall -Wextra -Wpedantic -Werror -fsanitize=address,undefined -fno-sanitize-recover=all)
step() { printf '\n== %s\n' "$*"; }
skip() { printf 'SKIPPED: %s\n' "$*"; }

step "native unit tests ($CC)"
"$CC" "${NATIVE_FLAGS[@]}" -I"$SDK" "$SDK/test/test_weir.c" -o "$BUILD/test_weir"
"$BUILD/test_weir" 2>/dev/null
# the header also compiles as C99, and cleanly under stricter warnings
"$CC" -std=c99 -Wall -Wextra -Wpedantic -Werror -Wshadow -I"$SDK" -fsyntax-only "$REPO/guest-examples/c/errors-only.c"

step "golden vectors (sdk/abi/vectors)"
"$CC" "${NATIVE_FLAGS[@]}" -I"$SDK" "$SDK/test/test_vectors.c" -o "$BUILD/test_vectors"
"$BUILD/test_vectors" "$REPO/sdk/abi/vectors"

step "errors-only, native"
"$CC" "${NATIVE_FLAGS[@]}" -I"$SDK" "$SDK/test/test_errors_only.c" "$REPO/guest-examples/c/errors-only.c" \
    -o "$BUILD/test_errors_only"
"$BUILD/test_errors_only"

step "JSON validator vs Python json"
if command -v python3 >/dev/null 2>&1; then
    python3 "$SDK/test/json_diff.py" "$BUILD/test_weir" "${JSON_DIFF_N:-30000}"
else
    skip "no python3"
fi

step "wasm core modules"
if ! "$SDK/wasi-cc.sh" -o "$BUILD/probe.core.wasm" -std=c11 -Wall -Wextra -Werror "$SDK/test/probe.c"; then
    skip "cannot build wasm32-wasi (see the error above)"
    exit 0
fi
"$SDK/wasi-cc.sh" -o "$BUILD/errors-only.core.wasm" -std=c11 -Wall -Wextra -Werror "$REPO/guest-examples/c/errors-only.c"
if command -v python3 >/dev/null 2>&1; then
    python3 "$SDK/test/wasm_info.py" "$BUILD/errors-only.core.wasm" --check-process
    python3 "$SDK/test/wasm_info.py" "$BUILD/probe.core.wasm" --check-process
fi
if command -v node >/dev/null 2>&1; then
    node "$SDK/test/run_core.mjs" errors-only "$BUILD/errors-only.core.wasm"
    node "$SDK/test/run_core.mjs" probe "$BUILD/probe.core.wasm"
else
    skip "no node: core modules not run"
fi

step "components in the weir host"
if [ -z "${WEIR:-}" ]; then
    skip "set WEIR (e.g. WEIR=target/debug/weir) to componentize and run with weir test"
    exit 0
fi
read -r -a WEIR_CMD <<<"$WEIR"
cd "$REPO"
"${WEIR_CMD[@]}" componentize "$BUILD/errors-only.core.wasm" --world process -o "$BUILD/c-errors-only.wasm"
"${WEIR_CMD[@]}" componentize "$BUILD/probe.core.wasm" --world process -o "$BUILD/c-probe.wasm"
"${WEIR_CMD[@]}" validate "$BUILD/c-errors-only.wasm"

events='{"key":"a","value":"{\"level\":\"ERROR\",\"msg\":\"disk\"}","headers":{"h":"v"},"timestamp":5}
{"key":"b","value":"{\"level\":\"INFO\"}"}
{"key":"c","value":"not json"}
{"key":"d","value":null}
{"key":"e","value":{"level":"ERROR","nested":{"level":"x"}}}
{"key":"f","value":[{"level":"ERROR"}]}
{"key":"g","value":{"base64":"/w=="}}
{"value":"{\"ctx\":{\"level\":\"ERROR\"}}"}'
# Checks that some output line contains every given fragment (field order in
# `weir test`'s JSON is not part of the contract).
has_line() {
    local out=$1 line f ok
    shift
    while IFS= read -r line; do
        ok=1
        for f in "$@"; do
            case $line in *"$f"*) ;; *) ok= ;; esac
        done
        [ -n "$ok" ] && return 0
    done <<<"$out"
    echo "FAIL: no output line with: $*"
    exit 1
}

out=$(printf '%s\n' "$events" | "${WEIR_CMD[@]}" test "$BUILD/c-errors-only.wasm" --input - 2>"$BUILD/weir-test.err")
cat "$BUILD/weir-test.err"
echo "$out"
[ "$(echo "$out" | grep -c .)" = 2 ] || { echo "FAIL: expected 2 outputs"; exit 1; }
has_line "$out" '"key":"a"' '"headers":{"h":"v"}' '"timestamp":5' '"value":"{\"level\":\"ERROR\",\"msg\":\"disk\"}"'
has_line "$out" '"key":"e"'
[ "$(grep -c 'failure invalid-json' "$BUILD/weir-test.err")" = 3 ] || { echo "FAIL: expected 3 invalid-json failures"; exit 1; }

out=$(printf '%s\n' '{"key":"k","value":"a","timestamp":10}' '{"value":"missing"}' '{"value":"*"}' |
    "${WEIR_CMD[@]}" test "$BUILD/c-probe.wasm" --input - --config a=1 --config b=2 2>"$BUILD/weir-test.err")
cat "$BUILD/weir-test.err"
echo "$out"
has_line "$out" '"key":"k"' '"route":"probe"' '"timestamp":11' '"value":"1"'   # config.get
has_line "$out" '"value":null' '"route":"probe"'                              # unset key
has_line "$out" '"value":"a=1;b=2;"'                                          # config.entries
grep -q 'probe-events=3' "$BUILD/weir-test.err" || { echo "FAIL: counter-add"; exit 1; }
echo "weir host: ok"
