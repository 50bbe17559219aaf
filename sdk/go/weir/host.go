package weir

import "fmt"

// Level is a log level of the host's log.
type Level int32

// The levels of weir:stream/log (the enum's discriminants).
const (
	LevelTrace Level = iota
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
)

var levelNames = [...]string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR"}

// String returns the level's name as the host's log shows it (TRACE,
// DEBUG, INFO, WARN, ERROR), or Level(n) for an unknown level.
func (l Level) String() string {
	if l >= 0 && int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("Level(%d)", int32(l))
}

// Log writes message into the host's log (tracing), tagged with the
// module. Invalid UTF-8 is replaced by U+FFFD. Natively: to standard error.
func Log(level Level, message string) {
	hostLog(level, validUTF8(message))
}

// Logf is Log with a formatted message.
func Logf(level Level, format string, args ...any) {
	Log(level, fmt.Sprintf(format, args...))
}

// Config returns the value of a deploy-time configuration key (the
// stage's `config` table, or `weir test --config k=v`), and whether it is
// set. Natively: what SetTestConfig set.
func Config(key string) (string, bool) {
	return hostConfigGet(validUTF8(key))
}

// ConfigEntries returns every configuration entry.
func ConfigEntries() map[string]string {
	return hostConfigEntries()
}

// CounterAdd adds delta to the counter name (created at zero on first
// use), which the host exports as a metric. A call's increments count only
// if the call succeeds, so a retried batch counts once. Natively: see
// TestCounters.
func CounterAdd(name string, delta uint64) {
	hostCounterAdd(validUTF8(name), delta)
}
