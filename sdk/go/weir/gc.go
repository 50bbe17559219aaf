package weir

// SetGCPercent sets the garbage collector's target percentage (GOGC; a
// negative value turns it off) for the operator's calls, and returns the
// previous setting, as debug.SetGCPercent does. Natively it is
// debug.SetGCPercent.
//
// In wasm the SDK keeps the collector off between calls and turns it on for
// each call at this setting (see gc_wasip1.go). Outside a call (in an init
// function) SetGCPercent only records the setting; debug.SetGCPercent there
// would turn the collector on until the host's first allocation, where a
// collection traps. During a call, debug.SetGCPercent with a percentage
// also works (the SDK keeps the change for later calls), but turn the
// collector off with SetGCPercent(-1): debug.SetGCPercent(-1) can leave
// Go's pacer in a state where a later host allocation traps.
func SetGCPercent(percent int) int {
	return setGCPercent(percent)
}
