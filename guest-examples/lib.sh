# Shared by the per-language build scripts (sourced, not run).
#
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#   setup_build "$@"          # checks the OUT_DIR argument; sets HERE, REPO, OUT_DIR
#   up_to_date OUT INPUT...   # true when OUT exists, FORCE is unset, and no INPUT is newer
#   finish_component TMP OUT  # checks that TMP is a component, then moves it to OUT

# die MESSAGE: prints "<script>: error: MESSAGE" and exits 1.
die() {
    echo "${BUILD_SCRIPT:-build}: error: $*" >&2
    exit 1
}

setup_build() {
    BUILD_SCRIPT="guest-examples/$(basename "$(dirname "${BASH_SOURCE[1]}")")/build.sh"
    [ $# -eq 1 ] || die "usage: $BUILD_SCRIPT OUT_DIR"
    HERE=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
    REPO=$(cd "$HERE/../.." && pwd)
    mkdir -p "$1"
    OUT_DIR=$(cd "$1" && pwd)
}

up_to_date() {
    local out=$1 f
    shift
    [ -z "${FORCE:-}" ] && [ -f "$out" ] || return 1
    for f in "$@"; do
        [ "$f" -nt "$out" ] && return 1
    done
    echo "$(basename "$out"): up to date"
}

finish_component() {
    local tmp=$1 out=$2 magic
    # A component starts with \0asm, version 0x0d, layer 1.
    magic=$(head -c 8 "$tmp" | od -An -tx1 | tr -d ' \n')
    if [ "$magic" != "0061736d0d000100" ]; then
        rm -f "$tmp"
        die "componentize produced something that is not a component (header $magic)"
    fi
    mv -f "$tmp" "$out"
}
