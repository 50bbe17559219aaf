//go:build wasip1

package weir

// The core-module side of every Weir world, by hand: the canonical ABI
// (MAX_FLAT_PARAMS 16, MAX_FLAT_RESULTS 1) lowering of each export of
// wit/weir.wit. Every Go operator exports all of them, with the two
// allocators; `weir componentize --world W` lifts the ones world W has and
// ignores the rest.
//
//	weir:stream/processor@0.1.0#process   (ptr, len) -> retptr {ptr, len}
//	weir:stream/joiner@0.1.0#join         (ptr, len) -> retptr {ptr, len}
//	weir:stream/aggregator@0.1.0#add      (ptr, n)   -> retptr {ptr, n} of folded
//	weir:stream/aggregator@0.1.0#merge    (key?, a, b: 7 x i32) -> retptr result<bytes, failure>
//	weir:stream/aggregator@0.1.0#emit     (ptr, n)   -> retptr {ptr, len}
//	weir:stream/subtractor@0.1.0#subtract (ptr, n)   -> retptr {ptr, n} of folded
//	weir:stream/migrator@0.1.0#migrate    (previous, key?, acc: 7 x i32) -> retptr result<bytes, failure>
//	cabi_realloc                          the host's allocations: arguments, import results (alloc_wasip1.go)
//	cabi_realloc_adapter                  the WASI adapter's (adapter_wasip1.go)
//
// Layouts (size, align): option<list<u8>> (12, 4): u8 tag @0, ptr @4, len @8.
// option<window> (24, 8): u8 tag @0, start @8, end @16. group (64, 8): key @0,
// window @16, acc @40, events @52. emit-request (48, 8): key @0, window @16,
// acc @40. folded (16, 4): acc @0, failures @8. tuple<u32, failure> (20, 4):
// index @0, code @4, message @12. result<bytes, failure> (20, 4): u8 tag @0,
// ok ptr @4 len @8 | err code @4, message @12.
//
// What an export returns stays referenced until the next export starts (by
// then the host has copied it), so no post-return function is needed. The
// arguments are the host's allocations (alloc_wasip1.go); the collector is
// on during an export only (gc_wasip1.go).

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// retained keeps the previous export's results alive until the host has
// copied them (it has, by the time the next export starts).
var retained [][]byte

// One return area for every export (the largest is 20 bytes, align 4).
var retArea [5]uint32

// resultBuf is the result-batch buffer, reused from call to call, and
// eventBuf the array of a batch's decoded events.
var (
	resultBuf results
	eventBuf  []Event
)

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// addr is the address of b's first byte (0 for an empty b), kept alive
// until the next export call.
func addr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	retained = append(retained, b)
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

func retAddr() uint32 { return uint32(uintptr(unsafe.Pointer(&retArea))) }

// begin starts an export call: the previous call's results are no longer
// needed (so they are garbage before the collector goes on).
func begin(what string, ok bool) {
	inExport = true
	clear(retained)
	retained = retained[:0]
	gcOn()
	if !ok {
		if registeredName == "" {
			panic(fmt.Sprintf("weir: the host called %s, but no operator is registered (call weir.Processor, weir.Map, weir.Joiner, weir.Aggregate… from an init function)", what))
		}
		panic(fmt.Sprintf("weir: the host called %s, but this module's operator is a %s: build it for its world", what, registeredName))
	}
}

// end finishes an export call: its arguments are unpinned, and a panic
// that got this far (a malformed batch, no operator, a panic in an
// aggregator's Init, an accumulator that does not encode) is logged at error
// level, where the host finds a trap's reason, and then traps.
func end() {
	clear(pins)
	gcOff()
	inExport = false
	if v := recover(); v != nil {
		Log(LevelError, fmt.Sprint(v))
		panic(v)
	}
}

func mustDecode(err error) {
	if err != nil {
		panic(fmt.Sprintf("weir: the host sent a %v", err))
	}
}

func returnList(b []byte, n uint32) uint32 {
	retArea[0], retArea[1] = addr(b), n
	return retAddr()
}

//go:wasmexport weir:stream/processor@0.1.0#process
func exportProcess(ptr, n uint32) uint32 {
	defer end()
	begin("process", processor != nil)
	mustDecode(processor.process(hostBytes(ptr, n), &resultBuf, &eventBuf))
	return returnList(resultBuf.w.buf, uint32(len(resultBuf.w.buf)))
}

//go:wasmexport weir:stream/joiner@0.1.0#join
func exportJoin(ptr, n uint32) uint32 {
	defer end()
	begin("join", joiner != nil)
	mustDecode(joiner.join(hostBytes(ptr, n), &resultBuf))
	return returnList(resultBuf.w.buf, uint32(len(resultBuf.w.buf)))
}

//go:wasmexport weir:stream/aggregator@0.1.0#add
func exportAdd(ptr, n uint32) uint32 {
	defer end()
	begin("add", aggregator != nil)
	return foldGroups(ptr, n, false)
}

//go:wasmexport weir:stream/subtractor@0.1.0#subtract
func exportSubtract(ptr, n uint32) uint32 {
	defer end()
	begin("subtract", aggregator != nil)
	return foldGroups(ptr, n, true)
}

// optBytes reads an option<list<u8>> at b: nil for none.
func optBytes(b []byte) []byte {
	if b[0] == 0 {
		return nil
	}
	return hostBytes(le32(b[4:]), le32(b[8:]))
}

// optWindow reads an option<window> at b.
func optWindow(b []byte) *Window {
	if b[0] == 0 {
		return nil
	}
	return &Window{Start: int64(le64(b[8:])), End: int64(le64(b[16:]))}
}

func foldGroups(ptr, n uint32, subtract bool) uint32 {
	groups := hostBytes(ptr, n*64)
	folded := alloc(n*16, 4)
	for i := uint32(0); i < n; i++ {
		g := groups[i*64:]
		key := optBytes(g)
		acc := optBytes(g[40:])
		events, err := DecodeEvents(hostBytes(le32(g[52:]), le32(g[56:])))
		mustDecode(err)
		newAcc, failures := aggregator.fold(key, acc, events, subtract)
		f := folded[i*16:]
		binary.LittleEndian.PutUint32(f, addr(newAcc))
		binary.LittleEndian.PutUint32(f[4:], uint32(len(newAcc)))
		list := alloc(uint32(len(failures))*20, 4)
		for j, ef := range failures {
			t := list[j*20:]
			binary.LittleEndian.PutUint32(t, uint32(ef.Index))
			putString(t[4:], ef.Failure.Code)
			putString(t[12:], ef.Failure.Message)
		}
		binary.LittleEndian.PutUint32(f[8:], addr(list))
		binary.LittleEndian.PutUint32(f[12:], uint32(len(failures)))
	}
	return returnList(folded, n)
}

// putString writes a string's (ptr, len) at b, keeping a UTF-8 copy alive.
func putString(b []byte, s string) {
	c := []byte(validUTF8(s))
	binary.LittleEndian.PutUint32(b, addr(c))
	binary.LittleEndian.PutUint32(b[4:], uint32(len(c)))
}

// returnResult writes a result<bytes, failure> into the return area.
func returnResult(ok []byte, f *Failure) uint32 {
	retArea = [5]uint32{}
	if f == nil {
		if ok == nil {
			ok = []byte{}
		}
		retArea[1], retArea[2] = addr(ok), uint32(len(ok))
		return retAddr()
	}
	retArea[0] = 1
	code, message := []byte(validUTF8(f.Code)), []byte(validUTF8(f.Message))
	retArea[1], retArea[2] = addr(code), uint32(len(code))
	retArea[3], retArea[4] = addr(message), uint32(len(message))
	return retAddr()
}

//go:wasmexport weir:stream/aggregator@0.1.0#merge
func exportMerge(keyTag, keyPtr, keyLen, aPtr, aLen, bPtr, bLen uint32) uint32 {
	defer end()
	begin("merge", aggregator != nil)
	var key []byte
	if keyTag != 0 {
		key = hostBytes(keyPtr, keyLen)
	}
	return returnResult(aggregator.merge(key, hostBytes(aPtr, aLen), hostBytes(bPtr, bLen)))
}

//go:wasmexport weir:stream/migrator@0.1.0#migrate
func exportMigrate(prevPtr, prevLen, keyTag, keyPtr, keyLen, accPtr, accLen uint32) uint32 {
	defer end()
	begin("migrate", aggregator != nil)
	var key []byte
	if keyTag != 0 {
		key = hostBytes(keyPtr, keyLen)
	}
	previous := string(hostBytes(prevPtr, prevLen))
	return returnResult(aggregator.migrate(previous, key, hostBytes(accPtr, accLen)))
}

//go:wasmexport weir:stream/aggregator@0.1.0#emit
func exportEmit(ptr, n uint32) uint32 {
	defer end()
	begin("emit", aggregator != nil)
	requests := hostBytes(ptr, n*48)
	resultBuf.begin(int(n), 64*int(n)+16)
	for i := uint32(0); i < n; i++ {
		r := requests[i*48:]
		aggregator.emit(optBytes(r), hostBytes(le32(r[40:]), le32(r[44:])), optWindow(r[16:]), &resultBuf)
	}
	return returnList(resultBuf.w.buf, uint32(len(resultBuf.w.buf)))
}
