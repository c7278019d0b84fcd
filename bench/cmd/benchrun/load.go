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
	"slices"
	"strconv"
	"strings"
	"sync"
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
	Storm          *stormResult     `json:"storm,omitempty"`
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
	RSSPeakBytes    *int64 `json:"rss_peak_bytes,omitempty"`
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
	LastLatencyUS *latency      `json:"last_latency_us,omitempty"`
	LastMessages  int64         `json:"last_messages"`
	Endpoints     int           `json:"endpoints"`
}

// statsSample is one reading of the server's stats during a fan-out run,
// T seconds after the publisher started.
type statsSample struct {
	T float64 `json:"t"`
	serverStats
}

// stormResult is wsload's storm figures (wsload.StormResult).
type stormResult struct {
	Conns             int64    `json:"conns"`
	StormS            float64  `json:"storm_s"`
	HandshakesPerS    float64  `json:"handshakes_per_s"`
	HoldS             float64  `json:"hold_s"`
	PeakPerConnBytes  *int64   `json:"peak_per_conn_bytes,omitempty"`
	AfterPerConnBytes *int64   `json:"after_per_conn_bytes,omitempty"`
	GCPerConnBytes    *int64   `json:"gc_per_conn_bytes,omitempty"`
	Goroutines        *int64   `json:"goroutines,omitempty"`
	Pongs             int64    `json:"pongs,omitempty"`
	PingUS            *latency `json:"ping_us,omitempty"`
	CloseS            float64  `json:"close_s"`
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
	switch sc.mode {
	case modeIdle:
		return append(args, "-hold", cfg.hold.String())
	case modeStorm:
		args = append(args, "-hold", stormHold.String(), "-dial-concurrency", strconv.Itoa(stormDialers))
		if sc.ping && in.srv.proto == "ws" {
			args = append(args, "-ping")
		}
		if sc.tls {
			args = append(args, "-insecure")
		}
		return args
	}
	warmup, duration := sc.times(cfg)
	inflight := sc.inflight
	if sc.mode == modeFanout {
		inflight = cfg.fanoutWindow
		args = append(args,
			"-silent", strconv.Itoa(sc.silent),
			"-sample", cfg.fanoutSample.String(),
		)
		if sc.rate > 0 {
			args = append(args, "-rate", strconv.Itoa(sc.rate))
		}
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

// runStormProcs runs sc's wsload processes at once, each with its share of
// the connections from its own source address (127.0.0.2, 127.0.0.3, ...),
// and merges their results (mergeStorm).
func runStormProcs(ctx context.Context, wsload string, cfg config, sc *scenario, in *instance, label string) (*loadResult, float64, error) {
	part := *sc
	part.conns = sc.conns / sc.procs
	type out struct {
		res   *loadResult
		cores float64
		err   error
	}
	outs := make([]out, sc.procs)
	var wg sync.WaitGroup
	for i := range outs {
		jsonPath := filepath.Join(os.TempDir(), fmt.Sprintf("benchrun-%d-%s-%d.json", os.Getpid(), in.srv.name, i))
		args := append(wsloadArgs(cfg, &part, in, label, jsonPath), "-source", fmt.Sprintf("127.0.0.%d", i+2))
		if i > 0 {
			// Only the first reads the server's stats (the others'
			// readings would come while it pings), ...
			args = withoutFlag(args, "-stats-url")
		}
		if slices.Contains(args, "-ping") {
			// ... and every process pings stormPingDelay after the first
			// read them: together, once every session is held and read.
			args = append(args, "-ping-delay", stormPingDelay.String())
		}
		wg.Go(func() {
			defer os.Remove(jsonPath)
			res, cores, err := runLoad(ctx, wsload, args, sc.runTimeout(cfg), jsonPath)
			outs[i] = out{res, cores, err}
		})
	}
	wg.Wait()
	var (
		results []*loadResult
		cores   float64
		errs    []error
	)
	for _, o := range outs {
		cores += o.cores
		if o.err != nil {
			errs = append(errs, o.err)
		}
		if o.res != nil {
			results = append(results, o.res)
		}
	}
	if len(results) < len(outs) {
		return nil, cores, errors.Join(errs...)
	}
	return mergeStorm(results), cores, errors.Join(errs...)
}

// stormPingDelay is how long after the first process's stats reading the
// processes of one storm ping: time for the others to end their storms
// (within a second of each other here).
const stormPingDelay = 2 * time.Second

// withoutFlag returns args without the flag name and its value.
func withoutFlag(args []string, name string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		if args[i] == name {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// mergeStorm is one result for the storm of several wsload processes that
// started together against one server: connections, pongs and errors add
// up; the storm lasts as long as the slowest process's, the close too;
// each ping percentile is the worst process's. The memory per connection
// is the first process's reading of the server (which covers every
// process's connections, all held by then) over all the connections.
func mergeStorm(results []*loadResult) *loadResult {
	m := *results[0]
	st0 := results[0].Storm
	if st0 == nil {
		return &m
	}
	st := *st0
	m.Storm = &st
	m.CloseCodes = map[string]int64{}
	m.Conns, st.Conns, st.Pongs, m.Errors, m.DialErrors = 0, 0, 0, 0, 0
	for _, r := range results {
		m.Conns += r.Conns
		m.Errors += r.Errors
		m.DialErrors += r.DialErrors
		for k, v := range r.CloseCodes {
			m.CloseCodes[k] += v
		}
		if m.FirstError == "" {
			m.FirstError = r.FirstError
		}
		s := r.Storm
		if s == nil {
			continue
		}
		st.Conns += s.Conns
		st.Pongs += s.Pongs
		st.StormS = max(st.StormS, s.StormS)
		st.CloseS = max(st.CloseS, s.CloseS)
		if s.PingUS != nil {
			if st.PingUS == nil {
				st.PingUS = &latency{}
			}
			l := st.PingUS
			l.P50, l.P90, l.P99 = max(l.P50, s.PingUS.P50), max(l.P90, s.PingUS.P90), max(l.P99, s.PingUS.P99)
			l.P999, l.Max = max(l.P999, s.PingUS.P999), max(l.Max, s.PingUS.Max)
		}
	}
	if st.StormS > 0 {
		st.HandshakesPerS = float64(st.Conns) / st.StormS
	}
	scale := func(v *int64) *int64 {
		if v == nil || st.Conns == 0 {
			return nil
		}
		x := *v * st0.Conns / st.Conns
		return &x
	}
	st.PeakPerConnBytes = scale(st0.PeakPerConnBytes)
	st.AfterPerConnBytes = scale(st0.AfterPerConnBytes)
	st.GCPerConnBytes = scale(st0.GCPerConnBytes)
	return &m
}
