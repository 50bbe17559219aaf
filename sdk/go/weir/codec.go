package weir

// The batch ABI of wit/weir.wit (and sdk/abi/README.md):
//
//	event-batch  := u32 count, event{count}
//	event        := s64 timestamp, s32 partition, s64 offset, str topic,
//	                opt-bytes key, opt-bytes value, headers
//	headers      := u32 count, (str name, opt-bytes value){count}
//	join-batch   := u32 count, pair{count}
//	pair         := s64 timestamp, opt-bytes key, opt-bytes left,
//	                opt-bytes right, headers
//	result-batch := u32 count, result{count}
//	result       := u8 0, u32 n, output{n} | u8 1, str code, str message
//	output       := u8 flags, [s64 timestamp], opt-bytes key, opt-bytes value,
//	                headers, [str route]
//
// Little-endian; str and bytes are u32 len + bytes; opt-bytes uses len
// 0xffff_ffff for none. Flags: 1 timestamp follows, 2 route follows, 4 no key
// follows (the input's is kept), 8 no headers follow (the input's are kept).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
	"unsafe"
)

const noneLen = 0xffff_ffff

const (
	flagTimestamp   = 1
	flagRoute       = 2
	flagKeepKey     = 4
	flagKeepHeaders = 8
)

// ErrMalformed is returned (wrapped) when a batch does not follow the ABI.
var ErrMalformed = errors.New("malformed batch")

// reader is a bounds-checked reader over a batch. Strings and byte slices it
// returns alias the buffer.
type reader struct {
	buf []byte
	off int
	err error
	// slab is where headers() puts the headers of a batch, one allocation
	// for many events
	slab []Header
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at byte %d of %d", ErrMalformed, what, r.off, len(r.buf))
	}
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.buf)-r.off < n {
		r.fail(what + " runs past the end")
		return nil
	}
	b := r.buf[r.off : r.off+n : r.off+n]
	r.off += n
	return b
}

func (r *reader) u8(what string) byte {
	b := r.take(1, what)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u32(what string) uint32 {
	b := r.take(4, what)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *reader) u64(what string) uint64 {
	b := r.take(8, what)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// str reads a str without copying (the buffer is never written to).
func (r *reader) str(what string) string {
	n := r.u32(what)
	b := r.take(int(n), what)
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// optBytes reads opt-bytes: nil for none, a non-nil slice (capacity = length,
// so an append copies) for present bytes.
func (r *reader) optBytes(what string) []byte {
	n := r.u32(what)
	if n == noneLen || r.err != nil {
		return nil
	}
	if n == 0 {
		return []byte{}
	}
	return r.take(int(n), what)
}

// count reads an item count, checking that at least min bytes per item
// remain (so a corrupt count cannot make us allocate gigabytes).
func (r *reader) count(what string, min int) int {
	n := r.u32(what)
	if r.err == nil && uint64(n)*uint64(min) > uint64(len(r.buf)-r.off) {
		r.fail(fmt.Sprintf("%s %d is more than the batch can hold", what, n))
		return 0
	}
	return int(n)
}

func (r *reader) headers() []Header {
	n := r.count("header count", 8)
	if n == 0 {
		return nil
	}
	if cap(r.slab)-len(r.slab) < n {
		r.slab = make([]Header, 0, max(n, 2*cap(r.slab), 16))
	}
	at := len(r.slab)
	r.slab = r.slab[:at+n]
	hs := r.slab[at : at+n : at+n]
	for i := range hs {
		hs[i].Name = r.str("header name")
		hs[i].Value = r.optBytes("header value")
	}
	return hs
}

func (r *reader) end() error {
	if r.err == nil && r.off != len(r.buf) {
		r.fail(fmt.Sprintf("%d bytes after the last item", len(r.buf)-r.off))
	}
	return r.err
}

// Smallest encodings, for the sanity check of counts.
const (
	minEvent = 8 + 4 + 8 + 4 + 4 + 4 + 4
	minPair  = 8 + 4 + 4 + 4 + 4
)

// DecodeEvents decodes an event-batch. The events alias buf (nothing is
// copied): do not change buf while they are in use.
func DecodeEvents(buf []byte) ([]Event, error) {
	return decodeEvents(buf, nil)
}

// decodeEvents decodes into reuse's array when it is big enough.
func decodeEvents(buf []byte, reuse []Event) ([]Event, error) {
	r := reader{buf: buf}
	n := r.count("event count", minEvent)
	var events []Event
	if cap(reuse) >= n {
		// all of it: entries past n would keep earlier batches alive
		clear(reuse[:cap(reuse)])
		events = reuse[:n]
	} else {
		events = make([]Event, n)
	}
	for i := range events {
		e := &events[i]
		e.Index = i
		e.Timestamp = int64(r.u64("timestamp"))
		e.Partition = int32(r.u32("partition"))
		e.Offset = int64(r.u64("offset"))
		e.Topic = r.str("topic")
		e.Key = r.optBytes("key")
		e.Value = r.optBytes("value")
		at := r.off
		e.Headers = r.headers()
		if len(e.Headers) > 0 {
			e.rawHeaders = r.buf[at+4 : r.off : r.off]
		}
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return events, nil
}

// DecodePairs decodes a join-batch. The pairs alias buf.
func DecodePairs(buf []byte) ([]Pair, error) {
	r := reader{buf: buf}
	n := r.count("pair count", minPair)
	pairs := make([]Pair, n)
	for i := range pairs {
		p := &pairs[i]
		p.Index = i
		p.Timestamp = int64(r.u64("timestamp"))
		p.Key = r.optBytes("key")
		p.Left = r.optBytes("left")
		p.Right = r.optBytes("right")
		p.Headers = r.headers()
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return pairs, nil
}

// writer appends the ABI's primitives to a buffer.
type writer struct {
	buf []byte
}

func (w *writer) u8(v byte) { w.buf = append(w.buf, v) }

func (w *writer) u32(v uint32) { w.buf = binary.LittleEndian.AppendUint32(w.buf, v) }

func (w *writer) u64(v uint64) { w.buf = binary.LittleEndian.AppendUint64(w.buf, v) }

// str writes a str; invalid UTF-8 becomes U+FFFD (the host refuses a batch
// with a string that is not UTF-8, so one bad string must not cost it).
func (w *writer) str(s string) {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	w.u32(uint32(len(s)))
	w.buf = append(w.buf, s...)
}

func (w *writer) optBytes(b []byte) {
	if b == nil {
		w.u32(noneLen)
		return
	}
	w.u32(uint32(len(b)))
	w.buf = append(w.buf, b...)
}

func (w *writer) headers(hs []Header) {
	w.u32(uint32(len(hs)))
	for i := range hs {
		w.str(hs[i].Name)
		w.optBytes(hs[i].Value)
	}
}

// EncodeEvents encodes an event-batch (what the host sends), for tests.
func EncodeEvents(events []Event) []byte {
	w := writer{}
	w.u32(uint32(len(events)))
	for i := range events {
		e := &events[i]
		w.u64(uint64(e.Timestamp))
		w.u32(uint32(e.Partition))
		w.u64(uint64(e.Offset))
		w.str(e.Topic)
		w.optBytes(e.Key)
		w.optBytes(e.Value)
		w.headers(e.Headers)
	}
	return w.buf
}

// EncodePairs encodes a join-batch (what the host sends), for tests.
func EncodePairs(pairs []Pair) []byte {
	w := writer{}
	w.u32(uint32(len(pairs)))
	for i := range pairs {
		p := &pairs[i]
		w.u64(uint64(p.Timestamp))
		w.optBytes(p.Key)
		w.optBytes(p.Left)
		w.optBytes(p.Right)
		w.headers(p.Headers)
	}
	return w.buf
}

// results writes a result-batch: begin, then per input either outputs or a
// failure, then bytes.
type results struct {
	w writer
	// start of the current result (its tag byte) and of its output count
	start, countAt int
	outputs        uint32
	failed         bool
}

func (rs *results) begin(count int, sizeHint int) {
	if cap(rs.w.buf) < sizeHint {
		rs.w.buf = make([]byte, 0, sizeHint)
	}
	rs.w.buf = rs.w.buf[:0]
	rs.w.u32(uint32(count))
}

// open starts the result of the next input (zero outputs so far).
func (rs *results) open() {
	rs.start = len(rs.w.buf)
	rs.w.u8(0)
	rs.countAt = len(rs.w.buf)
	rs.w.u32(0)
	rs.outputs, rs.failed = 0, false
}

// output appends one output to the open result. ev is the input event of a
// process result (whose key and headers an output may keep), nil otherwise.
func (rs *results) output(o *Output, ev *Event) {
	if rs.failed {
		return
	}
	var flags byte
	if o.HasTimestamp {
		flags |= flagTimestamp
	}
	if o.Route != "" || o.HasRoute {
		flags |= flagRoute
	}
	if ev != nil {
		if sameBytes(o.Key, ev.Key) {
			flags |= flagKeepKey
		}
		if sameHeaders(o.Headers, ev) {
			flags |= flagKeepHeaders
		}
	}
	w := &rs.w
	w.u8(flags)
	if flags&flagTimestamp != 0 {
		w.u64(uint64(o.Timestamp))
	}
	if flags&flagKeepKey == 0 {
		w.optBytes(o.Key)
	}
	w.optBytes(o.Value)
	if flags&flagKeepHeaders == 0 {
		w.headers(o.Headers)
	}
	if flags&flagRoute != 0 {
		w.str(o.Route)
	}
	rs.outputs++
}

// fail replaces the open result by a failure (outputs so far are dropped).
func (rs *results) fail(f *Failure) {
	rs.w.buf = rs.w.buf[:rs.start]
	rs.w.u8(1)
	rs.w.str(f.Code)
	rs.w.str(f.Message)
	rs.failed = true
}

// close ends the open result.
func (rs *results) close() {
	if !rs.failed {
		binary.LittleEndian.PutUint32(rs.w.buf[rs.countAt:], rs.outputs)
	}
}

// sameBytes reports whether an output's key is the input's own (the same
// slice, or both absent, or both present and empty): then the output may
// keep the input's.
func sameBytes(a, b []byte) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	return len(a) == 0 || unsafe.SliceData(a) == unsafe.SliceData(b)
}

// sameHeaders reports whether an output's headers are the input event's:
// both empty, or the event's own slice with the contents it was decoded
// with (an element replaced in place does not count).
func sameHeaders(a []Header, ev *Event) bool {
	if len(a) != len(ev.Headers) {
		return false
	}
	if len(a) == 0 {
		return true
	}
	if unsafe.SliceData(a) != unsafe.SliceData(ev.Headers) || ev.rawHeaders == nil {
		return false
	}
	r := reader{buf: ev.rawHeaders}
	for i := range a {
		name, value := r.str("header name"), r.optBytes("header value")
		if a[i].Name != name || (a[i].Value == nil) != (value == nil) || string(a[i].Value) != string(value) {
			return false
		}
	}
	return r.err == nil
}

// EncodeResults encodes a result-batch, for tests. events are the inputs of
// a processor's results (outputs that share an event's key or headers slice
// keep them, as the SDK writes them); nil for a joiner's or an aggregator's.
func EncodeResults(rs []Result, events []Event) []byte {
	var w results
	w.begin(len(rs), 64)
	for i := range rs {
		w.open()
		if rs[i].Failure != nil {
			w.fail(rs[i].Failure)
		} else {
			var ev *Event
			if events != nil && i < len(events) {
				ev = &events[i]
			}
			for j := range rs[i].Outputs {
				w.output(&rs[i].Outputs[j], ev)
			}
		}
		w.close()
	}
	return w.w.buf
}

// DecodeResults decodes a result-batch, for tests. An output that keeps its
// input's key or headers gets them from events (the batch the results are
// for); with nil events such an output is an error.
func DecodeResults(buf []byte, events []Event) ([]Result, error) {
	r := reader{buf: buf}
	n := r.count("result count", 5)
	if events != nil && r.err == nil && n != len(events) {
		return nil, fmt.Errorf("%w: %d results for %d events", ErrMalformed, n, len(events))
	}
	out := make([]Result, n)
	for i := range out {
		switch tag := r.u8("result tag"); tag {
		case 0:
			k := r.count("output count", 1+4) // flags, value (key and headers may be kept)
			if k > 0 {
				out[i].Outputs = make([]Output, k)
			}
			for j := 0; j < k; j++ {
				o := &out[i].Outputs[j]
				flags := r.u8("flags")
				if flags&^0xf != 0 {
					r.fail(fmt.Sprintf("unknown output flags %#x", flags))
				}
				if (flags&(flagKeepKey|flagKeepHeaders) != 0) && events == nil && r.err == nil {
					return nil, fmt.Errorf("%w: output %d of result %d keeps its input's fields, but no events were given", ErrMalformed, j, i)
				}
				if flags&flagTimestamp != 0 {
					o.Timestamp, o.HasTimestamp = int64(r.u64("timestamp")), true
				}
				if flags&flagKeepKey != 0 {
					o.Key = events[i].Key
				} else {
					o.Key = r.optBytes("key")
				}
				o.Value = r.optBytes("value")
				if flags&flagKeepHeaders != 0 {
					o.Headers = events[i].Headers
				} else {
					o.Headers = r.headers()
				}
				if flags&flagRoute != 0 {
					o.Route, o.HasRoute = r.str("route"), true
				}
			}
		case 1:
			out[i].Failure = &Failure{Code: r.str("failure code"), Message: r.str("failure message")}
		default:
			r.fail(fmt.Sprintf("unknown result tag %d", tag))
		}
		if r.err != nil {
			break
		}
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return out, nil
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
