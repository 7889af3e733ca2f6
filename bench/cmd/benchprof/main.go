// Command benchprof runs one publisher command in-process under the Go CPU profiler,
// so the profile covers exactly the code the real binary runs (cli.Main), and
// optionally under the execution tracer (where the cores wait: go tool trace).
//
//	benchprof -cpuprofile cpu.prof [-memprofile mem.prof] [-trace trace.out] -- build --config publisher.yaml
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"

	"publisher/internal/cli"
)

func main() {
	cpu := flag.String("cpuprofile", "", "write a CPU profile to this file")
	mem := flag.String("memprofile", "", "write a heap (allocations) profile to this file")
	traceTo := flag.String("trace", "", "write an execution trace to this file")
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
	var tf *os.File
	if *traceTo != "" {
		if tf, err = os.Create(*traceTo); err == nil {
			err = trace.Start(tf)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchprof:", err)
			os.Exit(1)
		}
	}
	status := cli.Main(flag.Args(), os.Environ(), os.Stdout, os.Stderr, false)
	pprof.StopCPUProfile()
	if tf != nil {
		trace.Stop()
		if err := tf.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "benchprof:", err)
			os.Exit(1)
		}
	}
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
