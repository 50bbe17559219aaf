// count: the number of events per key (and window), as decimal text; it
// also subtracts, so it can count a table's rows per group (world
// aggregate-with-subtract; see guest-examples/SPEC.md).
package main

import (
	"strconv"

	"weir.dev/sdk/go/weir"
)

var count = weir.Aggregate(weir.Aggregator[uint64]{
	// The accumulator: the count as a u64, little-endian; it starts at 0
	// (the zero value, so no Init).
	Codec: weir.Uint64LE{},
	Add: func(n uint64, _ *weir.Event) (uint64, error) {
		return n + 1, nil
	},
	Subtract: func(n uint64, _ *weir.Event) (uint64, error) {
		if n == 0 {
			return 0, weir.Fail("negative-count", "the count is 0: there is no event to subtract")
		}
		return n - 1, nil
	},
	Merge: func(_ []byte, a, b uint64) (uint64, error) {
		return a + b, nil
	},
	Emit: func(_ []byte, n uint64, _ *weir.Window) ([]weir.Output, error) {
		return []weir.Output{{Value: strconv.AppendUint(nil, n, 10)}}, nil
	},
})

func main() {}
