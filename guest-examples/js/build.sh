#!/usr/bin/env bash
# Builds the JavaScript example operators into components.
#
#   guest-examples/js/build.sh OUT_DIR  -> OUT_DIR/js-{uppercase,errors-only,words,count,pair}.wasm
#
# Each example is one ES module (errors-only.js, ...) importing the SDK at
# sdk/js/weir-sdk.js; componentize.mjs runs ComponentizeJS 0.23.0 (installed
# here by `npm ci`) on it for the world in wit/ that the example implements.
# An output newer than all of its inputs is not rebuilt.
#
# Environment:
#   FORCE=1   rebuild even if an output is newer than its inputs
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
setup_build "$@"

command -v node >/dev/null 2>&1 || die "node not found; install Node.js 18 or newer"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 18 ] || die "node $(node --version) is too old; ComponentizeJS needs Node.js 18 or newer"
WANT_VERSION=0.23.0
pkg="$HERE/node_modules/@bytecodealliance/componentize-js/package.json"
[ -f "$pkg" ] || die "ComponentizeJS is not installed; run: (cd $HERE && npm ci)"
version=$(node -p "require(process.argv[1]).version" "$pkg")
[ "$version" = "$WANT_VERSION" ] ||
    die "ComponentizeJS is version $version, need $WANT_VERSION; run: (cd $HERE && npm ci)"

# output name -> WIT world
EXAMPLES=(
    "uppercase process"
    "errors-only process"
    "words process"
    "count aggregate-with-subtract"
    "pair join"
)

for example in "${EXAMPLES[@]}"; do
    read -r name world <<<"$example"
    src="$HERE/$name.js"
    out="$OUT_DIR/js-$name.wasm"
    inputs=("$src" "$REPO/sdk/js/weir-sdk.js" "$REPO/wit"/*.wit "$HERE/componentize.mjs" "$HERE/build.sh" "$pkg")

    up_to_date "$out" "${inputs[@]}" "$HERE/../lib.sh" && continue

    echo "js-$name: componentizing $src (world $world)"
    node "$HERE/componentize.mjs" "$src" "$world" "$out" ||
        die "ComponentizeJS failed for $src (world $world)"
    echo "js-$name: $out ($(wc -c <"$out") bytes)"
done
