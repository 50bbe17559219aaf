#!/usr/bin/env bash
# Builds every example operator from source into guest-examples/dist/<language>-<name>.wasm.
#
#   guest-examples/build.sh [LANGUAGE...]     languages: rust python js c go (default: all)
#
# Rust examples are built by cargo for wasm32-wasip2 (a component directly);
# Python with componentize-py, JavaScript with componentize-js, C with clang +
# wasi-libc and `weir componentize`, Go with stock Go (wasip1) and `weir
# componentize`. Each language's script skips outputs that
# are newer than their sources. A missing tool is an error, not a skip: the
# tests need every language.
#
# Environment: WEIR (the weir command, for C and Go), GO, CARGO_TARGET_DIR, FORCE=1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
DIST=${WEIR_GUEST_DIST:-$HERE/dist}
mkdir -p "$DIST"
langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(rust python js c go)

# Rust guests use wasm SIMD (wasmtime supports it by default): byte loops such
# as upper-casing vectorize as they do natively.
export CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS=${CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS:--C target-feature=+simd128}

build_rust() {
    # Where cargo puts what it builds: CARGO_TARGET_DIR, or a target-dir in a
    # cargo config (the user's own included), or the workspace's target/.
    local target_dir
    target_dir=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    local crates=()
    for dir in "$HERE"/rust/*/; do
        crates+=(-p "$(basename "$dir")")
    done
    (cd "$REPO" && cargo build --quiet --target wasm32-wasip2 --profile guest "${crates[@]}")
    for dir in "$HERE"/rust/*/; do
        local name lib
        name=$(basename "$dir")
        lib=${name//-/_}
        cp -p "$target_dir/wasm32-wasip2/guest/$lib.wasm" "$DIST/rust-$name.wasm"
    done
}

for lang in "${langs[@]}"; do
    case "$lang" in
        rust) build_rust ;;
        python | js | c | go) bash "$HERE/$lang/build.sh" "$DIST" ;;
        *) echo "guest-examples/build.sh: unknown language '$lang' (rust, python, js, c, go)" >&2; exit 2 ;;
    esac
done
echo "guest-examples/build.sh: built $(ls "$DIST"/*.wasm | wc -l) components in $DIST"
