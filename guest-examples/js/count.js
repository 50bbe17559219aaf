/** count: the number of events per key (and window), as decimal text (see SPEC.md). */
import { aggregate, Failure, Output, subtract } from '../../sdk/js/weir-sdk.js';

/** The accumulator: the count as a u64, little-endian. */
const u64 = (n) => {
  const acc = new Uint8Array(8);
  new DataView(acc.buffer).setBigUint64(0, BigInt.asUintN(64, n), true);
  return acc;
};
const count = (acc) => new DataView(acc.buffer, acc.byteOffset, 8).getBigUint64(0, true);

const counter = {
  init: () => u64(0n),
  add: (acc) => u64(count(acc) + 1n),
  subtract: (acc) => {
    const n = count(acc);
    if (n === 0n) throw new Failure('negative-count', 'the count is 0: there is no event to subtract');
    return u64(n - 1n);
  },
  merge: (a, b) => u64(count(a) + count(b)),
  emit: (key, acc) => [new Output({ value: String(count(acc)) })],
};

export const aggregator = aggregate(counter);
export const subtractor = subtract(counter);
