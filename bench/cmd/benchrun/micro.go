package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// microPackages are the main module's packages with micro-benchmarks.
var microPackages = []string{"codec", "actor", "session"}

// microResult is the outcome of the micro-benchmarks.
type microResult struct {
	Command    string       `json:"command"`
	File       string       `json:"file,omitempty"` // relative to the results directory
	Count      int          `json:"count"`
	Lines      int          `json:"lines"` // benchmark result lines
	Error      string       `json:"error,omitempty"`
	Benchmarks []microBench `json:"benchmarks,omitempty"`
}

// microBench is the median of one benchmark's runs.
type microBench struct {
	Pkg         string   `json:"pkg"`
	Name        string   `json:"name"`
	Runs        int      `json:"runs"`
	NsPerOp     *float64 `json:"ns_per_op,omitempty"`
	MBPerS      *float64 `json:"mb_per_s,omitempty"`
	BPerOp      *float64 `json:"b_per_op,omitempty"`
	AllocsPerOp *float64 `json:"allocs_per_op,omitempty"`
}

// runMicro runs the micro-benchmarks of whichever of microPackages exist,
// from the repository root, into results/micro.txt.
func runMicro(ctx context.Context, cfg config, d dirs, resultsDir string) *microResult {
	var pkgs []string
	for _, p := range microPackages {
		if m, _ := filepath.Glob(filepath.Join(d.repo, p, "*.go")); len(m) > 0 {
			pkgs = append(pkgs, "./"+p+"/")
		}
	}
	args := []string{"test", "-run=^$", "-bench=.", "-benchmem", fmt.Sprintf("-count=%d", cfg.microCount), "-timeout=60m"}
	if cfg.microTime != "" {
		args = append(args, "-benchtime="+cfg.microTime)
	}
	args = append(args, pkgs...)
	res := &microResult{Command: "go " + strings.Join(args, " "), Count: cfg.microCount}
	if len(pkgs) == 0 {
		res.Error = "none of ./codec/, ./actor/, ./session/ exists yet"
		progress("micro-benchmarks: skipped: %s\n", res.Error)
		return res
	}
	res.File = "micro.txt"
	out, err := os.Create(filepath.Join(resultsDir, res.File))
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer out.Close()
	progress("micro-benchmarks: %s (from the repository root)\n", res.Command)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = d.repo
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		res.Error = err.Error()
		return res
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		collect(pr, out, res)
	}()
	err = cmd.Wait()
	pw.Close()
	<-done
	if err != nil {
		res.Error = fmt.Sprintf("go test failed (%v); see results/%s", err, res.File)
	}
	progress("micro-benchmarks: %d results in %.0fs\n", res.Lines, time.Since(start).Seconds())
	return res
}

// collect copies go test's output to out, echoes the package summaries to
// the progress output, and computes each benchmark's medians.
func collect(r io.Reader, out io.Writer, res *microResult) {
	type key struct{ pkg, name string }
	var (
		order []key
		vals  = map[key]map[string][]float64{}
		pkg   string
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(out, line)
		switch {
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimPrefix(line, "pkg: ")
		case strings.HasPrefix(line, "ok ") || strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "--- FAIL"):
			progress("  %s\n", line)
		case strings.HasPrefix(line, "Benchmark"):
			f := strings.Fields(line)
			if len(f) < 4 {
				continue
			}
			if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
				continue
			}
			res.Lines++
			k := key{pkg: shortPkg(pkg), name: trimProcs(f[0])}
			if vals[k] == nil {
				vals[k] = map[string][]float64{}
				order = append(order, k)
			}
			for i := 2; i+1 < len(f); i += 2 {
				v, err := strconv.ParseFloat(f[i], 64)
				if err == nil {
					vals[k][f[i+1]] = append(vals[k][f[i+1]], v)
				}
			}
		}
	}
	_, _ = io.Copy(io.Discard, r)
	for _, k := range order {
		v := vals[k]
		b := microBench{Pkg: k.pkg, Name: k.name, Runs: len(v["ns/op"])}
		get := func(unit string) *float64 {
			if len(v[unit]) == 0 {
				return nil
			}
			m := median(v[unit])
			return &m
		}
		b.NsPerOp, b.MBPerS, b.BPerOp, b.AllocsPerOp = get("ns/op"), get("MB/s"), get("B/op"), get("allocs/op")
		res.Benchmarks = append(res.Benchmarks, b)
	}
}

// trimProcs drops the -GOMAXPROCS suffix of a benchmark name.
func trimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name
	}
	return name[:i]
}

func shortPkg(p string) string {
	return strings.TrimPrefix(p, "github.com/wsactor/wsactor/")
}
