#!/usr/bin/env python3
"""Print the imports and exports (with core function types) of a core wasm
module, and optionally check them against the `process` world's lowering.

usage: wasm_info.py CORE.wasm [--check-process]
"""
import sys

VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128", 0x70: "funcref", 0x6F: "externref"}


class R:
    def __init__(self, b, i=0):
        self.b, self.i = b, i

    def byte(self):
        v = self.b[self.i]
        self.i += 1
        return v

    def u(self):
        r = s = 0
        while True:
            c = self.byte()
            r |= (c & 0x7F) << s
            s += 7
            if c < 0x80:
                return r

    def name(self):
        n = self.u()
        v = self.b[self.i:self.i + n].decode("utf-8")
        self.i += n
        return v

    def limits(self):
        flag = self.byte()
        lo = self.u()
        hi = self.u() if flag & 1 else None
        return lo, hi


def parse(data):
    if data[:4] != b"\0asm":
        raise SystemExit("not a wasm binary")
    if data[4:8] != b"\x01\x00\x00\x00":
        raise SystemExit("not a core module (version/layer %s): a component?" % data[4:8].hex())
    r = R(data, 8)
    types, funcs, imports, exports, sections = [], [], [], [], {}
    nimported_funcs = 0
    while r.i < len(data):
        sid = r.byte()
        size = r.u()
        end = r.i + size
        s = R(data, r.i)
        if sid == 0:
            sections.setdefault("custom", []).append(s.name())
        else:
            sections[sid] = size
        if sid == 1:
            for _ in range(s.u()):
                assert s.byte() == 0x60
                ps = [VALTYPES[s.byte()] for _ in range(s.u())]
                rs = [VALTYPES[s.byte()] for _ in range(s.u())]
                types.append((ps, rs))
        elif sid == 2:
            for _ in range(s.u()):
                mod, nm, kind = s.name(), s.name(), s.byte()
                if kind == 0:
                    t = s.u()
                    imports.append((mod, nm, "func", types[t]))
                    funcs.append(t)
                    nimported_funcs += 1
                elif kind == 1:
                    s.byte(); s.limits(); imports.append((mod, nm, "table", None))
                elif kind == 2:
                    imports.append((mod, nm, "memory", s.limits()))
                elif kind == 3:
                    s.byte(); s.byte(); imports.append((mod, nm, "global", None))
        elif sid == 3:
            for _ in range(s.u()):
                funcs.append(s.u())
        elif sid == 7:
            for _ in range(s.u()):
                nm, kind, idx = s.name(), s.byte(), s.u()
                kinds = {0: "func", 1: "table", 2: "memory", 3: "global"}
                exports.append((nm, kinds.get(kind, kind), types[funcs[idx]] if kind == 0 else None))
        r.i = end
    return imports, exports, sections


def sig(t):
    return "(%s) -> (%s)" % (", ".join(t[0]), ", ".join(t[1]))


# The canonical-ABI lowering of the process world (see sdk/c/weir.h).
EXPECTED_EXPORTS = {
    "weir:stream/processor@0.1.0#process": (["i32", "i32"], ["i32"]),
    "cabi_post_weir:stream/processor@0.1.0#process": (["i32"], []),
    "cabi_realloc": (["i32", "i32", "i32", "i32"], ["i32"]),
    "_initialize": ([], []),
}
ALLOWED_IMPORTS = {
    ("weir:stream/log@0.1.0", "log"): (["i32", "i32", "i32"], []),
    ("weir:stream/config@0.1.0", "get"): (["i32", "i32", "i32"], []),
    ("weir:stream/config@0.1.0", "entries"): (["i32"], []),
    ("weir:stream/metrics@0.1.0", "counter-add"): (["i32", "i32", "i64"], []),
}


def main():
    path = sys.argv[1]
    data = open(path, "rb").read()
    imports, exports, sections = parse(data)
    print("%s: %d bytes" % (path, len(data)))
    print("imports:")
    for mod, nm, kind, t in imports:
        print("  %s %s::%s %s" % (kind, mod, nm, sig(t) if kind == "func" else t))
    print("exports:")
    for nm, kind, t in exports:
        print("  %s %s %s" % (kind, nm, sig(t) if t else ""))
    print("custom sections:", ", ".join(sections.get("custom", [])) or "none")
    if "--check-process" not in sys.argv:
        return
    errors = []
    got = {nm: (kind, t) for nm, kind, t in exports}
    for nm, t in EXPECTED_EXPORTS.items():
        if nm not in got:
            errors.append("missing export %s" % nm)
        elif got[nm] != ("func", t):
            errors.append("export %s has %s, want %s" % (nm, sig(got[nm][1]), sig(t)))
    if got.get("memory", (None,))[0] != "memory":
        errors.append("missing memory export `memory`")
    for mod, nm, kind, t in imports:
        if mod == "wasi_snapshot_preview1":
            continue
        want = ALLOWED_IMPORTS.get((mod, nm))
        if want is None:
            errors.append("unexpected import %s::%s" % (mod, nm))
        elif kind != "func" or t != want:
            errors.append("import %s::%s has %s, want %s" % (mod, nm, sig(t), sig(want)))
    if "weir-sdk" not in sections.get("custom", []):
        errors.append("no `weir-sdk` custom section (WEIR_PROCESSOR writes one)")
    if errors:
        print("\n".join("ERROR: " + e for e in errors))
        sys.exit(1)
    print("OK: matches the process world's canonical-ABI lowering")


if __name__ == "__main__":
    main()
