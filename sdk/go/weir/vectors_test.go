package weir

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The golden vectors of the batch ABI (sdk/abi/vectors, see its README):
// every events and pairs batch decodes to its meaning and encodes back to
// its bytes; every result batch decodes to its meaning and is written back
// to its bytes by the SDK's result writer (outputs that keep their input's
// fields too: the writer sets those flags when an output shares the
// event's key or headers).

const vectorDir = "../../abi/vectors"

type vectorFile struct {
	Kind    string            `json:"kind"`
	About   string            `json:"about"`
	Input   *string           `json:"input"`
	Events  []json.RawMessage `json:"events"`
	Pairs   []json.RawMessage `json:"pairs"`
	Results []json.RawMessage `json:"results"`
}

func readVector(t *testing.T, name string) (vectorFile, []byte) {
	t.Helper()
	meaning, err := os.ReadFile(filepath.Join(vectorDir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(filepath.Join(vectorDir, name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	d := json.NewDecoder(bytes.NewReader(meaning))
	d.UseNumber()
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s.json: %v", name, err)
	}
	return v, bin
}

// unmarshal decodes one JSON value with exact integers.
func unmarshal(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// vecBytes reads the vectors' bytes: null, {"utf8": …} or {"hex": …}.
func vecBytes(raw json.RawMessage) ([]byte, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	var b struct {
		UTF8 *string `json:"utf8"`
		Hex  *string `json:"hex"`
	}
	if err := unmarshal(raw, &b); err != nil {
		return nil, err
	}
	switch {
	case b.UTF8 != nil && b.Hex == nil:
		return append([]byte{}, *b.UTF8...), nil
	case b.Hex != nil && b.UTF8 == nil:
		h, err := hex.DecodeString(*b.Hex)
		if h == nil {
			h = []byte{}
		}
		return h, err
	}
	return nil, fmt.Errorf("bytes must be null, {utf8} or {hex}: %s", raw)
}

func vecInt(n json.Number) (int64, error) { return strconv.ParseInt(string(n), 10, 64) }

func vecHeaders(raw []json.RawMessage) ([]Header, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	hs := make([]Header, len(raw))
	for i, r := range raw {
		var h struct {
			Name  string          `json:"name"`
			Value json.RawMessage `json:"value"`
		}
		if err := unmarshal(r, &h); err != nil {
			return nil, err
		}
		v, err := vecBytes(h.Value)
		if err != nil {
			return nil, err
		}
		hs[i] = Header{Name: h.Name, Value: v}
	}
	return hs, nil
}

func vecEvent(raw json.RawMessage, index int) (Event, error) {
	var e struct {
		Timestamp, Partition, Offset json.Number
		Topic                        string
		Key, Value                   json.RawMessage
		Headers                      []json.RawMessage
	}
	if err := unmarshal(raw, &e); err != nil {
		return Event{}, err
	}
	ev := Event{Topic: e.Topic, Index: index}
	var err error
	var p int64
	if ev.Timestamp, err = vecInt(e.Timestamp); err != nil {
		return ev, err
	}
	if p, err = vecInt(e.Partition); err != nil {
		return ev, err
	}
	ev.Partition = int32(p)
	if ev.Offset, err = vecInt(e.Offset); err != nil {
		return ev, err
	}
	if ev.Key, err = vecBytes(e.Key); err != nil {
		return ev, err
	}
	if ev.Value, err = vecBytes(e.Value); err != nil {
		return ev, err
	}
	ev.Headers, err = vecHeaders(e.Headers)
	return ev, err
}

func vecPair(raw json.RawMessage, index int) (Pair, error) {
	var p struct {
		Timestamp        json.Number
		Key, Left, Right json.RawMessage
		Headers          []json.RawMessage
	}
	if err := unmarshal(raw, &p); err != nil {
		return Pair{}, err
	}
	pr := Pair{Index: index}
	var err error
	if pr.Timestamp, err = vecInt(p.Timestamp); err != nil {
		return pr, err
	}
	if pr.Key, err = vecBytes(p.Key); err != nil {
		return pr, err
	}
	if pr.Left, err = vecBytes(p.Left); err != nil {
		return pr, err
	}
	if pr.Right, err = vecBytes(p.Right); err != nil {
		return pr, err
	}
	pr.Headers, err = vecHeaders(p.Headers)
	return pr, err
}

// vecResult reads a result; an output's "input" key or headers become the
// input event's own slices (as an operator forwarding them writes them).
func vecResult(raw json.RawMessage, ev *Event) (Result, error) {
	var r struct {
		Outputs []map[string]json.RawMessage `json:"outputs"`
		Failure *Failure                     `json:"failure"`
	}
	if err := unmarshal(raw, &r); err != nil {
		return Result{}, err
	}
	if r.Failure != nil {
		return Result{Failure: r.Failure}, nil
	}
	res := Result{}
	for _, o := range r.Outputs {
		for k := range o {
			switch k {
			case "timestamp", "key", "value", "headers", "route":
			default:
				return res, fmt.Errorf("unknown output field %q", k)
			}
		}
		var out Output
		var err error
		if ts := string(o["timestamp"]); ts != "null" {
			out.HasTimestamp = true
			if out.Timestamp, err = strconv.ParseInt(ts, 10, 64); err != nil {
				return res, err
			}
		}
		if string(o["key"]) == `"input"` {
			if ev == nil {
				return res, fmt.Errorf(`"input" key without an input event`)
			}
			out.Key = ev.Key
		} else if out.Key, err = vecBytes(o["key"]); err != nil {
			return res, err
		}
		if out.Value, err = vecBytes(o["value"]); err != nil {
			return res, err
		}
		if string(o["headers"]) == `"input"` {
			if ev == nil {
				return res, fmt.Errorf(`"input" headers without an input event`)
			}
			out.Headers = ev.Headers
		} else {
			var hs []json.RawMessage
			if err := unmarshal(o["headers"], &hs); err != nil {
				return res, err
			}
			if out.Headers, err = vecHeaders(hs); err != nil {
				return res, err
			}
		}
		if rt := string(o["route"]); rt != "null" {
			if err := json.Unmarshal(o["route"], &out.Route); err != nil {
				return res, err
			}
			out.HasRoute = true
		}
		res.Outputs = append(res.Outputs, out)
	}
	return res, nil
}

func vectorNames(t *testing.T) []string {
	files, err := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors in %s (%v)", vectorDir, err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	return names
}

func TestVectors(t *testing.T) {
	counts := map[string]int{}
	for _, name := range vectorNames(t) {
		t.Run(name, func(t *testing.T) {
			v, bin := readVector(t, name)
			counts[v.Kind]++
			switch v.Kind {
			case "events":
				testEventsVector(t, v, bin)
			case "pairs":
				testPairsVector(t, v, bin)
			case "results":
				testResultsVector(t, v, bin)
			default:
				t.Fatalf("unknown kind %q", v.Kind)
			}
		})
	}
	// every kind is covered (a rename in sdk/abi must not silently skip)
	for _, kind := range []string{"events", "pairs", "results"} {
		if counts[kind] == 0 {
			t.Errorf("no %s vectors", kind)
		}
	}
}

func testEventsVector(t *testing.T, v vectorFile, bin []byte) {
	want := make([]Event, len(v.Events))
	for i, raw := range v.Events {
		var err error
		if want[i], err = vecEvent(raw, i); err != nil {
			t.Fatal(err)
		}
	}
	got, err := DecodeEvents(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("decoded %d events, want %d", len(got), len(want))
	}
	for i := range got {
		got[i].rawHeaders = nil
		if !eventsEqual(got[i], want[i]) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if enc := EncodeEvents(want); !bytes.Equal(enc, bin) {
		t.Errorf("encoding differs from the .bin (%d vs %d bytes)", len(enc), len(bin))
	}
	// every proper prefix is malformed, as is one byte more
	for _, cut := range []int{0, 1, len(bin) / 2, len(bin) - 1} {
		if cut < len(bin) {
			if _, err := DecodeEvents(bin[:cut]); err == nil {
				t.Errorf("a batch cut at %d bytes decoded", cut)
			}
		}
	}
	if _, err := DecodeEvents(append(bytes.Clone(bin), 0)); err == nil {
		t.Error("a batch with a trailing byte decoded")
	}
}

func testPairsVector(t *testing.T, v vectorFile, bin []byte) {
	want := make([]Pair, len(v.Pairs))
	for i, raw := range v.Pairs {
		var err error
		if want[i], err = vecPair(raw, i); err != nil {
			t.Fatal(err)
		}
	}
	got, err := DecodePairs(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normPairs(got), normPairs(want)) {
		t.Errorf("pairs:\n got %+v\nwant %+v", got, want)
	}
	if enc := EncodePairs(want); !bytes.Equal(enc, bin) {
		t.Errorf("encoding differs from the .bin (%d vs %d bytes)", len(enc), len(bin))
	}
	if len(bin) > 4 {
		if _, err := DecodePairs(bin[:len(bin)-1]); err == nil {
			t.Error("a truncated batch decoded")
		}
	}
}

func testResultsVector(t *testing.T, v vectorFile, bin []byte) {
	var events []Event
	if v.Input != nil {
		in, inBin := readVector(t, *v.Input)
		if in.Kind != "events" {
			t.Fatalf("input %s is not an events vector", *v.Input)
		}
		var err error
		// the decoded batch, as an operator sees it
		if events, err = DecodeEvents(inBin); err != nil {
			t.Fatal(err)
		}
	}
	want := make([]Result, len(v.Results))
	for i, raw := range v.Results {
		var ev *Event
		if events != nil {
			ev = &events[i]
		}
		var err error
		if want[i], err = vecResult(raw, ev); err != nil {
			t.Fatalf("result %d: %v", i, err)
		}
	}
	got, err := DecodeResults(bin, events)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("decoded %d results, want %d", len(got), len(want))
	}
	for i := range got {
		if !resultsEqual(got[i], want[i]) {
			t.Errorf("result %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if enc := EncodeResults(want, events); !bytes.Equal(enc, bin) {
		t.Errorf("encoding differs from the .bin (%d vs %d bytes)\n got %x\nwant %x", len(enc), len(bin), head(enc), head(bin))
	}
	if len(bin) > 4 {
		if _, err := DecodeResults(bin[:len(bin)-1], events); err == nil {
			t.Error("a truncated batch decoded")
		}
	}
}

func head(b []byte) []byte {
	if len(b) > 96 {
		return b[:96]
	}
	return b
}

// bytesEqual: equal contents and equal presence (nil is absent).
func bytesEqual(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func headersEqual(a, b []Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytesEqual(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func eventsEqual(a, b Event) bool {
	return a.Timestamp == b.Timestamp && a.Partition == b.Partition && a.Offset == b.Offset &&
		a.Topic == b.Topic && a.Index == b.Index && bytesEqual(a.Key, b.Key) &&
		bytesEqual(a.Value, b.Value) && headersEqual(a.Headers, b.Headers)
}

type normPair struct {
	Timestamp           int64
	Key, Left, Right    string
	KeyP, LeftP, RightP bool
	Headers             string
	Index               int
}

func normPairs(ps []Pair) []normPair {
	out := make([]normPair, len(ps))
	for i, p := range ps {
		out[i] = normPair{p.Timestamp, string(p.Key), string(p.Left), string(p.Right),
			p.Key != nil, p.Left != nil, p.Right != nil, fmt.Sprintf("%q", p.Headers), p.Index}
	}
	return out
}

func resultsEqual(a, b Result) bool {
	if (a.Failure == nil) != (b.Failure == nil) {
		return false
	}
	if a.Failure != nil {
		return *a.Failure == *b.Failure
	}
	if len(a.Outputs) != len(b.Outputs) {
		return false
	}
	for i := range a.Outputs {
		x, y := a.Outputs[i], b.Outputs[i]
		if x.HasTimestamp != y.HasTimestamp || x.Timestamp != y.Timestamp || x.Route != y.Route ||
			(x.HasRoute || x.Route != "") != (y.HasRoute || y.Route != "") ||
			!bytesEqual(x.Key, y.Key) || !bytesEqual(x.Value, y.Value) || !headersEqual(x.Headers, y.Headers) {
			return false
		}
	}
	return true
}
