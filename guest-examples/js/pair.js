/** pair: both sides of a join in one JSON object, {"left": L, "right": R} (see SPEC.md). */
import { join, Output } from '../../sdk/js/weir-sdk.js';

const encoder = new TextEncoder();
const OPEN = encoder.encode('{"left":');
const MIDDLE = encoder.encode(',"right":');
const CLOSE = encoder.encode('}');
const NULL = encoder.encode('null');

/** The side's value bytes as given (after checking they are JSON), or `null` when absent. */
function side(value, check) {
  if (value === null) return NULL;
  check(); // not UTF-8 or not JSON fails with `invalid-json`
  return value;
}

/** The byte arrays `parts` joined end to end. */
function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

export const joiner = join((pair) => {
  const left = side(pair.left, () => pair.leftJson());
  const right = side(pair.right, () => pair.rightJson());
  return new Output({ value: concat(OPEN, left, MIDDLE, right, CLOSE) });
});
