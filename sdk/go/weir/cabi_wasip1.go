//go:build wasip1

package weir

// The core-module side of every Weir world, by hand: the canonical ABI
// (MAX_FLAT_PARAMS 16, MAX_FLAT_RESULTS 1) lowering of each export of
// wit/weir.wit, plus the allocators the component needs. All of them are
// exported by every Go operator; `weir componentize --world W` lifts the
// ones world W has and ignores the rest.
//
//	weir:stream/processor@0.1.0#process   (ptr, len) -> retptr {ptr, len}
//	weir:stream/joiner@0.1.0#join         (ptr, len) -> retptr {ptr, len}
//	weir:stream/aggregator@0.1.0#add      (ptr, n)   -> retptr {ptr, n} of folded
//	weir:stream/aggregator@0.1.0#merge    (key?, a, b: 7 x i32) -> retptr result<bytes, failure>
//	weir:stream/aggregator@0.1.0#emit     (ptr, n)   -> retptr {ptr, len}
//	weir:stream/subtractor@0.1.0#subtract (ptr, n)   -> retptr {ptr, n} of folded
//	weir:stream/migrator@0.1.0#migrate    (previous, key?, acc: 7 x i32) -> retptr result<bytes, failure>
//	cabi_realloc                          the host's allocations: arguments, import results
//	cabi_realloc_adapter                  the WASI adapter's (see below)
//
// Layouts (size, align): option<list<u8>> (12, 4): u8 tag @0, ptr @4, len @8.
// option<window> (24, 8): u8 tag @0, start @8, end @16. group (64, 8): key @0,
// window @16, acc @40, events @52. emit-request (48, 8): key @0, window @16,
// acc @40. folded (16, 4): acc @0, failures @8. tuple<u32, failure> (20, 4):
// index @0, code @4, message @12. result<bytes, failure> (20, 4): u8 tag @0,
// ok ptr @4 len @8 | err code @4, message @12.
//
// Memory: the host's allocations (cabi_realloc) are Go slices, kept alive
// ("pinned") in a map until the export they are the arguments of returns;
// Go's garbage collector does not move objects, so their addresses stay
// valid. Events alias those slices, so an operator may keep them. What an
// export returns stays referenced until the next export starts (by then
// the host has copied it), so no post-return function is needed.
//
// The garbage collector is off outside exports and import calls that
// return something: the canonical ABI runs cabi_realloc with the instance's
// may_leave flag cleared, so realloc must not call an import, and Go's
// allocator calls WASI (the clock, the scheduler's poll) when it starts a
// GC cycle — which would trap ("cannot leave component instance"). With
// the GC off, an allocation never starts one. Every export turns it on
// for its duration (at the operator's setting, GOGC 100 unless it called
// debug.SetGCPercent) and off again before it returns.

import (
	"encoding/binary"
	"fmt"
	"runtime/debug"
	"unsafe"
)

// gcPercent is the collector's setting during exports.
var gcPercent = debug.SetGCPercent(-1)

// gcOn turns the collector on for an export, at the operator's setting:
// if it changed the setting since (an init function calling
// debug.SetGCPercent), that is adopted.
func gcOn() {
	if p := debug.SetGCPercent(gcPercent); p != -1 {
		gcPercent = p
		debug.SetGCPercent(p)
	}
}

// gcOff turns the collector off (finishing a cycle in progress), keeping
// the setting the operator may have changed during the export.
func gcOff() {
	gcPercent = debug.SetGCPercent(-1)
}

// pins are the host's allocations (address -> slice), kept alive until
// the end of the export call they belong to.
var pins = map[uintptr][]byte{}

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

//go:wasmexport cabi_realloc
func cabiRealloc(old, oldSize, align, size uint32) uint32 {
	if size == 0 {
		if oldSize != 0 {
			delete(pins, uintptr(old))
		}
		return align // a non-null, aligned dummy address that is never read
	}
	b := alloc(size, align)
	if oldSize != 0 {
		if prev, ok := pins[uintptr(old)]; ok {
			copy(b, prev)
			delete(pins, uintptr(old))
		}
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	pins[p] = b
	return uint32(p)
}

// alloc returns size zeroed bytes at an address aligned to align.
func alloc(size, align uint32) []byte {
	if align <= 8 {
		words := make([]uint64, (size+7)/8) // 8-aligned
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), size)
	}
	b := make([]byte, size+align)
	off := (align - uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))%align) % align
	return b[off : off+size : off+size]
}

// The preview1 adapter that `weir componentize` links in allocates its
// stack and state (once, on its first call) through this function if the
// module exports it, else through cabi_realloc. Go's runtime calls WASI
// while it starts, before its allocator works, so the adapter gets memory
// from a static arena instead: no Go allocation, no stack growth. (The
// adapter of wasmtime 48 takes 128 KiB: a 64 KiB stack and its state.)
var adapterArena [256 << 10]byte
var adapterUsed uintptr

//go:wasmexport cabi_realloc_adapter
//go:nosplit
func cabiReallocAdapter(old, oldSize, align, size uint32) uint32 {
	if align == 0 {
		align = 1
	}
	base := uintptr(unsafe.Pointer(&adapterArena))
	p := (base + adapterUsed + uintptr(align) - 1) &^ (uintptr(align) - 1)
	if p+uintptr(size) > base+uintptr(len(adapterArena)) {
		return 0 // the adapter traps on a null allocation
	}
	adapterUsed = p + uintptr(size) - base
	return uint32(p)
}

// hostBytes returns the slice of a host allocation at ptr (an argument of
// the current export); len 0 may come with any address.
func hostBytes(ptr, n uint32) []byte {
	if n == 0 {
		return []byte{}
	}
	b, ok := pins[uintptr(ptr)]
	if !ok || uint32(len(b)) < n {
		panic(fmt.Sprintf("weir: the host passed %d bytes at %#x, which it did not allocate with cabi_realloc", n, ptr))
	}
	return b[:n:n]
}

// takeHostAlloc is hostBytes for an import's result: it also unpins it (the
// caller copies what it needs).
func takeHostAlloc(ptr, n uint32) []byte {
	b := hostBytes(ptr, n)
	if n != 0 {
		delete(pins, uintptr(ptr))
	}
	return b
}

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
// needed.
func begin(what string, ok bool) {
	gcOn()
	clear(retained)
	retained = retained[:0]
	if !ok {
		if registeredName == "" {
			panic(fmt.Sprintf("weir: the host called %s, but no operator is registered (call weir.Processor, weir.Map, weir.Joiner, weir.Aggregate… from an init function)", what))
		}
		panic(fmt.Sprintf("weir: the host called %s, but this module's operator is a %s: build it for its world", what, registeredName))
	}
}

// end finishes an export call: its arguments are unpinned, and a panic
// that got this far (a malformed batch, an accumulator that does not
// encode) is logged at error level, where the host finds a trap's reason,
// and then traps.
func end() {
	clear(pins)
	gcOff()
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
