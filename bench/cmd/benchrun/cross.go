package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// crossRoom is the room the cross-daemon scenarios' members join.
const crossRoom = "/room/bench"

// startCross starts a cross server for sc: with more than one daemon, a
// NATS server first (natsd), then the daemons with -nats, each waited for
// until its NATS connection is up, so that no probe of the run is lost to
// a connection still being made.
func (s *server) startCross(ctx context.Context, cfg config, t tools, sc *scenario, logDir string) (in *instance, err error) {
	var started []*instance
	defer func() {
		if err != nil {
			for i := len(started) - 1; i >= 0; i-- {
				started[i].stop()
			}
		}
	}()
	var natsURL, natsStats string
	if s.daemons > 1 {
		if t.natsd == "" {
			return nil, errors.New("natsd did not build")
		}
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		statsAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		natsStats = "http://" + statsAddr + "/debug/vars"
		ns, err := launch(ctx, s, t.natsd, []string{"-addr", addr, "-stats-addr", statsAddr}, natsStats, logDir, sc.id)
		if err != nil {
			return nil, fmt.Errorf("natsd: %w", err)
		}
		started = append(started, ns)
		natsURL = "nats://" + addr
	}
	var urls, stats []string
	var daemons []*instance
	for i := range s.daemons {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		args := []string{"-addr", addr}
		if sc.mode == modeFanout && s.writeTimeout {
			args = append(args, "-write-timeout", cfg.fanoutWriteTimeout.String())
		}
		if natsURL != "" {
			args = append(args, "-nats", natsURL, "-nats-name", "bench-"+strconv.Itoa(i))
		}
		statsURL := "http://" + addr + "/debug/vars"
		d, err := launch(ctx, s, s.bin, args, statsURL, logDir, sc.id)
		if err != nil {
			return nil, err
		}
		started = append(started, d)
		if natsURL != "" {
			if err := waitNATS(ctx, d, 10*time.Second); err != nil {
				return nil, err
			}
		}
		daemons = append(daemons, d)
		urls = append(urls, "ws://"+addr+crossRoom)
		stats = append(stats, statsURL)
	}
	in = daemons[0]
	// The daemons stop before their NATS server, so that none of them
	// logs a lost connection on the way out.
	in.peers = slices.Concat(daemons[1:], started[:len(started)-len(daemons)])
	in.url = strings.Join(urls, ",")
	in.daemonStats = stats
	in.natsStats = natsStats
	return in, nil
}

// freeAddr is freePort as a loopback host:port.
func freeAddr() (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// waitNATS polls a daemon's stats until its NATS connection is up.
func waitNATS(ctx context.Context, d *instance, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var v struct {
			NATS *struct{ Connected bool } `json:"nats"`
		}
		if err := getJSON(d.statsURL, &v); err == nil && v.NATS != nil && v.NATS.Connected {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not connected to NATS after %v", d.statsURL, timeout)
		}
		select {
		case <-d.exited:
			return fmt.Errorf("exited at start (%v)", d.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// getJSON decodes the JSON document at url into v.
func getJSON(url string, v any) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// crossCounts are a cross server's own counts over one run (its processes
// start fresh for each): what the daemons handed to NATS, could not hand
// (lost for the other daemons), received from the others, and dropped
// (their delivery queue was full, or a member's backlog was); and the NATS
// server's slow consumers.
type crossCounts struct {
	Published     int64 `json:"broker_published"`
	Lost          int64 `json:"broker_lost"`
	Remote        int64 `json:"broker_remote"`
	NATSDropped   int64 `json:"nats_dropped"`
	RoomDropped   int64 `json:"broadcast_dropped"`
	SlowConsumers int64 `json:"nats_slow_consumers"`
}

// crossStats reads the counts of a cross server's daemons and NATS server.
func (in *instance) crossStats() (*crossCounts, error) {
	var c crossCounts
	for _, u := range in.daemonStats {
		var v struct {
			Published int64                    `json:"broker_published"`
			Lost      int64                    `json:"broker_lost"`
			Remote    int64                    `json:"broker_remote"`
			Dropped   int64                    `json:"broadcast_dropped"`
			NATS      *struct{ Dropped int64 } `json:"nats"`
		}
		if err := getJSON(u, &v); err != nil {
			return nil, err
		}
		c.Published += v.Published
		c.Lost += v.Lost
		c.Remote += v.Remote
		c.RoomDropped += v.Dropped
		if v.NATS != nil {
			c.NATSDropped += v.NATS.Dropped
		}
	}
	if in.natsStats != "" {
		var v struct {
			Slow int64 `json:"slow_consumers"`
		}
		if err := getJSON(in.natsStats, &v); err != nil {
			return nil, err
		}
		c.SlowConsumers = v.Slow
	}
	return &c, nil
}

// add adds o's counts to c.
func (c *crossCounts) add(o *crossCounts) {
	c.Published += o.Published
	c.Lost += o.Lost
	c.Remote += o.Remote
	c.NATSDropped += o.NATSDropped
	c.RoomDropped += o.RoomDropped
	c.SlowConsumers += o.SlowConsumers
}

// text is the counts in a table cell: lost to NATS / dropped (by the
// daemons' delivery queues, the members' backlogs and NATS's slow
// consumers), over all runs.
func (c *crossCounts) text() string {
	if c == nil {
		return "n/a"
	}
	return fmt.Sprintf("%d / %d", c.Lost, c.NATSDropped+c.RoomDropped+c.SlowConsumers)
}

// crossNotes are the lines under a cross-daemon table: the daemons on NATS
// against one daemon.
func (sr *scenarioReport) crossNotes() []string {
	one, many := sr.server("wsechod-1"), sr.server("wsechod-3-nats")
	if one == nil || many == nil || one.Primary.Median <= 0 {
		return nil
	}
	var notes []string
	switch {
	case sr.Rate > 0 && one.LastP99US > 0 && many.LastP99US > 0:
		notes = append(notes, fmt.Sprintf("At %d messages/s (%s deliveries/s), from publish to the last member: p50 %s on three daemons on NATS against %s on one, p99 %s against %s (medians).",
			sr.Rate, si(float64(sr.Rate*sr.Conns)), us(many.LastP50US), us(one.LastP50US), us(many.LastP99US), us(one.LastP99US)))
	case sr.Rate > 0:
	default:
		n := fmt.Sprintf("Three daemons on NATS deliver %.2fx what one daemon delivers to the same members (medians, deliveries/s: %s against %s)",
			many.Primary.Median/one.Primary.Median, si(many.Primary.Median), si(one.Primary.Median))
		if one.LastP99US > 0 && many.LastP99US > 0 {
			n += fmt.Sprintf("; p99 from publish to the last member %s against %s (at this saturation the latency is mostly the publisher's window in the queues: see the paced scenario)", us(many.LastP99US), us(one.LastP99US))
		}
		notes = append(notes, n+".")
	}
	if c := many.Cross; c != nil {
		notes = append(notes, fmt.Sprintf("The daemons handed %d messages to NATS and delivered %d from the others, over all runs; lost to NATS %d, dropped by their delivery queues %d, by the members' backlogs %d; NATS counted %d slow consumers.",
			c.Published, c.Remote, c.Lost, c.NATSDropped, c.RoomDropped, c.SlowConsumers))
	}
	return notes
}

// server is the summary of the named server, or nil.
func (sr *scenarioReport) server(name string) *summary {
	for _, s := range sr.Servers {
		if s.Name == name {
			return s.Summary
		}
	}
	return nil
}

func hasCross(rep *report) bool {
	for _, sr := range rep.Scenarios {
		if sr.Cross {
			return true
		}
	}
	return false
}
