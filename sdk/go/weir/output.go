package weir

// Output is a record an operator produces.
//
// The zero value is an output with no key, no value and no headers, the
// input's timestamp and the stage's default route. An output without a key
// from a joiner or an aggregator gets the pair's or the accumulator's key
// from the host.
type Output struct {
	// Key and Value: nil is absent, a non-nil empty slice is present and
	// empty ([]byte{}).
	Key   []byte
	Value []byte
	// Headers: in order; names need not be unique.
	Headers []Header
	// Timestamp is used only when HasTimestamp is set; otherwise the output
	// keeps the input's timestamp (an event's, a pair's).
	Timestamp    int64
	HasTimestamp bool
	// Route is a named route of the stage; "" is the stage's next hop or
	// default sink.
	Route string
	// HasRoute sends Route even when it is "" (the ABI tells an empty route
	// name from none; a route called "" is seldom what you want). A
	// non-empty Route is sent without it.
	HasRoute bool
}

// Forward returns an output with the event's key, value and headers: the
// event unchanged. Because Key and Headers are the event's own slices, the
// result tells the host to keep the input's key and headers instead of
// copying them back (set Key or Headers to something else and they are
// written out as usual).
func Forward(e *Event) Output {
	return Output{Key: e.Key, Value: e.Value, Headers: e.Headers}
}

// At returns o with its timestamp set to ms.
func (o Output) At(ms int64) Output {
	o.Timestamp, o.HasTimestamp = ms, true
	return o
}

// To returns o sent to the named route.
func (o Output) To(route string) Output {
	o.Route = route
	return o
}

// WithHeader returns o with one more header (a new slice: the event's
// headers, if o had them, are not changed).
func (o Output) WithHeader(name string, value []byte) Output {
	h := make([]Header, len(o.Headers), len(o.Headers)+1)
	copy(h, o.Headers)
	o.Headers = append(h, Header{Name: name, Value: value})
	return o
}

// Text returns s as present bytes ([]byte{} for ""), for Key or Value.
func Text(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return []byte(s)
}

// Result is what one input (event, pair, group event or emit request)
// produced: outputs, or a failure. It is the decoded form of a result-batch
// entry, for tests.
type Result struct {
	Outputs []Output
	// Failure is non-nil when the input failed; Outputs is then empty.
	Failure *Failure
}
