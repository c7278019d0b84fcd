package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{
			name: "empty",
			in:   nil,
			want: 0,
		},
		{
			name: "odd",
			in:   []float64{3, 1, 2},
			want: 2,
		},
		{
			name: "even",
			in:   []float64{4, 1, 3, 2},
			want: 2.5,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := median(tc.in); got != tc.want {
				t.Fatalf(
					"median(%v) = %v; want %v",
					tc.in, got, tc.want)
			}
		})
	}
}

func TestParseFlagsQuick(t *testing.T) {
	cfg, err := parseFlags([]string{"-quick"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.rounds != 1 || cfg.duration != 2*time.Second || cfg.micro || cfg.out != "quick" {
		t.Fatalf(
			"-quick: rounds %d duration %v micro %v out %q; want 1, 2s, false, quick",
			cfg.rounds, cfg.duration, cfg.micro, cfg.out)
	}
	cfg, err = parseFlags([]string{"-quick", "-rounds", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.rounds != 2 {
		t.Fatalf(
			"-quick -rounds 2: rounds %d; want 2",
			cfg.rounds)
	}
	_, err = parseFlags([]string{"-servers", "nosuch"})
	if err == nil {
		t.Fatal("-servers nosuch: no error")
	}
	if got := selectedScenarios(config{quick: true}); len(got) != 5 || !got[4].cross {
		t.Fatalf(
			"quick scenarios: %d; want 5, the last across daemons",
			len(got))
	}
	if cfg.fanoutRounds != 1 || cfg.crossRounds != 1 {
		t.Fatalf(
			"-quick: fanout rounds %d, cross rounds %d; want 1",
			cfg.fanoutRounds, cfg.crossRounds)
	}
}

func TestTrimProcs(t *testing.T) {
	for in, want := range map[string]string{
		"BenchmarkEncode/64B-2": "BenchmarkEncode/64B",
		"BenchmarkEncode":       "BenchmarkEncode",
		"BenchmarkA/x-y":        "BenchmarkA/x-y",
	} {
		if got := trimProcs(in); got != want {
			t.Errorf(
				"trimProcs(%q) = %q; want %q",
				in, got, want)
		}
	}
}

func TestCollect(t *testing.T) {
	out := `goos: linux
pkg: github.com/wsactor/wsactor/codec
BenchmarkEncode/64B-2   	1000	  10.0 ns/op	 6400.00 MB/s	   0 B/op	   0 allocs/op
BenchmarkEncode/64B-2   	1000	  30.0 ns/op	 2133.33 MB/s	   0 B/op	   0 allocs/op
BenchmarkEncode/64B-2   	1000	  20.0 ns/op	 3200.00 MB/s	   0 B/op	   0 allocs/op
ok  	github.com/wsactor/wsactor/codec	1.0s
`
	var copied bytes.Buffer
	res := &microResult{}
	collect(strings.NewReader(out), &copied, res)
	if copied.String() != out {
		t.Fatal("the output was not copied unchanged")
	}
	if res.Lines != 3 || len(res.Benchmarks) != 1 {
		t.Fatalf(
			"lines %d benchmarks %d; want 3, 1",
			res.Lines, len(res.Benchmarks))
	}
	b := res.Benchmarks[0]
	if b.Pkg != "codec" || b.Name != "BenchmarkEncode/64B" || *b.NsPerOp != 20 || *b.AllocsPerOp != 0 {
		t.Fatalf(
			"got %s %s %v ns/op %v allocs/op; want codec BenchmarkEncode/64B 20 0",
			b.Pkg, b.Name, *b.NsPerOp, *b.AllocsPerOp)
	}
}

// TestReport builds a report from made-up runs and checks the ratios, the
// tables and that the SVG is well-formed XML.
func TestReport(t *testing.T) {
	sc := &scenario{id: "echo-64c-64B", mode: modeEcho, conns: 64, inflight: 16, size: 64}
	run := func(msgs float64) runRecord {
		return runRecord{Result: &loadResult{MsgsPerS: msgs, MBPerS: msgs * 128 / 1e6, LatencyUS: &latency{P50: 100, P99: 900}}}
	}
	sr := &scenarioReport{ID: sc.id, Title: sc.title(), Mode: string(sc.mode)}
	for _, s := range []struct {
		name string
		runs []runRecord
	}{
		{
			name: "wsactor",
			runs: []runRecord{run(900), run(1000), run(1100)},
		},
		{
			name: "tcp",
			runs: []runRecord{run(2000), run(2000), run(2000)},
		},
		{
			name: "gorilla",
			runs: []runRecord{run(100), {Error: "start: boom"}},
		},
	} {
		sr.Servers = append(sr.Servers, &serverReport{Name: s.name, Runs: s.runs, Summary: summarize(sc, s.runs)})
	}
	sr.Servers = append(sr.Servers, &serverReport{Name: "coder", Note: "skipped: does not build"})
	computeRatios(sc, sr)

	g := sr.Servers[2].Summary
	if g.Runs != 1 || g.Failed != 1 || *g.VsWsactor != 0.1 || *g.VsTCP != 0.05 {
		t.Fatalf(
			"gorilla: runs %d failed %d vs wsactor %v vs tcp %v; want 1, 1, 0.1, 0.05",
			g.Runs, g.Failed, *g.VsWsactor, *g.VsTCP)
	}
	rows, notes := sr.table()
	if len(rows) != 4 || len(notes) != 1 || !strings.Contains(rows[1][1], "(900-1.1k)") {
		t.Fatalf(
			"rows %q notes %q",
			rows, notes)
	}

	rep := &report{Scenarios: []*scenarioReport{sr}, Config: reportConfigT{Rounds: 3, DurationS: 5}}
	var svg bytes.Buffer
	writeSVG(&svg, rep)
	dec := xml.NewDecoder(&svg)
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf(
				"SVG is not well-formed: %v",
				err)
		}
	}
	var text, md bytes.Buffer
	writeText(&text, rep)
	writeMarkdown(&md, rep, "throughput.svg")
	for _, want := range []string{"wsactor", "0.50x", "coder: skipped"} {
		if !strings.Contains(text.String(), want) || !strings.Contains(md.String(), want) {
			t.Errorf(
				"text or Markdown lacks %q:\n%s\n%s",
				want, text.String(), md.String())
		}
	}
}

// TestReportFanout builds a fan-out report from made-up runs: the ratios
// are to wsactor-group, the line under the table compares it with the
// ceiling, the fastest library and the hand-written loop, and a scenario
// with silent members gets the server's RSS over time.
func TestReportFanout(t *testing.T) {
	sc := &scenario{id: "fanout-2000-1KiB-slow10", mode: modeFanout, conns: 2000, size: 1 << 10, silent: 200}
	i64 := func(v int64) *int64 { return &v }
	run := func(deliveries float64, rss int64) runRecord {
		return runRecord{Result: &loadResult{
			DeliveriesPerS: deliveries,
			MsgsPerS:       deliveries / 1800,
			LatencyUS:      &latency{P50: 1000, P99: 9000},
			Fanout: &fanoutResult{
				Members: 2000, Readers: 1800, Silent: 200, Window: 128,
				Expected: 1000, Received: 990, Missing: 10, DeliveryRatio: 0.99,
				ServerDropped: i64(7),
				RSSStart:      i64(rss), RSSPeak: i64(2 * rss), RSSEnd: i64(rss),
				Samples: []statsSample{
					{T: 0, serverStats: serverStats{RSSBytes: i64(rss), Conns: i64(2000)}},
					{T: 1.5, serverStats: serverStats{RSSBytes: i64(2 * rss), Conns: i64(1800)}},
				},
			},
		}}
	}
	sr := &scenarioReport{ID: sc.id, Title: sc.title(), Mode: string(sc.mode), Silent: sc.silent, Reference: sc.reference()}
	for _, s := range []struct {
		name string
		runs []runRecord
	}{
		{
			name: "wsactor-group",
			runs: []runRecord{run(900e3, 32<<20), run(1000e3, 32<<20)},
		},
		{
			name: "tcp",
			runs: []runRecord{run(2000e3, 16<<20)},
		},
		{
			name: "gorilla",
			runs: []runRecord{run(250e3, 64<<20)},
		},
		{
			name: "gws",
			runs: []runRecord{run(100e3, 64<<20)},
		},
		{
			name: "gobwas-raw",
			runs: []runRecord{run(1900e3, 16<<20)},
		},
	} {
		sr.Servers = append(sr.Servers, &serverReport{Name: s.name, Runs: s.runs, Summary: summarize(sc, s.runs)})
	}
	computeRatios(sc, sr)

	w := sr.Servers[0].Summary
	if w.Primary.Median != 950e3 || *w.VsWsactor != 1 || *w.VsTCP != 0.475 || w.Missing != 20 ||
		*w.DeliveryRatio != 0.99 || *w.ServerDropped != 7 || *w.RSSPeak != 64<<20 || len(w.Samples) != 2 {
		t.Fatalf(
			"wsactor-group summary %+v",
			w)
	}
	rows, _ := sr.table()
	if rows[0][9] != "x wsactor-group" || rows[1][6] != "99.00% (20 missing, 0 gaps)" || rows[1][8] != "32.0 / 64.0 / 32.0" {
		t.Fatalf(
			"rows %q",
			rows)
	}
	notes := sr.fanoutNotes()
	want := "wsactor-group, deliveries/s (medians): 0.47x the TCP fan-out ceiling, 3.80x the fastest other library (gorilla), 0.50x the hand-written gobwas/ws loop."
	if len(notes) != 1 || notes[0] != want {
		t.Fatalf(
			"notes %q\nwant %q",
			notes, want)
	}
	tl := sr.timeline()
	if len(tl) != 6 || strings.Join(tl[0], ",") != "server,t=0s,t=1s" || tl[1][1] != "32.0 (2000)" || tl[1][2] != "32.0 (2000)" || tl[2][2] != "16.0 (2000)" {
		t.Fatalf(
			"timeline %q",
			tl)
	}
	rep := &report{Scenarios: []*scenarioReport{sr}, Config: reportConfigT{FanoutRounds: 2}}
	var text, md bytes.Buffer
	writeText(&text, rep)
	writeMarkdown(&md, rep, "throughput.svg")
	for _, want := range []string{"x wsactor-group", "3.80x the fastest other library", "t=1s", "fan-out scenarios: 2 round(s)"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf(
				"Markdown lacks %q:\n%s",
				want, md.String())
		}
	}
	if !strings.Contains(text.String(), "t=1s") {
		t.Errorf(
			"text lacks the timeline:\n%s",
			text.String())
	}
}

func TestServes(t *testing.T) {
	fan := &scenario{mode: modeFanout}
	cross := &scenario{mode: modeFanout, cross: true}
	echo := &scenario{mode: modeEcho}
	bcast := &scenario{mode: modeBroadcast}
	tests := []struct {
		server string
		sc     *scenario
		ok     bool
		noted  bool // left in the table with a note
	}{
		{
			server: "wsactor",
			sc:     fan,
			noted:  true,
		},
		{
			server: "wsactor-group",
			sc:     fan,
			ok:     true,
		},
		{
			server: "wsactor-group",
			sc:     echo,
		},
		{
			server: "wsactor-group",
			sc:     bcast,
		},
		{
			server: "gobwas-wsutil",
			sc:     fan,
			noted:  true,
		},
		{
			server: "gws",
			sc:     fan,
			ok:     true,
		},
		{
			server: "tcp",
			sc:     echo,
			ok:     true,
		},
		{
			server: "coder",
			sc:     fan,
			noted:  true,
		},
		{
			server: "wsechod-3-nats",
			sc:     cross,
			ok:     true,
		},
		{
			server: "wsechod-1",
			sc:     cross,
			ok:     true,
		},
		{
			server: "wsechod-1",
			sc:     fan,
		},
		{
			server: "wsechod-3-nats",
			sc:     echo,
		},
		{
			server: "wsactor-group",
			sc:     cross,
		},
		{
			server: "tcp",
			sc:     cross,
		},
	}
	for _, tc := range tests {
		ok, why := serverByName(tc.server).serves(config{}, tc.sc)
		if ok != tc.ok || (why != "") != tc.noted {
			t.Errorf(
				"%s in %s: %v %q; want %v, noted %v",
				tc.server, tc.sc.mode, ok, why, tc.ok, tc.noted)
		}
	}
}

// The TLS storm runs on the servers that take a certificate; the others
// are named with the reason.
func TestServesTLS(t *testing.T) {
	sc := &scenario{mode: modeStorm, tls: true}
	for name, want := range map[string]bool{
		"wsactor":       true,
		"gorilla":       true,
		"coder":         true,
		"gws":           true,
		"gobwas-wsutil": true,
		"gobwas-raw":    false,
		"tcp":           false,
	} {
		ok, why := serverByName(name).serves(config{}, sc)
		if ok != want || !ok && why == "" {
			t.Errorf(
				"%s in the TLS storm: %v %q; want %v",
				name, ok, why, want)
		}
	}
}

func TestServesOptIn(t *testing.T) {
	ok, _ := serverByName("coder").serves(config{servers: []string{"coder"}}, &scenario{mode: modeFanout})
	if !ok {
		t.Fatal("coder named by -servers does not run in the fan-out scenarios")
	}
}

// TestReportStorm builds a storm report from made-up runs: handshakes/s
// ranks, the memory columns are the medians of the runs, a run without
// memory figures still counts for its handshakes.
func TestReportStorm(t *testing.T) {
	sc := &scenario{id: "storm-10000c", mode: modeStorm, conns: 10000}
	i64 := func(v int64) *int64 { return &v }
	run := func(hs float64, peak, after, gc int64) runRecord {
		return runRecord{Result: &loadResult{Storm: &stormResult{
			Conns: 10000, HandshakesPerS: hs, HoldS: 3,
			PeakPerConnBytes: i64(peak), AfterPerConnBytes: i64(after), GCPerConnBytes: i64(gc), Goroutines: i64(6),
		}}}
	}
	sr := &scenarioReport{ID: sc.id, Title: sc.title(), Mode: string(sc.mode)}
	for _, s := range []struct {
		name string
		runs []runRecord
	}{
		{
			name: "wsactor",
			runs: []runRecord{run(10000, 2560, 2048, 2048), run(12000, 3072, 2560, 2048), run(11000, 2560, 2560, 2048)},
		},
		{
			name: "tcp",
			runs: []runRecord{run(22000, 1024, 1024, 1024)},
		},
		{
			name: "gorilla",
			runs: []runRecord{run(5500, 20480, 17408, 16384), {Result: &loadResult{}}},
		},
	} {
		sr.Servers = append(sr.Servers, &serverReport{Name: s.name, Runs: s.runs, Summary: summarize(sc, s.runs)})
	}
	computeRatios(sc, sr)
	w := sr.Servers[0].Summary
	if w.Primary.Median != 11000 || *w.StormPeak != 2560 || *w.StormAfter != 2560 || *w.StormGC != 2048 {
		t.Fatalf(
			"wsactor: %v handshakes/s, peak %v, after %v, after GC %v; want 11000, 2560, 2560, 2048",
			w.Primary.Median, *w.StormPeak, *w.StormAfter, *w.StormGC)
	}
	if g := sr.Servers[2].Summary; g.Runs != 1 || g.Failed != 1 || *g.VsWsactor != 0.5 {
		t.Fatalf(
			"gorilla: runs %d failed %d vs wsactor %v; want 1, 1, 0.5",
			g.Runs, g.Failed, *g.VsWsactor)
	}
	rows, _ := sr.table()
	want := []string{"wsactor", "11.0k (10.0k-12.0k)", "2.50", "2.50", "2.00", "6", "n/a", "0.00 s"}
	if len(rows) != 4 || !slices.Equal(rows[1][:len(want)], want) {
		t.Fatalf(
			"rows %q; want the wsactor row to start %q",
			rows, want)
	}
}

func TestWithoutFlag(t *testing.T) {
	got := withoutFlag([]string{"-url", "ws://x/", "-stats-url", "http://x/debug/vars", "-quiet"}, "-stats-url")
	if want := []string{"-url", "ws://x/", "-quiet"}; !slices.Equal(got, want) {
		t.Fatalf(
			"%q, want %q",
			got, want)
	}
}

// mergeStorm: three processes' storms against one server make one result.
func TestMergeStorm(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	part := func(conns int64, stormS, closeS float64, p99 int64) *loadResult {
		return &loadResult{
			Conns:      int(conns),
			CloseCodes: map[string]int64{"1000": conns},
			Errors:     1,
			Storm: &stormResult{
				Conns: conns, StormS: stormS, HoldS: 3, CloseS: closeS, Pongs: conns,
				PeakPerConnBytes: i64(3 * 2560), AfterPerConnBytes: i64(3 * 2048), GCPerConnBytes: i64(3 * 2048),
				PingUS: &latency{P50: p99 / 2, P90: p99, P99: p99, P999: p99, Max: p99},
			},
		}
	}
	m := mergeStorm([]*loadResult{part(100, 1, 0.5, 900), part(100, 2, 0.7, 1200), part(100, 1.5, 0.6, 800)})
	st := m.Storm
	if m.Conns != 300 || st.Conns != 300 || st.Pongs != 300 || m.Errors != 3 || m.CloseCodes["1000"] != 300 {
		t.Fatalf(
			"conns %d/%d pongs %d errors %d codes %v; want 300, 300, 300, 3, 300",
			m.Conns, st.Conns, st.Pongs, m.Errors, m.CloseCodes)
	}
	if st.StormS != 2 || st.HandshakesPerS != 150 || st.CloseS != 0.7 || st.PingUS.P99 != 1200 {
		t.Fatalf(
			"storm %v s, %v/s, close %v s, ping p99 %v; want 2, 150, 0.7, 1200",
			st.StormS, st.HandshakesPerS, st.CloseS, st.PingUS.P99)
	}
	if *st.PeakPerConnBytes != 2560 || *st.AfterPerConnBytes != 2048 || *st.GCPerConnBytes != 2048 {
		t.Fatalf(
			"per connection: peak %d after %d GC %d; want 2560, 2048, 2048",
			*st.PeakPerConnBytes, *st.AfterPerConnBytes, *st.GCPerConnBytes)
	}
}
