package wsload

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/wsactor/wsactor/internal/app/echod"
	_ "github.com/wsactor/wsactor/xconnect" // RFC 8441 in net/http's server
)

// startH2Echo serves the echo daemon with cleartext HTTP/2 on loopback
// until the test ends, and returns its address.
func startH2Echo(t *testing.T) string {
	t.Helper()
	s := echod.New(echod.Config{H2C: true, Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		<-served
	})
	return ln.Addr().String()
}

// TestEchoHTTP2: -h2 echoes over streams of shared HTTP/2 connections,
// one and several, and holds idle streams.
func TestEchoHTTP2(t *testing.T) {
	addr := startH2Echo(t)
	for _, conns := range []int{1, 3} {
		cfg := testConfig("ws://" + addr + "/")
		cfg.Conns = 8
		cfg.HTTP2 = true
		cfg.HTTP2Conns = conns
		res, err := run(t, cfg)
		wantClean(t, cfg, res, err)
	}
	cfg := testConfig("ws://" + addr + "/")
	cfg.Mode = ModeIdle
	cfg.Conns = 150 // two HTTP/2 connections
	cfg.HTTP2 = true
	cfg.Hold = 100 * time.Millisecond
	res, err := run(t, cfg)
	if err != nil || res.Idle == nil || res.Idle.Conns != 150 || res.CloseCodes["1000"] != 150 {
		t.Fatalf("idle over HTTP/2: %v, %+v, close codes %v", err, res.Idle, res.CloseCodes)
	}
}
