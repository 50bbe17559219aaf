// Package weir writes Weir stream operators in Go (stock Go, GOOS=wasip1).
//
// An operator is one function, registered once from an init function:
//
//	package main
//
//	import (
//		"bytes"
//
//		"weir.dev/sdk/go/weir"
//	)
//
//	func init() {
//		weir.Map(func(e *weir.Event) (weir.Output, error) {
//			out := weir.Forward(e) // key and headers kept
//			out.Value = bytes.ToUpper(e.Value)
//			return out, nil
//		})
//	}
//
//	func main() {}
//
// Built with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared into a core
// module, which `weir componentize` turns into a component (see
// sdk/go/build.sh and sdk/go/README.md). Built natively, every registered
// operator runs the whole batch path (op.Run, op.Process, op.Join, op.Fold,
// ...), so operators are unit-tested with plain `go test`.
//
// # Map of the package
//
//   - event.go: Event, Pair, Header — inputs, decoded from the batch buffer
//     without copying.
//   - output.go: Output, Forward, Result.
//   - failure.go: Failure, Fail, Failf; how errors and panics become failures.
//   - codec.go: the batch ABI of wit/weir.wit (event-batch, join-batch,
//     result-batch), tested against sdk/abi/vectors.
//   - register.go: the module's one operator, which the exports call.
//   - processor.go: Processor, Map, MapValue, Filter, FlatMap and the Emitter.
//   - join.go: Joiner.
//   - aggregate.go: Aggregate, Aggregator[A], accumulator codecs.
//   - host.go (+ host_wasip1.go, host_native.go): Log, Config, ConfigEntries,
//     CounterAdd.
//   - gc.go (+ gc_wasip1.go, gc_native.go): SetGCPercent; in wasm, the
//     collector's switch (off outside exports) and the collections the
//     host's allocations would have started.
//   - exports_wasip1.go: the canonical-ABI lowering of every Weir world's
//     exports (wasm only).
//   - alloc_wasip1.go: cabi_realloc, the host's allocations kept alive while
//     an export uses them (wasm only).
//   - adapter_wasip1.go: cabi_realloc_adapter, the WASI adapter's static
//     arena (wasm only).
//
// # Failures and panics
//
// A function that returns an error fails that one event (pair, group event,
// emit request): a *Failure keeps its code, any other error becomes code
// "error". A panic in the function is recovered and becomes code "panic"
// (a Rust operator's panic traps, and the host fails the event with code
// "panic" too). What traps the call: a panic in an aggregator's Init, a
// Codec whose Encode fails, and what Go cannot recover from — out of
// memory, stack overflow, a deadlock, os.Exit; the host then isolates the
// events that cause the trap by replaying the batch in smaller parts.
package weir
