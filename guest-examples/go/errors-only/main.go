// errors-only: forwards the events whose value is a JSON object with
// "level": "ERROR"; a value that is absent, not UTF-8 or not JSON fails with
// invalid-json (see guest-examples/SPEC.md).
package main

import "weir.dev/sdk/go/weir"

var errorsOnly = weir.Filter(func(e *weir.Event) (bool, error) {
	var doc any
	if err := e.JSON(&doc); err != nil {
		return false, err // invalid-json
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return false, nil
	}
	level, ok := obj["level"].(string)
	return ok && level == "ERROR", nil
})

func main() {}
