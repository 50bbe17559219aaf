package weir

// JoinOperator is a registered joiner (world `join`).
type JoinOperator struct {
	fn func(*Pair, *Emitter) error
}

// Joiner makes fn the module's operator (world `join`): called once per
// pair, in order, it emits zero or more outputs, or returns an error to
// fail the pair. An output without a key gets the pair's key, one without a
// timestamp the pair's. Call it once, from an init function or a
// package-level variable's initializer.
func Joiner(fn func(p *Pair, out *Emitter) error) *JoinOperator {
	op := &JoinOperator{fn: fn}
	register("Joiner", nil, op, nil)
	return op
}

// Join runs the operator over an encoded join-batch and returns the encoded
// result-batch: what the `join` export does, natively.
func (op *JoinOperator) Join(batch []byte) ([]byte, error) {
	var rs results
	if err := op.join(batch, &rs); err != nil {
		return nil, err
	}
	return rs.w.buf, nil
}

// Run runs the operator over pairs (through the batch encoding, as in the
// host) and returns their results.
func (op *JoinOperator) Run(pairs ...Pair) ([]Result, error) {
	out, err := op.Join(EncodePairs(pairs))
	if err != nil {
		return nil, err
	}
	return DecodeResults(out, nil)
}

func (op *JoinOperator) join(batch []byte, rs *results) error {
	pairs, err := DecodePairs(batch)
	if err != nil {
		return err
	}
	rs.begin(len(pairs), len(batch)+8*len(pairs)+64)
	em := Emitter{rs: rs}
	for i := range pairs {
		p := &pairs[i]
		rs.open()
		if f := guard(func() error { return op.fn(p, &em) }); f != nil {
			rs.fail(f)
		}
		rs.close()
	}
	return nil
}
