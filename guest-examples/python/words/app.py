"""words: one output per word of the value, lower-cased and trimmed of punctuation (see SPEC.md)."""

import re
import string

import weir_sdk

# Unicode White_Space, spelled out so every language splits identically.
WHITESPACE = re.compile("[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")


@weir_sdk.flat_map
def words(event: weir_sdk.Event):
    text = event.value_str()  # invalid UTF-8 fails with `invalid-utf8`
    if text is None:
        return
    for piece in WHITESPACE.split(text):
        word = piece.lower().strip(string.punctuation)
        if word:
            yield weir_sdk.Output(key=word, value=word)
