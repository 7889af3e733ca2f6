// Command benchfault measures what a page fault costs on this machine: the
// time to touch, one byte per page, memory just mapped, first in 4 KB pages,
// then with the kernel asked for transparent huge pages (MADV_HUGEPAGE; used
// only where /sys/kernel/mm/transparent_hugepage/enabled allows). A process
// that allocates tens of megabytes pays the first figure for each 4 KB of them.
//
//	benchfault [-mb 64] [-runs 3]
package main

import (
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"
)

const page = 4096

func main() {
	mb := flag.Int("mb", 64, "megabytes to map and touch per run")
	runs := flag.Int("runs", 3, "runs of each kind")
	flag.Parse()
	size := *mb << 20
	for range *runs {
		small, err := touch(size, false)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchfault:", err)
			os.Exit(1)
		}
		huge, err := touch(size, true)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchfault:", err)
			os.Exit(1)
		}
		fmt.Printf("%d MB: 4 KB pages %v (%.2f µs a page), huge pages asked for %v\n",
			*mb, small.Round(time.Millisecond), float64(small.Nanoseconds())/1e3/float64(size/page), huge.Round(time.Millisecond))
	}
}

// touch maps size bytes of fresh anonymous memory, writes one byte in each
// page and returns how long that took.
func touch(size int, hugePages bool) (time.Duration, error) {
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return 0, err
	}
	defer syscall.Munmap(b)
	start := time.Now()
	if hugePages {
		if err := syscall.Madvise(b, 14 /* MADV_HUGEPAGE */); err != nil {
			return 0, err
		}
	}
	for i := 0; i < size; i += page {
		b[i] = 1
	}
	return time.Since(start), nil
}
