// Calls a Go operator component's exports through jco (an independent
// implementation of the component model's canonical ABI, in JavaScript) and
// checks what they return: the hand-written lowering in
// sdk/go/weir/exports_wasip1.go (list<group>, folded, result<bytes, failure>,
// emit-request, options and windows) against someone else's lifting.
//
//   node abi_check.mjs aggregate PROBE-AGG.wasm   # testdata/probe-agg, as a component
//   node abi_check.mjs join PAIR.wasm             # the pair example, as a component
//
// JCO_DIR: the @bytecodealliance/jco package (default: the JS examples' copy).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const jcoDir = process.env.JCO_DIR ?? resolve(here, '../../../guest-examples/js/node_modules/@bytecodealliance/jco');
const shimDir = resolve(jcoDir, '../preview2-shim');
const [mode, component] = process.argv.slice(2);
// --- the batch encoding, enough to build inputs and read results ---
const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s) => enc.encode(s);
const text = (b) => dec.decode(b);

function writer() {
  const parts = [];
  const w = {
    u8: (v) => parts.push(Uint8Array.of(v)),
    u32: (v) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v, true); parts.push(b); },
    s64: (v) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigInt64(0, BigInt(v), true); parts.push(b); },
    opt: (v) => { if (v == null) w.u32(0xffffffff); else { w.u32(v.length); parts.push(v); } },
    str: (s) => w.opt(bytes(s)),
    done: () => { const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0)); let at = 0; for (const p of parts) { out.set(p, at); at += p.length; } return out; },
  };
  return w;
}

function events(values) {
  const w = writer();
  w.u32(values.length);
  for (const [i, v] of values.entries()) {
    w.s64(100 + i); w.u32(0); w.s64(i); w.str('t'); w.opt(bytes('k')); w.opt(v == null ? null : bytes(v)); w.u32(0);
  }
  return w.done();
}

function pairs(list) {
  const w = writer();
  w.u32(list.length);
  for (const p of list) {
    w.s64(p.ts ?? 0); w.opt(p.key == null ? null : bytes(p.key)); w.opt(p.left == null ? null : bytes(p.left));
    w.opt(p.right == null ? null : bytes(p.right)); w.u32(0);
  }
  return w.done();
}

// result-batch -> [{outputs: [{key, value, flags}]} | {failure: [code, message]}]
function results(buf) {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let at = 0;
  const u8 = () => v.getUint8(at++);
  const u32 = () => { const x = v.getUint32(at, true); at += 4; return x; };
  const opt = () => { const n = u32(); if (n === 0xffffffff) return null; const b = buf.subarray(at, at + n); at += n; return text(b); };
  const out = [];
  for (let n = u32(); n > 0; n--) {
    if (u8() === 1) { out.push({ failure: [opt(), opt()] }); continue; }
    const outputs = [];
    for (let k = u32(); k > 0; k--) {
      const flags = u8();
      if (flags & 1) at += 8;
      const key = flags & 4 ? '<kept>' : opt();
      const value = opt();
      if (!(flags & 8)) for (let h = u32(); h > 0; h--) { opt(); opt(); }
      if (flags & 2) opt();
      outputs.push({ key, value, flags });
    }
    out.push({ outputs });
  }
  assert.equal(at, buf.length, 'nothing after the last result');
  return out;
}

function failureOf(fn) {
  try {
    fn();
  } catch (e) {
    return e.payload;
  }
  assert.fail('expected a failure');
}

async function checkAggregate(exp) {
  const agg = exp('aggregator');
  const sub = exp('subtractor');
  const mig = exp('migrator');
  const acc = (s) => bytes(JSON.stringify(s));
  // add: two groups; failures by index; init from the key; a window is passed along
  const folded = agg.add([
    { key: bytes('ten'), window: undefined, acc: undefined, events: events(['1', 'x', '2', '13']) },
    { key: undefined, window: { start: 5n, end: 10n }, acc: acc({ n: 1, sum: 1 }), events: events(['5']) },
    { key: bytes('k'), window: undefined, acc: bytes('not json'), events: events(['1']) },
    { key: bytes('k'), window: undefined, acc: undefined, events: events([]) },
  ]);
  assert.equal(folded.length, 4);
  assert.equal(text(folded[0].acc), '{"n":2,"sum":13}');
  assert.deepEqual(folded[0].failures.map(([i, f]) => [i, f.code]), [[1, 'not-a-number'], [3, 'panic']]);
  assert.match(folded[0].failures[1][1].message, /^unlucky \(at /);
  assert.equal(text(folded[1].acc), '{"n":2,"sum":6}');
  assert.deepEqual(folded[1].failures, []);
  assert.equal(text(folded[2].acc), 'not json', 'an accumulator that does not decode is kept');
  assert.deepEqual(folded[2].failures.map(([i, f]) => [i, f.code]), [[0, 'bad-state']]);
  assert.equal(text(folded[3].acc), '{"n":0,"sum":0}');

  // subtract
  const unfolded = sub.subtract([{ key: undefined, window: undefined, acc: acc({ n: 1, sum: 4 }), events: events(['4', '4']) }]);
  assert.equal(text(unfolded[0].acc), '{"n":0,"sum":0}');
  assert.deepEqual(unfolded[0].failures.map(([i, f]) => [i, f.code, f.message]), [[1, 'negative-count', 'nothing to subtract']]);

  // merge: ok and a typed failure
  assert.equal(text(agg.merge(bytes('k'), acc({ n: 1, sum: 2 }), acc({ n: 3, sum: 4 }))), '{"n":4,"sum":6}');
  assert.equal(text(agg.merge(undefined, acc({ n: 1, sum: 2 }), acc({ n: 0, sum: 0 }))), '{"n":1,"sum":2}');
  assert.deepEqual(failureOf(() => agg.merge(bytes('refuse'), acc({}), acc({}))), { code: 'no-merge', message: 'refused to merge' });
  assert.equal(failureOf(() => agg.merge(undefined, bytes('['), acc({}))).code, 'bad-state');

  // emit: one result per request, with and without window and key
  const emitted = results(agg.emit([
    { key: bytes('k'), window: { start: -5n, end: 9007199254740993n }, acc: acc({ n: 2, sum: 3 }) },
    { key: undefined, window: undefined, acc: acc({ n: 1, sum: 1 }) },
    { key: bytes('k'), window: undefined, acc: acc({ n: 0, sum: 0 }) },
    { key: bytes('k'), window: undefined, acc: bytes('{') },
  ]));
  assert.deepEqual(emitted[0], { outputs: [{ key: null, value: 'n=2 sum=3 window=-5..9007199254740993', flags: 0 }] });
  assert.deepEqual(emitted[1], { outputs: [{ key: null, value: 'n=1 sum=1 no key', flags: 0 }] });
  assert.deepEqual(emitted[2], { outputs: [] });
  assert.equal(emitted[3].failure[0], 'bad-state');
  assert.deepEqual(results(agg.emit([])), []);

  // migrate
  const old = new Uint8Array(8);
  new DataView(old.buffer).setBigUint64(0, 7n, true);
  assert.equal(text(mig.migrate('count@sha256:00', bytes('k'), old)), '{"n":7,"sum":0}');
  assert.deepEqual(failureOf(() => mig.migrate('other@sha256:11', undefined, old)),
    { code: 'unknown-version', message: 'cannot read other@sha256:11' });

  // many calls: memory stays bounded (what a call allocates is released)
  const big = events(Array.from({ length: 500 }, (_, i) => String(i)));
  for (let i = 0; i < 2000; i++) {
    agg.add([{ key: bytes('k'), window: undefined, acc: undefined, events: big }]);
  }
  assert.equal(text(agg.add([{ key: bytes('k'), window: undefined, acc: undefined, events: big }])[0].acc), '{"n":499,"sum":124737}');
}

async function checkJoin(joiner) {
  const out = results(joiner.join(pairs([
    { key: 'c1', left: '{"a":1}', right: '[2]', ts: 5 },
    { key: 'c2', left: '{"a":2}' },
    { key: 'c3', right: '"r"' },
    { key: 'c4', left: '{', right: '1' },
    { key: 'c5', left: '1', right: '"\u00ff"' },
    { left: null, right: null },
  ])));
  assert.deepEqual(out, [
    { outputs: [{ key: null, value: '{"left":{"a":1},"right":[2]}', flags: 0 }] },
    { outputs: [{ key: null, value: '{"left":{"a":2},"right":null}', flags: 0 }] },
    { outputs: [{ key: null, value: '{"left":null,"right":"r"}', flags: 0 }] },
    { failure: ['invalid-json', 'the left side is not JSON'] },
    { outputs: [{ key: null, value: '{"left":1,"right":"\u00ff"}', flags: 0 }] },
    { outputs: [{ key: null, value: '{"left":null,"right":null}', flags: 0 }] },
  ]);
  assert.deepEqual(results(joiner.join(pairs([]))), []);
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'weir-go-abi-'));
  try {
    execFileSync(process.execPath, [join(jcoDir, 'src/jco.js'), 'transpile', component, '-o', join(work, 'js'),
      '--instantiation', 'async', '--name', 'op', '--quiet']);
    const shim = await import(pathToFileURL(join(shimDir, 'lib/nodejs/index.js')));
    const logs = [];
    const imports = {
      'wasi:cli/environment': shim.cli.environment,
      'wasi:cli/exit': shim.cli.exit,
      'wasi:cli/stderr': shim.cli.stderr,
      'wasi:cli/stdin': shim.cli.stdin,
      'wasi:cli/stdout': shim.cli.stdout,
      'wasi:cli/terminal-input': shim.cli.terminalInput,
      'wasi:cli/terminal-output': shim.cli.terminalOutput,
      'wasi:cli/terminal-stdin': shim.cli.terminalStdin,
      'wasi:cli/terminal-stdout': shim.cli.terminalStdout,
      'wasi:cli/terminal-stderr': shim.cli.terminalStderr,
      // Weir's wall clock reads zero; its monotonic clock does not (Go's
      // runtime does not start on one that does), so node's serves here
      'wasi:clocks/monotonic-clock': shim.clocks.monotonicClock,
      'wasi:clocks/wall-clock': { ...shim.clocks.wallClock, now: () => ({ seconds: 0n, nanoseconds: 0 }) },
      'wasi:filesystem/preopens': shim.filesystem.preopens,
      'wasi:filesystem/types': shim.filesystem.types,
      'wasi:io/error': shim.io.error,
      'wasi:io/poll': shim.io.poll,
      'wasi:io/streams': shim.io.streams,
      'wasi:random/random': shim.random.random,
      'weir:stream/config': { get: () => undefined, entries: () => [] },
      'weir:stream/log': { log: (level, message) => logs.push([level, message]) },
      'weir:stream/metrics': { counterAdd: () => {} },
      'weir:stream/types': {},
    };
    const mod = await import(pathToFileURL(join(work, 'js/op.js')));
    const inst = await mod.instantiate(async (p) => WebAssembly.compile(readFileSync(join(work, 'js', p))), imports);
    const exp = (name) => inst[name] ?? inst[`weir:stream/${name}@0.1.0`];
    if (mode === 'aggregate') await checkAggregate(exp);
    else if (mode === 'join') await checkJoin(exp('joiner'));
    else throw new Error(`unknown mode ${mode}`);
    console.log(`abi_check ${mode}: ok`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
