package weir

import (
	"encoding/binary"
	"unsafe"
)

// Emitter collects the outputs of one input (an event or a pair). Use it
// only during the call it was passed to.
type Emitter struct {
	rs *results
	ev *Event // the input event of a processor, nil for a joiner
}

// Emit adds an output. Its bytes are copied at once, so the slices may be
// reused afterwards. If the function then returns an error, every output
// of that input is dropped and the input fails.
func (em *Emitter) Emit(o Output) {
	em.rs.output(&o, em.ev)
}

// ProcessOperator is a registered processor (world `process`).
type ProcessOperator struct {
	name string
	fn   func(*Event, *Emitter) error
	// valueFn is MapValue's function, which writes into the results directly
	valueFn func(*Event, []byte) ([]byte, error)
}

// Processor makes fn the module's operator (world `process`): called once
// per input event, in order, it emits zero or more outputs, or returns an
// error to fail the event (see Failure). Call it once, from an init
// function or a package-level variable's initializer.
func Processor(fn func(e *Event, out *Emitter) error) *ProcessOperator {
	op := &ProcessOperator{name: "Processor", fn: fn}
	register(op.name, op, nil, nil)
	return op
}

// Map registers a processor with one output per event: fn's. Return
// Forward(e) with fields changed to keep the rest of the event.
func Map(fn func(e *Event) (Output, error)) *ProcessOperator {
	op := &ProcessOperator{name: "Map", fn: func(e *Event, out *Emitter) error {
		o, err := fn(e)
		if err != nil {
			return err
		}
		out.Emit(o)
		return nil
	}}
	register(op.name, op, nil, nil)
	return op
}

// Filter registers a processor that forwards the events for which fn
// returns true, unchanged (key, value, headers), and drops the others.
func Filter(fn func(e *Event) (bool, error)) *ProcessOperator {
	op := &ProcessOperator{name: "Filter", fn: func(e *Event, out *Emitter) error {
		keep, err := fn(e)
		if err != nil {
			return err
		}
		if keep {
			out.Emit(Forward(e))
		}
		return nil
	}}
	register(op.name, op, nil, nil)
	return op
}

// FlatMap registers a processor with zero or more outputs per event.
func FlatMap(fn func(e *Event) ([]Output, error)) *ProcessOperator {
	op := &ProcessOperator{name: "FlatMap", fn: func(e *Event, out *Emitter) error {
		outs, err := fn(e)
		if err != nil {
			return err
		}
		for i := range outs {
			out.Emit(outs[i])
		}
		return nil
	}}
	register(op.name, op, nil, nil)
	return op
}

// MapValue registers a processor with one output per event: the event with
// a new value, which fn appends to dst and returns (as strconv.AppendInt
// does). dst is the free end of the result buffer, so appending within its
// capacity writes the value straight into the results without an
// allocation. Key and headers are kept; an event without a value (a
// tombstone) is forwarded as it is without calling fn. The new value is
// always present: nil or empty from fn is an empty value, as with the Rust
// SDK's map_value (Map makes an absent one).
func MapValue(fn func(e *Event, dst []byte) ([]byte, error)) *ProcessOperator {
	op := &ProcessOperator{name: "MapValue", valueFn: fn}
	register(op.name, op, nil, nil)
	return op
}

// Process runs the operator over an encoded event-batch and returns the
// encoded result-batch: what the `process` export does, natively.
func (op *ProcessOperator) Process(batch []byte) ([]byte, error) {
	var rs results
	if err := op.process(batch, &rs, nil); err != nil {
		return nil, err
	}
	return rs.w.buf, nil
}

// Run runs the operator over events (through the batch encoding, as in the
// host) and returns their results; an output that keeps its event's key or
// headers carries them.
func (op *ProcessOperator) Run(events ...Event) ([]Result, error) {
	batch := EncodeEvents(events)
	out, err := op.Process(batch)
	if err != nil {
		return nil, err
	}
	decoded, err := DecodeEvents(batch)
	if err != nil {
		return nil, err
	}
	return DecodeResults(out, decoded)
}

// process runs the operator over a batch into rs. reuse, if not nil, is an
// array of events to decode into, kept for the next batch (the export's:
// an *Event is valid during its call only).
func (op *ProcessOperator) process(batch []byte, rs *results, reuse *[]Event) error {
	var events []Event
	var err error
	if reuse != nil {
		events, err = decodeEvents(batch, *reuse)
		*reuse = events[:0]
	} else {
		events, err = DecodeEvents(batch)
	}
	if err != nil {
		return err
	}
	// outputs are often about as big as the input (maps, filters)
	rs.begin(len(events), len(batch)+8*len(events)+64)
	em := Emitter{rs: rs}
	for i := range events {
		e := &events[i]
		rs.open()
		if op.valueFn != nil {
			op.mapValue(e, rs)
		} else {
			em.ev = e
			if f := guard(func() error { return op.fn(e, &em) }); f != nil {
				rs.fail(f)
			}
		}
		rs.close()
	}
	return nil
}

// mapValue writes MapValue's output: flags "keep key and headers", then the
// value that the function appends to the result buffer.
func (op *ProcessOperator) mapValue(e *Event, rs *results) {
	w := &rs.w
	if e.Value == nil {
		w.u8(flagKeepKey | flagKeepHeaders)
		w.u32(noneLen)
		rs.outputs++
		return
	}
	lenAt := len(w.buf) + 1
	w.u8(flagKeepKey | flagKeepHeaders)
	w.u32(0)
	start := len(w.buf)
	if need := len(e.Value) + 64; cap(w.buf)-start < need {
		grown := make([]byte, start, 2*cap(w.buf)+need)
		copy(grown, w.buf)
		w.buf = grown
	}
	dst := w.buf[start:start]
	var v []byte
	f := guard(func() (err error) {
		v, err = op.valueFn(e, dst)
		return err
	})
	if f != nil {
		rs.fail(f)
		return
	}
	if len(v) > 0 && unsafe.SliceData(v) == unsafe.SliceData(w.buf[start:cap(w.buf)]) && len(v) <= cap(w.buf)-start {
		w.buf = w.buf[:start+len(v)] // appended in place
	} else {
		w.buf = append(w.buf[:start], v...)
	}
	binary.LittleEndian.PutUint32(w.buf[lenAt:], uint32(len(v)))
	rs.outputs++
}
