package wsload

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// startStormStats serves a stats document whose figures grow with the open
// connections of s: per connection, rss 6144 bytes read without a garbage
// collection and 4096 after one (gc=1), and a peak of 8192.
func startStormStats(t *testing.T, s *testServer, sawGC *atomic.Int64) string {
	t.Helper()
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.open.Load()
		rss := 1e6 + 6144*n
		if r.URL.Query().Get("gc") == "1" {
			sawGC.Add(1)
			rss = 1e6 + 4096*n
		}
		json.NewEncoder(w).Encode(map[string]any{
			"rss_bytes":      rss,
			"rss_peak_bytes": 1e6 + 8192*n,
			"goroutines":     3 + n,
		})
	}))
	t.Cleanup(h.Close)
	return h.URL + "/debug/vars"
}

func TestStorm(t *testing.T) {
	s := startWSEcho(t, wsOptions{})
	var sawGC atomic.Int64
	cfg := testConfig(s.url())
	cfg.Mode = ModeStorm
	cfg.Conns = 50
	cfg.DialConcurrency = 8
	cfg.Hold = 50 * time.Millisecond
	cfg.StatsURL = startStormStats(t, s, &sawGC)
	res, err := run(t, cfg)
	if err != nil {
		t.Fatalf(
			"Run: %v",
			err,
		)
	}
	st := res.Storm
	if st == nil || st.Conns != 50 || st.StormS <= 0 || st.HandshakesPerS != 50/st.StormS || st.HoldS != 0.05 {
		t.Fatalf(
			"storm %+v, want 50 connections and their rate",
			st,
		)
	}
	for _, c := range []struct {
		name string
		got  *int64
		want int64
	}{
		{
			name: "peak",
			got:  st.PeakPerConnBytes,
			want: 8192,
		},
		{
			name: "after, no GC",
			got:  st.AfterPerConnBytes,
			want: 6144,
		},
		{
			name: "after GC",
			got:  st.GCPerConnBytes,
			want: 4096,
		},
		{
			name: "goroutines",
			got:  st.Goroutines,
			want: 53,
		},
	} {
		if c.got == nil || *c.got != c.want {
			t.Errorf(
				"%s: %v, want %d",
				c.name, c.got, c.want,
			)
		}
	}
	// Before (with gc=1), after without, after with.
	if sawGC.Load() != 2 {
		t.Fatalf(
			"%d requests with gc=1, want 2",
			sawGC.Load(),
		)
	}
	if res.CloseCodes["1000"] != 50 || res.Errors != 0 || res.DialErrors != 0 {
		t.Fatalf(
			"close codes %v errors %d dial errors %d",
			res.CloseCodes, res.Errors, res.DialErrors,
		)
	}
}

// Without a stats endpoint a storm still measures its handshakes.
func TestStormWithoutStats(t *testing.T) {
	s := startWSEcho(t, wsOptions{})
	cfg := testConfig(s.url())
	cfg.Mode = ModeStorm
	cfg.Conns = 10
	cfg.Hold = 0
	res, err := run(t, cfg)
	if err != nil || res.Storm == nil || res.Storm.Conns != 10 || res.Storm.HandshakesPerS <= 0 || res.Storm.AfterPerConnBytes != nil {
		t.Fatalf(
			"Run: %+v, %v",
			res.Storm, err,
		)
	}
}

// -ping: every connection pings once and gets its pong; the close is
// timed; -source dials from the addresses given, in turn.
func TestStormPing(t *testing.T) {
	s := startWSEcho(t, wsOptions{})
	cfg := testConfig(s.url())
	cfg.Mode = ModeStorm
	cfg.Conns = 40
	cfg.Hold = 0
	cfg.Ping = true
	cfg.PingDelay = 10 * time.Millisecond
	cfg.Sources = []string{"127.0.0.2", "127.0.0.3"}
	var sawGC atomic.Int64
	cfg.StatsURL = startStormStats(t, s, &sawGC)
	res, err := run(t, cfg)
	if err != nil {
		t.Fatalf(
			"Run: %v",
			err,
		)
	}
	st := res.Storm
	if st.Pongs != 40 || st.PingUS == nil || st.PingUS.Max <= 0 || st.CloseS <= 0 {
		t.Fatalf(
			"storm %+v, ping %+v: want 40 pongs, their round trips and the close time",
			st, st.PingUS,
		)
	}
	if got := s.sources(); len(got) != 2 || got["127.0.0.2"] != 20 || got["127.0.0.3"] != 20 {
		t.Fatalf(
			"connections came from %v, want 20 from each of 127.0.0.2 and 127.0.0.3",
			got,
		)
	}
	if res.CloseCodes["1000"] != 40 || res.Errors != 0 {
		t.Fatalf(
			"close codes %v errors %d",
			res.CloseCodes, res.Errors,
		)
	}
}

func TestStormFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{
			name: "ping outside storm",
			edit: func(c *Config) { c.Mode, c.Ping = ModeIdle, true },
		},
		{
			name: "ping over tcp",
			edit: func(c *Config) { c.Mode, c.Proto, c.Ping = ModeStorm, ProtoTCP, true },
		},
		{
			name: "ping delay without ping",
			edit: func(c *Config) { c.Mode, c.PingDelay = ModeStorm, time.Second },
		},
		{
			name: "source not an address",
			edit: func(c *Config) { c.Mode, c.Sources = ModeStorm, []string{"localhost"} },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("ws://127.0.0.1:1/")
			tc.edit(&cfg)
			if err := cfg.Validate(); err == nil {
				t.Fatal("Validate: no error")
			}
		})
	}
}
