//go:build wasip1

package weir

import (
	"maps"
	"runtime/debug"
	"sync"
	"unsafe"
)

// The imports of world `imports` (wit/weir.wit), lowered by the canonical
// ABI: a string parameter is (ptr, len) (Go passes a string parameter of a
// wasmimport exactly so), an enum its discriminant, u64 an i64; results that
// do not fit one core value are written to a return area whose address is
// the last parameter. The host allocates returned strings and lists with
// cabi_realloc (see cabi_wasip1.go). config.get is not imported: Config
// reads the entries, fetched once.

//go:wasmimport weir:stream/log@0.1.0 log
func importLog(level int32, message string)

//go:wasmimport weir:stream/config@0.1.0 entries
func importConfigEntries(ret unsafe.Pointer)

//go:wasmimport weir:stream/metrics@0.1.0 counter-add
func importCounterAdd(name string, delta uint64)

// Return areas of the imports. They are globals, not locals: a goroutine's
// stack can move while the host is writing to one (the host calls
// cabi_realloc, Go code, in the middle of the import call).
var (
	// list<tuple<string, string>>: ptr, len
	configEntriesRet [2]uint32
)

func hostLog(level Level, message string) {
	importLog(int32(level), message)
}

// The configuration is fixed for an instance's life: it is read from the
// host once (one import call, with the collector off: the host calls
// cabi_realloc for the result, which must not start a GC cycle) and
// served from here. (Only Config and ConfigEntries refer to it, so a
// module that never reads its configuration does not import it.)
var (
	configOnce sync.Once
	config     map[string]string
)

func loadConfig() {
	p := collectorOff()
	defer debug.SetGCPercent(p)
	configEntriesRet = [2]uint32{}
	importConfigEntries(unsafe.Pointer(&configEntriesRet))
	n := configEntriesRet[1]
	list := takeHostAlloc(configEntriesRet[0], n*16)
	entries := make(map[string]string, n)
	for i := uint32(0); i < n; i++ {
		el := list[i*16:]
		key := string(takeHostAlloc(le32(el), le32(el[4:])))
		entries[key] = string(takeHostAlloc(le32(el[8:]), le32(el[12:])))
	}
	config = entries
}

func hostConfigGet(key string) (string, bool) {
	configOnce.Do(loadConfig)
	v, ok := config[key]
	return v, ok
}

func hostConfigEntries() map[string]string {
	configOnce.Do(loadConfig)
	return maps.Clone(config)
}

func hostCounterAdd(name string, delta uint64) {
	importCounterAdd(name, delta)
}
