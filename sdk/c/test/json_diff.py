#!/usr/bin/env python3
"""Differential test of the C SDK's JSON validator against Python's json.

Generates random JSON documents (and mutations and truncations of them),
feeds them hex-encoded to `test_weir --json-lines`, and checks, per input,
that the C code and Python agree on (a) whether it is valid UTF-8 JSON and
(b) whether it is an object whose top-level "level" member is "ERROR".

Python is configured to match the documented C behaviour: NaN/Infinity are
rejected (Python accepts them by default); nesting stays well below both
depth limits.

usage: json_diff.py PATH/TO/test_weir [N]
"""
import json
import random
import subprocess
import sys


def reject_constant(name):
    raise ValueError(name)


def python_verdict(b):
    try:
        s = b.decode("utf-8")
        v = json.loads(s, parse_constant=reject_constant)
    except (ValueError, RecursionError):
        return (0, 0)
    return (1, int(isinstance(v, dict) and v.get("level") == "ERROR"))


STRINGS = ["level", "ERROR", "INFO", "error", "", "lev\\u0065l", "\\u0045RROR", "a\\\"b", "\\\\", "\\/",
           "\\ud83d\\ude00", "\\ud800", "caf\u00e9", "\U0001F600", "\\n\\t", "x" * 20, "\\u0000"]


def gen_string(r):
    if r.random() < 0.7:
        return '"' + r.choice(STRINGS) + '"'
    return json.dumps("".join(chr(r.choice([0x41, 0x7f, 0xe9, 0x20ac, 0x1f600, 0x22, 0x5c, 0x0a]))
                              for _ in range(r.randint(0, 5))), ensure_ascii=r.random() < 0.5)


def gen_number(r):
    return r.choice(["0", "-0", "1", "-12", "3.25", "1e5", "1E-5", "2.5e+3", "1e400", "123456789012345678901234567890",
                     "-0.0", "0.5"])


def ws(r):
    return r.choice(["", "", "", " ", "\n", "\t ", "\r\n"])


def gen_value(r, depth=0):
    k = r.random()
    if depth > 6 or k < 0.35:
        return r.choice([gen_string(r), gen_number(r), "true", "false", "null"])
    if k < 0.65:
        n = r.randint(0, 4)
        members = []
        for _ in range(n):
            key = '"level"' if r.random() < 0.4 else gen_string(r)
            val = gen_value(r, depth + 1)
            if key == '"level"' and r.random() < 0.5:
                val = r.choice(['"ERROR"', '"\\u0045RROR"', '"INFO"', '"ERROR "', '"error"'])
            members.append(ws(r) + key + ws(r) + ":" + ws(r) + val + ws(r))
        return "{" + ",".join(members) + ws(r) + "}"
    return "[" + ",".join(ws(r) + gen_value(r, depth + 1) + ws(r) for _ in range(r.randint(0, 4))) + ws(r) + "]"


NOISE = [b"{", b"}", b"[", b"]", b'"', b",", b":", b"\\", b"u", b"0", b"e", b"-", b"+", b".", b" ", b"\x00", b"\x01",
         b"\x7f", b"\x80", b"\xc3", b"\xff", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"t", b"n", b"NaN", b"x"]


def mutate(r, b):
    b = bytearray(b)
    for _ in range(r.randint(1, 3)):
        op = r.random()
        at = r.randint(0, len(b))
        if op < 0.4 and b:
            del b[min(at, len(b) - 1)]
        elif op < 0.8:
            b[at:at] = r.choice(NOISE)
        elif b:
            b[min(at, len(b) - 1)] = r.randint(0, 255)
    return bytes(b)


def main():
    exe = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    r = random.Random(20240607)
    inputs = []
    while len(inputs) < n:
        doc = (ws(r) + gen_value(r) + ws(r)).encode("utf-8")
        k = r.random()
        if k < 0.45:
            inputs.append(doc)
        elif k < 0.9:
            inputs.append(mutate(r, doc))
        else:
            inputs.append(doc[: r.randint(0, len(doc))])
    out = subprocess.run([exe, "--json-lines"], input="".join(b.hex() + "\n" for b in inputs).encode(),
                         capture_output=True, check=True).stdout.decode().splitlines()
    assert len(out) == len(inputs), (len(out), len(inputs))
    bad = 0
    stats = {}
    for b, line in zip(inputs, out):
        c = tuple(int(x) for x in line.split())
        p = python_verdict(b)
        stats[p] = stats.get(p, 0) + 1
        if c != p:
            bad += 1
            if bad <= 20:
                print("DISAGREE: C %s, Python %s on %r" % (c, p, b))
    print("json_diff: %d inputs (python verdicts: %d invalid, %d valid, %d level=ERROR), %d disagreements"
          % (len(inputs), stats.get((0, 0), 0), stats.get((1, 0), 0), stats.get((1, 1), 0), bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
