/** uppercase: the value upper-cased (ASCII), key and headers kept (see SPEC.md). */
import { map, Output } from '../../sdk/js/weir-sdk.js';

export const processor = map((event) => {
  const out = Output.forward(event);
  if (event.value !== null) {
    const upper = new Uint8Array(event.value);
    for (let i = 0; i < upper.length; i++) {
      const b = upper[i];
      if (b >= 0x61 && b <= 0x7a) upper[i] = b - 0x20; // ASCII a-z only
    }
    out.value = upper;
  }
  return out;
});
