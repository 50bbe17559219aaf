#!/usr/bin/env bash
# Builds the C example operators into components.
#
#   guest-examples/c/build.sh OUT_DIR      -> OUT_DIR/c-errors-only.wasm
#
# Steps: clang (sdk/c/wasi-cc.sh: wasm32-wasi preview 1 reactor, -O2) makes a
# core module in target/c-guest/ (or $WEIR_C_BUILD_DIR); its imports/exports
# are checked against the process world's canonical-ABI lowering (if python3
# is available); `weir componentize` turns it into a component, embedding the
# WIT world and the WASI preview 1 reactor adapter.
#
# Environment:
#   WEIR              command running the weir CLI (default: cargo run -q -p weir --,
#                     run from the repository root)
#   WASI_CC, WASI_SYSROOT, WASI_CFLAGS   see sdk/c/wasi-cc.sh
#   WEIR_C_BUILD_DIR  where core modules go (default: <repo>/target/c-guest)
#   FORCE=1           rebuild even if the output is newer than its inputs
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
setup_build "$@"
BUILD_DIR=${WEIR_C_BUILD_DIR:-$REPO/target/c-guest}
mkdir -p "$BUILD_DIR"
read -r -a WEIR_CMD <<<"${WEIR:-cargo run -q -p weir --}"

# name -> source; every example links sdk/c/weir.h only
EXAMPLES=(errors-only)

for name in "${EXAMPLES[@]}"; do
    src="$HERE/$name.c"
    out="$OUT_DIR/c-$name.wasm"
    core="$BUILD_DIR/$name.core.wasm"
    inputs=("$src" "$REPO/sdk/c/weir.h" "$REPO/sdk/c/wasi-cc.sh" "$HERE/build.sh" "$REPO/wit/weir.wit")

    up_to_date "$out" "${inputs[@]}" "$HERE/../lib.sh" && continue

    echo "c-$name: compiling $src"
    "$REPO/sdk/c/wasi-cc.sh" -std=c11 -Wall -Wextra -o "$core" "$src" ||
        die "compiling $src failed"

    if command -v python3 >/dev/null 2>&1; then
        python3 "$REPO/sdk/c/test/wasm_info.py" "$core" --check-process >/dev/null ||
            die "$core does not match the process world (run: python3 sdk/c/test/wasm_info.py $core --check-process)"
    fi

    echo "c-$name: componentizing $(wc -c <"$core") byte core module"
    tmp="$out.tmp.$$"
    (cd "$REPO" && "${WEIR_CMD[@]}" componentize "$core" --world process -o "$tmp") || {
        rm -f "$tmp"
        die "'${WEIR_CMD[*]} componentize $core --world process -o $tmp' failed"
    }
    finish_component "$tmp" "$out"
    echo "c-$name: $out ($(wc -c <"$out") bytes)"
done
