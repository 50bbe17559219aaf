#!/usr/bin/env bash
# wasi-cc.sh — compile C sources into a Weir operator *core module*
# (wasm32-wasi, WASI preview 1, reactor), with sdk/c on the include path.
#
#   sdk/c/wasi-cc.sh -o my-op.core.wasm my-op.c [more clang args...]
#
# Then turn the core module into a component:
#   weir componentize my-op.core.wasm --world process -o my-op.wasm
#
# Environment:
#   WASI_CC       clang to use (default: the first of clang, clang-19 ... clang-14
#                 that can link wasm32-wasi)
#   WASI_SYSROOT  wasi-libc sysroot (default: /opt/wasi-sdk/share/wasi-sysroot,
#                 /usr/share/wasi-sysroot, or Debian's /usr multiarch layout)
#   WASI_CFLAGS   extra flags (default: -O2)
set -euo pipefail

SDK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() {
    echo "wasi-cc: error: $*" >&2
    exit 1
}

# A sysroot must hold wasi-libc's libc.a and the reactor start file.
sysroot_ok() {
    local s=$1
    [ -f "$s/lib/wasm32-wasi/libc.a" ] && [ -f "$s/lib/wasm32-wasi/crt1-reactor.o" ] || return 1
    # Debian installs the headers to /usr/include/wasm32-wasi (next to the
    # host's glibc headers in /usr/include, which must not be mistaken for
    # them); wasi-sdk has either layout.
    [ -f "$s/include/wasm32-wasi/stdlib.h" ] && return 0
    [ "$s" != /usr ] && [ -f "$s/include/stdlib.h" ] && return 0
    return 1
}

if [ -n "${WASI_SYSROOT:-}" ]; then
    sysroot_ok "$WASI_SYSROOT" || die "WASI_SYSROOT=$WASI_SYSROOT is not a wasi-libc sysroot (no lib/wasm32-wasi/libc.a, crt1-reactor.o or headers)"
    SYSROOT=$WASI_SYSROOT
else
    SYSROOT=
    for s in /opt/wasi-sdk/share/wasi-sysroot /usr/share/wasi-sysroot /usr/lib/wasi-sysroot /usr; do
        if sysroot_ok "$s"; then
            SYSROOT=$s
            break
        fi
    done
    [ -n "$SYSROOT" ] || die "no wasi-libc sysroot found (install Debian's wasi-libc, or wasi-sdk, or set WASI_SYSROOT)"
fi

# The compiler must target wasm32-wasi and find compiler-rt's wasm builtins
# and wasm-ld.
clang_ok() {
    local cc=$1 rt ld
    command -v "$cc" >/dev/null 2>&1 || return 1
    rt=$("$cc" --target=wasm32-wasi -print-libgcc-file-name 2>/dev/null) || return 1
    [ -f "$rt" ] || return 1
    ld=$("$cc" --target=wasm32-wasi -print-prog-name=wasm-ld 2>/dev/null) || return 1
    command -v "$ld" >/dev/null 2>&1 || return 1
}

if [ -n "${WASI_CC:-}" ]; then
    clang_ok "$WASI_CC" || die "WASI_CC=$WASI_CC cannot build wasm32-wasi (missing compiler, compiler-rt builtins for wasm32 or wasm-ld)"
    CC=$WASI_CC
else
    CC=
    for c in /opt/wasi-sdk/bin/clang clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14; do
        if clang_ok "$c"; then
            CC=$c
            break
        fi
    done
    if [ -z "$CC" ]; then
        command -v clang >/dev/null 2>&1 || command -v clang-14 >/dev/null 2>&1 ||
            die "clang not found (Debian: apt-get install clang-14 lld-14 libclang-rt-14-dev-wasm32 wasi-libc)"
        die "clang cannot link wasm32-wasi: need wasm-ld (lld) and compiler-rt's libclang_rt.builtins-wasm32.a (Debian: lld-14, libclang-rt-14-dev-wasm32)"
    fi
fi

# shellcheck disable=SC2086 # WASI_CFLAGS is a list of flags
exec "$CC" --target=wasm32-wasi -mexec-model=reactor --sysroot="$SYSROOT" \
    ${WASI_CFLAGS:--O2} -I"$SDK_DIR" -Wl,--strip-debug "$@"
