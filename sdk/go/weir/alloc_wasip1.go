//go:build wasip1

package weir

// The host's allocations. cabi_realloc returns Go slices, kept alive
// ("pinned") in a map until the export they are the arguments of returns;
// Go's garbage collector does not move objects, so their addresses stay
// valid. Events alias those slices, so an operator may keep them.

import (
	"fmt"
	"unsafe"
)

// pins are the host's allocations (address -> slice), kept alive until
// the end of the export call they belong to.
var pins = map[uintptr][]byte{}

//go:wasmexport cabi_realloc
func cabiRealloc(old, oldSize, align, size uint32) uint32 {
	gcOffOutsideExports()
	if size == 0 {
		if oldSize != 0 {
			delete(pins, uintptr(old))
		}
		return align // a non-null, aligned dummy address that is never read
	}
	b := alloc(size, align)
	reallocBytes += uint64(size)
	if oldSize != 0 {
		if prev, ok := pins[uintptr(old)]; ok {
			copy(b, prev)
			delete(pins, uintptr(old))
		} else {
			// not one of this export's: the canonical ABI never does
			// this, but realloc keeps the contents of any block
			copy(b, unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(nil), old)), min(oldSize, size)))
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
