#!/usr/bin/env bash
# Builds the Python example operators into components.
#
#   guest-examples/python/build.sh OUT_DIR  -> OUT_DIR/python-{uppercase,errors-only,words,count,pair}.wasm
#
# Each example is a directory holding app.py; componentize-py 0.25.1 bundles it
# with the SDK (sdk/python/weir_sdk) and CPython, for the world in wit/ that the
# example implements. An output newer than all of its inputs is not rebuilt.
#
# Environment:
#   COMPONENTIZE_PY   the componentize-py command (default: componentize-py)
#   FORCE=1           rebuild even if an output is newer than its inputs
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
setup_build "$@"

WANT_VERSION=0.25.1
CPY=${COMPONENTIZE_PY:-componentize-py}
command -v "$CPY" >/dev/null 2>&1 ||
    die "$CPY not found; install it with: python3 -m pip install componentize-py==$WANT_VERSION"
version=$("$CPY" --version 2>/dev/null | awk '{print $2}') ||
    die "'$CPY --version' failed"
[ "$version" = "$WANT_VERSION" ] ||
    die "$CPY is version ${version:-unknown}, need $WANT_VERSION (python3 -m pip install componentize-py==$WANT_VERSION)"

# output name -> example directory and WIT world
EXAMPLES=(
    "uppercase uppercase process"
    "errors-only errors_only process"
    "words words process"
    "count count aggregate-with-subtract"
    "pair pair join"
)

for example in "${EXAMPLES[@]}"; do
    read -r name dir world <<<"$example"
    out="$OUT_DIR/python-$name.wasm"
    inputs=("$HERE/$dir"/*.py "$REPO/sdk/python/weir_sdk"/*.py "$REPO/wit"/*.wit "$HERE/build.sh")

    up_to_date "$out" "${inputs[@]}" "$HERE/../lib.sh" && continue

    echo "python-$name: componentizing $HERE/$dir/app.py (world $world)"
    tmp="$out.tmp.$$"
    "$CPY" -q -d "$REPO/wit" -w "$world" componentize app \
        -p "$HERE/$dir" -p "$REPO/sdk/python" -o "$tmp" || {
        rm -f "$tmp"
        die "componentize-py failed for $HERE/$dir/app.py (world $world)"
    }
    mv -f "$tmp" "$out"
    echo "python-$name: $out ($(wc -c <"$out") bytes)"
done
