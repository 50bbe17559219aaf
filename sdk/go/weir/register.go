package weir

import "fmt"

// The module's operator: one per module, registered by Processor, Map,
// MapValue, Filter, FlatMap, Joiner or Aggregate (from an init function),
// and called by the exports. registeredName is the function that
// registered it, for messages.
var (
	registeredName string
	processor      *ProcessOperator
	joiner         *JoinOperator
	aggregator     *AggregateOperator
)

// register makes the module's operator the one of the non-nil p, j or a; a
// second registration panics.
func register(name string, p *ProcessOperator, j *JoinOperator, a *AggregateOperator) {
	if registeredName != "" {
		panic(fmt.Sprintf("weir: %s called, but this module already has an operator (from %s); a module holds one operator", name, registeredName))
	}
	registeredName = name
	processor, joiner, aggregator = p, j, a
}
