// Unit tests for the SDK: the batch codec against hand-built bytes (the
// layouts in wit/weir.wit) and the operator helpers through the whole ABI path.
// Run with `node --test sdk/js`.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  Event,
  Failure,
  Output,
  Pair,
  aggregate,
  decodeEvents,
  decodePairs,
  decodeResults,
  encodeEvents,
  encodePairs,
  encodeResults,
  filter,
  flatMap,
  join,
  map,
  subtract,
} from './weir-sdk.js';

const NONE = 0xffffffff;
const enc = new TextEncoder();

/** Little-endian byte builder for hand-made batches. */
class Bytes {
  constructor() {
    this.parts = [];
  }
  u8(v) {
    this.parts.push(Uint8Array.of(v));
    return this;
  }
  u32(v) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    this.parts.push(b);
    return this;
  }
  s32(v) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v, true);
    this.parts.push(b);
    return this;
  }
  s64(v) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigInt64(0, BigInt(v), true);
    this.parts.push(b);
    return this;
  }
  blob(data) {
    const b = typeof data === 'string' ? enc.encode(data) : Uint8Array.from(data);
    return this.u32(b.length).raw(b);
  }
  opt(data) {
    return data === null ? this.u32(NONE) : this.blob(data);
  }
  raw(b) {
    this.parts.push(b);
    return this;
  }
  build() {
    const out = new Uint8Array(this.parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

const str = (bytes) => (bytes === null ? null : new TextDecoder().decode(bytes));

// Two events: key, value and two headers (one without a value); then one with
// neither key nor value and no headers.
const EVENT_BATCH = new Bytes()
  .u32(2)
  .s64(1_700_000_000_123).s32(3).s64(42).blob('orders')
  .opt('k1').opt('{"level": "ERROR"}')
  .u32(2).blob('trace').opt([0, 255]).blob('empty').opt(null)
  .s64(-1).s32(0).s64(2n ** 53n).blob('tōpic')
  .opt(null).opt(null)
  .u32(0)
  .build();

// Three pairs: key, both sides and two headers (one without a value); then no
// key, a left side only (not UTF-8) and no headers; then an empty right side only.
const JOIN_BATCH = new Bytes()
  .u32(3)
  .s64(1_700_000_000_123).opt('k1').opt('{"qty": 2}').opt('[1]')
  .u32(2).blob('trace').opt([0, 255]).blob('empty').opt(null)
  .s64(-1).opt(null).opt([0xff]).opt(null).u32(0)
  .s64(2n ** 53n).opt('k3').opt(null).opt('').u32(0)
  .build();

/** Process events through the batch codec, as the host would call the component. */
const run = (processor, events) => decodeResults(processor.process(encodeEvents(events)));

/** Join pairs through the batch codec, as the host would call the component. */
const runJoin = (j, pairs) => decodeResults(j.join(encodePairs(pairs)));

/** The code of the Failure `fn` throws ('no failure' if none). */
const failureOf = (fn) => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof Failure);
    return err;
  }
  return { code: 'no failure' };
};

test('decodes events from hand-built bytes', () => {
  const [first, second] = decodeEvents(EVENT_BATCH);
  assert.equal(first.timestamp, 1_700_000_000_123);
  assert.deepEqual([first.topic, first.partition, first.offset], ['orders', 3, 42]);
  assert.equal(str(first.key), 'k1');
  assert.equal(first.valueStr(), '{"level": "ERROR"}');
  assert.deepEqual(first.json(), { level: 'ERROR' });
  assert.deepEqual(first.headers.map(([n, v]) => [n, v && [...v]]), [['trace', [0, 255]], ['empty', null]]);
  assert.deepEqual([...first.header('trace')], [0, 255]);
  assert.equal(first.header('missing'), null);
  assert.deepEqual([second.timestamp, second.topic, second.offset], [-1, 'tōpic', 2 ** 53]);
  assert.equal(second.key, null);
  assert.equal(second.value, null);
  assert.equal(second.valueStr(), null);
  assert.deepEqual(second.headers, []);
});

test('payloads are views of the batch, not copies', () => {
  const batch = EVENT_BATCH.slice();
  const [event] = decodeEvents(batch);
  assert.equal(event.key.buffer, batch.buffer);
});

test('encodeEvents round-trips the hand-built batch', () => {
  assert.deepEqual(encodeEvents(decodeEvents(EVENT_BATCH)), EVENT_BATCH);
});

test('malformed batches throw', () => {
  assert.throws(() => decodeEvents(EVENT_BATCH.subarray(0, EVENT_BATCH.length - 3)), RangeError);
  const trailing = new Uint8Array(EVENT_BATCH.length + 1);
  trailing.set(EVENT_BATCH);
  assert.throws(() => decodeEvents(trailing), /trailing/);
});

test('value helpers fail with typed codes', () => {
  const code = (fn) => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof Failure);
      return err.code;
    }
    return 'no failure';
  };
  assert.equal(code(() => new Event({ value: Uint8Array.of(0xff) }).valueStr()), 'invalid-utf8');
  assert.equal(code(() => new Event({ value: Uint8Array.of(0xff) }).json()), 'invalid-json');
  assert.equal(code(() => new Event({ value: '{nope' }).json()), 'invalid-json');
  assert.equal(code(() => new Event().json()), 'invalid-json');
});

test('encodes results to the documented layout', () => {
  const results = [
    [
      new Output({ key: 'k', value: Uint8Array.of(118), headers: [['h', 'x'], ['n', null]] }),
      new Output({ timestamp: -5, route: 'errors' }),
    ],
    [],
    new Failure('invalid-json', 'bad ☃'),
  ];
  const expected = new Bytes()
    .u32(3)
    .u8(0).u32(2)
    .u8(0).opt('k').opt('v').u32(2).blob('h').opt('x').blob('n').opt(null)
    .u8(3).s64(-5).opt(null).opt(null).u32(0).blob('errors')
    .u8(0).u32(0)
    .u8(1).blob('invalid-json').blob('bad ☃')
    .build();
  assert.deepEqual(encodeResults(results), expected);
});

test('results round-trip', () => {
  const [outputs, failure] = decodeResults(
    encodeResults([[new Output({ key: 'a', value: 'b', headers: { h: 'v' }, timestamp: 7 })], new Failure('x', 'y')]),
  );
  assert.deepEqual(outputs, [new Output({ key: 'a', value: 'b', headers: [['h', 'v']], timestamp: 7n })]);
  assert.deepEqual([failure.code, failure.message], ['x', 'y']);
});

test('outputs that keep their input key and headers read them from the events; unknown flags throw', () => {
  const events = decodeEvents(EVENT_BATCH);
  // One result per event: the first keeps its event's key and headers
  // (flags 4 and 8), the second has no outputs.
  const kept = new Bytes().u32(2).u8(0).u32(1).u8(0x0c).opt('v').u8(0).u32(0).build();
  const [outputs, none] = decodeResults(kept, events);
  assert.deepEqual(outputs, [new Output({ key: events[0].key, value: 'v', headers: events[0].headers })]);
  assert.deepEqual(none, []);
  assert.throws(() => decodeResults(kept), /keeps its input's key or headers/);
  assert.throws(() => decodeResults(new Bytes().u32(1).u8(0).u32(1).u8(0x10).build()), /unknown flags 0x10/);
});

test('filter forwards kept events unchanged and fails per event', () => {
  const processor = filter((event) => event.json().level === 'ERROR');
  const results = run(processor, [
    new Event({ key: 'k', value: '{"level":"ERROR"}', headers: [['h', 'v'], ['h', null]], timestamp: 9 }),
    new Event({ value: '{"level":"INFO"}' }),
    new Event({ value: 'nope' }),
    new Event({ value: 'null' }),
  ]);
  assert.deepEqual(results[0], [new Output({ key: 'k', value: '{"level":"ERROR"}', headers: [['h', 'v'], ['h', null]] })]);
  assert.deepEqual(results[1], []);
  assert.equal(results[2].code, 'invalid-json');
  assert.equal(results[3].code, 'exception'); // null.level throws a TypeError
  assert.match(results[3].message, /^TypeError/);
});

test('map gives one output, or none for null', () => {
  const processor = map((event) =>
    event.value === null ? null : new Output({ key: event.key, value: event.valueStr().toUpperCase(), timestamp: event.timestamp + 1, route: 'up' }),
  );
  assert.deepEqual(run(processor, [new Event({ key: 'a', value: 'x', timestamp: 1 }), new Event()]), [
    [new Output({ key: 'a', value: 'X', timestamp: 2, route: 'up' })],
    [],
  ]);
  const wrong = run(map(() => 'not an output'), [new Event()]);
  assert.equal(wrong[0].code, 'exception');
});

test('flatMap takes generators; a failure midway discards partial outputs', () => {
  const split = flatMap(function* (event) {
    for (const part of event.valueStr().split(',')) yield new Output({ key: part, value: part });
  });
  assert.deepEqual(run(split, [new Event({ value: 'a,b' })])[0].map((o) => str(o.value)), ['a', 'b']);
  const explode = flatMap(function* () {
    yield new Output({ value: 'first' });
    throw new Failure('boom', 'after one output');
  });
  assert.deepEqual(
    run(explode, [new Event(), new Event()]).map((f) => [f.code, f.message]),
    [['boom', 'after one output'], ['boom', 'after one output']],
  );
});

test('non-Error throws become code exception', () => {
  const results = run(map(() => { throw 'plain string'; }), [new Event()]);
  assert.deepEqual([results[0].code, results[0].message], ['exception', 'plain string']);
});

test('aggregate folds, merges and emits', () => {
  const sum = aggregate({
    init: () => '0',
    add(acc, event) {
      if (event.valueStr() === 'bad') throw new Failure('not-a-number', 'bad');
      const n = Number(event.valueStr());
      if (Number.isNaN(n)) throw new Error('NaN');
      return String(Number(str(acc)) + n);
    },
    merge: (a, b) => {
      if (a.length === 0) throw new Error('empty');
      return String(Number(str(a)) + Number(str(b)));
    },
    emit(key, acc, window) {
      if (str(acc) === '-1') throw new Failure('negative', 'no');
      return [new Output({ value: str(acc) + (window ? `@${window.start}-${window.end}` : '') })];
    },
  });

  const [fresh, existing] = sum.add([
    { key: enc.encode('k'), window: undefined, acc: undefined, events: encodeEvents([new Event({ value: '2' }), new Event({ value: 'bad' })]) },
    { key: undefined, window: { start: 0n, end: 10n }, acc: enc.encode('10'), events: encodeEvents([new Event({ value: 'x' }), new Event({ value: '5' })]) },
  ]);
  assert.equal(str(fresh.acc), '2');
  assert.deepEqual(fresh.failures, [[1, { code: 'not-a-number', message: 'bad' }]]);
  assert.equal(str(existing.acc), '15');
  assert.deepEqual(existing.failures.map(([i, f]) => [i, f.code]), [[0, 'exception']]);

  assert.deepEqual(sum.merge(undefined, enc.encode('2'), enc.encode('40')), { tag: 'ok', val: enc.encode('42') });
  assert.equal(sum.merge(undefined, new Uint8Array(0), enc.encode('1')).val.code, 'exception');

  const results = decodeResults(
    sum.emit([
      { key: enc.encode('k'), window: undefined, acc: enc.encode('7') },
      { key: undefined, window: undefined, acc: enc.encode('-1') },
      { key: undefined, window: { start: 0n, end: 10n }, acc: enc.encode('1') },
    ]),
  );
  assert.deepEqual(results[0], [new Output({ value: '7' })]);
  assert.equal(results[1].code, 'negative');
  assert.deepEqual(results[2], [new Output({ value: '1@0-10' })]);
});

test('subtract takes events out; a failed one leaves the accumulator as it was', () => {
  const stock = {
    init: () => '0',
    add: (acc, event) => String(Number(str(acc)) + Number(event.valueStr())),
    subtract(acc, event) {
      const n = Number(event.valueStr());
      if (Number.isNaN(n)) throw new Error('NaN');
      const left = Number(str(acc)) - n;
      if (left < 0) throw new Failure('negative', `${str(acc)} - ${n} is below zero`);
      return String(left);
    },
    merge: (a, b) => String(Number(str(a)) + Number(str(b))),
    emit: (key, acc) => [new Output({ value: acc })],
  };
  const subtractor = subtract(stock);
  const values = (...vs) => encodeEvents(vs.map((value) => new Event({ value })));

  // 10 - 3 = 7; "x" is not a number; 7 - 8 would be negative; 7 - 4 = 3.
  const [taken, fresh] = subtractor.subtract([
    { key: enc.encode('k'), window: { start: 0n, end: 10n }, acc: enc.encode('10'), events: values('3', 'x', '8', '4') },
    { key: undefined, window: undefined, acc: undefined, events: values('1') },
  ]);
  assert.equal(str(taken.acc), '3');
  assert.deepEqual(taken.failures.map(([i, f]) => [i, f.code]), [[1, 'exception'], [2, 'negative']]);
  assert.equal(taken.failures[1][1].message, '7 - 8 is below zero');
  // Without an accumulator (the host always sends one), init() is the start.
  assert.equal(str(fresh.acc), '0');
  assert.deepEqual(fresh.failures.map(([i, f]) => [i, f.code]), [[0, 'negative']]);

  // The inverse of add, on the same spec.
  const [added] = aggregate(stock).add([{ acc: enc.encode('1'), events: values('4', '5') }]);
  const [back] = subtractor.subtract([{ acc: added.acc, events: values('5', '4') }]);
  assert.deepEqual([str(back.acc), back.failures], ['1', []]);
});

test('subtract calls the spec as this, so a class instance works', () => {
  class Count {
    constructor() {
      this.step = 1;
    }
    init() {
      return '0';
    }
    subtract(acc) {
      return String(Number(str(acc)) - this.step);
    }
  }
  const [folded] = subtract(new Count()).subtract([{ acc: enc.encode('5'), events: encodeEvents([new Event()]) }]);
  assert.equal(str(folded.acc), '4');
});

test('subtract rejects a spec without subtract', () => {
  assert.throws(() => subtract({ init: () => '', add: () => '' }), /lacks subtract/);
});

test('aggregate rejects an incomplete spec', () => {
  assert.throws(() => aggregate({ init: () => '' }), /lacks add/);
});

test('decodes pairs from hand-built bytes', () => {
  const [both, leftOnly, rightOnly] = decodePairs(JOIN_BATCH);
  assert.equal(both.timestamp, 1_700_000_000_123);
  assert.deepEqual([str(both.key), str(both.left), str(both.right)], ['k1', '{"qty": 2}', '[1]']);
  assert.deepEqual(both.headers.map(([n, v]) => [n, v && [...v]]), [['trace', [0, 255]], ['empty', null]]);
  assert.deepEqual([...both.header('trace')], [0, 255]);
  assert.equal(both.header('missing'), null);
  assert.equal(leftOnly.timestamp, -1);
  assert.equal(leftOnly.key, null);
  assert.deepEqual([...leftOnly.left], [0xff]);
  assert.equal(leftOnly.right, null);
  assert.deepEqual(leftOnly.headers, []);
  assert.equal(rightOnly.timestamp, 2 ** 53);
  assert.equal(rightOnly.left, null);
  assert.equal(rightOnly.right.length, 0); // present but empty is not absent
  assert.ok(both instanceof Pair);
});

test('pair payloads are views of the batch; encodePairs round-trips; malformed batches throw', () => {
  const batch = JOIN_BATCH.slice();
  const [pair] = decodePairs(batch);
  assert.equal(pair.left.buffer, batch.buffer);
  assert.deepEqual(encodePairs(decodePairs(JOIN_BATCH)), JOIN_BATCH);
  assert.deepEqual(decodePairs(new Bytes().u32(0).build()), []);
  assert.throws(() => decodePairs(JOIN_BATCH.subarray(0, JOIN_BATCH.length - 3)), RangeError);
  const trailing = new Uint8Array(JOIN_BATCH.length + 1);
  trailing.set(JOIN_BATCH);
  assert.throws(() => decodePairs(trailing), /trailing/);
});

test('pair helpers decode and fail with typed codes', () => {
  const [both, leftOnly, rightOnly] = decodePairs(JOIN_BATCH);
  assert.deepEqual([both.keyStr(), both.leftStr(), both.rightStr()], ['k1', '{"qty": 2}', '[1]']);
  assert.deepEqual([both.leftJson(), both.rightJson()], [{ qty: 2 }, [1]]);
  assert.equal(leftOnly.keyStr(), null);
  assert.equal(leftOnly.rightStr(), null);
  assert.equal(failureOf(() => leftOnly.leftStr()).code, 'invalid-utf8');
  const notUtf8 = failureOf(() => leftOnly.leftJson());
  assert.deepEqual([notUtf8.code, notUtf8.message], ['invalid-json', 'left is not UTF-8']);
  const absent = failureOf(() => leftOnly.rightJson());
  assert.deepEqual([absent.code, absent.message], ['invalid-json', 'right is absent']);
  assert.equal(failureOf(() => rightOnly.leftJson()).code, 'invalid-json');
  assert.equal(failureOf(() => rightOnly.rightJson()).code, 'invalid-json'); // empty
  assert.equal(failureOf(() => new Pair({ right: '{nope' }).rightJson()).code, 'invalid-json');
  const made = new Pair({ key: 'k', left: 'l', right: Uint8Array.of(114), headers: { h: 'v' }, timestamp: 5 });
  assert.deepEqual([made.keyStr(), made.leftStr(), made.rightStr(), str(made.header('h')), made.timestamp], ['k', 'l', 'r', 'v', 5]);
  assert.deepEqual([new Pair().left, new Pair().right, new Pair().headers], [null, null, []]);
  assert.throws(() => new Pair({ left: 3 }), TypeError);
});

test('a byte order mark is data, not stripped (as in the Rust and Python SDKs)', () => {
  const bom = Uint8Array.of(0xef, 0xbb, 0xbf, 0x7b, 0x7d); // BOM then {}
  assert.equal(new Event({ value: bom }).valueStr(), '\ufeff{}');
  assert.equal(failureOf(() => new Event({ value: bom }).json()).code, 'invalid-json');
  assert.equal(failureOf(() => new Pair({ left: bom }).leftJson()).code, 'invalid-json');
});

test('join gives an output, none for null, or a list', () => {
  const j = join((pair) => {
    if (pair.left === null && pair.right === null) return null;
    if (pair.right === null) return new Output({ value: pair.left, headers: pair.headers, timestamp: pair.timestamp + 1 });
    return [new Output({ value: pair.leftJson().a }), new Output({ key: 'r', value: pair.right, route: 'both' })];
  });
  assert.deepEqual(
    runJoin(j, [
      new Pair({ key: 'k', left: 'L', headers: [['h', 'v']], timestamp: 1 }),
      new Pair({ key: 'k' }),
      new Pair({ left: '{"a":"x"}', right: 'R' }),
    ]),
    [
      [new Output({ value: 'L', headers: [['h', 'v']], timestamp: 2 })],
      [],
      [new Output({ value: 'x' }), new Output({ key: 'r', value: 'R', route: 'both' })],
    ],
  );
  const undef = join(() => undefined);
  assert.deepEqual(runJoin(undef, [new Pair()]), [[]]);
});

test('join takes generators', () => {
  const sides = join(function* (pair) {
    for (const side of [pair.left, pair.right]) if (side !== null) yield new Output({ value: side });
  });
  assert.deepEqual(runJoin(sides, [new Pair({ left: 'l', right: 'r' })])[0].map((o) => str(o.value)), ['l', 'r']);
});

test('join failures are per pair', () => {
  const strict = join((pair) => {
    if (pair.keyStr() === 'boom') throw new Failure('boom', 'on purpose');
    return new Output({ value: String(pair.leftJson().n + pair.rightJson().n) });
  });
  const results = runJoin(strict, [
    new Pair({ left: '{"n":1}', right: '{"n":2}' }),
    new Pair({ left: 'nope', right: '{"n":2}' }),
    new Pair({ left: '{"n":1}' }), // absent right side
    new Pair({ key: 'boom' }),
    new Pair({ left: 'null', right: 'null' }),
    new Pair({ left: '{"n":3}', right: '{"n":4}' }),
  ]);
  assert.deepEqual(results[0], [new Output({ value: '3' })]);
  assert.deepEqual(results.slice(1, 5).map((r) => r.code), ['invalid-json', 'invalid-json', 'boom', 'exception']);
  assert.equal(results[3].message, 'on purpose');
  assert.match(results[4].message, /^TypeError/);
  assert.deepEqual(results[5], [new Output({ value: '7' })]);
  for (const wrong of ['not an output', 3, [new Output(), 'x']]) {
    assert.equal(runJoin(join(() => wrong), [new Pair()])[0].code, 'exception');
  }
});
