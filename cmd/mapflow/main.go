// Command mapflow runs one function over many parameter sets, locally or on a cluster, and
// records every task in an SQLite catalog. See the README for the language and the commands.
package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

func main() {

	// $MAPFLOW_CPUPROFILE names a file for a CPU profile of the command, for benchmarking.
	if path := os.Getenv("MAPFLOW_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			if err := pprof.StartCPUProfile(f); err == nil {
				code := Main(os.Args[1:], os.Stdout, os.Stderr)
				pprof.StopCPUProfile()
				f.Close()
				os.Exit(code)
			}
			f.Close()
		}
		fmt.Fprintf(os.Stderr, "mapflow: cannot write the CPU profile %s\n", path)
	}
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}
