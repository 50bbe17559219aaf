//go:build wasip1

package weir

// The collector's switch. It is off outside exports and around the import
// call that returns data: the canonical ABI runs cabi_realloc with the
// instance's may_leave flag cleared, so realloc must not call an import, and
// Go's allocator calls WASI (the clock, the scheduler's poll) when it starts
// a collection — which would trap ("cannot leave component instance"). With
// the collector off, an allocation never starts one (nor, see collectorOff,
// returns memory inline, which reads the clock too). Every export turns it
// on for its duration, at the operator's setting (GOGC 100 unless it called
// SetGCPercent), and off again before it returns.
//
// Go on wasm has no background thread (sysmon) that would start a
// collection: one starts only in an allocation that finds the heap past the
// collector's goal. The host's allocations (the batch buffers), made with
// the collector off, never start one, so an operator that allocates nothing
// during its exports (a filter, a MapValue on events without headers) would
// never collect them, and the heap would grow until the memory cap traps.
// So each export starts with the collection those allocations would have
// started: once cabi_realloc has allocated reallocCheck bytes, the export
// compares the heap with the collector's goal and collects (runtime.GC) if
// it is past it. An operator that allocates collects on its own and stays
// under the goal, so this costs it nothing but a look at the heap per MiB
// of arguments; one that does not is collected as often as GOGC would
// collect it. The heap stays under the goal plus reallocCheck plus one
// batch.

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// gcPercent is the collector's setting during exports.
var gcPercent = collectorOff()

// inExport is true during an export call.
var inExport bool

// reallocBytes counts the bytes cabi_realloc allocated since the heap was
// last compared with the collector's goal.
var reallocBytes uint64

// reallocCheck is how many bytes cabi_realloc allocates between two looks
// at the heap: a look (runtime/metrics) takes microseconds, and 1 MiB is
// small next to the 4 MiB minimum heap goal.
const reallocCheck = 1 << 20

var (
	heapSamples = []metrics.Sample{
		{Name: "/gc/heap/goal:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
	}
	cycleSamples = []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
)

func setGCPercent(percent int) int {
	if inExport && percent >= 0 {
		gcPercent = percent
		return debug.SetGCPercent(percent)
	}
	// off (during an export), or outside exports (an init function), where
	// the collector stays off; it may be on if the operator called
	// debug.SetGCPercent
	prev := collectorOff()
	if prev == -1 && !inExport {
		prev = gcPercent
	}
	gcPercent = percent
	return prev
}

// gcOn turns the collector on for an export, at the operator's setting:
// if it changed the setting since (an init function calling
// debug.SetGCPercent), that is adopted. It then collects if the host's
// allocations have taken the heap past the collector's goal.
func gcOn() {
	if p := debug.SetGCPercent(gcPercent); p != -1 {
		gcPercent = p
		debug.SetGCPercent(p)
	}
	if reallocBytes < reallocCheck {
		return
	}
	reallocBytes = 0
	metrics.Read(heapSamples)
	if goal, heap := heapSamples[0].Value.Uint64(), heapSamples[1].Value.Uint64(); heap >= goal {
		runtime.GC()
	}
}

// gcOff turns the collector off at the end of an export, keeping the
// setting the operator may have changed during it.
func gcOff() {
	gcPercent = collectorOff()
}

// collectorOff turns the collector off and returns its setting. Turning it
// off waits for a cycle in progress to finish (debug.SetGCPercent(-1) does),
// and a cycle that finishes with the collector off leaves Go's pacer with
// an enormous last heap goal (the memory limit's, about 8 EiB). The
// scavenger sizes the memory it lets the heap keep by the ratio of the
// current goal to that one, so its target drops to zero while the
// collector is on, and to about the live heap when it is off again; a
// growth of the heap past it returns memory inline, reading the clock
// (nanotime) — an import, which in cabi_realloc traps ("cannot leave
// component instance"). So when a cycle finished while it was being turned
// off, collectorOff runs one more with the collector on, which gives the
// pacer a real last goal. (This is why an operator should turn the
// collector off with SetGCPercent(-1), not debug.SetGCPercent(-1).) Call
// it where an import may be called (not in cabi_realloc).
func collectorOff() int {
	metrics.Read(cycleSamples)
	before := cycleSamples[0].Value.Uint64()
	p := debug.SetGCPercent(-1)
	if p < 0 {
		return p // it was off: no cycle was in progress
	}
	metrics.Read(cycleSamples)
	if cycleSamples[0].Value.Uint64() != before {
		debug.SetGCPercent(p)
		runtime.GC()
		debug.SetGCPercent(-1)
	}
	return p
}

// gcOffOutsideExports is for cabi_realloc: outside an export it turns the
// collector off if an init function turned it on (debug.SetGCPercent),
// adopting that setting for exports. debug.SetGCPercent(-1) takes a lock,
// recomputes the pacing and returns, without calling an import, when no
// collection is in progress; one could be only if an init function turned
// the collector on and allocated past its goal (exports end with the
// collector off and no cycle in progress). During an export the collector
// is already off when the host calls cabi_realloc: the one import that
// returns data (config.entries) is called with it off.
func gcOffOutsideExports() {
	if inExport {
		return
	}
	if p := debug.SetGCPercent(-1); p != -1 {
		gcPercent = p
	}
}
