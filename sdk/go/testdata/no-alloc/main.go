// no-alloc: a MapValue operator whose function allocates nothing (it copies
// the value into the result buffer), so on header-less events an export
// makes no allocation of its own and the collector never starts one.
// sdk/go/test.sh runs batches through it that add up to more than the memory
// cap: the batch buffers, which the host allocates between exports, must
// still be collected. The value "stats" reports what the instance saw and
// its heap (HeapSys: the most it ever held).
package main

import (
	"fmt"
	"runtime"

	"weir.dev/sdk/go/weir"
)

// seen counts the events this instance has processed: a trap replaces the
// instance, and the host replays the batch on the new one, so a count
// smaller than the number of events sent is how a test sees a trap.
var seen int

var copyValue = weir.MapValue(func(e *weir.Event, dst []byte) ([]byte, error) {
	seen++
	if string(e.Value) != "stats" {
		return append(dst, e.Value...), nil
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return fmt.Appendf(dst, "seen %d, heap %d MiB, sys %d MiB, gc %d", seen, ms.HeapSys>>20, ms.Sys>>20, ms.NumGC), nil
})

func main() {}
