// pair: both sides of a join in one JSON object, {"left":L,"right":R}, each
// side's value bytes as given (null when that side is absent); a side that
// is present but not JSON fails with invalid-json (see
// guest-examples/SPEC.md).
package main

import "weir.dev/sdk/go/weir"

var pair = weir.Joiner(func(p *weir.Pair, out *weir.Emitter) error {
	left, err := side("left", p.Left)
	if err != nil {
		return err
	}
	right, err := side("right", p.Right)
	if err != nil {
		return err
	}
	v := make([]byte, 0, 20+len(left)+len(right))
	v = append(v, `{"left":`...)
	v = append(v, left...)
	v = append(v, `,"right":`...)
	v = append(v, right...)
	v = append(v, '}')
	out.Emit(weir.Output{Value: v})
	return nil
})

// side is a side's JSON as given, or null when the side is absent.
func side(name string, v []byte) ([]byte, error) {
	if v == nil {
		return []byte("null"), nil
	}
	if !weir.ValidJSON(v) {
		return nil, weir.Failf("invalid-json", "the %s side is not JSON", name)
	}
	return v, nil
}

func main() {}
