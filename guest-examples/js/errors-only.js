/** errors-only: forward the events whose JSON value has "level": "ERROR" (see SPEC.md). */
import { filter } from '../../sdk/js/weir-sdk.js';

export const processor = filter((event) => {
  const doc = event.json(); // absent, non-UTF-8 or non-JSON values fail with `invalid-json`
  return doc !== null && typeof doc === 'object' && !Array.isArray(doc) && doc.level === 'ERROR';
});
