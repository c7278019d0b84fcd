package wsload

import (
	"context"
	"errors"
	"io"
	"log"
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

// testConfig is a short bounded run against url.
func testConfig(url string) Config {
	return Config{
		URL:             url,
		Proto:           ProtoWS,
		Mode:            ModeEcho,
		Conns:           4,
		Inflight:        8,
		Size:            64,
		Binary:          true,
		Verify:          true,
		Duration:        5 * time.Second,
		Count:           2000,
		DialConcurrency: 4,
		DialTimeout:     2 * time.Second,
	}
}

func run(t *testing.T, cfg Config) (*Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	begin := time.Now()
	res, err := Run(ctx, cfg)
	if res == nil {
		t.Fatalf(
			"Run: no result: %v",
			err,
		)
	}
	t.Logf("%s in %v: %d msgs, %.0f msgs/s, %d errors (%s), close codes %v",
		cfg.Mode, time.Since(begin).Round(time.Millisecond), res.Messages, res.MsgsPerS,
		res.Errors, res.FirstError, res.CloseCodes)
	return res, err
}

// wantClean checks a run that measured count messages without an error and
// closed every connection with 1000 (ws) or without a close frame (tcp).
func wantClean(t *testing.T, cfg Config, res *Result, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf(
			"Run: %v",
			err,
		)
	}
	if res.Messages != cfg.Count || res.Errors != 0 || res.DialErrors != 0 {
		t.Fatalf(
			"messages %d errors %d dial errors %d, want %d, 0, 0 (first error: %s)",
			res.Messages, res.Errors, res.DialErrors, cfg.Count, res.FirstError,
		)
	}
	wantCodes := map[string]int64{"1000": int64(cfg.Conns)}
	if cfg.Proto == ProtoTCP {
		wantCodes = map[string]int64{}
	}
	if len(res.CloseCodes) != len(wantCodes) || res.CloseCodes["1000"] != wantCodes["1000"] {
		t.Fatalf(
			"close codes %v, want %v",
			res.CloseCodes, wantCodes,
		)
	}
	if res.DurationS <= 0 || res.MsgsPerS <= 0 || res.LatencyUS == nil || res.LatencyUS.Max <= 0 {
		t.Fatalf(
			"duration %v msgs/s %v latency %+v",
			res.DurationS, res.MsgsPerS, res.LatencyUS,
		)
	}
	wantMB := float64(2*cfg.Count*int64(cfg.Size)) / 1e6 / res.DurationS
	if d := res.MBPerS - wantMB; d > 1e-9 || d < -1e-9 {
		t.Fatalf(
			"MB/s %v, want %v",
			res.MBPerS, wantMB,
		)
	}
}

func TestEchoWS(t *testing.T) {
	s := startWSEcho(t, wsOptions{})
	var sawGC atomic.Int64
	cfg := testConfig(s.url())
	cfg.StatsURL = startStats(t, s, &sawGC)
	res, err := run(t, cfg)
	wantClean(t, cfg, res, err)
	// Before the dials, and after the drain with every connection open.
	if res.ServerBefore == nil || res.Server == nil || sawGC.Load() != 2 ||
		*res.ServerBefore.Goroutines != 3 || *res.Server.Goroutines != 3+int64(cfg.Conns) {
		t.Fatalf(
			"server stats before %+v after %+v, %d requests with gc=1",
			res.ServerBefore, res.Server, sawGC.Load(),
		)
	}
}

func TestEchoTCP(t *testing.T) {
	s := startTCPEcho(t)
	cfg := testConfig(s.url())
	cfg.Proto = ProtoTCP
	res, err := run(t, cfg)
	wantClean(t, cfg, res, err)
}

// TestEchoLargeFragmentedText sends text messages larger than the read
// buffer, with 64-bit lengths, that the server echoes in two fragments.
func TestEchoLargeFragmentedText(t *testing.T) {
	s := startWSEcho(t, wsOptions{fragment: true})
	cfg := testConfig(s.url())
	cfg.Binary = false
	cfg.Size = 100_000
	cfg.Conns = 2
	cfg.Inflight = 3
	cfg.Count = 60
	res, err := run(t, cfg)
	wantClean(t, cfg, res, err)
}

// TestEchoWarmupDuration stops on time rather than on count.
func TestEchoWarmupDuration(t *testing.T) {
	s := startWSEcho(t, wsOptions{})
	cfg := testConfig(s.url())
	cfg.Count = 0
	cfg.Warmup = 100 * time.Millisecond
	cfg.Duration = 300 * time.Millisecond
	res, err := run(t, cfg)
	if err != nil {
		t.Fatalf(
			"Run: %v",
			err,
		)
	}
	if res.Messages == 0 || res.Errors != 0 {
		t.Fatalf(
			"messages %d errors %d (%s)",
			res.Messages, res.Errors, res.FirstError,
		)
	}
	if res.DurationS < 0.3 || res.DurationS > 0.6 {
		t.Fatalf(
			"measured %v s, want about 0.3",
			res.DurationS,
		)
	}
}

// TestPingAnswered has the server ping right after its handshake response,
// so the ping also arrives in the dialer's buffer.
func TestPingAnswered(t *testing.T) {
	pongs := make(chan []byte, 16)
	s := startWSEcho(t, wsOptions{pingFirst: []byte("hello?"), pongs: pongs})
	cfg := testConfig(s.url())
	cfg.Count = 200
	res, err := run(t, cfg)
	wantClean(t, cfg, res, err)
	for range cfg.Conns {
		select {
		case p := <-pongs:
			if string(p) != "hello?" {
				t.Fatalf(
					"pong %q, want %q",
					p, "hello?",
				)
			}
		default:
			t.Fatal("a ping went unanswered")
		}
	}
}

// TestBadEchoCounted has the server echo text as binary: every echo is
// counted as an error.
func TestBadEchoCounted(t *testing.T) {
	s := startWSEcho(t, wsOptions{wrongOp: true})
	cfg := testConfig(s.url())
	cfg.Binary = false
	cfg.Count = 100
	res, err := run(t, cfg)
	if !errors.Is(err, ErrNothingMeasured) || res.Errors != cfg.Count || res.Messages != 0 {
		t.Fatalf(
			"err %v, errors %d, messages %d: want every echo counted as an error",
			err, res.Errors, res.Messages,
		)
	}
}

// TestInvalidTextFails has the server echo binary messages, which are not
// UTF-8, as text: that breaks the protocol, and the run reports it.
func TestInvalidTextFails(t *testing.T) {
	s := startWSEcho(t, wsOptions{wrongOp: true})
	cfg := testConfig(s.url())
	cfg.Count = 100
	res, err := run(t, cfg)
	if !errors.Is(err, ErrNothingMeasured) || res.Errors == 0 || res.Messages != 0 ||
		!strings.Contains(res.FirstError, "not valid UTF-8") {
		t.Fatalf(
			"err %v, errors %d, messages %d, first error %q: want the invalid text reported",
			err, res.Errors, res.Messages, res.FirstError,
		)
	}
}

// TestServerCloses has the server close every connection with 1001 in the
// middle of the run: the run ends early, with the code and errors counted.
func TestServerCloses(t *testing.T) {
	s := startWSEcho(t, wsOptions{closeAfter: 20, closeCode: ws.StatusGoingAway})
	cfg := testConfig(s.url())
	cfg.Count = 0
	begin := time.Now()
	res, _ := run(t, cfg)
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf(
			"run took %v, want it to end when the server closed",
			took,
		)
	}
	if res.CloseCodes["1001"] != int64(cfg.Conns) || res.Errors < int64(cfg.Conns) {
		t.Fatalf(
			"close codes %v, errors %d: want 1001 on every connection, counted as errors",
			res.CloseCodes, res.Errors,
		)
	}
}

func TestNoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "ws://" + ln.Addr().String() + "/"
	ln.Close()
	cfg := testConfig(url)
	res, err := run(t, cfg)
	if !errors.Is(err, ErrNoConnections) || res.DialErrors != int64(cfg.Conns) {
		t.Fatalf(
			"err %v, dial errors %d: want ErrNoConnections and %d",
			err, res.DialErrors, cfg.Conns,
		)
	}
}

func TestBroadcast(t *testing.T) {
	s := startBroadcast(t)
	cfg := testConfig(s.url())
	cfg.Mode = ModeBroadcast
	cfg.Count = 300
	cfg.Inflight = 4
	res, err := run(t, cfg)
	if err != nil {
		t.Fatalf(
			"Run: %v",
			err,
		)
	}
	want := cfg.Count * int64(cfg.Conns)
	if res.Messages != cfg.Count || res.Deliveries != want || res.Errors != 0 {
		t.Fatalf(
			"messages %d deliveries %d errors %d (%s), want %d, %d, 0",
			res.Messages, res.Deliveries, res.Errors, res.FirstError, cfg.Count, want,
		)
	}
	if res.DeliveriesPerS <= res.MsgsPerS || res.LatencyUS == nil {
		t.Fatalf(
			"deliveries/s %v msgs/s %v latency %+v",
			res.DeliveriesPerS, res.MsgsPerS, res.LatencyUS,
		)
	}
}

func TestIdle(t *testing.T) {
	s := startWSEcho(t, wsOptions{})
	var sawGC atomic.Int64
	cfg := testConfig(s.url())
	cfg.Mode = ModeIdle
	cfg.Conns = 20
	cfg.Hold = 100 * time.Millisecond
	cfg.StatsURL = startStats(t, s, &sawGC)
	res, err := run(t, cfg)
	if err != nil {
		t.Fatalf(
			"Run: %v",
			err,
		)
	}
	idle := res.Idle
	if idle == nil || idle.Conns != 20 {
		t.Fatalf(
			"idle %+v, want 20 connections",
			idle,
		)
	}
	if idle.RSSPerConnBytes == nil || *idle.RSSPerConnBytes != 4096 ||
		idle.HeapPerConnBytes == nil || *idle.HeapPerConnBytes != 1024 ||
		idle.StackPerConnBytes != nil {
		t.Fatalf(
			"per connection: rss %v heap %v stack %v, want 4096, 1024, absent",
			idle.RSSPerConnBytes, idle.HeapPerConnBytes, idle.StackPerConnBytes,
		)
	}
	if res.Server == nil || res.Server.Goroutines == nil || *res.Server.Goroutines != 23 {
		t.Fatalf(
			"server stats %+v",
			res.Server,
		)
	}
	if sawGC.Load() != 2 {
		t.Fatalf(
			"%d requests with gc=1, want 2",
			sawGC.Load(),
		)
	}
	if res.CloseCodes["1000"] != 20 || res.Errors != 0 || res.LatencyUS != nil {
		t.Fatalf(
			"close codes %v errors %d latency %+v",
			res.CloseCodes, res.Errors, res.LatencyUS,
		)
	}
	var sum strings.Builder
	res.WriteSummary(&sum)
	if !strings.Contains(sum.String(), "rss/conn 4.0 KiB") {
		t.Errorf(
			"summary lacks the per-connection rss:\n%s",
			sum.String(),
		)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{
			name:   "no URL",
			change: func(c *Config) { c.URL = "" },
			want:   "-url is required",
		},
		{
			name:   "http URL with ws",
			change: func(c *Config) { c.URL = "http://127.0.0.1:1/" },
			want:   "ws:// or wss://",
		},
		{
			name:   "unknown mode",
			change: func(c *Config) { c.Mode = "flood" },
			want:   "-mode",
		},
		{
			name:   "no connections",
			change: func(c *Config) { c.Conns = 0 },
			want:   "-c 0",
		},
		{
			name:   "tcp without a port",
			change: func(c *Config) { c.Proto = ProtoTCP; c.URL = "tcp://127.0.0.1" },
			want:   "no port",
		},
	}
	for _, tc := range cases {
		cfg := testConfig("ws://127.0.0.1:1/")
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

// TestEchoWSS runs over TLS against a gobwas/ws echo behind net/http.
func TestEchoWSS(t *testing.T) {
	var handlers sync.WaitGroup
	h := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		handlers.Add(1)
		defer handlers.Done()
		defer c.Close()
		for {
			p, op, err := wsutil.ReadClientData(c)
			if err != nil {
				return
			}
			if wsutil.WriteServerMessage(c, op, p) != nil {
				return
			}
		}
	}))
	h.Config.ErrorLog = log.New(io.Discard, "", 0)
	h.StartTLS()
	t.Cleanup(func() {
		h.Close()
		handlers.Wait()
	})
	cfg := testConfig("wss" + strings.TrimPrefix(h.URL, "https") + "/")
	cfg.Count = 500
	cfg.Insecure = true
	res, err := run(t, cfg)
	wantClean(t, cfg, res, err)

	// Without -insecure the test certificate is refused.
	cfg.Insecure = false
	res, err = run(t, cfg)
	if !errors.Is(err, ErrNoConnections) || res.DialErrors != int64(cfg.Conns) {
		t.Fatalf(
			"without -insecure: err %v, dial errors %d",
			err, res.DialErrors,
		)
	}
}

// TestEchoEmptyMessages sends messages with no payload.
func TestEchoEmptyMessages(t *testing.T) {
	for _, proto := range []Proto{ProtoWS, ProtoTCP} {
		var s *testServer
		if proto == ProtoWS {
			s = startWSEcho(t, wsOptions{})
		} else {
			s = startTCPEcho(t)
		}
		cfg := testConfig(s.url())
		cfg.Proto = proto
		cfg.Size = 0
		cfg.Count = 300
		res, err := run(t, cfg)
		wantClean(t, cfg, res, err)
	}
}

// TestStalledServer has a server that reads and never answers: the run
// still ends by itself, with the outstanding messages counted as lost and
// the connections closed abnormally.
func TestStalledServer(t *testing.T) {
	s := startServer(t, func(c net.Conn) {
		if _, err := ws.Upgrade(c); err != nil {
			return
		}
		io.Copy(io.Discard, c)
	})
	cfg := testConfig(s.url())
	cfg.Count = 0
	cfg.Duration = 100 * time.Millisecond
	cfg.drainTimeout = 200 * time.Millisecond
	cfg.closeWait = 200 * time.Millisecond
	begin := time.Now()
	res, err := run(t, cfg)
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf(
			"run took %v, want about 0.5 s",
			took,
		)
	}
	lost := int64(cfg.Conns * cfg.Inflight)
	if !errors.Is(err, ErrNothingMeasured) || res.Errors != lost || res.CloseCodes["1006"] != int64(cfg.Conns) {
		t.Fatalf(
			"err %v errors %d close codes %v: want ErrNothingMeasured, %d lost, 1006 on every connection",
			err, res.Errors, res.CloseCodes, lost,
		)
	}
}

// TestServerNotReading has a server that stops reading after its handshake,
// so that writes of large messages block: the run still ends by itself.
func TestServerNotReading(t *testing.T) {
	release := make(chan struct{})
	s := startServer(t, func(c net.Conn) {
		if _, err := ws.Upgrade(c); err != nil {
			return
		}
		<-release
	})
	t.Cleanup(func() { close(release) }) // runs before the server's cleanup
	cfg := testConfig(s.url())
	cfg.Conns = 2
	cfg.Size = 1 << 20
	cfg.Count = 0
	cfg.Verify = false
	// Long enough for the window to be encoded and written, even under -race.
	cfg.Duration = 500 * time.Millisecond
	cfg.drainTimeout = 200 * time.Millisecond
	cfg.closeWait = 200 * time.Millisecond
	begin := time.Now()
	res, err := run(t, cfg)
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf(
			"run took %v, want about 1 s",
			took,
		)
	}
	if !errors.Is(err, ErrNothingMeasured) || res.Errors != int64(cfg.Conns) || res.CloseCodes["1006"] != int64(cfg.Conns) {
		t.Fatalf(
			"err %v errors %d close codes %v: want ErrNothingMeasured, a failed write and 1006 on every connection",
			err, res.Errors, res.CloseCodes,
		)
	}
}
