// Command coffer is the Coffer backup service and its command-line client.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "coffer: usage: coffer serve [--config FILE]")
	os.Exit(2)
}
