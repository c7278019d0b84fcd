// Package procmem reads the process's memory as the kernel counts it, for
// the stats endpoints of the daemon and of the benchmark servers.
package procmem

import (
	"bytes"
	"os"
	"strconv"
)

// RSS returns the process's resident set size in bytes (resident pages
// in /proc/self/statm times the page size), or -1 where it cannot be read.
func RSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return -1
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return -1
	}
	return pages * int64(os.Getpagesize())
}

// Peak returns the process's peak resident set size so far in bytes (VmHWM
// in /proc/self/status), or -1 where it cannot be read.
func Peak() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range bytes.Lines(b) {
		v, ok := bytes.CutPrefix(line, []byte("VmHWM:"))
		if !ok {
			continue
		}
		f := bytes.Fields(v) // "1234 kB"
		if len(f) != 2 || string(f[1]) != "kB" {
			return -1
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return -1
		}
		return kb << 10
	}
	return -1
}
