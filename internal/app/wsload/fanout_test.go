package wsload

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// fanOptions change how the fan-out test server behaves.
type fanOptions struct {
	tcp       bool          // length-prefixed frames instead of WebSocket
	joinDelay time.Duration // a connection becomes a member this long after its handshake
	dropEvery int           // drop every dropEvery-th message for the second member
}

// fanServer sends every data message it receives to every member, the
// sender included, each member's writes under its own lock.
type fanServer struct {
	*testServer
	o       fanOptions
	mu      sync.Mutex
	members []*fanPeer
	dropped atomic.Int64
	msgs    atomic.Int64
	joins   atomic.Int64 // connections that became members

	// room, when set, is the broadcast that several servers share: a
	// message any of them reads goes to the members of all of them, as
	// daemons whose rooms span them do.
	room *fanRoom
}

// fanRoom links fan-out servers into one broadcast.
type fanRoom struct {
	mu      sync.Mutex
	servers []*fanServer
}

// linkFanout starts n fan-out servers that share one broadcast.
func linkFanout(t *testing.T, n int, o fanOptions) []*fanServer {
	t.Helper()
	room := &fanRoom{}
	for range n {
		s := startFanout(t, o)
		s.room = room
		room.servers = append(room.servers, s)
	}
	return room.servers
}

type fanPeer struct {
	mu sync.Mutex
	c  net.Conn
}

func startFanout(t *testing.T, o fanOptions) *fanServer {
	t.Helper()
	s := &fanServer{o: o}
	s.testServer = startServer(t, func(c net.Conn) {
		if !o.tcp {
			if _, err := ws.Upgrade(c); err != nil {
				return
			}
		}
		me := &fanPeer{c: c}
		join := func() {
			s.joins.Add(1)
			s.mu.Lock()
			s.members = append(s.members, me)
			s.mu.Unlock()
		}
		if o.joinDelay > 0 {
			time.AfterFunc(o.joinDelay, join)
		} else {
			join()
		}
		defer func() {
			s.mu.Lock()
			for i, p := range s.members {
				if p == me {
					s.members = append(s.members[:i], s.members[i+1:]...)
					break
				}
			}
			s.mu.Unlock()
		}()
		for {
			p, err := s.read(me)
			if err != nil {
				return
			}
			if r := s.room; r != nil {
				// One message at a time over the room, so that every
				// member gets the messages in one order.
				r.mu.Lock()
				for _, o := range r.servers {
					o.publish(p)
				}
				r.mu.Unlock()
				continue
			}
			s.publish(p)
		}
	})
	return s
}

// read returns the next data message's payload; in WebSocket mode pings
// and the close handshake are answered on the way.
func (s *fanServer) read(me *fanPeer) ([]byte, error) {
	if s.o.tcp {
		var hdr [4]byte
		if _, err := io.ReadFull(me.c, hdr[:]); err != nil {
			return nil, err
		}
		p := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		_, err := io.ReadFull(me.c, p)
		return p, err
	}
	p, _, err := wsutil.ReadClientData(&lockedRW{c: me.c, mu: &me.mu})
	return p, err
}

func (s *fanServer) publish(p []byte) {
	n := s.msgs.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, q := range s.members {
		if i == 1 && s.o.dropEvery > 0 && n%int64(s.o.dropEvery) == 0 {
			s.dropped.Add(1)
			continue
		}
		q.mu.Lock()
		if s.o.tcp {
			q.c.Write(appendTCPFrame(nil, p))
		} else {
			wsutil.WriteServerMessage(q.c, ws.OpBinary, p)
		}
		q.mu.Unlock()
	}
}

func (s *fanServer) tcpURL() string { return "tcp://" + s.ln.Addr().String() }

// stats serves the server's counts, "dropped" among them, and a made-up
// RSS.
func (s *fanServer) stats(t *testing.T) string {
	t.Helper()
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		n := len(s.members)
		s.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{
			"rss_bytes": 1e6 + 4096*n,
			"conns":     n,
			"dropped":   s.dropped.Load(),
		})
	}))
	t.Cleanup(h.Close)
	return h.URL + "/debug/vars"
}

func fanoutConfig(url string) Config {
	cfg := testConfig(url)
	cfg.Mode = ModeFanout
	cfg.Conns = 6
	cfg.Inflight = 16
	cfg.Count = 400
	cfg.Verify = false
	return cfg
}

// wantFanout checks a run in which every reader got every message.
func wantFanout(t *testing.T, cfg Config, res *Result, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf(
			"Run: %v",
			err,
		)
	}
	f := res.Fanout
	readers := cfg.Conns - cfg.Silent
	if f == nil || f.Members != cfg.Conns || f.Readers != readers || f.Silent != cfg.Silent || f.Window != cfg.Inflight {
		t.Fatalf(
			"fanout %+v, want %d members, %d readers, %d silent, window %d",
			f, cfg.Conns, readers, cfg.Silent, cfg.Inflight,
		)
	}
	if f.Published != cfg.Count || f.Delivered < f.Published || res.Errors != 0 ||
		f.Missing != 0 || f.Gaps != 0 || f.Received != f.Expected || f.DeliveryRatio != 1 {
		t.Fatalf(
			"published %d delivered %d, received %d of %d (%v), missing %d, gaps %d, errors %d (%s); want %d published, all received",
			f.Published, f.Delivered, f.Received, f.Expected, f.DeliveryRatio, f.Missing, f.Gaps, res.Errors, res.FirstError, cfg.Count,
		)
	}
	if res.DeliveriesPerS <= res.MsgsPerS || res.LatencyUS == nil || res.Messages != cfg.Count {
		t.Fatalf(
			"deliveries/s %v msgs/s %v latency %+v messages %d",
			res.DeliveriesPerS, res.MsgsPerS, res.LatencyUS, res.Messages,
		)
	}
}

func TestFanoutWS(t *testing.T) {
	s := startFanout(t, fanOptions{})
	cfg := fanoutConfig(s.url())
	res, err := run(t, cfg)
	wantFanout(t, cfg, res, err)
	wantLast(t, res, cfg.Count)
	if res.CloseCodes["1000"] != int64(cfg.Conns) {
		t.Fatalf(
			"close codes %v, want 1000 from every member",
			res.CloseCodes,
		)
	}
}

// TestFanoutSeveralServers spreads the members over three servers that
// share one broadcast: each gets its share of the members, every reader
// gets every message, and every measured message has a latency to its last
// reader, which no member's latency exceeds.
func TestFanoutSeveralServers(t *testing.T) {
	ss := linkFanout(t, 3, fanOptions{})
	cfg := fanoutConfig(ss[0].url())
	cfg.Conns = 7
	for _, s := range ss {
		cfg.URLs = append(cfg.URLs, s.url())
	}
	res, err := run(t, cfg)
	wantFanout(t, cfg, res, err)
	f := res.Fanout
	for i, want := range []int64{3, 2, 2} {
		if got := ss[i].joins.Load(); got != want {
			t.Errorf(
				"server %d had %d members, want %d",
				i, got, want,
			)
		}
	}
	if f.Endpoints != 3 || len(res.URLs) != 3 {
		t.Errorf(
			"endpoints %d, urls %q, want 3",
			f.Endpoints, res.URLs,
		)
	}
	wantLast(t, res, cfg.Count)
}

// wantLast checks the latencies to the last reader: n messages, and
// percentiles no lower than those of the sampled members (each message's
// last receipt is no earlier than any of its receipts).
func wantLast(t *testing.T, res *Result, n int64) {
	t.Helper()
	f, l := res.Fanout, res.Fanout.LastLatencyUS
	if f.LastMessages != n || l == nil {
		t.Fatalf(
			"%d messages reached the last reader (latency %+v), want %d",
			f.LastMessages, l, n,
		)
	}
	m := res.LatencyUS
	if l.P50 < m.P50 || l.P99 < m.P99 || l.Max < m.Max {
		t.Fatalf(
			"to the last reader p50 %d p99 %d max %d µs, below a member's p50 %d p99 %d max %d µs",
			l.P50, l.P99, l.Max, m.P50, m.P99, m.Max,
		)
	}
}

// TestFanoutLastSkipsDropped: a message dropped for one reader has no last
// receipt; the others still do.
func TestFanoutLastSkipsDropped(t *testing.T) {
	s := startFanout(t, fanOptions{dropEvery: 10})
	cfg := fanoutConfig(s.url())
	cfg.Warmup = 0
	res, err := run(t, cfg)
	if res == nil || res.Fanout == nil {
		t.Fatalf("no result: %v", err)
	}
	f := res.Fanout
	if f.Gaps == 0 {
		t.Fatal("the server dropped nothing")
	}
	// One message in ten is dropped for the second member, the probes
	// before the measurement included (they count in Gaps but have no
	// last receipt to lose).
	if got, lo, hi := f.LastMessages, cfg.Count-f.Gaps, cfg.Count-cfg.Count/10; got < lo || got > hi {
		t.Fatalf(
			"%d messages reached the last reader, want %d to %d (%d published, %d dropped for one reader)",
			got, lo, hi, cfg.Count, f.Gaps,
		)
	}
}

// TestFanoutRate: a paced publisher sends no faster than its rate, and
// every message still reaches every reader.
func TestFanoutRate(t *testing.T) {
	s := startFanout(t, fanOptions{})
	cfg := fanoutConfig(s.url())
	cfg.Warmup = 0
	cfg.Count = 100
	cfg.Rate = 1000
	res, err := run(t, cfg)
	wantFanout(t, cfg, res, err)
	// 100 messages at 1000/s take about 100 ms (the measurement may begin
	// a little after the pace does); unpaced, this server takes thousands
	// a second.
	if res.DurationS < 0.09 || res.MsgsPerS > 1.12*cfg.Rate || res.Fanout.Rate != cfg.Rate {
		t.Fatalf(
			"%d messages in %.3f s: %.0f msgs/s, rate %v; want at most %v",
			res.Messages, res.DurationS, res.MsgsPerS, res.Fanout.Rate, cfg.Rate,
		)
	}
}

func TestFanoutTCP(t *testing.T) {
	s := startFanout(t, fanOptions{tcp: true})
	cfg := fanoutConfig(s.tcpURL())
	cfg.Proto = ProtoTCP
	res, err := run(t, cfg)
	wantFanout(t, cfg, res, err)
}

// TestFanoutSilent: silent members read nothing and count in nothing; the
// stats are sampled during the run.
func TestFanoutSilent(t *testing.T) {
	s := startFanout(t, fanOptions{})
	cfg := fanoutConfig(s.url())
	cfg.Conns = 8
	cfg.Silent = 2
	cfg.StatsURL = s.stats(t)
	cfg.Sample = 5 * time.Millisecond
	res, err := run(t, cfg)
	wantFanout(t, cfg, res, err)
	f := res.Fanout
	if len(f.Samples) < 2 || f.RSSStart == nil || f.RSSPeak == nil || f.RSSEnd == nil ||
		*f.RSSPeak < *f.RSSStart || f.ServerDropped == nil || *f.ServerDropped != 0 {
		t.Fatalf(
			"%d samples, rss %v %v %v, server dropped %v; want samples, the RSS and 0 dropped",
			len(f.Samples), f.RSSStart, f.RSSPeak, f.RSSEnd, f.ServerDropped,
		)
	}
	if got := *f.Samples[0].Conns; got != int64(cfg.Conns) {
		t.Fatalf(
			"first sample: %d members, want %d",
			got, cfg.Conns,
		)
	}
	if f.MeasureFromS <= 0 || f.MeasureToS <= f.MeasureFromS {
		t.Fatalf(
			"measurement from %vs to %vs",
			f.MeasureFromS, f.MeasureToS,
		)
	}
}

// TestFanoutGaps: messages the server drops for a member show as gaps, all
// of them missing, and the server's own count comes with the result.
func TestFanoutGaps(t *testing.T) {
	s := startFanout(t, fanOptions{dropEvery: 10})
	cfg := fanoutConfig(s.url())
	cfg.StatsURL = s.stats(t)
	cfg.Sample = 0
	res, err := run(t, cfg)
	if err != nil {
		t.Fatalf(
			"Run: %v",
			err,
		)
	}
	f := res.Fanout
	dropped := s.dropped.Load()
	// A drop of the member's last message is missing but no gap.
	if dropped == 0 || f.Gaps == 0 || f.Gaps > dropped || f.Missing != dropped ||
		f.Received+f.Missing != f.Expected || f.DeliveryRatio >= 1 {
		t.Fatalf(
			"server dropped %d; gaps %d missing %d, received %d of %d (%v)",
			dropped, f.Gaps, f.Missing, f.Received, f.Expected, f.DeliveryRatio,
		)
	}
	if f.ServerDropped == nil || *f.ServerDropped != dropped {
		t.Fatalf(
			"server dropped %v in the result, %d in the server",
			f.ServerDropped, dropped,
		)
	}
	if res.Errors < f.Missing || !strings.Contains(res.FirstError, "missing") {
		t.Fatalf(
			"errors %d (%s), want the %d missing counted",
			res.Errors, res.FirstError, f.Missing,
		)
	}
}

// TestFanoutLateJoin: members that a server adds some time after their
// handshake are waited for (probes) before the load starts, so that none
// misses a measured message.
func TestFanoutLateJoin(t *testing.T) {
	s := startFanout(t, fanOptions{joinDelay: 100 * time.Millisecond})
	cfg := fanoutConfig(s.url())
	res, err := run(t, cfg)
	wantFanout(t, cfg, res, err)
}

// TestFanoutDuration stops on time, with a warm-up, rather than on count.
func TestFanoutDuration(t *testing.T) {
	s := startFanout(t, fanOptions{})
	cfg := fanoutConfig(s.url())
	cfg.Count = 0
	cfg.Warmup = 50 * time.Millisecond
	cfg.Duration = 200 * time.Millisecond
	begin := time.Now()
	res, err := run(t, cfg)
	if err != nil {
		t.Fatalf(
			"Run: %v",
			err,
		)
	}
	f := res.Fanout
	if f.Published == 0 || f.Missing != 0 || res.Errors != 0 || res.DurationS < 0.15 || res.DurationS > 1 {
		t.Fatalf(
			"published %d missing %d errors %d (%s) in %vs",
			f.Published, f.Missing, res.Errors, res.FirstError, res.DurationS,
		)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Fatalf(
			"run took %v",
			d,
		)
	}
}

// TestFanoutPace: the publisher is never more than the window ahead of
// the slowest reader, here one that reads slowly: every delivery it gets
// was published at most the window after it.
func TestFanoutPace(t *testing.T) {
	var ps fanScan
	readers := []*member{{}, {}, {}}
	for i, n := range []int64{5, 9, 7} {
		readers[i].next.Store(n)
	}
	tests := []struct {
		name string
		need int64
		want bool
	}{
		{
			name: "nothing needed",
			need: -3,
			want: true,
		},
		{
			name: "every reader there",
			need: 5,
			want: true,
		},
		{
			name: "the first reader behind",
			need: 6,
			want: false,
		},
		{
			name: "the same need once it moves",
			need: 6,
			want: true,
		},
	}
	for _, tc := range tests {
		if tc.name == "the same need once it moves" {
			readers[0].next.Store(6)
		}
		if got := ps.reached(readers, tc.need); got != tc.want {
			t.Errorf(
				"%s: reached(%d) = %v, want %v",
				tc.name, tc.need, got, tc.want,
			)
		}
	}
}

func TestFanoutConfig(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{
			name:   "silent without fanout",
			change: func(c *Config) { c.Mode = ModeBroadcast; c.Silent = 1 },
			want:   "only with -mode fanout",
		},
		{
			name:   "every member silent",
			change: func(c *Config) { c.Silent = c.Conns },
			want:   "-silent",
		},
		{
			name:   "too small for the stamp",
			change: func(c *Config) { c.Size = 15 },
			want:   "at least 16 bytes",
		},
		{
			name:   "negative rate",
			change: func(c *Config) { c.Rate = -1 },
			want:   "-rate",
		},
		{
			name:   "rate without fanout",
			change: func(c *Config) { c.Mode = ModeEcho; c.Rate = 10 },
			want:   "-rate",
		},
		{
			name:   "negative sample",
			change: func(c *Config) { c.Sample = -time.Second },
			want:   "-sample",
		},
	}
	for _, tc := range cases {
		cfg := fanoutConfig("ws://127.0.0.1:1/")
		tc.change(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf(
				"%s: %v, want an error with %q",
				tc.name, err, tc.want,
			)
		}
	}
}
