// probe-agg: an aggregator with every optional part (world
// aggregate-with-migrate-and-subtract), whose accumulator is JSON, to check
// the canonical-ABI glue of add, subtract, merge, emit and migrate
// (sdk/go/testdata/abi_check.mjs calls each export through jco). Its Init
// panics for the key "no-init", which traps (sdk/go/test.sh).
package main

import (
	"encoding/binary"
	"strconv"
	"strings"

	"weir.dev/sdk/go/weir"
)

type stats struct {
	N   int   `json:"n"`
	Sum int64 `json:"sum"`
}

var probe = weir.Aggregate(weir.Aggregator[stats]{
	Init: func(key []byte) stats {
		if string(key) == "no-init" {
			panic("no initial accumulator for no-init")
		}
		if string(key) == "ten" {
			return stats{Sum: 10}
		}
		return stats{}
	},
	Add: func(s stats, e *weir.Event) (stats, error) {
		v, err := strconv.ParseInt(string(e.Value), 10, 64)
		if err != nil {
			return s, weir.Fail("not-a-number", "not an integer: "+string(e.Value))
		}
		if v == 13 {
			panic("unlucky")
		}
		return stats{N: s.N + 1, Sum: s.Sum + v}, nil
	},
	Subtract: func(s stats, e *weir.Event) (stats, error) {
		v, _ := strconv.ParseInt(string(e.Value), 10, 64)
		if s.N == 0 {
			return s, weir.Fail("negative-count", "nothing to subtract")
		}
		return stats{N: s.N - 1, Sum: s.Sum - v}, nil
	},
	Merge: func(key []byte, a, b stats) (stats, error) {
		if string(key) == "refuse" {
			return a, weir.Fail("no-merge", "refused to merge")
		}
		return stats{N: a.N + b.N, Sum: a.Sum + b.Sum}, nil
	},
	Emit: func(key []byte, s stats, w *weir.Window) ([]weir.Output, error) {
		if s.N == 0 {
			return nil, nil
		}
		v := "n=" + strconv.Itoa(s.N) + " sum=" + strconv.FormatInt(s.Sum, 10)
		if w != nil {
			v += " window=" + strconv.FormatInt(w.Start, 10) + ".." + strconv.FormatInt(w.End, 10)
		}
		if key == nil {
			v += " no key"
		}
		return []weir.Output{{Value: []byte(v)}}, nil
	},
	Migrate: func(previous string, key, old []byte) (stats, error) {
		if !strings.HasPrefix(previous, "count@") || len(old) != 8 {
			return stats{}, weir.Failf("unknown-version", "cannot read %s", previous)
		}
		return stats{N: int(binary.LittleEndian.Uint64(old))}, nil
	},
})

func main() {}
