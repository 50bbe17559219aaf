//go:build !wasip1

package weir

import "runtime/debug"

func setGCPercent(percent int) int {
	return debug.SetGCPercent(percent)
}
