// Command mapflow runs one function over many parameter sets, locally or on a cluster, and
// records every task in an SQLite catalog. See the README for the language and the commands.
package main

import (
	"os"
)

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}
