// The codec against the golden vectors in sdk/abi/vectors (format:
// sdk/abi/README.md). Every vector round-trips byte for byte: decoding
// NAME.bin gives what NAME.json says, and encoding what it says gives NAME.bin.
// The one exception is an output that keeps its input's key or headers by
// flag: the JavaScript SDK always writes them, so such a vector is only decoded.
// Run with `node --test sdk/js`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  Event,
  Failure,
  Output,
  Pair,
  decodeEvents,
  decodePairs,
  decodeResults,
  encodeEvents,
  encodePairs,
  encodeResults,
} from './weir-sdk.js';

const VECTORS = join(dirname(fileURLToPath(import.meta.url)), '..', 'abi', 'vectors');
const utf8 = new TextEncoder();

/**
 * A vector's meaning, with its integers exact: JSON.parse would round s64
 * values beyond 2^53, so they become BigInts.
 */
function meaningOf(name) {
  const text = readFileSync(join(VECTORS, `${name}.json`), 'utf8');
  const exact = text.replace(/("(?:timestamp|partition|offset)"\s*:\s*)(-?\d+)/g, '$1"$2"');
  return JSON.parse(exact, (key, value) =>
    ['timestamp', 'partition', 'offset'].includes(key) && typeof value === 'string' ? BigInt(value) : value,
  );
}

function bytesOf(name) {
  return new Uint8Array(readFileSync(join(VECTORS, `${name}.bin`)));
}

/** Bytes as the JSON gives them: null, {utf8} or {hex}. */
function raw(b) {
  if (b === null) return null;
  if ('utf8' in b) return utf8.encode(b.utf8);
  return Uint8Array.from(b.hex.match(/../g) ?? [], (h) => parseInt(h, 16));
}

/** Bytes compared as hex, so a difference reads. */
const hex = (b) => (b === null ? null : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex'));
const rawHex = (b) => hex(raw(b));
const headersHex = (hs) => hs.map(([name, value]) => [name, hex(value)]);
const meaningHeaders = (hs) => hs.map((h) => [h.name, rawHex(h.value)]);
const headerList = (hs) => hs.map((h) => [h.name, raw(h.value)]);

const eventFields = (e) => [
  ...[e.timestamp, e.topic, e.partition, e.offset].map((x) => (typeof x === 'number' ? BigInt(x) : x)),
  ...[hex(e.key), hex(e.value), headersHex(e.headers)],
];
const eventMeaning = (m) => [
  ...[m.timestamp, m.topic, m.partition, m.offset],
  ...[rawHex(m.key), rawHex(m.value), meaningHeaders(m.headers)],
];
const pairFields = (p) => [BigInt(p.timestamp), hex(p.key), hex(p.left), hex(p.right), headersHex(p.headers)];
const pairMeaning = (m) => [m.timestamp, rawHex(m.key), rawHex(m.left), rawHex(m.right), meaningHeaders(m.headers)];

function resultFields(r) {
  if (r instanceof Failure) return ['failure', r.code, r.message];
  return r.map((o) => [hex(o.key), hex(o.value), headersHex(o.headers), o.timestamp, o.route]);
}

/** A result as decoded; a kept key or headers are `input`'s (an event's meaning). */
function resultMeaning(m, input) {
  if ('failure' in m) return ['failure', m.failure.code, m.failure.message];
  return m.outputs.map((o) => [
    o.key === 'input' ? input[4] : rawHex(o.key),
    rawHex(o.value),
    o.headers === 'input' ? input[6] : meaningHeaders(o.headers),
    o.timestamp,
    o.route,
  ]);
}

const keepsInput = (m) => 'outputs' in m && m.outputs.some((o) => o.key === 'input' || o.headers === 'input');

function toResult(m) {
  if ('failure' in m) return new Failure(m.failure.code, m.failure.message);
  return m.outputs.map(
    (o) =>
      new Output({
        key: raw(o.key),
        value: raw(o.value),
        headers: headerList(o.headers),
        timestamp: o.timestamp,
        route: o.route,
      }),
  );
}

const names = readdirSync(VECTORS)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -'.json'.length))
  .sort();

test('there are vectors of every kind', () => {
  assert.deepEqual(new Set(names.map((n) => meaningOf(n).kind)), new Set(['events', 'pairs', 'results']));
});

for (const name of names) {
  test(`vector ${name} round-trips byte for byte`, () => {
    const meaning = meaningOf(name);
    const bytes = bytesOf(name);
    if (meaning.kind === 'events') {
      assert.deepEqual(decodeEvents(bytes).map(eventFields), meaning.events.map(eventMeaning));
      const events = meaning.events.map(
        (m) =>
          new Event({
            key: raw(m.key),
            value: raw(m.value),
            headers: headerList(m.headers),
            // What decodeEvents gives: numbers.
            timestamp: Number(m.timestamp),
            topic: m.topic,
            partition: Number(m.partition),
            offset: Number(m.offset),
          }),
      );
      assert.equal(hex(encodeEvents(events)), hex(bytes));
    } else if (meaning.kind === 'pairs') {
      assert.deepEqual(decodePairs(bytes).map(pairFields), meaning.pairs.map(pairMeaning));
      const pairs = meaning.pairs.map(
        (m) =>
          new Pair({
            key: raw(m.key),
            left: raw(m.left),
            right: raw(m.right),
            headers: headerList(m.headers),
            timestamp: Number(m.timestamp),
          }),
      );
      assert.equal(hex(encodePairs(pairs)), hex(bytes));
    } else {
      assert.equal(meaning.kind, 'results');
      let inputs = [];
      let events;
      if (meaning.input !== null) {
        inputs = meaningOf(meaning.input).events.map(eventMeaning);
        events = decodeEvents(bytesOf(meaning.input));
      }
      assert.deepEqual(
        decodeResults(bytes, events).map(resultFields),
        meaning.results.map((m, i) => resultMeaning(m, inputs[i])),
      );
      if (!meaning.results.some(keepsInput)) {
        assert.equal(hex(encodeResults(meaning.results.map(toResult))), hex(bytes));
      }
    }
  });
}
