// uppercase: the value upper-cased (ASCII a-z only), key and headers kept;
// an event without a value stays one (see guest-examples/SPEC.md).
package main

import "weir.dev/sdk/go/weir"

// The operator: MapValue appends the new value straight into the results,
// and the output keeps the event's key and headers without copying them.
var uppercase = weir.MapValue(func(e *weir.Event, dst []byte) ([]byte, error) {
	for _, c := range e.Value {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, nil
})

func main() {}
