/**
 * Weir SDK for JavaScript: write a Weir stream operator in a few lines.
 *
 * A Weir operator is a WebAssembly component built with ComponentizeJS. The
 * component's source module exports the WIT interface object, which the
 * helpers here build from a plain function:
 *
 * ```js
 * import { filter } from './weir-sdk.js';
 *
 * export const processor = filter((event) => {
 *   const doc = event.json(); // throws Failure('invalid-json') for non-JSON values
 *   return doc !== null && typeof doc === 'object' && doc.level === 'ERROR';
 * });
 * ```
 *
 * {@link filter}, {@link map} and {@link flatMap} build the `processor`
 * export (world `process`); {@link aggregate} builds the `aggregator` export
 * (world `aggregate`), and {@link subtract} the `subtractor` export of an
 * aggregator that can take events back out (world `aggregate-with-subtract`);
 * {@link join} builds the `joiner` export (world `join`). Records: {@link Event} in (a joiner gets a {@link Pair}),
 * {@link Output} out; {@link Failure} reports a typed per-event failure.
 *
 * The codec implements the batch ABI of `wit/weir.wit`:
 *
 * ```text
 * event-batch  := u32 count, event{count}
 * event        := s64 timestamp, s32 partition, s64 offset, str topic,
 *                 opt-bytes key, opt-bytes value, headers
 * headers      := u32 count, (str name, opt-bytes value){count}
 * join-batch   := u32 count, pair{count}
 * pair         := s64 timestamp, opt-bytes key, opt-bytes left,
 *                 opt-bytes right, headers
 * result-batch := u32 count, result{count}
 * result       := u8 0, u32 n, output{n} | u8 1, str code, str message
 * output       := u8 flags, [s64 timestamp], opt-bytes key, opt-bytes value,
 *                 headers, [str route]
 * ```
 *
 * Integers are little-endian, `str`/`bytes` are `u32 len` then the bytes and
 * `opt-bytes` uses `len = 0xffffffff` for none. Decoding does not copy
 * payloads: keys, values and header values are views into the batch.
 *
 * Host services (log, config, metrics) are imported directly from the WIT
 * interfaces, e.g. `import { log } from 'weir:stream/log@0.1.0'`.
 *
 * @module weir-sdk
 */

const NONE = 0xffff_ffff;
const FLAG_TIMESTAMP = 1;
const FLAG_ROUTE = 2;
/** No key follows: the output keeps its input event's. */
const FLAG_INPUT_KEY = 4;
/** No headers follow: the output keeps its input event's. */
const FLAG_INPUT_HEADERS = 8;
const FLAGS = FLAG_TIMESTAMP | FLAG_ROUTE | FLAG_INPUT_KEY | FLAG_INPUT_HEADERS;

const encoder = new TextEncoder();
// `ignoreBOM` keeps a leading byte order mark as U+FEFF (TextDecoder strips it
// by default), so text and JSON read as in the Rust and Python SDKs: a value
// starting with a BOM is not JSON.
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Bytes as the SDK accepts them: a `Uint8Array` (or other typed array /
 * `ArrayBuffer`), or a string, encoded as UTF-8.
 * @typedef {Uint8Array | ArrayBufferView | ArrayBuffer | string} BytesLike
 */

/**
 * Headers as the SDK accepts them: `[name, value]` pairs, a `Map` or a plain
 * object; values are {@link BytesLike} or `null`.
 * @typedef {Iterable<[string, BytesLike | null]> | Map<string, BytesLike | null> | Record<string, BytesLike | null>} HeadersLike
 */

/**
 * A typed failure for one input event. Throw it from an operator to send the
 * event to the stage's error policy (fail, skip or dead-letter) while the rest
 * of the batch goes on. Any other thrown value becomes code `exception`.
 *
 * ```js
 * throw new Failure('invalid-json', 'value is not JSON');
 * ```
 */
export class Failure extends Error {
  /**
   * @param {string} code short machine-readable cause, e.g. `invalid-json`
   * @param {string} [message] what went wrong, for people
   */
  constructor(code, message = '') {
    super(message);
    this.name = 'Failure';
    /** @type {string} */
    this.code = code;
  }
}

/**
 * The failure reported for a value thrown by user code.
 * @param {unknown} err
 * @returns {Failure}
 */
function asFailure(err) {
  if (err instanceof Failure) return err;
  if (err instanceof Error) return new Failure('exception', `${err.name}: ${err.message}`);
  return new Failure('exception', String(err));
}

/**
 * @param {BytesLike | null | undefined} value
 * @param {string} what
 * @returns {Uint8Array | null}
 */
function toBytes(value, what) {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new TypeError(`${what} must be bytes, a string or null, not ${typeof value}`);
}

/**
 * @param {HeadersLike | null | undefined} headers
 * @returns {Array<[string, Uint8Array | null]>}
 */
function toHeaders(headers) {
  if (headers === null || headers === undefined) return [];
  if (typeof headers === 'string') throw new TypeError('headers must be pairs, a Map or an object, not a string');
  const pairs =
    typeof headers[Symbol.iterator] === 'function' ? headers : Object.entries(headers);
  const out = [];
  for (const [name, value] of pairs) {
    if (typeof name !== 'string') throw new TypeError(`header names must be strings, not ${typeof name}`);
    out.push([name, toBytes(value, `header ${JSON.stringify(name)}`)]);
  }
  return out;
}

/**
 * @param {Uint8Array | null} bytes
 * @param {string} what
 * @returns {string | null}
 */
function utf8OrFail(bytes, what) {
  if (bytes === null) return null;
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw new Failure('invalid-utf8', `${what} is not UTF-8`);
  }
}

/**
 * @param {Uint8Array | null} bytes
 * @param {string} what
 * @returns {unknown}
 * @throws {Failure} `invalid-json` if `bytes` is absent, not UTF-8 or not JSON
 */
function jsonOrFail(bytes, what) {
  if (bytes === null) throw new Failure('invalid-json', `${what} is absent`);
  let text;
  try {
    text = strictDecoder.decode(bytes);
  } catch {
    throw new Failure('invalid-json', `${what} is not UTF-8`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Failure('invalid-json', `${what} is not JSON: ${err.message}`);
  }
}

/**
 * One input record. `key`, `value` and header values are `Uint8Array` views
 * into the batch (or `null`); `timestamp` is milliseconds since the Unix
 * epoch; `topic`, `partition` and `offset` say where it was read from.
 *
 * The SDK makes events; constructing one directly is meant for unit tests
 * (strings are encoded as UTF-8):
 *
 * ```js
 * new Event({ key: 'k', value: '{"level":"ERROR"}', headers: { h: 'v' } })
 * ```
 */
export class Event {
  /**
   * @param {object} [fields]
   * @param {BytesLike | null} [fields.key]
   * @param {BytesLike | null} [fields.value]
   * @param {HeadersLike} [fields.headers]
   * @param {number} [fields.timestamp]
   * @param {string} [fields.topic]
   * @param {number} [fields.partition]
   * @param {number} [fields.offset]
   */
  constructor({ key = null, value = null, headers = [], timestamp = 0, topic = '', partition = 0, offset = 0 } = {}) {
    /** @type {Uint8Array | null} The record key, or `null`. */
    this.key = toBytes(key, 'key');
    /** @type {Uint8Array | null} The record value, or `null` (a tombstone). */
    this.value = toBytes(value, 'value');
    /** @type {Array<[string, Uint8Array | null]>} Headers in record order. */
    this.headers = toHeaders(headers);
    /** @type {number} Event time, ms since the Unix epoch. */
    this.timestamp = timestamp;
    /** @type {string} */
    this.topic = topic;
    /** @type {number} */
    this.partition = partition;
    /** @type {number} */
    this.offset = offset;
  }

  /**
   * The value of the first header called `name`, or `null`.
   * @param {string} name
   * @returns {Uint8Array | null}
   */
  header(name) {
    const found = this.headers.find(([n]) => n === name);
    return found ? found[1] : null;
  }

  /**
   * The key decoded as UTF-8, or `null` if absent.
   * @returns {string | null}
   * @throws {Failure} `invalid-utf8` if the key is not UTF-8
   */
  keyStr() {
    return utf8OrFail(this.key, 'key');
  }

  /**
   * The value decoded as UTF-8, or `null` if absent.
   * @returns {string | null}
   * @throws {Failure} `invalid-utf8` if the value is not UTF-8
   */
  valueStr() {
    return utf8OrFail(this.value, 'value');
  }

  /**
   * The value parsed as JSON.
   * @returns {unknown}
   * @throws {Failure} `invalid-json` if the value is absent, not UTF-8 or not JSON
   */
  json() {
    return jsonOrFail(this.value, 'value');
  }
}

/**
 * The two sides of one join result, for a joiner ({@link join}). `left` and `right`
 * are the two sides' values as `Uint8Array` views into the batch, or `null`
 * when that side has no record (in a left or outer join) or its record has no
 * value; `key` is the join key; `timestamp` (ms since the Unix epoch) is the
 * join result's, the default of its outputs; `headers` are those of the
 * record that caused the join.
 *
 * The SDK makes pairs; constructing one directly is meant for unit tests
 * (strings are encoded as UTF-8):
 *
 * ```js
 * new Pair({ key: 'k', left: '{"qty":2}', right: null, timestamp: 5 })
 * ```
 */
export class Pair {
  /**
   * @param {object} [fields]
   * @param {BytesLike | null} [fields.key]
   * @param {BytesLike | null} [fields.left]
   * @param {BytesLike | null} [fields.right]
   * @param {HeadersLike} [fields.headers]
   * @param {number} [fields.timestamp]
   */
  constructor({ key = null, left = null, right = null, headers = [], timestamp = 0 } = {}) {
    /** @type {Uint8Array | null} The join key, or `null`. */
    this.key = toBytes(key, 'key');
    /** @type {Uint8Array | null} The left side's value, or `null` if that side is absent. */
    this.left = toBytes(left, 'left');
    /** @type {Uint8Array | null} The right side's value, or `null` if that side is absent. */
    this.right = toBytes(right, 'right');
    /** @type {Array<[string, Uint8Array | null]>} Headers in record order. */
    this.headers = toHeaders(headers);
    /** @type {number} The join result's time, ms since the Unix epoch. */
    this.timestamp = timestamp;
  }

  /**
   * The value of the first header called `name`, or `null`.
   * @param {string} name
   * @returns {Uint8Array | null}
   */
  header(name) {
    const found = this.headers.find(([n]) => n === name);
    return found ? found[1] : null;
  }

  /**
   * The key decoded as UTF-8, or `null` if absent.
   * @returns {string | null}
   * @throws {Failure} `invalid-utf8` if the key is not UTF-8
   */
  keyStr() {
    return utf8OrFail(this.key, 'key');
  }

  /**
   * The left value decoded as UTF-8, or `null` if absent.
   * @returns {string | null}
   * @throws {Failure} `invalid-utf8` if it is not UTF-8
   */
  leftStr() {
    return utf8OrFail(this.left, 'left');
  }

  /**
   * The right value decoded as UTF-8, or `null` if absent.
   * @returns {string | null}
   * @throws {Failure} `invalid-utf8` if it is not UTF-8
   */
  rightStr() {
    return utf8OrFail(this.right, 'right');
  }

  /**
   * The left value parsed as JSON. Like {@link Event#json}, an absent side
   * fails: test `pair.left === null` first where it may be missing.
   * @returns {unknown}
   * @throws {Failure} `invalid-json` if it is absent, not UTF-8 or not JSON
   */
  leftJson() {
    return jsonOrFail(this.left, 'left');
  }

  /**
   * The right value parsed as JSON. Like {@link Event#json}, an absent side
   * fails: test `pair.right === null` first where it may be missing.
   * @returns {unknown}
   * @throws {Failure} `invalid-json` if it is absent, not UTF-8 or not JSON
   */
  rightJson() {
    return jsonOrFail(this.right, 'right');
  }
}

/**
 * A record an operator produces. `key`, `value` and header values are
 * {@link BytesLike} or `null`; `timestamp` (ms) defaults to the input
 * event's (a joiner's: the pair's); `route` names one of the stage's routes
 * and defaults to its next hop or default sink.
 */
export class Output {
  /**
   * @param {object} [fields]
   * @param {BytesLike | null} [fields.key]
   * @param {BytesLike | null} [fields.value]
   * @param {HeadersLike} [fields.headers]
   * @param {number | bigint | null} [fields.timestamp]
   * @param {string | null} [fields.route]
   */
  constructor({ key = null, value = null, headers = [], timestamp = null, route = null } = {}) {
    if (route !== null && typeof route !== 'string') throw new TypeError(`route must be a string or null, not ${typeof route}`);
    /** @type {Uint8Array | null} */
    this.key = toBytes(key, 'key');
    /** @type {Uint8Array | null} */
    this.value = toBytes(value, 'value');
    /** @type {Array<[string, Uint8Array | null]>} */
    this.headers = toHeaders(headers);
    /** @type {bigint | null} */
    this.timestamp = timestamp === null || timestamp === undefined ? null : BigInt(timestamp);
    /** @type {string | null} */
    this.route = route;
  }

  /**
   * An output with the event's key, value and headers (not copied).
   * @param {Event} event
   * @param {{ timestamp?: number | bigint | null, route?: string | null }} [options]
   * @returns {Output}
   */
  static forward(event, { timestamp = null, route = null } = {}) {
    const out = new Output({ timestamp, route });
    out.key = event.key;
    out.value = event.value;
    out.headers = event.headers.slice();
    return out;
  }
}

/** A cursor over a little-endian buffer. */
class Reader {
  /** @param {Uint8Array} bytes */
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  /** @param {number} n */
  need(n) {
    if (this.pos + n > this.bytes.byteLength) {
      throw new RangeError(`truncated batch: need ${n} bytes at offset ${this.pos}, have ${this.bytes.byteLength - this.pos}`);
    }
  }

  u8() {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }

  u32() {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  s32() {
    this.need(4);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  s64() {
    this.need(8);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** @param {number} n */
  take(n) {
    this.need(n);
    const v = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  str() {
    return strictDecoder.decode(this.take(this.u32()));
  }

  optBytes() {
    const n = this.u32();
    return n === NONE ? null : this.take(n);
  }

  headers() {
    const count = this.u32();
    const out = new Array(count);
    for (let i = 0; i < count; i++) out[i] = [this.str(), this.optBytes()];
    return out;
  }

  finish() {
    if (this.pos !== this.bytes.byteLength) {
      throw new RangeError(`${this.bytes.byteLength - this.pos} trailing bytes after the batch`);
    }
  }
}

/** Appends little-endian values to a growing buffer. */
class Writer {
  constructor(capacity = 256) {
    this.bytes = new Uint8Array(capacity);
    this.view = new DataView(this.bytes.buffer);
    this.len = 0;
  }

  /** @param {number} n */
  reserve(n) {
    if (this.len + n <= this.bytes.byteLength) return;
    let capacity = this.bytes.byteLength * 2;
    while (capacity < this.len + n) capacity *= 2;
    const bytes = new Uint8Array(capacity);
    bytes.set(this.bytes.subarray(0, this.len));
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer);
  }

  /** @param {number} v */
  u8(v) {
    this.reserve(1);
    this.view.setUint8(this.len++, v);
  }

  /** @param {number} v */
  u32(v) {
    this.reserve(4);
    this.view.setUint32(this.len, v, true);
    this.len += 4;
  }

  /** @param {number} v */
  s32(v) {
    this.reserve(4);
    this.view.setInt32(this.len, v, true);
    this.len += 4;
  }

  /** @param {bigint} v */
  s64(v) {
    this.reserve(8);
    this.view.setBigInt64(this.len, v, true);
    this.len += 8;
  }

  /** @param {Uint8Array} data */
  raw(data) {
    this.reserve(data.byteLength);
    this.bytes.set(data, this.len);
    this.len += data.byteLength;
  }

  /** @param {string} s */
  str(s) {
    const data = encoder.encode(s);
    this.u32(data.byteLength);
    this.raw(data);
  }

  /** @param {Uint8Array | null} data */
  optBytes(data) {
    if (data === null) {
      this.u32(NONE);
    } else {
      this.u32(data.byteLength);
      this.raw(data);
    }
  }

  /** @param {Array<[string, Uint8Array | null]>} headers */
  headers(headers) {
    this.u32(headers.length);
    for (const [name, value] of headers) {
      this.str(name);
      this.optBytes(value);
    }
  }

  /** @param {Output} out */
  output(out) {
    if (!(out instanceof Output)) {
      throw new TypeError(`operators must produce Output objects, not ${out === null ? 'null' : typeof out}`);
    }
    this.u8((out.timestamp !== null ? FLAG_TIMESTAMP : 0) | (out.route !== null ? FLAG_ROUTE : 0));
    if (out.timestamp !== null) this.s64(out.timestamp);
    this.optBytes(out.key);
    this.optBytes(out.value);
    this.headers(out.headers);
    if (out.route !== null) this.str(out.route);
  }

  /**
   * Write `u8 0, u32 n, output{n}`; if iterating throws, nothing stays written.
   * @param {Iterable<Output>} outputs
   */
  outputs(outputs) {
    const start = this.len;
    this.u8(0);
    this.u32(0);
    let n = 0;
    try {
      for (const out of outputs) {
        this.output(out);
        n++;
      }
    } catch (err) {
      this.len = start;
      throw err;
    }
    this.view.setUint32(start + 1, n, true);
  }

  /** @param {Failure} failure */
  failure(failure) {
    this.u8(1);
    this.str(String(failure.code));
    this.str(String(failure.message));
  }

  /** The bytes written so far (a view, not a copy). */
  finish() {
    return this.bytes.subarray(0, this.len);
  }
}

/**
 * Decode an `event-batch` into events whose payloads view (not copy) `batch`.
 * @param {Uint8Array} batch
 * @returns {Event[]}
 * @throws {RangeError} if the batch is malformed
 */
export function decodeEvents(batch) {
  const r = new Reader(batch);
  const count = r.u32();
  const events = new Array(count);
  for (let i = 0; i < count; i++) {
    const e = Object.create(Event.prototype);
    e.timestamp = Number(r.s64());
    e.partition = r.s32();
    e.offset = Number(r.s64());
    e.topic = r.str();
    e.key = r.optBytes();
    e.value = r.optBytes();
    e.headers = r.headers();
    events[i] = e;
  }
  r.finish();
  return events;
}

/**
 * Decode a `join-batch` into pairs whose payloads view (not copy) `batch`.
 * @param {Uint8Array} batch
 * @returns {Pair[]}
 * @throws {RangeError} if the batch is malformed
 */
export function decodePairs(batch) {
  const r = new Reader(batch);
  const count = r.u32();
  const pairs = new Array(count);
  for (let i = 0; i < count; i++) {
    const p = Object.create(Pair.prototype);
    p.timestamp = Number(r.s64());
    p.key = r.optBytes();
    p.left = r.optBytes();
    p.right = r.optBytes();
    p.headers = r.headers();
    pairs[i] = p;
  }
  r.finish();
  return pairs;
}

/**
 * Encode pairs as a `join-batch` (for tests: what the host would send a joiner).
 * @param {Iterable<Pair>} pairs
 * @returns {Uint8Array}
 */
export function encodePairs(pairs) {
  const list = [...pairs];
  const w = new Writer();
  w.u32(list.length);
  for (const p of list) {
    w.s64(BigInt(p.timestamp));
    w.optBytes(p.key);
    w.optBytes(p.left);
    w.optBytes(p.right);
    w.headers(p.headers);
  }
  return w.finish();
}

/**
 * Encode events as an `event-batch` (for tests: what the host would send).
 * @param {Iterable<Event>} events
 * @returns {Uint8Array}
 */
export function encodeEvents(events) {
  const list = [...events];
  const w = new Writer();
  w.u32(list.length);
  for (const e of list) {
    w.s64(BigInt(e.timestamp));
    w.s32(e.partition);
    w.s64(BigInt(e.offset));
    w.str(e.topic);
    w.optBytes(e.key);
    w.optBytes(e.value);
    w.headers(e.headers);
  }
  return w.finish();
}

/**
 * The outcome for one input: its outputs, or a failure.
 * @typedef {Output[] | Failure} Result
 */

/**
 * Encode a `result-batch`: one {@link Result} per input event, in order.
 * @param {Iterable<Result>} results
 * @returns {Uint8Array}
 */
export function encodeResults(results) {
  const list = [...results];
  const w = new Writer();
  w.u32(list.length);
  for (const result of list) {
    if (result instanceof Failure) w.failure(result);
    else w.outputs(result);
  }
  return w.finish();
}

/**
 * Decode a `result-batch` (for tests).
 *
 * An output may keep its input event's key or headers instead of writing them
 * (flags 4 and 8, which the Rust SDK writes): they are taken from `events`,
 * the decoded `event-batch` the results answer. Without `events` such an
 * output throws, as do unknown flags.
 * @param {Uint8Array} batch
 * @param {Event[]} [events] the input events, for outputs that keep their key or headers
 * @returns {Result[]}
 * @throws {RangeError} if the batch is malformed
 */
export function decodeResults(batch, events) {
  const r = new Reader(batch);
  const count = r.u32();
  const results = [];
  for (let i = 0; i < count; i++) {
    const tag = r.u8();
    if (tag === 1) {
      results.push(new Failure(r.str(), r.str()));
    } else if (tag === 0) {
      const n = r.u32();
      const outputs = [];
      for (let j = 0; j < n; j++) {
        const at = r.pos;
        const flags = r.u8();
        if (flags & ~FLAGS) throw new RangeError(`output at offset ${at} has unknown flags 0x${flags.toString(16)}`);
        let event = null;
        if (flags & (FLAG_INPUT_KEY | FLAG_INPUT_HEADERS)) {
          event = events?.[i];
          if (!event) {
            throw new RangeError(`output at offset ${at} keeps its input's key or headers, but there is no input event ${i}`);
          }
        }
        const timestamp = flags & FLAG_TIMESTAMP ? r.s64() : null;
        const key = flags & FLAG_INPUT_KEY ? event.key : r.optBytes();
        const value = r.optBytes();
        const headers = flags & FLAG_INPUT_HEADERS ? event.headers.slice() : r.headers();
        const route = flags & FLAG_ROUTE ? r.str() : null;
        outputs.push(new Output({ key, value, headers, timestamp, route }));
      }
      results.push(outputs);
    } else {
      throw new RangeError(`unknown result tag ${tag}`);
    }
  }
  r.finish();
  return results;
}

/**
 * The `weir:stream/processor` interface object.
 * @typedef {object} Processor
 * @property {(events: Uint8Array) => Uint8Array} process
 *   Process an `event-batch`; returns the `result-batch`.
 */

/**
 * @param {(event: Event) => Iterable<Output>} outputsOf
 * @returns {Processor}
 */
function processor(outputsOf) {
  return {
    process(events) {
      return resultBatch(outputsOf, decodeEvents(events), events.byteLength);
    },
  };
}

/**
 * The `result-batch` for `records`: each one's outputs, or its failure.
 * @template T
 * @param {(record: T) => Iterable<Output>} outputsOf
 * @param {T[]} records
 * @param {number} sizeHint the input batch's size, a guess at the output's
 * @returns {Uint8Array}
 */
function resultBatch(outputsOf, records, sizeHint) {
  const w = new Writer(Math.max(256, sizeHint));
  w.u32(records.length);
  for (const record of records) {
    try {
      w.outputs(outputsOf(record));
    } catch (err) {
      w.failure(asFailure(err));
    }
  }
  return w.finish();
}

/**
 * A filter: keeps the events for which `keep(event)` is true, unchanged.
 * @param {(event: Event) => boolean} keep
 * @returns {Processor} export it as `processor`
 */
export function filter(keep) {
  return processor((event) => (keep(event) ? [Output.forward(event)] : []));
}

/**
 * A map: one output per event; `fn` may return `null` to drop the event.
 * @param {(event: Event) => Output | null | undefined} fn
 * @returns {Processor} export it as `processor`
 */
export function map(fn) {
  return processor((event) => {
    const out = fn(event);
    return out === null || out === undefined ? [] : [out];
  });
}

/**
 * A flat-map: zero or more outputs per event; `fn` returns an iterable (an
 * array, or a generator function's result).
 * @param {(event: Event) => Iterable<Output>} fn
 * @returns {Processor} export it as `processor`
 */
export function flatMap(fn) {
  return processor(fn);
}

/**
 * A time window, `[start, end)` in ms since the Unix epoch.
 * @typedef {{ start: number, end: number }} Window
 */

/**
 * What {@link aggregate} needs; accumulators are bytes the operator owns.
 * @typedef {object} AggregatorSpec
 * @property {() => BytesLike} init the initial accumulator
 * @property {(acc: Uint8Array, event: Event) => BytesLike} add fold one event in
 * @property {(a: Uint8Array, b: Uint8Array) => BytesLike} merge merge two (`a` is the earlier)
 * @property {(key: Uint8Array | null, acc: Uint8Array, window: Window | null) => Iterable<Output>} emit
 *   the outputs for an accumulator; an output without a key gets `key`
 * @property {(acc: Uint8Array, event: Event) => BytesLike} [subtract] take one event
 *   out, the inverse of `add` (Kafka Streams' subtractor); exported by {@link subtract}
 */

/**
 * A WIT `group`: a run of events of one key (and window) and its accumulator.
 * @typedef {{key?: Uint8Array, window?: {start: bigint, end: bigint}, acc?: Uint8Array, events: Uint8Array}} Group
 */

/**
 * A WIT `folded`: a group's accumulator after its events, and the failed ones.
 * @typedef {{acc: Uint8Array, failures: Array<[number, {code: string, message: string}]>}} Folded
 */

/**
 * The `weir:stream/aggregator` interface object, as ComponentizeJS expects it.
 * @typedef {object} Aggregator
 * @property {(groups: Group[]) => Folded[]} add
 * @property {(key: Uint8Array | undefined, a: Uint8Array, b: Uint8Array) => {tag: 'ok', val: Uint8Array} | {tag: 'err', val: {code: string, message: string}}} merge
 * @property {(requests: Array<{key?: Uint8Array, window?: {start: bigint, end: bigint}, acc: Uint8Array}>) => Uint8Array} emit
 */

/**
 * @param {BytesLike} acc
 * @param {string} what
 * @returns {Uint8Array}
 */
function accBytes(acc, what) {
  const bytes = toBytes(acc, what);
  if (bytes === null) throw new TypeError(`${what} must return bytes, not ${acc}`);
  return bytes;
}

/**
 * @param {{start: bigint, end: bigint} | undefined} window
 * @returns {Window | null}
 */
function toWindow(window) {
  return window === undefined || window === null ? null : { start: Number(window.start), end: Number(window.end) };
}

/**
 * Applies `spec[step]` (`add` or `subtract`) to each group's accumulator for
 * each of its events, in order. A group without an accumulator starts from
 * `init()`; a failed event leaves the accumulator as it was.
 * @param {AggregatorSpec} spec
 * @param {'add' | 'subtract'} step
 * @param {Group[]} groups
 * @returns {Folded[]}
 */
function foldGroups(spec, step, groups) {
  return groups.map((group) => {
    let acc = group.acc === undefined || group.acc === null ? accBytes(spec.init(), 'init') : group.acc;
    const failures = [];
    decodeEvents(group.events).forEach((event, index) => {
      try {
        acc = accBytes(spec[step](acc, event), step);
      } catch (err) {
        const f = asFailure(err);
        failures.push([index, { code: f.code, message: f.message }]);
      }
    });
    return { acc, failures };
  });
}

/**
 * A keyed aggregator from `init`, `add`, `merge` and `emit` (called with
 * `this` = `spec`, so a class instance works). Throwing in `add` fails that
 * event only (the accumulator is kept); throwing in `emit` fails that request
 * only. An error in `init` traps: there is no accumulator to return.
 * @param {AggregatorSpec} spec
 * @returns {Aggregator} export it as `aggregator`
 */
export function aggregate(spec) {
  for (const name of ['init', 'add', 'merge', 'emit']) {
    if (typeof spec[name] !== 'function') throw new TypeError(`aggregator lacks ${name}()`);
  }
  return {
    add(groups) {
      return foldGroups(spec, 'add', groups);
    },

    merge(key, a, b) {
      try {
        return { tag: 'ok', val: accBytes(spec.merge(a, b), 'merge') };
      } catch (err) {
        const f = asFailure(err);
        return { tag: 'err', val: { code: f.code, message: f.message } };
      }
    },

    emit(requests) {
      const w = new Writer();
      w.u32(requests.length);
      for (const { key, acc, window } of requests) {
        try {
          w.outputs(spec.emit(key ?? null, acc, toWindow(window)));
        } catch (err) {
          w.failure(asFailure(err));
        }
      }
      return w.finish();
    },
  };
}

/**
 * The `weir:stream/subtractor` interface object.
 * @typedef {object} Subtractor
 * @property {(groups: Group[]) => Folded[]} subtract
 *   Take each group's events out of its accumulator; one `folded` per group.
 */

/**
 * The subtractor of an aggregator whose spec has `subtract(acc, event)`, the
 * inverse of `add` (Kafka Streams' subtractor, for table aggregations). Export
 * it next to the aggregator of the same spec and build for world
 * `aggregate-with-subtract`:
 *
 * ```js
 * const count = { init, add, subtract, merge, emit };
 * export const aggregator = aggregate(count);
 * export const subtractor = subtract(count);
 * ```
 *
 * Throwing in `subtract` fails that event only (the accumulator is kept). The
 * host always sends an accumulator; without one, `init()` is the start.
 * @param {AggregatorSpec} spec
 * @returns {Subtractor} export it as `subtractor`
 */
export function subtract(spec) {
  for (const name of ['init', 'subtract']) {
    if (typeof spec[name] !== 'function') throw new TypeError(`aggregator lacks ${name}()`);
  }
  return {
    subtract(groups) {
      return foldGroups(spec, 'subtract', groups);
    },
  };
}

/**
 * The `weir:stream/joiner` interface object.
 * @typedef {object} Joiner
 * @property {(pairs: Uint8Array) => Uint8Array} join
 *   Join a `join-batch`; returns the `result-batch`.
 */

/**
 * A joiner: combines the two sides of each pair the host found. `fn` returns
 * an {@link Output}, `null` (no output), or an iterable of outputs (an array,
 * or a generator function's result). An output without a key gets the pair's
 * key, and one without a timestamp the pair's. Throwing fails that pair only.
 *
 * ```js
 * export const joiner = join((pair) => new Output({ value: pair.left }));
 * ```
 *
 * (Named like {@link aggregate}, for the verb: the export is the noun.)
 * @param {(pair: Pair) => Output | Iterable<Output> | null | undefined} fn
 * @returns {Joiner} export it as `joiner`
 */
export function join(fn) {
  const outputsOf = (pair) => {
    const out = fn(pair);
    if (out === null || out === undefined) return [];
    if (out instanceof Output) return [out];
    return out;
  };
  return {
    join(pairs) {
      return resultBatch(outputsOf, decodePairs(pairs), pairs.byteLength);
    },
  };
}
