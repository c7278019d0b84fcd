package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReportCross: the cross-daemon table has the latency to the last
// member, the daemons' losses, the ratio to one daemon, and the notes.
func TestReportCross(t *testing.T) {
	sc := scenarioByID(fullScenarios(), "cross-daemon-1000-1KiB")
	if sc == nil || !sc.cross || sc.reference() != "wsechod-1" {
		t.Fatalf("scenario %+v", sc)
	}
	run := func(deliveries float64, lastP99 int64, c *crossCounts) runRecord {
		return runRecord{Cross: c, Result: &loadResult{
			DeliveriesPerS: deliveries,
			MsgsPerS:       deliveries / 1000,
			LatencyUS:      &latency{P50: 1000, P99: 9000},
			Fanout: &fanoutResult{
				Members: 1000, Readers: 1000, Window: 128, Endpoints: 3,
				Expected: 1000, Received: 1000, DeliveryRatio: 1,
				LastLatencyUS: &latency{P50: 5000, P99: lastP99},
			},
		}}
	}
	sr := &scenarioReport{ID: sc.id, Title: sc.title(), Mode: string(sc.mode), Conns: sc.conns, Cross: true, Reference: sc.reference()}
	for _, s := range []struct {
		name string
		runs []runRecord
	}{
		{
			name: "wsechod-1",
			runs: []runRecord{run(1e6, 20000, &crossCounts{}), run(1.2e6, 10000, &crossCounts{})},
		},
		{
			name: "wsechod-3-nats",
			runs: []runRecord{
				run(0.5e6, 30000, &crossCounts{Published: 100, Remote: 200, Lost: 1, NATSDropped: 2}),
				run(0.6e6, 50000, &crossCounts{Published: 100, Remote: 200, RoomDropped: 3, SlowConsumers: 1}),
			},
		},
	} {
		sr.Servers = append(sr.Servers, &serverReport{Name: s.name, Runs: s.runs, Summary: summarize(sc, s.runs)})
	}
	computeRatios(sc, sr)
	rows, _ := sr.table()
	head := strings.Join(rows[0], ",")
	if head != "server,deliveries/s (min-max),published msgs/s,p50,p99,to last p50,to last p99,delivered,lost / dropped,x wsechod-1,cores srv/load,runs" {
		t.Fatalf("header %q", head)
	}
	if got := strings.Join(rows[2], ","); !strings.HasPrefix(got, "wsechod-3-nats,550.0k (500.0k-600.0k),550,1.00ms,9.00ms,5.00ms,40.00ms,100%,1 / 6,0.50x,") {
		t.Fatalf("row %q", got)
	}
	notes := sr.fanoutNotes()
	want := "Three daemons on NATS deliver 0.50x what one daemon delivers to the same members (medians, deliveries/s: 550.0k against 1.10M); p99 from publish to the last member 40.00ms against 15.00ms (at this saturation the latency is mostly the publisher's window in the queues: see the paced scenario)."
	if len(notes) != 2 || notes[0] != want || !strings.Contains(notes[1], "handed 200 messages to NATS and delivered 400") {
		t.Fatalf("notes %q\nwant first %q", notes, want)
	}
	// Paced, the note is the latency.
	sr.Rate = 200
	notes = sr.fanoutNotes()
	want = "At 200 messages/s (200.0k deliveries/s), from publish to the last member: p50 5.00ms on three daemons on NATS against 5.00ms on one, p99 40.00ms against 15.00ms (medians)."
	if len(notes) != 2 || notes[0] != want {
		t.Fatalf("paced notes %q\nwant first %q", notes, want)
	}
	paced := scenarioByID(fullScenarios(), "cross-daemon-1000-1KiB-paced")
	if args := strings.Join(wsloadArgs(config{fanoutWindow: 128}, paced, &instance{srv: &server{proto: "ws"}, url: "ws://a,ws://b"}, "x", "y"), " "); !strings.Contains(args, "-rate 200") || !strings.Contains(args, "-url ws://a,ws://b") {
		t.Fatalf("wsload args %q: want -rate 200 and the daemons' URLs", args)
	}
	var md bytes.Buffer
	writeMarkdown(&md, &report{Scenarios: []*scenarioReport{sr}, Config: reportConfigT{CrossRounds: 3}}, "throughput.svg")
	if !strings.Contains(md.String(), "cross-daemon scenarios: 3 round(s)") {
		t.Errorf("Markdown lacks the cross-daemon settings:\n%s", md.String())
	}
}

// TestCrossDaemons builds wsechod, natsd and wsload, and runs what make
// bench runs for the cross-daemon scenario, small: three daemons on a NATS
// server of their own, the members spread over them. Every member gets
// every message, each message reaches the last member, the daemons pass
// messages through NATS and lose none, and stopping leaves no process.
func TestCrossDaemons(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs wsechod, natsd and wsload")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg, err := parseFlags([]string{"-fanout-duration", "400ms", "-fanout-warmup", "100ms"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := findDirs()
	if err != nil {
		t.Fatal(err)
	}
	d.bin = t.TempDir()
	srv := *serverByName("wsechod-3-nats") // build sets its binary: a copy
	tl, skipped := build(ctx, cfg, d, []*server{&srv})
	if len(skipped) > 0 || tl.wsload == "" || tl.natsd == "" {
		t.Fatalf("build: %v, tools %+v", skipped, tl)
	}
	sc := &scenario{id: "cross-test", mode: modeFanout, conns: 30, size: 256, cross: true}
	logDir := t.TempDir()
	in, err := srv.start(ctx, cfg, tl, sc, logDir)
	if err != nil {
		t.Fatal(err)
	}
	procs := append([]*instance{in}, in.peers...)
	stopped := false
	defer func() {
		if !stopped {
			in.stop()
		}
	}()
	if len(procs) != 4 || len(in.daemonStats) != 3 || strings.Count(in.url, ",") != 2 {
		t.Fatalf("%d processes, daemons %q, url %q; want 4, 3 daemons", len(procs), in.daemonStats, in.url)
	}
	jsonPath := filepath.Join(t.TempDir(), "res.json")
	res, _, err := runLoad(ctx, tl.wsload, wsloadArgs(cfg, sc, in, "test", jsonPath), time.Minute, jsonPath)
	if err != nil {
		logs, _ := os.ReadFile(filepath.Join(logDir, srv.name+".log"))
		t.Fatalf("wsload: %v\nlogs:\n%s", err, logs)
	}
	f := res.Fanout
	if f == nil || f.Endpoints != 3 || f.Readers != sc.conns || f.DeliveryRatio != 1 || f.Missing != 0 || res.Errors != 0 {
		t.Fatalf("result %+v, fanout %+v", res, f)
	}
	if f.LastLatencyUS == nil || f.LastMessages != f.Published || f.Published == 0 {
		t.Fatalf("%d of %d published messages reached the last member (%+v)", f.LastMessages, f.Published, f.LastLatencyUS)
	}
	c, err := in.crossStats()
	if err != nil {
		t.Fatal(err)
	}
	// Every message the publisher sent went through NATS to the two
	// other daemons; the publisher's daemon itself published them all.
	if c.Published == 0 || c.Remote != 2*c.Published || c.Lost != 0 || c.NATSDropped != 0 || c.RoomDropped != 0 || c.SlowConsumers != 0 {
		t.Fatalf("counts %+v: want every publication delivered by both other daemons, nothing lost", c)
	}
	if p := in.exitedEarly(); p != nil {
		t.Fatalf("a process exited during the run: %v", p.err)
	}
	in.stop()
	stopped = true
	for _, p := range procs {
		select {
		case <-p.exited:
		default:
			t.Errorf("process %d still runs after stop", p.cmd.Process.Pid)
		}
	}
	if in.cores() <= 0 {
		t.Errorf("cores %v", in.cores())
	}
}
