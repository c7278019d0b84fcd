package conformance

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines and prints the summary line,
// "N passed, M failed", after every test has run, whatever else runs.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(withSummary{m})
}

type withSummary struct{ m *testing.M }

func (w withSummary) Run() int {
	code := w.m.Run()
	summary.print(os.Stdout)
	return code
}
