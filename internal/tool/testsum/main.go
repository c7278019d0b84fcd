// Command testsum digests the JSON stream of `go test -json` for make test:
// it prints a line per package (as go test does without -v) and the output
// of every test that failed, and adds the counts of tests that passed,
// failed and were skipped (subtests included) to a tally file. With -total
// it prints the tally as one line, "N passed, M failed, K skipped", the
// last line of make test.
//
//	go test -json ./... | go run ./internal/testsum -tally .test/tally
//	go run ./internal/testsum -add pass -tally .test/tally   # a check that is not a go test
//	go run ./internal/testsum -total .test/tally
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

// counts are a tally's three numbers.
type counts struct{ pass, fail, skip int }

func main() {
	tally := flag.String("tally", "", "the tally file to add this run's counts to")
	add := flag.String("add", "", "add one check with this outcome (pass, fail or skip) instead of reading a stream")
	total := flag.String("total", "", "print the tally in this file as the summary line, and exit 1 if anything failed")
	flag.Parse()
	switch {
	case *total != "":
		c, err := readTally(*total)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsum:", err)
			os.Exit(2)
		}
		fmt.Printf("%d passed, %d failed, %d skipped\n", c.pass, c.fail, c.skip)
		if c.fail > 0 {
			os.Exit(1)
		}
	case *add != "":
		var c counts
		switch *add {
		case "pass":
			c.pass = 1
		case "fail":
			c.fail = 1
		case "skip":
			c.skip = 1
		default:
			fmt.Fprintf(os.Stderr, "testsum: -add %q: want pass, fail or skip\n", *add)
			os.Exit(2)
		}
		if err := addTally(*tally, c); err != nil {
			fmt.Fprintln(os.Stderr, "testsum:", err)
			os.Exit(2)
		}
	default:
		c, ok := digest(os.Stdin, os.Stdout)
		if *tally != "" {
			if err := addTally(*tally, c); err != nil {
				fmt.Fprintln(os.Stderr, "testsum:", err)
				os.Exit(2)
			}
		}
		if !ok {
			os.Exit(1)
		}
	}
}

// digest reads a go test -json stream from r, writes the digest to w and
// returns the counts and whether everything passed.
func digest(r io.Reader, w io.Writer) (counts, bool) {
	var c counts
	ok := true
	outputs := map[string]*strings.Builder{} // by package and test
	failedTests := map[string]bool{}         // packages with a failed test
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if json.Unmarshal(line, &e) != nil || e.Action == "" {
			fmt.Fprintf(w, "%s\n", line) // not an event: go vet or the build said it
			continue
		}
		key := e.Package + "\x00" + e.Test
		switch e.Action {
		case "output", "build-output":
			b := outputs[key]
			if b == nil {
				b = new(strings.Builder)
				outputs[key] = b
			}
			b.WriteString(e.Output)
		case "pass", "fail", "skip":
			out := outputs[key]
			delete(outputs, key)
			if e.Test == "" {
				ok = packageDone(w, e, out, failedTests[e.Package], &c) && ok
				continue
			}
			switch e.Action {
			case "pass":
				c.pass++
			case "skip":
				c.skip++
			case "fail":
				c.fail++
				ok = false
				failedTests[e.Package] = true
				if out != nil {
					io.WriteString(w, out.String())
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(w, "testsum: reading the test stream:", err)
		c.fail++
		ok = false
	}
	return c, ok
}

// packageDone prints a package's line; a package that failed without a
// failing test (it did not build, or panicked outside a test) counts as one
// failure, with its output.
func packageDone(w io.Writer, e event, out *strings.Builder, hadFailedTest bool, c *counts) bool {
	switch e.Action {
	case "pass":
		fmt.Fprintf(w, "ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
		return true
	case "skip":
		fmt.Fprintf(w, "?   \t%s\t[no test files]\n", e.Package)
		return true
	}
	if !hadFailedTest {
		c.fail++
		if out != nil {
			io.WriteString(w, out.String())
		}
	}
	fmt.Fprintf(w, "FAIL\t%s\t%.3fs\n", e.Package, e.Elapsed)
	return false
}

func readTally(path string) (counts, error) {
	var c counts
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var p, f, s int
		if _, err := fmt.Sscan(line, &p, &f, &s); err != nil {
			return c, fmt.Errorf("%s: line %q: %v", path, line, err)
		}
		c.pass += p
		c.fail += f
		c.skip += s
	}
	return c, nil
}

func addTally(path string, c counts) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "%d %d %d\n", c.pass, c.fail, c.skip); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
