package echod

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"testing"

	"github.com/wsactor/wsactor/session"
	_ "github.com/wsactor/wsactor/xconnect" // RFC 8441 in net/http's server, as cmd/wsechod has it
)

// TestHTTP2Sessions: Go clients over h2c and over TLS HTTP/2 echo through
// the daemon, several sessions on one connection, rooms too, and
// sessions_by_protocol tells them from an HTTP/1.1 session.
func TestHTTP2Sessions(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{
		{name: "h2c", tls: false},
		{name: "tls", tls: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{H2C: !tc.tls}
			pool := new(session.HTTP2)
			t.Cleanup(pool.CloseIdleConnections)
			scheme := "ws"
			if tc.tls {
				var roots *x509.CertPool
				cfg.CertFile, cfg.KeyFile, roots = selfSigned(t)
				pool.TLSConfig = &tls.Config{RootCAs: roots}
				scheme = "wss"
			}
			s, addr := start(t, cfg)
			opts := &session.Options{HTTP2: pool}
			for i := range 3 {
				c := dial(t, scheme+"://"+addr+"/", opts)
				echo(t, c, session.Text, []byte("over HTTP/2"))
				echo(t, c, session.Binary, make([]byte, 100<<10+i))
			}
			room := dial(t, scheme+"://"+addr+"/room/h2", opts)
			echo(t, room, session.Text, []byte("to the room"))
			// One HTTP/1.1 session beside them.
			h1 := &session.Options{TLSConfig: pool.TLSConfig}
			echo(t, dial(t, scheme+"://"+addr+"/", h1), session.Text, []byte("over HTTP/1.1"))
			v := stats(t, s)
			if got := statInt(t, v, "sessions_by_protocol.http2"); got != 4 {
				t.Errorf("sessions_by_protocol.http2 = %d, want 4", got)
			}
			if got := statInt(t, v, "sessions_by_protocol.http1"); got != 1 {
				t.Errorf("sessions_by_protocol.http1 = %d, want 1", got)
			}
		})
	}
}

// TestHTTP2Shutdown: Shutdown sends 1001 to a session over HTTP/2 and
// waits for its handshake, as over HTTP/1.1.
func TestHTTP2Shutdown(t *testing.T) {
	s := New(Config{H2C: true, Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	pool := new(session.HTTP2)
	defer pool.CloseIdleConnections()
	c := dial(t, "ws://"+ln.Addr().String()+"/", &session.Options{HTTP2: pool})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-served
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("the client did not end")
	}
	if code := session.CloseCode(c.Err()); code != 1001 {
		t.Fatalf("client ended with %v, want 1001", c.Err())
	}
}
