package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// report is everything a run produced; its JSON form is latest.json.
type report struct {
	Started   string            `json:"started"`
	Finished  string            `json:"finished"`
	Command   string            `json:"command"`
	Machine   machine           `json:"machine"`
	Config    reportConfigT     `json:"config"`
	Servers   []serverInfo      `json:"servers"`
	Skipped   []skip            `json:"skipped,omitempty"`
	Scenarios []*scenarioReport `json:"scenarios"`
	Micro     *microResult      `json:"micro,omitempty"`
}

type machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	GoVersion  string `json:"go_version"`
	Kernel     string `json:"kernel"`
	MemTotal   string `json:"mem_total"`
	// The 1-minute load average before and after the run: other processes
	// on the machine skew the figures.
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
}

type reportConfigT struct {
	Quick     bool    `json:"quick"`
	Rounds    int     `json:"rounds"`
	DurationS float64 `json:"duration_s"`
	WarmupS   float64 `json:"warmup_s"`
	HoldS     float64 `json:"hold_s"`
	Binary    bool    `json:"binary"`
}

type serverInfo struct {
	Name string `json:"name"`
	Note string `json:"note"`
}

type skip struct {
	Server string `json:"server"`
	Reason string `json:"reason"`
}

type scenarioReport struct {
	ID       string          `json:"id"`
	Title    string          `json:"title"`
	Mode     string          `json:"mode"`
	Conns    int             `json:"conns"`
	Inflight int             `json:"inflight,omitempty"`
	Size     int             `json:"size,omitempty"`
	Servers  []*serverReport `json:"servers"`
}

type serverReport struct {
	Name    string      `json:"name"`
	Note    string      `json:"note,omitempty"`
	Summary *summary    `json:"summary,omitempty"`
	Runs    []runRecord `json:"runs,omitempty"`
}

// stat is the median, min and max of the successful runs.
type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// summary is a server's figures in a scenario, over its successful runs.
// Primary is what the scenario ranks by: msgs/s (echo), deliveries/s
// (broadcast), or RSS bytes per connection (idle).
type summary struct {
	Runs       int      `json:"runs"`
	Failed     int      `json:"failed"`
	Primary    stat     `json:"primary"`
	MsgsPerS   *stat    `json:"msgs_per_s,omitempty"`
	MBPerS     float64  `json:"mb_per_s,omitempty"`
	P50US      float64  `json:"p50_us,omitempty"`
	P99US      float64  `json:"p99_us,omitempty"`
	Errors     int64    `json:"errors"`
	HeapPer    float64  `json:"heap_per_conn_bytes,omitempty"`
	StackPer   float64  `json:"stack_per_conn_bytes,omitempty"`
	VsWsactor  *float64 `json:"vs_wsactor,omitempty"`
	VsTCP      *float64 `json:"vs_tcp,omitempty"`
	IdleConns  int64    `json:"idle_conns,omitempty"`
	Goroutines float64  `json:"server_goroutines,omitempty"`
	// Median cores used by the server and by wsload over a run.
	ServerCores float64 `json:"server_cores,omitempty"`
	LoadCores   float64 `json:"wsload_cores,omitempty"`
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func statOf(v []float64) stat {
	if len(v) == 0 {
		return stat{}
	}
	return stat{Median: median(v), Min: slices.Min(v), Max: slices.Max(v)}
}

// summarize reduces a server's runs in sc; nil if none succeeded.
func summarize(sc *scenario, runs []runRecord) *summary {
	var (
		primary, msgs, mb, p50, p99, heap, stack, gor []float64
		srvCores, loadCores                           []float64
		errs                                          int64
		idleConns                                     int64
		failed                                        int
	)
	for _, r := range runs {
		res := r.Result
		ok := res != nil
		if ok {
			switch sc.mode {
			case modeIdle:
				ok = res.Idle != nil && res.Idle.RSSPerConnBytes != nil
			case modeBroadcast:
				ok = res.DeliveriesPerS > 0
			default:
				ok = res.MsgsPerS > 0
			}
		}
		if !ok {
			failed++
			continue
		}
		errs += res.Errors + res.DialErrors
		srvCores = append(srvCores, r.ServerCores)
		loadCores = append(loadCores, r.LoadCores)
		switch sc.mode {
		case modeIdle:
			primary = append(primary, float64(*res.Idle.RSSPerConnBytes))
			if res.Idle.HeapPerConnBytes != nil {
				heap = append(heap, float64(*res.Idle.HeapPerConnBytes))
			}
			if res.Idle.StackPerConnBytes != nil {
				stack = append(stack, float64(*res.Idle.StackPerConnBytes))
			}
			idleConns = res.Idle.Conns
			if res.Server != nil && res.Server.Goroutines != nil {
				gor = append(gor, float64(*res.Server.Goroutines))
			}
			continue
		case modeBroadcast:
			primary = append(primary, res.DeliveriesPerS)
		default:
			primary = append(primary, res.MsgsPerS)
		}
		msgs = append(msgs, res.MsgsPerS)
		mb = append(mb, res.MBPerS)
		if res.LatencyUS != nil {
			p50 = append(p50, float64(res.LatencyUS.P50))
			p99 = append(p99, float64(res.LatencyUS.P99))
		}
	}
	if len(primary) == 0 {
		return nil
	}
	s := &summary{
		Runs:       len(primary),
		Failed:     failed,
		Primary:    statOf(primary),
		MBPerS:     median(mb),
		P50US:      median(p50),
		P99US:      median(p99),
		Errors:     errs,
		HeapPer:    median(heap),
		StackPer:   median(stack),
		IdleConns:  idleConns,
		Goroutines: median(gor),

		ServerCores: median(srvCores),
		LoadCores:   median(loadCores),
	}
	if len(msgs) > 0 {
		m := statOf(msgs)
		s.MsgsPerS = &m
	}
	return s
}

// computeRatios sets each server's ratio of medians to wsactor and to tcp.
func computeRatios(sc *scenario, sr *scenarioReport) {
	ref := func(name string) float64 {
		for _, s := range sr.Servers {
			if s.Name == name && s.Summary != nil {
				return s.Summary.Primary.Median
			}
		}
		return 0
	}
	wsa, tcp := ref("wsactor"), ref("tcp")
	for _, s := range sr.Servers {
		if s.Summary == nil {
			continue
		}
		m := s.Summary.Primary.Median
		if wsa > 0 {
			v := m / wsa
			s.Summary.VsWsactor = &v
		}
		if tcp > 0 {
			v := m / tcp
			s.Summary.VsTCP = &v
		}
	}
}

// table is a scenario as rows of cells; the first row is the header.
func (sr *scenarioReport) table() (rows [][]string, notes []string) {
	ratio := func(p *float64) string {
		if p == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.2fx", *p)
	}
	minmax := func(st stat, f func(float64) string) string {
		if st.Min == st.Max {
			return f(st.Median)
		}
		return fmt.Sprintf("%s (%s-%s)", f(st.Median), f(st.Min), f(st.Max))
	}
	kib := func(v float64) string { return fmt.Sprintf("%.2f", v/1024) }
	switch sr.Mode {
	case string(modeIdle):
		rows = append(rows, []string{"server", "KiB/conn RSS (min-max)", "heap KiB/conn", "stack KiB/conn", "x wsactor", "x tcp", "runs"})
	case string(modeBroadcast):
		rows = append(rows, []string{"server", "deliveries/s (min-max)", "sent msgs/s", "MB/s", "p50", "p99", "x wsactor", "x tcp", "cores srv/load", "runs"})
	default:
		rows = append(rows, []string{"server", "msgs/s (min-max)", "MB/s", "p50", "p99", "x wsactor", "x tcp", "cores srv/load", "runs"})
	}
	for _, s := range sr.Servers {
		sum := s.Summary
		if sum == nil {
			why := s.Note
			if why == "" {
				why = "every run failed"
				for _, r := range s.Runs {
					if r.Error != "" {
						why = "every run failed: " + r.Error
						break
					}
				}
			}
			notes = append(notes, fmt.Sprintf("%s: %s", s.Name, why))
			continue
		}
		runs := fmt.Sprintf("%d", sum.Runs)
		if sum.Failed > 0 {
			runs += fmt.Sprintf(" (+%d failed)", sum.Failed)
		}
		if sum.Errors > 0 {
			runs += fmt.Sprintf(", %d errors", sum.Errors)
		}
		switch sr.Mode {
		case string(modeIdle):
			rows = append(rows, []string{s.Name, minmax(sum.Primary, kib), kib(sum.HeapPer), kib(sum.StackPer),
				ratio(sum.VsWsactor), ratio(sum.VsTCP), runs})
		case string(modeBroadcast):
			sent := ""
			if sum.MsgsPerS != nil {
				sent = si(sum.MsgsPerS.Median)
			}
			rows = append(rows, []string{s.Name, minmax(sum.Primary, si), sent, fmt.Sprintf("%.1f", sum.MBPerS),
				us(sum.P50US), us(sum.P99US), ratio(sum.VsWsactor), ratio(sum.VsTCP), cores(sum), runs})
		default:
			rows = append(rows, []string{s.Name, minmax(sum.Primary, si), fmt.Sprintf("%.1f", sum.MBPerS),
				us(sum.P50US), us(sum.P99US), ratio(sum.VsWsactor), ratio(sum.VsTCP), cores(sum), runs})
		}
	}
	return rows, notes
}

func cores(s *summary) string {
	return fmt.Sprintf("%.2f/%.2f", s.ServerCores, s.LoadCores)
}

// writeText prints every scenario's table, aligned.
func writeText(w io.Writer, rep *report) {
	m := rep.Machine
	fmt.Fprintf(w, "%d CPUs, %s, %s; load average %s before, %s after\n\n", m.CPUs, m.CPUModel, m.GoVersion, m.LoadStart, m.LoadEnd)
	for _, sr := range rep.Scenarios {
		fmt.Fprintf(w, "== %s (%s)\n", sr.Title, sr.ID)
		rows, notes := sr.table()
		widths := make([]int, len(rows[0]))
		for _, r := range rows {
			for i, c := range r {
				widths[i] = max(widths[i], len([]rune(c)))
			}
		}
		for _, r := range rows {
			var b strings.Builder
			for i, c := range r {
				pad := widths[i] - len([]rune(c))
				if i == 0 {
					b.WriteString(c + strings.Repeat(" ", pad))
				} else {
					b.WriteString("  " + strings.Repeat(" ", pad) + c)
				}
			}
			fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		}
		for _, n := range notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
		fmt.Fprintln(w)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "skipped %s: %s\n", s.Server, s.Reason)
	}
	if rep.Micro != nil {
		if rep.Micro.Error != "" {
			fmt.Fprintf(w, "micro-benchmarks: %s\n", rep.Micro.Error)
		} else {
			fmt.Fprintf(w, "micro-benchmarks: %d results in results/%s (benchstat reads it)\n", rep.Micro.Lines, rep.Micro.File)
		}
	}
}

// writeMarkdown writes the report as Markdown.
func writeMarkdown(w io.Writer, rep *report, svgName string) {
	m := rep.Machine
	fmt.Fprintf(w, "# wsactor benchmarks\n\n")
	fmt.Fprintf(w, "- date: %s (finished %s)\n", rep.Started, rep.Finished)
	fmt.Fprintf(w, "- machine: %d CPUs (GOMAXPROCS %d), %s, %s memory, Linux %s\n", m.CPUs, m.GOMAXPROCS, m.CPUModel, m.MemTotal, m.Kernel)
	fmt.Fprintf(w, "- Go: %s\n", m.GoVersion)
	fmt.Fprintf(w, "- load average (1 min) before the run %s, after %s (anything above 0 is another process sharing the CPUs)\n", m.LoadStart, m.LoadEnd)
	fmt.Fprintf(w, "- command: `%s`\n", rep.Command)
	c := rep.Config
	fmt.Fprintf(w, "- %d round(s), every server once per round in a rotated order, each run on a freshly started server; %gs measured after %gs of warm-up; idle connections held %gs; binary messages; loopback; wsload and the server share the machine\n\n",
		c.Rounds, c.DurationS, c.WarmupS, c.HoldS)
	fmt.Fprintf(w, "Figures are medians of the rounds, with min-max. Ratios are ratios of medians: above 1 means more than wsactor or the TCP ceiling (for idle memory, more memory). Latency is wsload's, per message, with the load above; it includes wsload's own time. \"cores srv/load\" is the CPU time over the wall time of the server and of wsload during a run (dial, warm-up and close included): with %d CPUs shared by both, a wsload near its share while the server has room would mean the generator is the limit.\n\n", m.CPUs)
	fmt.Fprintf(w, "![throughput by scenario](%s)\n\n", svgName)
	for _, sr := range rep.Scenarios {
		fmt.Fprintf(w, "## %s\n\n`%s`\n\n", sr.Title, sr.ID)
		rows, notes := sr.table()
		for i, r := range rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
			if i == 0 {
				seps := make([]string, len(r))
				for j := range seps {
					seps[j] = "---:"
				}
				seps[0] = "---"
				fmt.Fprintf(w, "| %s |\n", strings.Join(seps, " | "))
			}
		}
		if len(notes) > 0 {
			fmt.Fprintln(w)
			for _, n := range notes {
				fmt.Fprintf(w, "- %s\n", n)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "## Servers\n\n")
	for _, s := range rep.Servers {
		fmt.Fprintf(w, "- **%s**: %s\n", s.Name, s.Note)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "- skipped **%s**: %s\n", s.Server, s.Reason)
	}
	fmt.Fprintln(w)
	if mr := rep.Micro; mr != nil {
		fmt.Fprintf(w, "## Micro-benchmarks\n\n`%s`\n\n", mr.Command)
		if mr.Error != "" {
			fmt.Fprintf(w, "%s\n\n", mr.Error)
		}
		if len(mr.Benchmarks) > 0 {
			fmt.Fprintf(w, "Medians of %d runs; the raw output is [%s](%s) (benchstat reads it).\n\n", mr.Count, mr.File, mr.File)
			fmt.Fprintf(w, "| package | benchmark | ns/op | MB/s | B/op | allocs/op |\n| --- | --- | ---: | ---: | ---: | ---: |\n")
			for _, b := range mr.Benchmarks {
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", b.Pkg, b.Name, num(b.NsPerOp, "%.1f"), num(b.MBPerS, "%.1f"), num(b.BPerOp, "%.0f"), num(b.AllocsPerOp, "%.0f"))
			}
			fmt.Fprintln(w)
		}
	}
}

func num(p *float64, format string) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf(format, *p)
}

// writeFiles writes base.md, base.json and the SVG.
func writeFiles(base string, rep *report) error {
	svgName := svgFile(base)
	var md bytes.Buffer
	writeMarkdown(&md, rep, filepath.Base(svgName))
	if err := os.WriteFile(base+".md", md.Bytes(), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return err
	}
	var svg bytes.Buffer
	writeSVG(&svg, rep)
	return os.WriteFile(svgName, svg.Bytes(), 0o644)
}

// svgFile is throughput.svg beside latest.*, and <base>-throughput.svg
// beside any other base name.
func svgFile(base string) string {
	dir, name := filepath.Split(base)
	if name == "latest" {
		return filepath.Join(dir, "throughput.svg")
	}
	return filepath.Join(dir, name+"-throughput.svg")
}

func reportConfig(cfg config) reportConfigT {
	return reportConfigT{
		Quick:     cfg.quick,
		Rounds:    cfg.rounds,
		DurationS: cfg.duration.Seconds(),
		WarmupS:   cfg.warmup.Seconds(),
		HoldS:     cfg.hold.Seconds(),
		Binary:    true,
	}
}

func serverInfos(srvs []*server, cfg config) []serverInfo {
	var out []serverInfo
	for _, s := range srvs {
		note := s.note
		if s.name == "gws" {
			if cfg.gwsParallel {
				note += "; ParallelEnabled (replies may leave out of order, which wsload's in-order latency ring does not expect: gws latencies are approximate)"
			} else {
				note += "; ParallelEnabled off (-gws-parallel=false)"
			}
		}
		if s.name == "wsactor" && len(cfg.wsactorArgs) > 0 {
			note += "; flags " + strings.Join(cfg.wsactorArgs, " ")
		}
		out = append(out, serverInfo{Name: s.name, Note: note})
	}
	return out
}

// machineInfo describes the machine for the report.
func machineInfo(ctx context.Context, d dirs) machine {
	m := machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	cmd := exec.CommandContext(ctx, "go", "version")
	cmd.Dir = d.repo
	if out, err := cmd.Output(); err == nil {
		m.GoVersion = strings.TrimSpace(strings.TrimPrefix(string(out), "go version "))
	} else {
		m.GoVersion = runtime.Version()
	}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	m.MemTotal = procField("/proc/meminfo", "MemTotal")
	if f := strings.Fields(m.MemTotal); len(f) == 2 && f[1] == "kB" {
		if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
			m.MemTotal = fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadEnd = loadAvg()
	return m
}

// loadAvg returns the 1-minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}

// procField returns the value of the first "key: value" line of a /proc
// file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "unknown"
}
