package weir

import (
	"encoding/json"
	"unicode/utf8"
)

// Header is one Kafka record header. Names need not be unique; order is
// kept. A nil Value is an absent value, a non-nil empty one is present.
type Header struct {
	Name  string
	Value []byte
}

// Event is an input record. Key and Value are nil when absent and non-nil
// (possibly empty) when present.
//
// Decoded events alias the batch buffer the host sent: nothing is copied.
// The *Event passed to an operator is valid during that call only (the SDK
// reuses the array of a batch's events), but its slices and strings stay
// valid as long as they are referenced — the garbage collector keeps the
// buffer — so keeping e.Value, or a copy of *e, is safe. Treat the bytes as
// read-only: an output whose Key is the event's Key (the same slice), or
// whose Headers are the event's Headers (the same slice, unchanged), is
// sent with the result-batch flags that tell the host to keep the input's
// instead of copying them back (see Forward), so key bytes changed in place
// would not be seen.
type Event struct {
	Key     []byte
	Value   []byte
	Headers []Header
	// Timestamp is the event time in milliseconds since the Unix epoch.
	Timestamp int64
	// Topic, Partition and Offset say where the event was read from.
	Topic     string
	Partition int32
	Offset    int64
	// Index is the event's 0-based position in its batch (or group).
	Index int

	// the encoded headers (after their count) as decoded, to tell whether
	// an output's Headers are still the event's
	rawHeaders []byte
}

// Header returns the value of the last header called name, and whether
// there is one. The value is nil for a header that is present without a
// value.
func (e *Event) Header(name string) ([]byte, bool) {
	return lookupHeader(e.Headers, name)
}

// ValueString returns the value as a string, or a Failure with code
// "invalid-utf8" when it is absent or not UTF-8.
func (e *Event) ValueString() (string, error) {
	return utf8String(e.Value, "value")
}

// KeyString returns the key as a string, or a Failure with code
// "invalid-utf8" when it is absent or not UTF-8.
func (e *Event) KeyString() (string, error) {
	return utf8String(e.Key, "key")
}

// JSON unmarshals the value into v (as encoding/json.Unmarshal). An absent
// value, invalid UTF-8 or invalid JSON is a Failure with code
// "invalid-json".
func (e *Event) JSON(v any) error {
	return unmarshalJSON(e.Value, "value", v)
}

// Pair is a joiner's input: the two sides of a join.
type Pair struct {
	// Key is the join key (nil: absent).
	Key []byte
	// Left and Right are the two sides' values; nil when that side has no
	// record (a left or outer join), non-nil (possibly empty) otherwise.
	Left  []byte
	Right []byte
	// Headers are those of the record that caused the join.
	Headers []Header
	// Timestamp is the join result's, the default of its outputs.
	Timestamp int64
	// Index is the pair's 0-based position in its batch.
	Index int
}

// Header returns the value of the last header called name, and whether
// there is one.
func (p *Pair) Header(name string) ([]byte, bool) {
	return lookupHeader(p.Headers, name)
}

// LeftJSON unmarshals the left side into v; an absent side, invalid UTF-8
// or invalid JSON is a Failure with code "invalid-json".
func (p *Pair) LeftJSON(v any) error {
	return unmarshalJSON(p.Left, "left side", v)
}

// RightJSON unmarshals the right side into v, like LeftJSON.
func (p *Pair) RightJSON(v any) error {
	return unmarshalJSON(p.Right, "right side", v)
}

// Window is a time window, [Start, End) in milliseconds.
type Window struct {
	Start int64
	End   int64
}

func lookupHeader(headers []Header, name string) ([]byte, bool) {
	for i := len(headers) - 1; i >= 0; i-- {
		if headers[i].Name == name {
			return headers[i].Value, true
		}
	}
	return nil, false
}

func utf8String(b []byte, what string) (string, error) {
	if b == nil {
		return "", Failf("invalid-utf8", "the %s is absent", what)
	}
	if !utf8.Valid(b) {
		return "", Failf("invalid-utf8", "the %s is not UTF-8", what)
	}
	return string(b), nil
}

// ValidJSON reports whether b is one valid JSON text in valid UTF-8.
// encoding/json alone accepts invalid UTF-8 inside strings (it substitutes
// U+FFFD); Weir's operators in every language reject it.
func ValidJSON(b []byte) bool {
	return b != nil && utf8.Valid(b) && json.Valid(b)
}

func unmarshalJSON(b []byte, what string, v any) error {
	if b == nil {
		return Failf("invalid-json", "the %s is absent", what)
	}
	if !utf8.Valid(b) {
		return Failf("invalid-json", "the %s is not UTF-8", what)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return Failf("invalid-json", "cannot read the %s as JSON: %v", what, err)
	}
	return nil
}
