// Package examples_test checks that README.md shows the example programs
// as they are: each Go block there follows a line `<!-- file: PATH -->`
// naming the file it must equal, and every Go block names one.
package examples_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var goBlock = regexp.MustCompile("(?s)(<!-- file: ([^ ]+) -->\n)?```go\n(.*?)```")

func TestREADMEShowsTheExamples(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlock.FindAllStringSubmatch(string(readme), -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no Go block")
	}
	for i, b := range blocks {
		path, code := b[2], b[3]
		if path == "" {
			t.Errorf("Go block %d of README.md names no file: every snippet must be a compiled, tested example", i+1)
			continue
		}
		want, err := os.ReadFile("../" + path)
		if err != nil {
			t.Errorf("README.md shows %s: %v", path, err)
			continue
		}
		if code != string(want) {
			t.Errorf("README.md's block for %s differs from the file (copy the file into the block):\n%s", path, firstDiff(code, string(want)))
		}
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d: README %q, file %q", i+1, gl, wl)
		}
	}
	return ""
}
