// Runs a C guest's *core* module (before componentization) in Node's
// WebAssembly engine, playing the host's side of the canonical ABI by hand:
// the argument list is allocated with cabi_realloc, the result is read from
// the returned return area, post-return is called, and the weir imports lower
// their results as the canonical ABI does (option<string> into a caller
// return area, strings allocated with the guest's cabi_realloc, align 1;
// list<tuple<string,string>> as 16-byte elements, align 4).
//
//   node run_core.mjs errors-only CORE.wasm
//   node run_core.mjs probe       CORE.wasm   (sdk/c/test/probe.c)
import { readFileSync } from "node:fs";

const [, , which, path] = process.argv;
let failures = 0;
const fail = (msg) => {
  failures++;
  console.error("FAIL: " + msg);
};
const eq = (a, b, msg) => {
  const ser = (x) => JSON.stringify(x, (_, v) => (typeof v === "bigint" ? v.toString() + "n" : v));
  const sa = ser(a), sb = ser(b);
  if (sa !== sb) fail(`${msg}: got ${sa}, want ${sb}`);
};

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

// ---- batch encoding (the host's side) ----
class W {
  constructor() { this.b = []; }
  u8(v) { this.b.push(v & 0xff); }
  u32(v) { for (let i = 0; i < 4; i++) this.u8(Number((BigInt(v) >> BigInt(8 * i)) & 0xffn)); }
  u64(v) { v = BigInt.asUintN(64, BigInt(v)); for (let i = 0n; i < 8n; i++) this.u8(Number((v >> (8n * i)) & 0xffn)); }
  bytes(x) { if (typeof x === "string") x = utf8.encode(x); this.u32(x.length); for (const c of x) this.u8(c); }
  opt(x) { if (x === null || x === undefined) this.u32(0xffffffff); else this.bytes(x); }
  get buf() { return Uint8Array.from(this.b); }
}

function encodeEvents(events) {
  const w = new W();
  w.u32(events.length);
  for (const e of events) {
    w.u64(e.ts ?? 0); w.u32(e.partition ?? 0); w.u64(e.offset ?? 0); w.bytes(e.topic ?? "t");
    w.opt(e.key); w.opt(e.value);
    const hs = e.headers ?? [];
    w.u32(hs.length);
    for (const [n, v] of hs) { w.bytes(n); w.opt(v); }
  }
  return w.buf;
}

// Decodes a result-batch as strictly as host/src/codec.rs does.
function decodeResults(b, expected) {
  let p = 0;
  const need = (n) => { if (p + n > b.length) throw new Error(`truncated at ${p}`); };
  const u8 = () => { need(1); return b[p++]; };
  const u32 = () => { need(4); const v = b[p] | b[p + 1] << 8 | b[p + 2] << 16 | (b[p + 3] << 24 >>> 0); p += 4; return v >>> 0; };
  const i64 = () => { need(8); const dv = new DataView(b.buffer, b.byteOffset + p, 8); p += 8; return dv.getBigInt64(0, true).toString(); };
  const raw = (n) => { need(n); const r = b.slice(p, p + n); p += n; return r; };
  const str = () => strictUtf8.decode(raw(u32()));
  const opt = () => { const n = u32(); if (n === 0xffffffff) return null; return Buffer.from(raw(n)).toString("latin1"); };
  const count = u32();
  if (count !== expected) throw new Error(`count ${count}, want ${expected}`);
  const results = [];
  for (let i = 0; i < count; i++) {
    const tag = u8();
    if (tag === 1) { results.push({ fail: str(), message: str() }); continue; }
    if (tag !== 0) throw new Error(`bad tag ${tag}`);
    const outs = [];
    for (let n = u32(); n > 0; n--) {
      const flags = u8();
      if (flags & ~3) throw new Error(`bad flags ${flags}`);
      const o = {};
      if (flags & 1) o.ts = i64();
      o.key = opt(); o.value = opt();
      o.headers = [];
      for (let h = u32(); h > 0; h--) o.headers.push([str(), opt()]);
      if (flags & 2) o.route = str();
      outs.push(o);
    }
    results.push(outs);
  }
  if (p !== b.length) throw new Error(`${b.length - p} trailing bytes`);
  return results;
}

// ---- the guest ----
function instantiate(config) {
  const log = [], counters = {};
  let inst;
  const mem = () => new Uint8Array(inst.exports.memory.buffer);
  const dv = () => new DataView(inst.exports.memory.buffer);
  const liftStr = (ptr, len) => strictUtf8.decode(mem().slice(ptr, ptr + len)); // invalid UTF-8 traps
  const lowerStr = (s) => {
    const b = utf8.encode(s);
    const ptr = inst.exports.cabi_realloc(0, 0, 1, b.length);
    mem().set(b, ptr);
    return [ptr, b.length];
  };
  const imports = {
    "weir:stream/log@0.1.0": {
      log: (level, ptr, len) => {
        if (level < 0 || level > 4) throw new Error("bad log level " + level);
        log.push([level, liftStr(ptr, len)]);
      },
    },
    "weir:stream/config@0.1.0": {
      get: (kptr, klen, ret) => {
        if (ret % 4) throw new Error("config.get return area misaligned");
        const key = liftStr(kptr, klen);
        if (!(key in config)) { dv().setUint8(ret, 0); return; }
        const [p, l] = lowerStr(config[key]);
        dv().setUint8(ret, 1); dv().setUint32(ret + 4, p, true); dv().setUint32(ret + 8, l, true);
      },
      entries: (ret) => {
        if (ret % 4) throw new Error("config.entries return area misaligned");
        const ents = Object.entries(config);
        const arr = inst.exports.cabi_realloc(0, 0, 4, 16 * ents.length);
        if (arr % 4) throw new Error("cabi_realloc ignored alignment");
        ents.forEach(([k, v], i) => {
          const [kp, kl] = lowerStr(k), [vp, vl] = lowerStr(v);
          const d = dv(), at = arr + 16 * i;
          d.setUint32(at, kp, true); d.setUint32(at + 4, kl, true);
          d.setUint32(at + 8, vp, true); d.setUint32(at + 12, vl, true);
        });
        dv().setUint32(ret, arr, true); dv().setUint32(ret + 4, ents.length, true);
      },
    },
    "weir:stream/metrics@0.1.0": {
      "counter-add": (ptr, len, delta) => {
        if (typeof delta !== "bigint") throw new Error("delta is not an i64");
        const n = liftStr(ptr, len);
        counters[n] = (counters[n] ?? 0n) + BigInt.asUintN(64, delta);
      },
    },
  };
  // Any WASI import is a failure: these modules should not need one.
  const module = new WebAssembly.Module(readFileSync(path));
  for (const imp of WebAssembly.Module.imports(module))
    if (!(imp.module in imports)) fail(`unexpected import ${imp.module}::${imp.name}`);
  inst = new WebAssembly.Instance(module, imports);
  inst.exports._initialize();
  const exp = inst.exports;
  const processFn = exp["weir:stream/processor@0.1.0#process"];
  const post = exp["cabi_post_weir:stream/processor@0.1.0#process"];
  const run = (events, raw) => {
    const bytes = raw ?? encodeEvents(events);
    const ptr = exp.cabi_realloc(0, 0, 1, bytes.length);
    mem().set(bytes, ptr);
    const ret = processFn(ptr, bytes.length);
    if (ret % 4) throw new Error("return area misaligned");
    const rp = dv().getUint32(ret, true), rl = dv().getUint32(ret + 4, true);
    const out = mem().slice(rp, rp + rl);
    post(ret);
    return raw ? out : decodeResults(out, events.length);
  };
  return { run, log, counters, memBytes: () => exp.memory.buffer.byteLength };
}

function leakCheck(g, events) {
  for (let i = 0; i < 200; i++) g.run(events);
  const before = g.memBytes();
  for (let i = 0; i < 3000; i++) g.run(events);
  if (g.memBytes() !== before) fail(`memory grew from ${before} to ${g.memBytes()} over 3000 batches`);
}

if (which === "errors-only") {
  const g = instantiate({});
  const hs = [["source", "svc-a"], ["flag", null]];
  const cases = [
    ['{"level":"ERROR","msg":"disk full"}', "fwd"],
    ['{"level":"INFO"}', "drop"],
    ['{"msg":"no level"}', "drop"],
    ['[{"level":"ERROR"}]', "drop"],
    ["7", "drop"],
    ['{"ctx":{"level":"ERROR"}}', "drop"],
    ['{"m":"\\"level\\":\\"ERROR\\"","level":"ERROR"}', "fwd"],
    ["{oops", "fail"],
    ['{"level":"ERROR"}x', "fail"],
    [Uint8Array.from([0x22, 0xff, 0x22]), "fail"],
    [null, "fail"],
    ["", "fail"],
  ];
  const events = cases.map(([v], i) => ({ ts: 5 + i, partition: 1, offset: i, key: i % 2 ? null : `k${i}`, value: v, headers: hs }));
  const res = g.run(events);
  cases.forEach(([v, want], i) => {
    const r = res[i];
    const value = v === null ? null : (typeof v === "string" ? Buffer.from(utf8.encode(v)).toString("latin1") : Buffer.from(v).toString("latin1"));
    if (want === "fail") {
      eq(r.fail, "invalid-json", `case ${i} code`);
      if (!r.message) fail(`case ${i}: empty message`);
    } else if (want === "drop") {
      eq(r, [], `case ${i}`);
    } else {
      eq(r, [{ key: i % 2 ? null : `k${i}`, value, headers: hs }], `case ${i}`);
    }
  });
  eq(g.run([]), [], "empty batch");
  eq(g.log, [], "log lines");
  leakCheck(g, events);
  // A large batch: 5000 events, ~1 MB
  const big = Array.from({ length: 5000 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ level: i % 3 ? "INFO" : "ERROR", pad: "x".repeat(200) }) }));
  const bres = g.run(big);
  eq(bres.filter((r) => r.length === 1).length, 1667, "large batch forwarded count");
  // A malformed batch is a trap (the host handles it per the error policy).
  let trapped = false;
  try { g.run(null, Uint8Array.from([1, 0, 0, 0, 9])); } catch (e) { trapped = e instanceof WebAssembly.RuntimeError; }
  if (!trapped) fail("malformed batch did not trap");
  eq(g.log.length, 1, "malformed batch logged an error");
} else if (which === "probe") {
  const g = instantiate({ a: "1", empty: "", "ünï": "ç" });
  const res = g.run([
    { ts: 10, partition: 2, key: "k", value: "a" },
    { ts: 20, partition: 3, value: "empty" },
    { ts: 30, partition: 4, value: "missing" },
    { ts: 40, partition: 5, value: "ünï" },
    { ts: 50, partition: 6, value: "*" },
    { ts: 60, partition: 7, value: Uint8Array.from([0x61, 0xff]) }, // invalid UTF-8 key
  ]);
  eq(res, [
    [{ ts: "11", key: "k", value: "1", headers: [], route: "probe" }],
    [{ ts: "21", key: null, value: "", headers: [], route: "probe" }],
    [{ ts: "31", key: null, value: null, headers: [], route: "probe" }],
    [{ ts: "41", key: null, value: Buffer.from("ç").toString("latin1"), headers: [], route: "probe" }],
    [{ key: null, value: Buffer.from("a=1;empty=;ünï=ç;").toString("latin1"), headers: [] }],
    [{ ts: "61", key: null, value: null, headers: [], route: "probe" }],
  ], "probe results");
  eq(g.counters, { "probe-events": 33n }, "counters");
  eq(g.log.map(([l, m]) => `${l}:${m}`), ["2:a", "2:empty", "2:missing", "2:ünï", "2:*", "2:a\ufffd"], "logs");
  const g2 = instantiate({});
  eq(g2.run([{ value: "*" }]), [[{ key: null, value: "", headers: [] }]], "no entries");
  leakCheck(g, [{ value: "a" }, { value: "*" }, { value: "missing" }]);
} else {
  console.error("usage: node run_core.mjs errors-only|probe CORE.wasm");
  process.exit(2);
}

if (failures) {
  console.error(`run_core ${which}: ${failures} FAILED`);
  process.exit(1);
}
console.log(`run_core ${which}: ok (${path})`);
