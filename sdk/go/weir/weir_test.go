package weir

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// unregister lets a test register an operator of its own (a module holds
// one; a test binary holds many).
func unregister(t *testing.T) {
	t.Helper()
	registeredName, processor, joiner, aggregator = "", nil, nil, nil
	t.Cleanup(func() { registeredName, processor, joiner, aggregator = "", nil, nil, nil })
}

func text(r Result) []string {
	var out []string
	for _, o := range r.Outputs {
		out = append(out, string(o.Value))
	}
	return out
}

func TestForwardKeepsKeyAndHeadersByFlag(t *testing.T) {
	unregister(t)
	op := Map(func(e *Event) (Output, error) { return Forward(e), nil })
	batch := EncodeEvents([]Event{
		{Key: []byte("k"), Value: []byte("v"), Headers: []Header{{"h", []byte("1")}}},
		{Key: nil, Value: nil},
		{Key: []byte{}, Value: []byte{}},
	})
	out, err := op.Process(batch)
	if err != nil {
		t.Fatal(err)
	}
	// every output: flags 4|8, then only the value
	want := []byte{3, 0, 0, 0}
	for _, v := range [][]byte{[]byte("v"), nil, {}} {
		want = append(want, 0, 1, 0, 0, 0, flagKeepKey|flagKeepHeaders)
		if v == nil {
			want = binary.LittleEndian.AppendUint32(want, noneLen)
		} else {
			want = binary.LittleEndian.AppendUint32(want, uint32(len(v)))
			want = append(want, v...)
		}
	}
	if !bytes.Equal(out, want) {
		t.Fatalf("got %x\nwant %x", out, want)
	}
}

func TestChangedKeyOrHeadersAreWrittenOut(t *testing.T) {
	unregister(t)
	op := Processor(func(e *Event, out *Emitter) error {
		switch string(e.Value) {
		case "new-key":
			o := Forward(e)
			o.Key = []byte("other")
			out.Emit(o)
		case "copied-key":
			o := Forward(e)
			o.Key = bytes.Clone(e.Key) // equal bytes, not the event's: written out
			out.Emit(o)
		case "header-added":
			out.Emit(Forward(e).WithHeader("x", nil))
		case "header-replaced":
			o := Forward(e)
			o.Headers[0] = Header{Name: "h", Value: []byte("changed")}
			out.Emit(o)
		case "header-value-replaced":
			o := Forward(e)
			o.Headers[0].Value = nil
			out.Emit(o)
		}
		return nil
	})
	events := []Event{}
	for _, v := range []string{"new-key", "copied-key", "header-added", "header-replaced", "header-value-replaced"} {
		events = append(events, Event{Key: []byte("k"), Value: []byte(v), Headers: []Header{{"h", []byte("1")}}})
	}
	batch := EncodeEvents(events)
	out, err := op.Process(batch)
	if err != nil {
		t.Fatal(err)
	}
	// kept fields are the host's copy of the input: had a changed key or
	// header been sent as kept, the original would show here
	decoded, _ := DecodeEvents(batch)
	rs, err := DecodeResults(out, decoded)
	if err != nil {
		t.Fatal(err)
	}
	check := func(i int, key string, headers []Header) {
		t.Helper()
		o := rs[i].Outputs[0]
		if string(o.Key) != key || !headersEqual(o.Headers, headers) {
			t.Errorf("%s: got key %q headers %v", events[i].Value, o.Key, o.Headers)
		}
	}
	check(0, "other", []Header{{"h", []byte("1")}})
	check(1, "k", []Header{{"h", []byte("1")}})
	check(2, "k", []Header{{"h", []byte("1")}, {"x", nil}})
	check(3, "k", []Header{{"h", []byte("changed")}})
	check(4, "k", []Header{{"h", nil}})
}

func TestFailuresErrorsAndPanics(t *testing.T) {
	unregister(t)
	op := Processor(func(e *Event, out *Emitter) error {
		out.Emit(Output{Value: []byte("before")})
		switch string(e.Value) {
		case "fail":
			return Fail("my-code", "my message")
		case "wrapped":
			return errors.Join(errors.New("context"), Failf("inner", "n=%d", 3))
		case "error":
			return errors.New("plain")
		case "panic":
			panic("boom")
		case "nil":
			var p *Event
			_ = p.Value
		}
		return nil
	})
	var events []Event
	for _, v := range []string{"ok", "fail", "wrapped", "error", "panic", "nil", "ok"} {
		events = append(events, Event{Value: []byte(v)})
	}
	rs, err := op.Run(events...)
	if err != nil {
		t.Fatal(err)
	}
	codes := []string{"", "my-code", "inner", "error", "panic", "panic", ""}
	for i, r := range rs {
		if codes[i] == "" {
			if r.Failure != nil || len(r.Outputs) != 1 {
				t.Errorf("%d: %+v", i, r)
			}
			continue
		}
		if r.Failure == nil || r.Failure.Code != codes[i] || len(r.Outputs) != 0 {
			t.Errorf("%d: want failure %s, got %+v", i, codes[i], r)
		}
	}
	if m := rs[4].Failure.Message; !strings.HasPrefix(m, "boom (at ") || !strings.Contains(m, "weir_test.go:") {
		t.Errorf("the panic message says what and where: %q", m)
	}
	if m := rs[2].Failure.Message; m != "n=3" {
		t.Errorf("wrapped failure message %q", m)
	}
}

func TestMapValueWritesInPlaceAndPassesTombstones(t *testing.T) {
	unregister(t)
	calls := 0
	op := MapValue(func(e *Event, dst []byte) ([]byte, error) {
		calls++
		switch string(e.Value) {
		case "fail":
			return dst, Fail("bad", "asked")
		case "grow":
			return append(dst, bytes.Repeat([]byte("g"), 100_000)...), nil
		case "other":
			return []byte("a slice of its own"), nil
		case "panic":
			panic("in MapValue")
		case "nil":
			return nil, nil
		}
		return append(dst, bytes.ToUpper(e.Value)...), nil
	})
	events := []Event{
		{Key: []byte("k"), Value: []byte("abc"), Headers: []Header{{"h", nil}}},
		{Key: []byte("t"), Value: nil},
		{Value: []byte("fail")},
		{Value: []byte("grow")},
		{Value: []byte("other")},
		{Value: []byte{}},
		{Value: []byte("panic")},
		{Value: []byte("xyz")},
		{Value: []byte("nil")},
	}
	rs, err := op.Run(events...)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 8 {
		t.Errorf("fn called %d times; the tombstone must not call it", calls)
	}
	o := rs[0].Outputs[0]
	if string(o.Key) != "k" || string(o.Value) != "ABC" || len(o.Headers) != 1 {
		t.Errorf("0: %+v", o)
	}
	if o := rs[1].Outputs[0]; string(o.Key) != "t" || o.Value != nil {
		t.Errorf("a tombstone stays one: %+v", o)
	}
	if rs[2].Failure == nil || rs[2].Failure.Code != "bad" {
		t.Errorf("2: %+v", rs[2])
	}
	if len(rs[3].Outputs[0].Value) != 100_000 {
		t.Errorf("3: %d bytes", len(rs[3].Outputs[0].Value))
	}
	if string(rs[4].Outputs[0].Value) != "a slice of its own" {
		t.Errorf("4: %q", rs[4].Outputs[0].Value)
	}
	if v := rs[5].Outputs[0].Value; v == nil || len(v) != 0 {
		t.Errorf("an empty value stays present: %v", v)
	}
	if rs[6].Failure == nil || rs[6].Failure.Code != "panic" {
		t.Errorf("6: %+v", rs[6])
	}
	if string(rs[7].Outputs[0].Value) != "XYZ" {
		t.Errorf("7: %+v", rs[7])
	}
	if v := rs[8].Outputs[0].Value; v == nil || len(v) != 0 {
		t.Errorf("nil from fn is a present, empty value (as Rust's map_value): %v", v)
	}
}

func TestFilterAndFlatMap(t *testing.T) {
	unregister(t)
	f := Filter(func(e *Event) (bool, error) { return bytes.HasPrefix(e.Value, []byte("y")), nil })
	rs, err := f.Run(Event{Value: []byte("yes")}, Event{Value: []byte("no")})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs[0].Outputs) != 1 || len(rs[1].Outputs) != 0 {
		t.Errorf("filter: %+v", rs)
	}
	unregister(t)
	fm := FlatMap(func(e *Event) ([]Output, error) {
		var outs []Output
		for _, w := range strings.Fields(string(e.Value)) {
			outs = append(outs, Output{Key: Text(w), Value: Text(w), Route: "words"}.At(e.Timestamp+1))
		}
		return outs, nil
	})
	rs, err = fm.Run(Event{Value: []byte("a b  c"), Timestamp: 9}, Event{Value: []byte("")})
	if err != nil {
		t.Fatal(err)
	}
	if got := text(rs[0]); strings.Join(got, ",") != "a,b,c" || len(rs[1].Outputs) != 0 {
		t.Errorf("flat map: %v %+v", got, rs[1])
	}
	if o := rs[0].Outputs[2]; o.Route != "words" || !o.HasTimestamp || o.Timestamp != 10 {
		t.Errorf("route and timestamp: %+v", o)
	}
}

func TestOneOperatorPerModule(t *testing.T) {
	unregister(t)
	Filter(func(*Event) (bool, error) { return true, nil })
	defer func() {
		if v := recover(); v == nil || !strings.Contains(v.(string), "already has an operator") {
			t.Errorf("a second registration must panic, got %v", v)
		}
	}()
	Joiner(func(*Pair, *Emitter) error { return nil })
}

func TestJoiner(t *testing.T) {
	unregister(t)
	op := Joiner(func(p *Pair, out *Emitter) error {
		if p.Left == nil {
			return Fail("no-left", "")
		}
		v := append(append(bytes.Clone(p.Left), '+'), p.Right...)
		if p.Right == nil {
			v = append(v, "none"...)
		}
		out.Emit(Output{Value: v})
		return nil
	})
	rs, err := op.Run(
		Pair{Key: []byte("k"), Left: []byte("l"), Right: []byte("r")},
		Pair{Left: []byte("l")},
		Pair{Right: []byte("r")},
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := text(rs[0]); got[0] != "l+r" || rs[0].Outputs[0].Key != nil {
		t.Errorf("0: %+v (an output without a key has none: the host gives it the pair's)", rs[0])
	}
	if got := text(rs[1]); got[0] != "l+none" {
		t.Errorf("1: %v", got)
	}
	if rs[2].Failure == nil || rs[2].Failure.Code != "no-left" {
		t.Errorf("2: %+v", rs[2])
	}
	// a joiner's outputs never use the keep flags, even with the pair's key
	unregister(t)
	op = Joiner(func(p *Pair, out *Emitter) error {
		out.Emit(Output{Key: p.Key, Headers: p.Headers})
		return nil
	})
	out, err := op.Join(EncodePairs([]Pair{{Key: []byte("k"), Headers: []Header{{"h", nil}}}}))
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := DecodeResults(out, nil); err != nil || string(rs[0].Outputs[0].Key) != "k" {
		t.Errorf("%v %+v", err, rs)
	}
}

type stats struct {
	N   int   `json:"n"`
	Sum int64 `json:"sum"`
}

func statsAggregator() Aggregator[stats] {
	return Aggregator[stats]{
		Init: func(key []byte) stats {
			if string(key) == "ten" {
				return stats{Sum: 10}
			}
			return stats{}
		},
		Add: func(s stats, e *Event) (stats, error) {
			v, err := strconv.ParseInt(string(e.Value), 10, 64)
			if err != nil {
				return s, Fail("not-a-number", err.Error())
			}
			if v == 13 {
				panic("unlucky")
			}
			return stats{N: s.N + 1, Sum: s.Sum + v}, nil
		},
		Subtract: func(s stats, e *Event) (stats, error) {
			v, _ := strconv.ParseInt(string(e.Value), 10, 64)
			if s.N == 0 {
				return s, Fail("negative-count", "")
			}
			return stats{N: s.N - 1, Sum: s.Sum - v}, nil
		},
		Merge: func(key []byte, a, b stats) (stats, error) {
			if string(key) == "refuse" {
				return a, Fail("no-merge", "refused")
			}
			return stats{N: a.N + b.N, Sum: a.Sum + b.Sum}, nil
		},
		Emit: func(key []byte, s stats, w *Window) ([]Output, error) {
			if s.N == 0 {
				return nil, nil
			}
			v := "n=" + strconv.Itoa(s.N) + " sum=" + strconv.FormatInt(s.Sum, 10)
			if w != nil {
				v += " window=" + strconv.FormatInt(w.Start, 10) + ".." + strconv.FormatInt(w.End, 10)
			}
			return []Output{{Value: []byte(v)}}, nil
		},
		Migrate: func(previous string, key, old []byte) (stats, error) {
			if !strings.HasPrefix(previous, "count@") || len(old) != 8 {
				return stats{}, Failf("unknown-version", "cannot read %s", previous)
			}
			return stats{N: int(binary.LittleEndian.Uint64(old))}, nil
		},
	}
}

func TestAggregator(t *testing.T) {
	unregister(t)
	op := Aggregate(statsAggregator())
	if op.World() != "aggregate-with-migrate-and-subtract" {
		t.Errorf("world %s", op.World())
	}
	ev := func(vs ...string) []Event {
		var es []Event
		for _, v := range vs {
			es = append(es, Event{Value: []byte(v)})
		}
		return es
	}
	acc, failures := op.Fold([]byte("ten"), nil, ev("1", "x", "2", "13")...)
	if string(acc) != `{"n":2,"sum":13}` {
		t.Errorf("acc %s", acc)
	}
	if len(failures) != 2 || failures[0].Index != 1 || failures[0].Failure.Code != "not-a-number" ||
		failures[1].Index != 3 || failures[1].Failure.Code != "panic" {
		t.Errorf("failures %+v", failures)
	}
	acc, failures = op.Unfold(nil, acc, ev("1", "1", "1")...)
	if string(acc) != `{"n":0,"sum":11}` || len(failures) != 1 || failures[0].Index != 2 {
		t.Errorf("unfold: %s %+v", acc, failures)
	}
	// an accumulator that does not decode fails every event and is kept
	acc, failures = op.Fold(nil, []byte("not json"), ev("1", "2")...)
	if string(acc) != "not json" || len(failures) != 2 || failures[1].Failure.Code != BadStateFailure {
		t.Errorf("bad acc: %s %+v", acc, failures)
	}
	merged, err := op.Merge(nil, []byte(`{"n":1,"sum":2}`), []byte(`{"n":3,"sum":4}`))
	if err != nil || string(merged) != `{"n":4,"sum":6}` {
		t.Errorf("merge: %s %v", merged, err)
	}
	if _, err := op.Merge([]byte("refuse"), []byte(`{}`), []byte(`{}`)); AsFailure(err).Code != "no-merge" {
		t.Errorf("merge failure: %v", err)
	}
	r := op.Emit(nil, []byte(`{"n":4,"sum":6}`), &Window{Start: 0, End: 10})
	if got := text(r); len(got) != 1 || got[0] != "n=4 sum=6 window=0..10" {
		t.Errorf("emit: %+v", r)
	}
	if r := op.Emit(nil, []byte(`{"n":0}`), nil); len(r.Outputs) != 0 || r.Failure != nil {
		t.Errorf("emit of nothing: %+v", r)
	}
	if r := op.Emit(nil, []byte(`[`), nil); r.Failure == nil || r.Failure.Code != BadStateFailure {
		t.Errorf("emit of a bad acc: %+v", r)
	}
	migrated, err := op.Migrate("count@sha256:00", nil, binary.LittleEndian.AppendUint64(nil, 7))
	if err != nil || string(migrated) != `{"n":7,"sum":0}` {
		t.Errorf("migrate: %s %v", migrated, err)
	}
	if _, err := op.Migrate("other@sha256:00", nil, nil); AsFailure(err).Code != "unknown-version" {
		t.Errorf("migrate failure: %v", err)
	}
}

func TestAggregatorWithoutOptionalParts(t *testing.T) {
	unregister(t)
	agg := statsAggregator()
	agg.Subtract, agg.Migrate, agg.Init = nil, nil, nil
	op := Aggregate(agg)
	if op.World() != "aggregate" {
		t.Errorf("world %s", op.World())
	}
	acc, failures := op.Unfold(nil, []byte(`{"n":1}`), Event{Value: []byte("1")})
	if string(acc) != `{"n":1}` || len(failures) != 1 || failures[0].Failure.Code != "unsupported" {
		t.Errorf("unfold without Subtract: %s %+v", acc, failures)
	}
	if _, err := op.Migrate("x", nil, nil); AsFailure(err).Code != "unsupported" {
		t.Errorf("migrate without Migrate: %v", err)
	}
	if acc, _ := op.Fold(nil, nil); string(acc) != `{"n":0,"sum":0}` {
		t.Errorf("the zero value is the default initial accumulator: %s", acc)
	}
}

// Init has no input to blame: a panic in it traps (it panics natively),
// where failing the events would store the zero value as the key's
// accumulator.
func TestAggregatorInitPanicTraps(t *testing.T) {
	unregister(t)
	agg := statsAggregator()
	agg.Init = func(key []byte) stats { panic("no initial accumulator for " + string(key)) }
	op := Aggregate(agg)
	defer func() {
		if v := recover(); v != "no initial accumulator for k" {
			t.Errorf("recovered %v", v)
		}
	}()
	acc, failures := op.Fold([]byte("k"), nil, Event{Value: []byte("1")})
	t.Errorf("Init's panic did not propagate: %s %+v", acc, failures)
}

// panicky is a Codec whose Decode fails as its input says, and whose
// Encode panics on a negative number.
type panicky struct{}

func (panicky) Encode(n int) ([]byte, error) {
	if n < 0 {
		panic("negative")
	}
	return []byte(strconv.Itoa(n)), nil
}

func (panicky) Decode(b []byte) (int, error) {
	switch string(b) {
	case "panic":
		panic("cannot read it")
	case "typed":
		return 0, Fail("old-format", "written by version 1")
	}
	return strconv.Atoi(string(b))
}

func TestCodecFailures(t *testing.T) {
	unregister(t)
	op := Aggregate(Aggregator[int]{
		Codec: panicky{},
		Add:   func(n int, e *Event) (int, error) { return n + len(e.Value) - 2, nil },
		Merge: func(_ []byte, a, b int) (int, error) { return a + b, nil },
		Emit:  func(_ []byte, n int, _ *Window) ([]Output, error) { return nil, nil },
	})
	// Decode's error, panic or *Failure fails the group's events, the
	// accumulator kept
	for acc, want := range map[string]string{
		"x":     "bad-state: cannot decode the accumulator (1 bytes): strconv.Atoi",
		"panic": "bad-state: cannot decode the accumulator (5 bytes): cannot read it (at ",
		"typed": "old-format: written by version 1",
	} {
		kept, failures := op.Fold(nil, []byte(acc), Event{Value: []byte("abc")})
		if string(kept) != acc || len(failures) != 1 || !strings.HasPrefix(failures[0].Failure.Error(), want) {
			t.Errorf("%s: %s %+v, want %s", acc, kept, failures, want)
		}
	}
	if _, err := op.Merge(nil, []byte("1"), []byte("panic")); AsFailure(err).Code != BadStateFailure {
		t.Errorf("merge: %v", err)
	}
	if r := op.Emit(nil, []byte("panic"), nil); r.Failure == nil || r.Failure.Code != BadStateFailure {
		t.Errorf("emit: %+v", r)
	}
	// Encode's panic has no input to blame: it traps (panics natively)
	defer func() {
		if v := recover(); v != "negative" {
			t.Errorf("recovered %v", v)
		}
	}()
	op.Fold(nil, []byte("0"), Event{Value: []byte("a")})
	t.Error("Encode's panic did not propagate")
}

func TestSetGCPercentNatively(t *testing.T) {
	prev := SetGCPercent(50)
	defer SetGCPercent(prev)
	if p := SetGCPercent(70); p != 50 {
		t.Errorf("the previous setting: %d", p)
	}
}

func TestUint64AndRawCodecs(t *testing.T) {
	b, _ := Uint64LE{}.Encode(0x0102)
	if !bytes.Equal(b, []byte{2, 1, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("%x", b)
	}
	if _, err := (Uint64LE{}).Decode([]byte{1}); err == nil {
		t.Error("a short u64 decoded")
	}
	if b, _ := (Raw{}).Encode(nil); b == nil {
		t.Error("Raw encodes nil as present empty bytes")
	}
}

func TestEventHelpers(t *testing.T) {
	e := Event{Key: []byte("k"), Value: []byte(`{"a":1}`), Headers: []Header{{"h", []byte("1")}, {"h", []byte("2")}, {"n", nil}}}
	if v, ok := e.Header("h"); !ok || string(v) != "2" {
		t.Errorf("the last header of a name wins: %q", v)
	}
	if v, ok := e.Header("n"); !ok || v != nil {
		t.Errorf("a header without a value: %v %v", v, ok)
	}
	var doc map[string]int
	if err := e.JSON(&doc); err != nil || doc["a"] != 1 {
		t.Errorf("%v %v", doc, err)
	}
	for _, bad := range [][]byte{nil, []byte("{"), {'"', 0xff, '"'}} {
		e.Value = bad
		if err := e.JSON(&doc); AsFailure(err).Code != "invalid-json" {
			t.Errorf("%q: %v", bad, err)
		}
		if ValidJSON(bad) {
			t.Errorf("ValidJSON(%q)", bad)
		}
	}
	e.Value = []byte{0xff}
	if _, err := e.ValueString(); AsFailure(err).Code != "invalid-utf8" {
		t.Errorf("%v", err)
	}
}

func TestResultsReplaceInvalidUTF8InStrings(t *testing.T) {
	b := EncodeResults([]Result{
		{Failure: &Failure{Code: "c\xff", Message: "m"}},
		{Outputs: []Output{{Route: "r\xfe", Headers: []Header{{Name: "h\xff"}}}}},
	}, nil)
	rs, err := DecodeResults(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Failure.Code != "c\uFFFD" || rs[1].Outputs[0].Route != "r\uFFFD" || rs[1].Outputs[0].Headers[0].Name != "h\uFFFD" {
		t.Errorf("%+v %+v", rs[0].Failure, rs[1].Outputs[0])
	}
}

func TestMalformedBatchesAreErrors(t *testing.T) {
	unregister(t)
	op := Filter(func(*Event) (bool, error) { return true, nil })
	good := EncodeEvents([]Event{{Value: []byte("v"), Headers: []Header{{"h", nil}}}})
	for _, bad := range [][]byte{
		nil,
		{1, 0, 0, 0},
		{0xff, 0xff, 0xff, 0x7f}, // a huge count
		good[:len(good)-1],
		append(bytes.Clone(good), 0),
	} {
		if _, err := op.Process(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: %v", bad, err)
		}
	}
	if _, err := DecodeResults([]byte{1, 0, 0, 0, 7}, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown result tag: %v", err)
	}
	if _, err := DecodeResults([]byte{1, 0, 0, 0, 0, 1, 0, 0, 0, 0x10}, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown flag: %v", err)
	}
}

// The export decodes each batch into the array of the one before; nothing
// of an earlier, bigger batch may show through.
func TestEventArrayReusedAcrossBatches(t *testing.T) {
	unregister(t)
	op := Map(func(e *Event) (Output, error) { return Forward(e), nil })
	var rs results
	var reuse []Event
	run := func(events ...Event) []Result {
		t.Helper()
		batch := EncodeEvents(events)
		if err := op.process(batch, &rs, &reuse); err != nil {
			t.Fatal(err)
		}
		decoded, _ := DecodeEvents(batch)
		out, err := DecodeResults(rs.w.buf, decoded)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	run(Event{Key: []byte("a"), Value: []byte("1"), Headers: []Header{{"h", []byte("x")}}},
		Event{Key: []byte("b"), Value: []byte("2"), Headers: []Header{{"h", []byte("y")}}},
		Event{Key: []byte("c"), Value: []byte("3")})
	if cap(reuse) < 3 {
		t.Fatalf("the array is not kept: cap %d", cap(reuse))
	}
	second := run(Event{Value: []byte("4")}, Event{Key: []byte("e")})
	o0, o1 := second[0].Outputs[0], second[1].Outputs[0]
	if o0.Key != nil || string(o0.Value) != "4" || len(o0.Headers) != 0 ||
		string(o1.Key) != "e" || o1.Value != nil || len(o1.Headers) != 0 {
		t.Errorf("second batch: %+v %+v", o0, o1)
	}
	for i, e := range reuse[:cap(reuse)][2:] {
		if e.Key != nil || e.Value != nil || e.Headers != nil || e.rawHeaders != nil {
			t.Errorf("entry %d of the array still points into the first batch: %+v", i+2, e)
		}
	}
	if r := run(); len(r) != 0 {
		t.Errorf("an empty batch: %+v", r)
	}
}
