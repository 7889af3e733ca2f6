//go:build !linux

package hugepages

// ForHeap does nothing where there are no transparent huge pages to ask for.
func ForHeap(n int) int { return 0 }
