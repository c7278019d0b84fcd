package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// loadResult is wsload's JSON result.
type loadResult struct {
	Label          string           `json:"label"`
	Mode           string           `json:"mode"`
	URL            string           `json:"url"`
	Proto          string           `json:"proto"`
	Conns          int              `json:"conns"`
	Inflight       int              `json:"inflight"`
	Size           int              `json:"size"`
	Binary         bool             `json:"binary"`
	DurationS      float64          `json:"duration_s"`
	Messages       int64            `json:"messages"`
	MsgsPerS       float64          `json:"msgs_per_s"`
	MBPerS         float64          `json:"mb_per_s"`
	LatencyUS      *latency         `json:"latency_us,omitempty"`
	Errors         int64            `json:"errors"`
	DialErrors     int64            `json:"dial_errors"`
	CloseCodes     map[string]int64 `json:"close_codes,omitempty"`
	Server         *serverStats     `json:"server,omitempty"`
	ServerBefore   *serverStats     `json:"server_before,omitempty"`
	Idle           *idleResult      `json:"idle,omitempty"`
	Fanout         *fanoutResult    `json:"fanout,omitempty"`
	DeliveriesPerS float64          `json:"deliveries_per_s,omitempty"`
	FirstError     string           `json:"first_error,omitempty"` // from wsload's summary
}

type latency struct {
	P50  int64 `json:"p50"`
	P90  int64 `json:"p90"`
	P99  int64 `json:"p99"`
	P999 int64 `json:"p999"`
	Max  int64 `json:"max"`
}

type serverStats struct {
	RSSBytes        *int64 `json:"rss_bytes,omitempty"`
	HeapInuseBytes  *int64 `json:"heap_inuse_bytes,omitempty"`
	StackInuseBytes *int64 `json:"stack_inuse_bytes,omitempty"`
	Goroutines      *int64 `json:"goroutines,omitempty"`
	Conns           *int64 `json:"conns,omitempty"`
	Dropped         *int64 `json:"dropped,omitempty"`
}

// fanoutResult is wsload's fan-out figures (wsload.FanoutResult).
type fanoutResult struct {
	Members       int           `json:"members"`
	Readers       int           `json:"readers"`
	Silent        int           `json:"silent"`
	Unjoined      int           `json:"unjoined,omitempty"`
	Window        int           `json:"window"`
	Published     int64         `json:"published"`
	Delivered     int64         `json:"delivered"`
	Expected      int64         `json:"expected"`
	Received      int64         `json:"received"`
	DeliveryRatio float64       `json:"delivery_ratio"`
	Gaps          int64         `json:"gaps"`
	Missing       int64         `json:"missing"`
	ReadersCut    int64         `json:"readers_cut"`
	ServerDropped *int64        `json:"server_dropped,omitempty"`
	MeasureFromS  float64       `json:"measure_from_s"`
	MeasureToS    float64       `json:"measure_to_s"`
	Samples       []statsSample `json:"samples,omitempty"`
	RSSStart      *int64        `json:"rss_start_bytes,omitempty"`
	RSSPeak       *int64        `json:"rss_peak_bytes,omitempty"`
	RSSEnd        *int64        `json:"rss_end_bytes,omitempty"`
}

// statsSample is one reading of the server's stats during a fan-out run,
// T seconds after the publisher started.
type statsSample struct {
	T float64 `json:"t"`
	serverStats
}

type idleResult struct {
	Conns             int64  `json:"conns"`
	RSSPerConnBytes   *int64 `json:"rss_per_conn_bytes,omitempty"`
	HeapPerConnBytes  *int64 `json:"heap_per_conn_bytes,omitempty"`
	StackPerConnBytes *int64 `json:"stack_per_conn_bytes,omitempty"`
}

// wsloadArgs are wsload's flags for sc against in.
func wsloadArgs(cfg config, sc *scenario, in *instance, label, jsonPath string) []string {
	args := []string{
		"-url", in.url,
		"-proto", in.srv.proto,
		"-mode", string(sc.mode),
		"-c", strconv.Itoa(sc.conns),
		"-stats-url", in.statsURL,
		"-json", jsonPath,
		"-quiet",
		"-label", label,
	}
	args = append(args, in.srv.loadArgs...)
	if sc.mode == modeIdle {
		return append(args, "-hold", cfg.hold.String())
	}
	warmup, duration := sc.times(cfg)
	inflight := sc.inflight
	if sc.mode == modeFanout {
		inflight = cfg.fanoutWindow
		args = append(args,
			"-silent", strconv.Itoa(sc.silent),
			"-sample", cfg.fanoutSample.String(),
		)
	}
	return append(args,
		"-inflight", strconv.Itoa(inflight),
		"-size", strconv.Itoa(sc.size),
		"-binary",
		"-duration", duration.String(),
		"-warmup", warmup.String(),
	)
}

// runLoad runs wsload once and returns its result. A result comes back
// with an error when wsload measured something but reported a failure.
//
// It also returns the cores wsload used on average (CPU time over wall
// time): near 1 per GOMAXPROCS means the generator may be the limit.
func runLoad(ctx context.Context, wsload string, args []string, timeout time.Duration, jsonPath string) (*loadResult, float64, error) {
	_ = os.Remove(jsonPath)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, wsload, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	start := time.Now()
	runErr := cmd.Run()
	cores := cpuCores(cmd.ProcessState, time.Since(start))
	if ctx.Err() == context.DeadlineExceeded {
		runErr = fmt.Errorf("wsload did not finish within %v", timeout)
	} else if runErr != nil {
		msg := firstLines(stderr.String(), 2)
		if msg == "" {
			msg = runErr.Error()
		}
		runErr = fmt.Errorf("wsload: %s", msg)
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		if runErr == nil {
			runErr = errors.New("wsload wrote no result")
		}
		return nil, cores, runErr
	}
	var res loadResult
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, cores, fmt.Errorf("wsload result %s: %w", filepath.Base(jsonPath), err)
	}
	// The first error counted is in the summary only.
	for _, line := range strings.Split(stdout.String(), "\n") {
		if e, ok := strings.CutPrefix(line, "first error: "); ok {
			res.FirstError = e
		}
	}
	return &res, cores, runErr
}

// cpuCores is a process's CPU time (user and system) over wall.
func cpuCores(ps *os.ProcessState, wall time.Duration) float64 {
	if ps == nil || wall <= 0 {
		return 0
	}
	return (ps.UserTime() + ps.SystemTime()).Seconds() / wall.Seconds()
}
