/** words: one output per word of the value, lower-cased and trimmed of punctuation (see SPEC.md). */
import { flatMap, Output } from '../../sdk/js/weir-sdk.js';

// Unicode White_Space, spelled out so every language splits identically.
const WHITESPACE = /[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;
const PUNCTUATION = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');

/** `s` without ASCII punctuation at either end. */
function trimPunctuation(s) {
  let start = 0;
  let end = s.length;
  while (start < end && PUNCTUATION.has(s[start])) start++;
  while (end > start && PUNCTUATION.has(s[end - 1])) end--;
  return s.slice(start, end);
}

export const processor = flatMap(function* (event) {
  const text = event.valueStr(); // invalid UTF-8 fails with `invalid-utf8`
  if (text === null) return;
  for (const piece of text.split(WHITESPACE)) {
    // Known gap: StarlingMonkey (no ICU) lacks Unicode's Final_Sigma rule, so a
    // word-final capital sigma lower-cases to σ here where Rust and Python give ς.
    const word = trimPunctuation(piece.toLowerCase());
    if (word) yield new Output({ key: word, value: word });
  }
});
