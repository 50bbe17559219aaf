//go:build wasip1

package weir

import "unsafe"

// The preview1 adapter that `weir componentize` links in allocates its
// stack and state (once, on its first call) through cabi_realloc_adapter if
// the module exports it, else through cabi_realloc. Go's runtime calls WASI
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
