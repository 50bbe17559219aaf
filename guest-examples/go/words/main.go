// words: one output per word of the value: split on whitespace,
// lower-cased, ASCII punctuation trimmed from both ends, empty pieces
// dropped; key = value = the word (see guest-examples/SPEC.md).
package main

import (
	"strings"
	"unicode/utf8"

	"weir.dev/sdk/go/weir"
)

const punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

var words = weir.FlatMap(func(e *weir.Event) ([]weir.Output, error) {
	if e.Value == nil {
		return nil, nil
	}
	if !utf8.Valid(e.Value) {
		return nil, weir.Fail("invalid-utf8", "the value is not UTF-8")
	}
	var outs []weir.Output
	for _, piece := range strings.Fields(string(e.Value)) {
		word := strings.Trim(strings.ToLower(piece), punctuation)
		if word == "" {
			continue
		}
		outs = append(outs, weir.Output{Key: []byte(word), Value: []byte(word)})
	}
	return outs, nil
})

func main() {}
