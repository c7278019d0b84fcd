package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// runner runs the scenarios.
type runner struct {
	cfg     config
	dirs    dirs
	tools   tools
	logDir  string
	skipped map[string]string // server name -> why it was not run at all
}

// runRecord is one run of wsload against one server.
type runRecord struct {
	Round  int         `json:"round"`
	Order  int         `json:"order"` // position in the round, from 1
	Error  string      `json:"error,omitempty"`
	Result *loadResult `json:"result,omitempty"`
	// Cores used on average (CPU time over wall time) by the server, from
	// its start to its stop, and by wsload.
	ServerCores float64 `json:"server_cores,omitempty"`
	LoadCores   float64 `json:"wsload_cores,omitempty"`
	// Cross is a cross server's own counts after the run.
	Cross *crossCounts `json:"cross,omitempty"`
}

// runAll runs every scenario: rounds of every server, the order rotated
// from round to round, each run on a freshly started server.
func (r *runner) runAll(ctx context.Context, scenarios []*scenario, srvs []*server) *report {
	rep := &report{}
	for si, sc := range scenarios {
		sr := &scenarioReport{
			ID:        sc.id,
			Title:     sc.title(),
			Mode:      string(sc.mode),
			Conns:     sc.conns,
			Inflight:  sc.inflight,
			Size:      sc.size,
			Silent:    sc.silent,
			Cross:     sc.cross,
			Rate:      sc.rate,
			Reference: sc.reference(),
		}
		if sc.mode == modeFanout {
			sr.Inflight = r.cfg.fanoutWindow
		}
		rep.Scenarios = append(rep.Scenarios, sr)
		var parts []*serverReport
		byName := map[string]*serverReport{}
		for _, s := range servers {
			ok, why := s.serves(r.cfg, sc)
			if !ok && why == "" {
				continue // not meant for this kind of scenario
			}
			if skip, ok := r.skipped[s.name]; ok {
				if selected(r.cfg, s) {
					sr.Servers = append(sr.Servers, &serverReport{Name: s.name, Note: "skipped: " + skip})
				}
				continue
			}
			if !contains(srvs, s) {
				continue
			}
			srep := &serverReport{Name: s.name}
			sr.Servers = append(sr.Servers, srep)
			if !ok {
				srep.Note = why
				continue
			}
			parts = append(parts, srep)
			byName[s.name] = srep
		}
		gaveUp := map[string]bool{}
		rounds := sc.rounds(r.cfg)
		for round := 0; round < rounds; round++ {
			for i := range parts {
				srep := parts[(i+round)%len(parts)]
				s := serverByName(srep.Name)
				if gaveUp[s.name] {
					continue
				}
				if ctx.Err() != nil {
					return rep
				}
				progress("[scenario %d/%d, round %d/%d] %-13s %s ... ",
					si+1, len(scenarios), round+1, rounds, s.name, sc.short())
				rec := r.runOne(ctx, sc, s, round, i+1)
				srep.Runs = append(srep.Runs, rec)
				if rec.Error != "" && rec.Result == nil {
					progress("FAILED: %s\n", rec.Error)
					if strings.HasPrefix(rec.Error, "start: ") {
						// A server that cannot start now will not start in
						// the next rounds either.
						gaveUp[s.name] = true
						srep.Note = rec.Error
					}
					continue
				}
				progress("%s", describe(sc, rec.Result))
				if rec.Error != "" {
					progress(" (%s)", rec.Error)
				}
				progress("\n")
			}
		}
		for _, srep := range sr.Servers {
			srep.Summary = summarize(sc, srep.Runs)
		}
		computeRatios(sc, sr)
	}
	return rep
}

// named reports whether -servers names s.
func named(cfg config, s *server) bool {
	for _, n := range cfg.servers {
		if n == s.name {
			return true
		}
	}
	return false
}

func selected(cfg config, s *server) bool {
	if len(cfg.servers) == 0 {
		return true
	}
	for _, n := range cfg.servers {
		if n == s.name {
			return true
		}
	}
	return false
}

func contains(srvs []*server, s *server) bool {
	for _, x := range srvs {
		if x == s {
			return true
		}
	}
	return false
}

// runOne starts s, runs wsload for sc against it, and stops it.
func (r *runner) runOne(ctx context.Context, sc *scenario, s *server, round, order int) (rec runRecord) {
	rec = runRecord{Round: round + 1, Order: order}
	in, err := s.start(ctx, r.cfg, r.tools, sc, r.logDir)
	if err != nil {
		rec.Error = "start: " + err.Error()
		return rec
	}
	defer func() {
		in.stop()
		rec.ServerCores = in.cores()
	}()
	label := fmt.Sprintf("%s %s round %d", s.name, sc.id, round+1)
	jsonPath := filepath.Join(os.TempDir(), fmt.Sprintf("benchrun-%d-%s.json", os.Getpid(), s.name))
	defer os.Remove(jsonPath)
	var (
		res   *loadResult
		cores float64
	)
	if sc.procs > 1 {
		res, cores, err = runStormProcs(ctx, r.tools.wsload, r.cfg, sc, in, label)
	} else {
		res, cores, err = runLoad(ctx, r.tools.wsload, wsloadArgs(r.cfg, sc, in, label, jsonPath), sc.runTimeout(r.cfg), jsonPath)
	}
	rec.Result = res
	rec.LoadCores = cores
	if err != nil {
		rec.Error = err.Error()
	}
	if s.cross {
		c, cerr := in.crossStats()
		rec.Cross = c
		if cerr != nil && rec.Error == "" {
			rec.Error = "the daemons' counts: " + cerr.Error()
		}
	}
	if p := in.exitedEarly(); p != nil {
		msg := fmt.Sprintf("the server exited during the run (%v); see results/logs/%s.log", p.err, s.name)
		if rec.Error != "" {
			msg = rec.Error + "; " + msg
		}
		rec.Error = msg
	}
	return rec
}

// describe is the result of one run on the progress line.
func describe(sc *scenario, res *loadResult) string {
	switch sc.mode {
	case modeIdle:
		if res.Idle == nil || res.Idle.RSSPerConnBytes == nil {
			return "no memory figures"
		}
		return fmt.Sprintf("%d conns, %.2f KiB/conn RSS", res.Idle.Conns, float64(*res.Idle.RSSPerConnBytes)/1024)
	case modeStorm:
		st := res.Storm
		if st == nil {
			return "no storm figures"
		}
		return fmt.Sprintf("%d conns, %s handshakes/s, KiB/conn RSS peak %s, %gs after %s, after GC %s",
			st.Conns, si(st.HandshakesPerS), kibOf(st.PeakPerConnBytes), st.HoldS, kibOf(st.AfterPerConnBytes), kibOf(st.GCPerConnBytes))
	case modeBroadcast:
		return fmt.Sprintf("%s deliveries/s, %s msgs/s sent%s", si(res.DeliveriesPerS), si(res.MsgsPerS), latencyText(res))
	case modeFanout:
		s := fmt.Sprintf("%s deliveries/s, %s msgs/s published", si(res.DeliveriesPerS), si(res.MsgsPerS))
		if f := res.Fanout; f != nil {
			s += fmt.Sprintf(", delivered %s", percent(f.DeliveryRatio))
			if f.ServerDropped != nil {
				s += fmt.Sprintf(", server dropped %d", *f.ServerDropped)
			}
			if l := f.LastLatencyUS; l != nil && f.Endpoints > 1 {
				s += fmt.Sprintf(", to the last member p99 %s", us(float64(l.P99)))
			}
			if f.RSSPeak != nil && f.RSSStart != nil {
				s += fmt.Sprintf(", RSS %s to %s peak", mib(float64(*f.RSSStart)), mib(float64(*f.RSSPeak)))
			}
		}
		return s + latencyText(res)
	default:
		return fmt.Sprintf("%s msgs/s, %.1f MB/s%s", si(res.MsgsPerS), res.MBPerS, latencyText(res))
	}
}

func latencyText(res *loadResult) string {
	s := ""
	if res.LatencyUS != nil {
		s = fmt.Sprintf(", p50 %s p99 %s", us(float64(res.LatencyUS.P50)), us(float64(res.LatencyUS.P99)))
	}
	if res.Errors > 0 || res.DialErrors > 0 {
		s += fmt.Sprintf(", %d errors, %d dial errors", res.Errors, res.DialErrors)
		if res.FirstError != "" {
			s += " (first: " + res.FirstError + ")"
		}
	}
	return s
}

// si formats a rate with an SI suffix: 1.79M, 92.2k.
func si(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// us formats microseconds.
func us(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fs", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.2fms", v/1e3)
	default:
		return fmt.Sprintf("%.0fµs", v)
	}
}

// kibOf is a per-connection figure in KiB, or n/a.
func kibOf(v *int64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", float64(*v)/1024)
}
