package weir

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Codec turns an accumulator into the bytes the host stores, and back.
//
// When Decode returns an error or panics, the accumulator is bad: the
// events of its group, and a merge or emit of it, fail with code bad-state
// (BadStateFailure; a *Failure that Decode returns keeps its code), and its
// bytes are kept. When Encode returns an error or panics, the call traps: no
// one input is to blame, and the host isolates the inputs that cause it by
// replaying the batch in smaller parts.
type Codec[A any] interface {
	Encode(acc A) ([]byte, error)
	Decode(b []byte) (A, error)
}

// JSON is the Codec that stores an accumulator as its encoding/json text:
// Codec: weir.JSON[Stats]{}. It is the default.
type JSON[A any] struct{}

// Encode implements Codec.
func (JSON[A]) Encode(acc A) ([]byte, error) { return json.Marshal(acc) }

// Decode implements Codec.
func (JSON[A]) Decode(b []byte) (A, error) {
	var acc A
	err := json.Unmarshal(b, &acc)
	return acc, err
}

// Uint64LE is the Codec that stores a uint64 as 8 bytes, little-endian.
type Uint64LE struct{}

// Encode implements Codec.
func (Uint64LE) Encode(n uint64) ([]byte, error) {
	return binary.LittleEndian.AppendUint64(make([]byte, 0, 8), n), nil
}

// Decode implements Codec.
func (Uint64LE) Decode(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("a uint64 accumulator is 8 bytes, this one %d", len(b))
	}
	return binary.LittleEndian.Uint64(b), nil
}

// Raw is the Codec of an accumulator that is its bytes.
type Raw struct{}

// Encode implements Codec.
func (Raw) Encode(acc []byte) ([]byte, error) {
	if acc == nil {
		return []byte{}, nil
	}
	return acc, nil
}

// Decode implements Codec.
func (Raw) Decode(b []byte) ([]byte, error) { return b, nil }

// Aggregator describes a keyed aggregation with accumulators of type A. The
// host keeps one accumulator (A's encoding, by Codec) per key, and per
// window when the stage is windowed, and decides when to fold, merge and
// emit.
//
// Add, Subtract, Merge and Migrate return the new accumulator: an error
// (or a panic) fails that one event, request or accumulator and leaves the
// accumulator as it was. An accumulator that holds maps or slices is shared
// with the one passed in, so change it only once you know the event will
// not fail.
type Aggregator[A any] struct {
	// Codec stores accumulators; nil is JSON[A].
	Codec Codec[A]
	// Init is the initial accumulator of a key; nil is A's zero value. A
	// panic in Init traps the call (there is no accumulator to fold into).
	Init func(key []byte) A
	// Add folds one event into the accumulator. Required.
	Add func(acc A, e *Event) (A, error)
	// Merge merges two accumulators of one key (session windows merge when
	// a record bridges them); a is the earlier one. Required.
	Merge func(key []byte, a, b A) (A, error)
	// Emit turns an accumulator into outputs when the host emits it; w is
	// nil when the stage is not windowed. An output without a key gets the
	// accumulator's key. Required.
	Emit func(key []byte, acc A, w *Window) ([]Output, error)
	// Subtract takes one event back out (the inverse of Add; Kafka Streams'
	// subtractor, for table aggregations). Optional: build the module for
	// world aggregate-with-subtract when it is set.
	Subtract func(acc A, e *Event) (A, error)
	// Migrate reads an accumulator written by an earlier version of the
	// operator (previous names it, name@sha256:…) during a hot swap.
	// Optional: build the module for world aggregate-with-migrate (or
	// aggregate-with-migrate-and-subtract) when it is set.
	Migrate func(previous string, key []byte, acc []byte) (A, error)
}

// BadStateFailure is the code of the failure of an accumulator that its
// Codec cannot decode: "bad-state", as in the Rust SDK.
const BadStateFailure = "bad-state"

// EventFailure is the failure of one event of a group, by its index.
type EventFailure struct {
	Index   int
	Failure *Failure
}

// AggregateOperator is a registered aggregator (the aggregate worlds).
type AggregateOperator struct {
	fold    func(key, acc []byte, events []Event, subtract bool) ([]byte, []EventFailure)
	merge   func(key, a, b []byte) ([]byte, *Failure)
	emit    func(key, acc []byte, w *Window, rs *results)
	migrate func(previous string, key, acc []byte) ([]byte, *Failure)
	// Subtracts and Migrates say which optional exports the module needs,
	// hence its world (see World).
	Subtracts, Migrates bool
}

// Aggregate makes agg the module's operator (an aggregate world; see
// AggregateOperator.World). Call it once, from an init function or a
// package-level variable's initializer.
func Aggregate[A any](agg Aggregator[A]) *AggregateOperator {
	op := newAggregate(agg)
	register("Aggregate", nil, nil, op)
	return op
}

func newAggregate[A any](agg Aggregator[A]) *AggregateOperator {
	if agg.Add == nil || agg.Merge == nil || agg.Emit == nil {
		panic("weir: an Aggregator needs Add, Merge and Emit")
	}
	codec := agg.Codec
	if codec == nil {
		codec = JSON[A]{}
	}
	initial := func(key []byte) A {
		if agg.Init == nil {
			var zero A
			return zero
		}
		return agg.Init(key)
	}
	encode := func(acc A) []byte {
		b, err := codec.Encode(acc)
		if err != nil {
			// nothing to attribute it to: a bug in the operator
			panic(fmt.Sprintf("weir: cannot encode the accumulator: %v", err))
		}
		if b == nil {
			b = []byte{}
		}
		return b
	}
	decode := func(b []byte) (acc A, f *Failure) {
		defer func() {
			if v := recover(); v != nil {
				f = &Failure{Code: BadStateFailure, Message: fmt.Sprintf("cannot decode the accumulator (%d bytes): %s", len(b), panicked(v).Message)}
			}
		}()
		acc, err := codec.Decode(b)
		if err == nil {
			return acc, nil
		}
		if errors.As(err, &f) {
			return acc, f
		}
		return acc, &Failure{Code: BadStateFailure, Message: fmt.Sprintf("cannot decode the accumulator (%d bytes): %v", len(b), err)}
	}
	op := &AggregateOperator{Subtracts: agg.Subtract != nil, Migrates: agg.Migrate != nil}

	op.fold = func(key, accBytes []byte, events []Event, subtract bool) ([]byte, []EventFailure) {
		step := agg.Add
		if subtract {
			step = agg.Subtract
		}
		var failures []EventFailure
		failAll := func(f *Failure) []EventFailure {
			for i := range events {
				failures = append(failures, EventFailure{Index: i, Failure: f})
			}
			return failures
		}
		if step == nil {
			return accBytes, failAll(&Failure{Code: "unsupported", Message: "this aggregator has no Subtract"})
		}
		var acc A
		if accBytes == nil {
			// not guarded: a panic here traps, as in the Rust SDK (failing
			// the events would store the zero value as the key's accumulator)
			acc = initial(key)
		} else {
			var f *Failure
			if acc, f = decode(accBytes); f != nil {
				return accBytes, failAll(f)
			}
		}
		for i := range events {
			e := &events[i]
			var next A
			if f := guard(func() (err error) { next, err = step(acc, e); return err }); f != nil {
				failures = append(failures, EventFailure{Index: i, Failure: f})
				continue
			}
			acc = next
		}
		return encode(acc), failures
	}

	op.merge = func(key, a, b []byte) ([]byte, *Failure) {
		accA, f := decode(a)
		if f != nil {
			return nil, f
		}
		accB, f := decode(b)
		if f != nil {
			return nil, f
		}
		var merged A
		if f := guard(func() (err error) { merged, err = agg.Merge(key, accA, accB); return err }); f != nil {
			return nil, f
		}
		return encode(merged), nil
	}

	op.emit = func(key, accBytes []byte, w *Window, rs *results) {
		rs.open()
		defer rs.close()
		acc, f := decode(accBytes)
		if f != nil {
			rs.fail(f)
			return
		}
		var outs []Output
		if f := guard(func() (err error) { outs, err = agg.Emit(key, acc, w); return err }); f != nil {
			rs.fail(f)
			return
		}
		for i := range outs {
			rs.output(&outs[i], nil)
		}
	}

	op.migrate = func(previous string, key, accBytes []byte) ([]byte, *Failure) {
		if agg.Migrate == nil {
			return nil, &Failure{Code: "unsupported", Message: "this aggregator has no Migrate"}
		}
		var acc A
		if f := guard(func() (err error) { acc, err = agg.Migrate(previous, key, accBytes); return err }); f != nil {
			return nil, f
		}
		return encode(acc), nil
	}
	return op
}

// World is the world to build the module for: aggregate,
// aggregate-with-subtract, aggregate-with-migrate or
// aggregate-with-migrate-and-subtract.
func (op *AggregateOperator) World() string {
	switch {
	case op.Migrates && op.Subtracts:
		return "aggregate-with-migrate-and-subtract"
	case op.Migrates:
		return "aggregate-with-migrate"
	case op.Subtracts:
		return "aggregate-with-subtract"
	}
	return "aggregate"
}

// Fold folds events into acc (nil: the key's initial accumulator) and
// returns the new accumulator and the events that failed: what the `add`
// export does for one group, natively. The events go through the batch
// encoding, as in the host. What traps in wasm (a panic in Init, a Codec
// whose Encode fails) panics here.
func (op *AggregateOperator) Fold(key, acc []byte, events ...Event) ([]byte, []EventFailure) {
	return op.fold(key, acc, roundTrip(events), false)
}

// Unfold takes events back out of acc (the `subtract` export for one
// group), like Fold.
func (op *AggregateOperator) Unfold(key, acc []byte, events ...Event) ([]byte, []EventFailure) {
	return op.fold(key, acc, roundTrip(events), true)
}

// Merge merges two accumulators of key (the `merge` export).
func (op *AggregateOperator) Merge(key, a, b []byte) ([]byte, error) {
	merged, f := op.merge(key, a, b)
	if f != nil {
		return nil, f
	}
	return merged, nil
}

// Emit turns an accumulator into its result (the `emit` export for one
// request).
func (op *AggregateOperator) Emit(key, acc []byte, w *Window) Result {
	var rs results
	rs.begin(1, 64)
	op.emit(key, acc, w, &rs)
	decoded, err := DecodeResults(rs.w.buf, nil)
	if err != nil {
		panic(err) // the SDK wrote it
	}
	return decoded[0]
}

// Migrate converts an accumulator of the version previous (the `migrate`
// export).
func (op *AggregateOperator) Migrate(previous string, key, acc []byte) ([]byte, error) {
	migrated, f := op.migrate(previous, key, acc)
	if f != nil {
		return nil, f
	}
	return migrated, nil
}

func roundTrip(events []Event) []Event {
	decoded, err := DecodeEvents(EncodeEvents(events))
	if err != nil {
		panic(err) // the SDK wrote it
	}
	return decoded
}
