//go:build !wasip1

package weir

import (
	"fmt"
	"maps"
	"os"
	"sync"
)

var native struct {
	sync.Mutex
	config   map[string]string
	counters map[string]uint64
}

func hostLog(level Level, message string) {
	fmt.Fprintf(os.Stderr, "[weir %s] %s\n", level, message)
}

func hostConfigGet(key string) (string, bool) {
	native.Lock()
	defer native.Unlock()
	v, ok := native.config[key]
	return v, ok
}

func hostConfigEntries() map[string]string {
	native.Lock()
	defer native.Unlock()
	return maps.Clone(native.config)
}

func hostCounterAdd(name string, delta uint64) {
	native.Lock()
	defer native.Unlock()
	if native.counters == nil {
		native.counters = map[string]uint64{}
	}
	native.counters[name] += delta
}

// SetTestConfig sets what Config and ConfigEntries return in native builds
// (tests). It does not exist in wasm builds.
func SetTestConfig(config map[string]string) {
	native.Lock()
	defer native.Unlock()
	native.config = maps.Clone(config)
}

// TestCounters returns the counters CounterAdd added to in native builds
// (tests), and resets them. It does not exist in wasm builds.
func TestCounters() map[string]uint64 {
	native.Lock()
	defer native.Unlock()
	c := native.counters
	native.counters = nil
	return c
}
