// Package hugepages asks Linux to back the first megabytes of the Go heap with
// transparent huge pages, which the Go runtime itself never asks for.
//
// A short command (a build, the cron job's run) touches most of its heap for
// the first time, a 4 KB page at a time. On a virtual machine each such page
// fault costs 3-17 µs (bench/cmd/benchfault measures it), and an incremental
// build of a 10,000-piece archive takes some 12,000 of them: a third of its
// time at the slow end. In the kernel's default mode ("madvise") only memory
// advised MADV_HUGEPAGE gets 2 MB pages, one fault for 512 small ones.
package hugepages
