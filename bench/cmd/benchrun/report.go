package main

import (
	"bufio"
	"bytes"
	"cmp"
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

	FanoutRounds        int     `json:"fanout_rounds"`
	FanoutDurationS     float64 `json:"fanout_duration_s"`
	FanoutWarmupS       float64 `json:"fanout_warmup_s"`
	FanoutWindow        int     `json:"fanout_window"`
	FanoutWriteTimeoutS float64 `json:"fanout_write_timeout_s"`
	FanoutSampleS       float64 `json:"fanout_sample_s"`
	CrossRounds         int     `json:"cross_rounds"`
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
	ID       string `json:"id"`
	Title    string `json:"title"`
	Mode     string `json:"mode"`
	Conns    int    `json:"conns"`
	Inflight int    `json:"inflight,omitempty"`
	Size     int    `json:"size,omitempty"`
	Silent   int    `json:"silent,omitempty"`
	// Cross: a room spread over daemons (the cross servers' scenario).
	Cross bool `json:"cross,omitempty"`
	// Rate is the publisher's pace in messages a second, when paced.
	Rate int `json:"rate,omitempty"`
	// Reference is the server that the "x wsactor" ratios are to.
	Reference string          `json:"reference"`
	Servers   []*serverReport `json:"servers"`
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

	// Fan-out: the median share of the messages that the readers got; the
	// messages they never got (by the end of each run's drain) and the
	// readers the server cut, over all runs; the median of the server's own drop count; the medians of
	// the server's RSS at the start, the peak and the end of a run; and the
	// server's stats over time in the run whose deliveries/s is the median.
	DeliveryRatio *float64      `json:"delivery_ratio,omitempty"`
	Missing       int64         `json:"missing,omitempty"`
	Gaps          int64         `json:"gaps,omitempty"`
	ReadersCut    int64         `json:"readers_cut,omitempty"`
	ServerDropped *float64      `json:"server_dropped,omitempty"`
	RSSStart      *float64      `json:"rss_start_bytes,omitempty"`
	RSSPeak       *float64      `json:"rss_peak_bytes,omitempty"`
	RSSEnd        *float64      `json:"rss_end_bytes,omitempty"`
	Samples       []statsSample `json:"samples,omitempty"`

	// Storm: medians of the server's RSS per connection at its peak,
	// stormHold after the storm without a garbage collection, and after
	// one; its goroutines stormHold after.
	StormPeak  *float64 `json:"storm_peak_per_conn_bytes,omitempty"`
	StormAfter *float64 `json:"storm_after_per_conn_bytes,omitempty"`
	StormGC    *float64 `json:"storm_gc_per_conn_bytes,omitempty"`
	// With a ping on every connection: the median p99 of the round trips;
	// the median time to close every connection.
	StormPingP99US *float64 `json:"storm_ping_p99_us,omitempty"`
	StormCloseS    *float64 `json:"storm_close_s,omitempty"`
	// Cross-daemon: the medians of the latency from publishing a message
	// to its receipt by the last member, and the cross servers' own
	// counts over all runs.
	LastP50US float64      `json:"last_p50_us,omitempty"`
	LastP99US float64      `json:"last_p99_us,omitempty"`
	Cross     *crossCounts `json:"cross,omitempty"`
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
		ratio, dropped, rssStart, rssPeak, rssEnd     []float64
		stPeak, stAfter, stGC, stPing, stClose        []float64
		lastP50, lastP99                              []float64
		cross                                         *crossCounts
		fanouts                                       []*loadResult
		errs, missing, gaps, cut                      int64
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
			case modeStorm:
				ok = res.Storm != nil && res.Storm.HandshakesPerS > 0
			case modeBroadcast:
				ok = res.DeliveriesPerS > 0
			case modeFanout:
				// A run may deliver nothing measured (a server stalled by
				// its silent members) and still be a figure.
				ok = res.Fanout != nil && res.Fanout.Readers > 0
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
		case modeStorm:
			st := res.Storm
			primary = append(primary, st.HandshakesPerS)
			for _, p := range []struct {
				v   *int64
				dst *[]float64
			}{
				{st.PeakPerConnBytes, &stPeak},
				{st.AfterPerConnBytes, &stAfter},
				{st.GCPerConnBytes, &stGC},
				{st.Goroutines, &gor},
			} {
				if p.v != nil {
					*p.dst = append(*p.dst, float64(*p.v))
				}
			}
			if st.PingUS != nil {
				stPing = append(stPing, float64(st.PingUS.P99))
			}
			stClose = append(stClose, st.CloseS)
			idleConns = st.Conns
			continue
		case modeBroadcast:
			primary = append(primary, res.DeliveriesPerS)
		case modeFanout:
			primary = append(primary, res.DeliveriesPerS)
			f := res.Fanout
			fanouts = append(fanouts, res)
			ratio = append(ratio, f.DeliveryRatio)
			if l := f.LastLatencyUS; l != nil {
				lastP50 = append(lastP50, float64(l.P50))
				lastP99 = append(lastP99, float64(l.P99))
			}
			if c := r.Cross; c != nil {
				if cross == nil {
					cross = &crossCounts{}
				}
				cross.add(c)
			}
			missing += f.Missing
			gaps += f.Gaps
			cut += f.ReadersCut
			for _, p := range []struct {
				v   *int64
				dst *[]float64
			}{
				{f.ServerDropped, &dropped},
				{f.RSSStart, &rssStart},
				{f.RSSPeak, &rssPeak},
				{f.RSSEnd, &rssEnd},
			} {
				if p.v != nil {
					*p.dst = append(*p.dst, float64(*p.v))
				}
			}
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
	medianOf := func(v []float64) *float64 {
		if len(v) == 0 {
			return nil
		}
		m := median(v)
		return &m
	}
	if sc.mode == modeStorm {
		s.StormPeak, s.StormAfter, s.StormGC = medianOf(stPeak), medianOf(stAfter), medianOf(stGC)
		s.StormPingP99US, s.StormCloseS = medianOf(stPing), medianOf(stClose)
	}
	if sc.mode == modeFanout {
		s.DeliveryRatio = medianOf(ratio)
		s.Missing, s.Gaps, s.ReadersCut = missing, gaps, cut
		s.ServerDropped = medianOf(dropped)
		s.RSSStart, s.RSSPeak, s.RSSEnd = medianOf(rssStart), medianOf(rssPeak), medianOf(rssEnd)
		s.LastP50US, s.LastP99US = median(lastP50), median(lastP99)
		s.Cross = cross
		// The samples of the run nearest the median (the lower middle).
		slices.SortFunc(fanouts, func(a, b *loadResult) int { return cmp.Compare(a.DeliveriesPerS, b.DeliveriesPerS) })
		s.Samples = fanouts[(len(fanouts)-1)/2].Fanout.Samples
	}
	return s
}

// computeRatios sets each server's ratio of medians to the scenario's
// reference (wsactor, or wsactor-group for fan-out) and to tcp.
func computeRatios(sc *scenario, sr *scenarioReport) {
	ref := func(name string) float64 {
		for _, s := range sr.Servers {
			if s.Name == name && s.Summary != nil {
				return s.Summary.Primary.Median
			}
		}
		return 0
	}
	wsa, tcp := ref(sc.reference()), ref("tcp")
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
	xref := "x " + sr.ref()
	switch sr.Mode {
	case string(modeIdle):
		rows = append(rows, []string{"server", "KiB/conn RSS (min-max)", "heap KiB/conn", "stack KiB/conn", xref, "x tcp", "runs"})
	case string(modeStorm):
		rows = append(rows, []string{"server", "handshakes/s (min-max)", "peak KiB/conn", fmt.Sprintf("KiB/conn %gs after, no GC", stormHold.Seconds()), "KiB/conn after GC", "goroutines after", "ping p99", "close all", xref, "x tcp", "cores srv/load", "runs"})
	case string(modeBroadcast):
		rows = append(rows, []string{"server", "deliveries/s (min-max)", "sent msgs/s", "MB/s", "p50", "p99", xref, "x tcp", "cores srv/load", "runs"})
	case string(modeFanout):
		if sr.Cross {
			rows = append(rows, []string{"server", "deliveries/s (min-max)", "published msgs/s", "p50", "p99", "to last p50", "to last p99", "delivered", "lost / dropped", xref, "cores srv/load", "runs"})
			break
		}
		rows = append(rows, []string{"server", "deliveries/s (min-max)", "published msgs/s", "MB/s", "p50", "p99", "delivered", "server drops", "RSS MiB start/peak/end", xref, "x tcp", "cores srv/load", "runs"})
	default:
		rows = append(rows, []string{"server", "msgs/s (min-max)", "MB/s", "p50", "p99", xref, "x tcp", "cores srv/load", "runs"})
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
		case string(modeStorm):
			k := func(p *float64) string {
				if p == nil {
					return "n/a"
				}
				return kib(*p)
			}
			ping, closeAll := "n/a", "n/a"
			if sum.StormPingP99US != nil {
				ping = us(*sum.StormPingP99US)
			}
			if sum.StormCloseS != nil {
				closeAll = fmt.Sprintf("%.2f s", *sum.StormCloseS)
			}
			rows = append(rows, []string{s.Name, minmax(sum.Primary, si), k(sum.StormPeak), k(sum.StormAfter), k(sum.StormGC),
				fmt.Sprintf("%.0f", sum.Goroutines), ping, closeAll, ratio(sum.VsWsactor), ratio(sum.VsTCP), cores(sum), runs})
		case string(modeBroadcast):
			sent := ""
			if sum.MsgsPerS != nil {
				sent = si(sum.MsgsPerS.Median)
			}
			rows = append(rows, []string{s.Name, minmax(sum.Primary, si), sent, fmt.Sprintf("%.1f", sum.MBPerS),
				us(sum.P50US), us(sum.P99US), ratio(sum.VsWsactor), ratio(sum.VsTCP), cores(sum), runs})
		case string(modeFanout):
			sent := ""
			if sum.MsgsPerS != nil {
				sent = si(sum.MsgsPerS.Median)
			}
			delivered := "n/a"
			if sum.DeliveryRatio != nil {
				delivered = percent(*sum.DeliveryRatio)
			}
			if sum.Missing > 0 {
				delivered += fmt.Sprintf(" (%s missing, %s gaps)", si(float64(sum.Missing)), si(float64(sum.Gaps)))
			}
			if sum.ReadersCut > 0 {
				delivered += fmt.Sprintf(", %d readers cut", sum.ReadersCut)
			}
			drops := "none counted"
			if sum.ServerDropped != nil {
				drops = si(*sum.ServerDropped)
			}
			rss := "n/a"
			if sum.RSSStart != nil {
				rss = fmt.Sprintf("%s / %s / %s", mib(*sum.RSSStart), mib(*sum.RSSPeak), mib(*sum.RSSEnd))
			}
			p50, p99 := "n/a", "n/a" // no measured message arrived by the end of the drain
			if sum.P99US > 0 {
				p50, p99 = us(sum.P50US), us(sum.P99US)
			}
			if sr.Cross {
				lp50, lp99 := "n/a", "n/a"
				if sum.LastP99US > 0 {
					lp50, lp99 = us(sum.LastP50US), us(sum.LastP99US)
				}
				rows = append(rows, []string{s.Name, minmax(sum.Primary, si), sent, p50, p99, lp50, lp99,
					delivered, sum.Cross.text(), ratio(sum.VsWsactor), cores(sum), runs})
				break
			}
			rows = append(rows, []string{s.Name, minmax(sum.Primary, si), sent, fmt.Sprintf("%.1f", sum.MBPerS),
				p50, p99, delivered, drops, rss, ratio(sum.VsWsactor), ratio(sum.VsTCP), cores(sum), runs})
		default:
			rows = append(rows, []string{s.Name, minmax(sum.Primary, si), fmt.Sprintf("%.1f", sum.MBPerS),
				us(sum.P50US), us(sum.P99US), ratio(sum.VsWsactor), ratio(sum.VsTCP), cores(sum), runs})
		}
	}
	return rows, notes
}

// ref is the reference server of the ratios.
func (sr *scenarioReport) ref() string {
	if sr.Reference == "" {
		return "wsactor"
	}
	return sr.Reference
}

// percent formats a ratio as a percentage: 100%, 99.97%.
func percent(r float64) string {
	switch {
	case r == 1:
		return "100%"
	case r >= 0.9999:
		return fmt.Sprintf("%.3f%%", 100*r)
	default:
		return fmt.Sprintf("%.2f%%", 100*r)
	}
}

// mib formats bytes as MiB.
func mib(b float64) string { return fmt.Sprintf("%.1f", b/(1<<20)) }

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
		writeAligned(w, "", rows)
		for _, n := range notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
		for _, n := range sr.fanoutNotes() {
			fmt.Fprintf(w, "  %s\n", n)
		}
		if tl := sr.timeline(); tl != nil {
			fmt.Fprintf(w, "  server RSS in MiB (open connections) over time, in the median run; t = 0 is the publisher's start:\n")
			writeAligned(w, "  ", tl)
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

// writeAligned writes rows as columns, the first left-aligned and the
// others right-aligned, each line after indent.
func writeAligned(w io.Writer, indent string, rows [][]string) {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		b.WriteString(indent)
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
	if hasFanout(rep) {
		fmt.Fprintf(w, "- fan-out scenarios: %d round(s), %gs measured (twice that with silent members) after %gs of warm-up; one connection publishes, every member receives (the publisher too); the publisher writes as fast as the server reads, but never more than %d messages ahead of the slowest member that reads, so that a server that drops or queues without bound is measured on what it delivers; deliveries/s counts what the reading members received; every server's write timeout for its members is %gs (gws has none); the server's stats are read every %gs during a run\n\n",
			c.FanoutRounds, c.FanoutDurationS, c.FanoutWarmupS, c.FanoutWindow, c.FanoutWriteTimeoutS, c.FanoutSampleS)
	}
	if hasCross(rep) {
		fmt.Fprintf(w, "- cross-daemon scenarios: %d round(s), timed as the fan-out ones; the members of one room (/room/bench) spread over three wsechod daemons on one NATS server, next to one daemon with the same members; \"to last\" is the time from publishing a message to its receipt by the last member (over the messages that reached every member); \"lost / dropped\" are the daemons' own counts over all runs: messages they could not hand to NATS, and messages dropped by their delivery queues, by the members' backlogs or by NATS for a slow consumer\n\n",
			c.CrossRounds)
	}
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
		if fn := sr.fanoutNotes(); len(fn) > 0 {
			fmt.Fprintln(w)
			for _, n := range fn {
				fmt.Fprintf(w, "%s\n", n)
			}
		}
		if tl := sr.timeline(); tl != nil {
			fmt.Fprintf(w, "\nServer RSS in MiB (open connections) over time, in each server's median run; t = 0 is the publisher's start (probes until every member has one, then the warm-up and the measurement):\n\n")
			for i, r := range tl {
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

		FanoutRounds:        cfg.fanoutRounds,
		FanoutDurationS:     cfg.fanoutDuration.Seconds(),
		FanoutWarmupS:       cfg.fanoutWarmup.Seconds(),
		FanoutWindow:        cfg.fanoutWindow,
		FanoutWriteTimeoutS: cfg.fanoutWriteTimeout.Seconds(),
		FanoutSampleS:       cfg.fanoutSample.Seconds(),
		CrossRounds:         cfg.crossRounds,
	}
}

func serverInfos(srvs []*server, cfg config) []serverInfo {
	var out []serverInfo
	for _, s := range srvs {
		note := s.note
		if s.name == "gws" {
			if cfg.gwsParallel {
				note += "; ParallelEnabled (replies may leave out of order, which wsload's in-order latency ring does not expect: gws latencies are approximate), except in the fan-out scenarios, where broadcasts handled in parallel would reach the members out of order"
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

// libraries are the servers on other WebSocket libraries' broadcast APIs,
// which the fan-out reference is compared with; gobwas-raw, a loop written
// by hand on gobwas/ws's low level, is compared with apart.
var libraries = []string{"gorilla", "coder", "gws"}

// fanoutNotes are the lines under a fan-out table: the reference's
// deliveries/s against the TCP ceiling, the fastest library's broadcast and
// the hand-written gobwas loop.
func (sr *scenarioReport) fanoutNotes() []string {
	if sr.Mode != string(modeFanout) {
		return nil
	}
	if sr.Cross {
		return sr.crossNotes()
	}
	med := func(name string) float64 {
		for _, s := range sr.Servers {
			if s.Name == name && s.Summary != nil {
				return s.Summary.Primary.Median
			}
		}
		return 0
	}
	ref := sr.ref()
	r := med(ref)
	if r <= 0 {
		return nil
	}
	parts := []string{}
	if t := med("tcp"); t > 0 {
		parts = append(parts, fmt.Sprintf("%.2fx the TCP fan-out ceiling", r/t))
	}
	best, bestV := "", 0.0
	for _, name := range libraries {
		if v := med(name); v > bestV {
			best, bestV = name, v
		}
	}
	if bestV > 0 {
		parts = append(parts, fmt.Sprintf("%.2fx the fastest other library (%s)", r/bestV, best))
	}
	if g := med("gobwas-raw"); g > 0 {
		parts = append(parts, fmt.Sprintf("%.2fx the hand-written gobwas/ws loop", r/g))
	}
	if len(parts) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%s, deliveries/s (medians): %s.", ref, strings.Join(parts, ", "))}
}

// timelineStep is the spacing of the columns of a timeline.
const timelineStep = 1.0 // seconds

// timeline is the server's RSS and open connections over time in each
// server's median run, one column a second, for the fan-out scenarios with
// silent members; nil otherwise. A cell is the last sample at or before its
// time (the first sample for t = 0).
func (sr *scenarioReport) timeline() [][]string {
	if sr.Mode != string(modeFanout) || sr.Silent == 0 {
		return nil
	}
	end := 0.0
	for _, s := range sr.Servers {
		if s.Summary != nil && len(s.Summary.Samples) > 0 {
			end = max(end, s.Summary.Samples[len(s.Summary.Samples)-1].T)
		}
	}
	if end == 0 {
		return nil
	}
	var times []float64
	for t := 0.0; t <= end+1e-9; t += timelineStep {
		times = append(times, t)
	}
	head := []string{"server"}
	for _, t := range times {
		head = append(head, fmt.Sprintf("t=%gs", t))
	}
	rows := [][]string{head}
	for _, s := range sr.Servers {
		if s.Summary == nil || len(s.Summary.Samples) == 0 {
			continue
		}
		row := []string{s.Name}
		for _, t := range times {
			cell := ""
			for i, smp := range s.Summary.Samples {
				if i > 0 && smp.T > t+1e-9 {
					break
				}
				if smp.RSSBytes != nil {
					cell = mib(float64(*smp.RSSBytes))
					if smp.Conns != nil {
						cell += fmt.Sprintf(" (%d)", *smp.Conns)
					}
				}
			}
			row = append(row, cell)
		}
		rows = append(rows, row)
	}
	return rows
}

func hasFanout(rep *report) bool {
	for _, sr := range rep.Scenarios {
		if sr.Mode == string(modeFanout) {
			return true
		}
	}
	return false
}
