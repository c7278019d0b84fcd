package wsload

import (
	"context"
	"net/http"
	"time"
)

// StormResult is what a reconnection storm cost the server. The memory
// figures are per connection held, over the server's own reading before
// the storm (taken after a garbage collection); a field is nil when the
// stats endpoint did not report what it needs.
type StormResult struct {
	Conns int64 `json:"conns"`
	// StormS is the time from the first dial to the end of the last
	// handshake, HandshakesPerS the connections opened over it.
	StormS         float64 `json:"storm_s"`
	HandshakesPerS float64 `json:"handshakes_per_s"`
	// HoldS is how long after the storm AfterPerConn was read.
	HoldS float64 `json:"hold_s"`
	// PeakPerConnBytes is the server's peak RSS (rss_peak_bytes, the
	// kernel's high-water mark) over its RSS before the storm.
	PeakPerConnBytes *int64 `json:"peak_per_conn_bytes,omitempty"`
	// AfterPerConnBytes is its RSS HoldS after the storm, read without a
	// garbage collection: what the storm left behind shows here.
	AfterPerConnBytes *int64 `json:"after_per_conn_bytes,omitempty"`
	// GCPerConnBytes is its RSS after a forced collection and the return
	// of free memory: what the sessions themselves hold.
	GCPerConnBytes *int64 `json:"gc_per_conn_bytes,omitempty"`
	// Goroutines is the server's count HoldS after the storm.
	Goroutines *int64 `json:"goroutines,omitempty"`
	// With Ping: every connection pinged once, at once, after the stats;
	// Pongs is how many pongs came, PingUS the round trips.
	Pongs  int64    `json:"pongs,omitempty"`
	PingUS *Latency `json:"ping_us,omitempty"`
	// CloseS is the time from the start of the closing handshakes to the
	// end of the last connection.
	CloseS float64 `json:"close_s"`
}

// storm runs the rest of ModeStorm once every dial has ended, stormTime
// after the first began: it holds the connections for Hold, reads the
// server's stats without and then with a garbage collection, and closes.
func (r *runner) storm(ctx context.Context, client *http.Client, res *Result, stormTime time.Duration) error {
	close(r.start)
	held := r.up.Load()
	st := &StormResult{
		Conns:  held,
		StormS: stormTime.Seconds(),
		HoldS:  r.cfg.Hold.Seconds(),
	}
	if stormTime > 0 {
		st.HandshakesPerS = float64(held) / stormTime.Seconds()
	}
	res.Storm = st
	held0 := time.Now()
	var err error
	if r.cfg.StatsURL != "" {
		sleep(ctx, r.cfg.Hold-time.Since(held0))
		// Read even after an interrupt: the requests have their own timeout.
		ctx := context.WithoutCancel(ctx)
		after, ferr := fetchStatsGC(ctx, client, r.cfg.StatsURL, false)
		if ferr != nil {
			r.logf("wsload: after the storm: %v", ferr)
		}
		gc, gerr := fetchStats(ctx, client, r.cfg.StatsURL)
		if gerr != nil {
			r.logf("wsload: after the storm, collected: %v", gerr)
		}
		res.Server = gc
		b := res.ServerBefore
		if after == nil || gc == nil || b == nil {
			err = ErrNoStats
		} else {
			st.PeakPerConnBytes = perConn(b.RSSBytes, after.RSSPeakBytes, held)
			st.AfterPerConnBytes = perConn(b.RSSBytes, after.RSSBytes, held)
			st.GCPerConnBytes = perConn(b.RSSBytes, gc.RSSBytes, held)
			st.Goroutines = after.Goroutines
		}
	} else {
		sleep(ctx, r.cfg.Hold)
	}
	if r.cfg.Ping {
		sleep(ctx, r.cfg.PingDelay)
		r.pingAll(st)
	}
	r.closeStart = time.Now()
	r.setPhase(phaseClose)
	return err
}

// pingAll has every open connection send one ping and waits, up to the
// drain timeout, for their pongs: the round trip across every session of a
// full server.
func (r *runner) pingAll(st *StormResult) {
	r.pingNow.Store(true)
	r.setPhase(r.phase.Load()) // wakes every connection
	want := r.up.Load()
	r.waitFor(func() bool { return r.pongs.Load() >= want })
	var h Hist
	for _, c := range r.conns {
		if d := c.rtt.Load(); d > 0 {
			h.Record(time.Duration(d))
		}
	}
	st.Pongs = int64(h.Count())
	if st.Pongs > 0 {
		st.PingUS = latencyOf(&h)
	}
}
