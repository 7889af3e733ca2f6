// Command benchprof runs one publisher command in-process under the Go CPU profiler,
// so the profile covers exactly the code the real binary runs (cli.Main).
//
//	benchprof -cpuprofile cpu.prof [-memprofile mem.prof] -- build --config publisher.yaml
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"

	"publisher/internal/cli"
)

func main() {
	cpu := flag.String("cpuprofile", "", "write a CPU profile to this file")
	mem := flag.String("memprofile", "", "write a heap (allocations) profile to this file")
	flag.Parse()
	if *cpu == "" {
		fmt.Fprintln(os.Stderr, "benchprof: -cpuprofile is required")
		os.Exit(2)
	}
	f, err := os.Create(*cpu)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchprof:", err)
		os.Exit(1)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "benchprof:", err)
		os.Exit(1)
	}
	status := cli.Main(flag.Args(), os.Environ(), os.Stdout, os.Stderr, false)
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "benchprof:", err)
		os.Exit(1)
	}
	if *mem != "" {
		runtime.GC()
		mf, err := os.Create(*mem)
		if err == nil {
			err = pprof.Lookup("allocs").WriteTo(mf, 0)
			if cerr := mf.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchprof:", err)
			os.Exit(1)
		}
	}
	os.Exit(status)
}
