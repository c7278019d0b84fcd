package conformance

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsactor/wsactor/internal/app/echod"
)

// server is where the cases connect: a loopback address and the path of
// the echo endpoint.
type server struct {
	addr string
	path string
	h2   bool // the cases speak HTTP/2 (http2_test.go)
}

// Settings of the server under test that the cases depend on.
const (
	// maxMessage is the largest message the server echoes; one byte more
	// must be refused with 1009.
	maxMessage = 16 << 20
	// idleTimeout is longer than any case, so that a server that fails to
	// close is caught by the case's bounds, not rescued by its idle timer.
	idleTimeout = time.Minute
)

// newServer starts the server under test, the echo daemon's handler
// (internal/app/echod), on a loopback port, and stops it when t ends. It is
// the only place to change to test another handler.
//
// With h2 the server speaks cleartext HTTP/2 as well, and the cases open
// their WebSockets as RFC 8441 streams.
func newServer(t *testing.T, h2 bool) server {
	t.Helper()
	d := echod.New(echod.Config{
		Path:             "/",
		MaxMessage:       maxMessage,
		IdleTimeout:      idleTimeout,
		HandshakeTimeout: 10 * time.Second,
		Compression:      true, // declined for the cases that do not offer it
		Logger:           slog.New(slog.DiscardHandler),
	})
	srv := httptest.NewUnstartedServer(d.Handler())
	if h2 {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		srv.Config.Protocols = &p
	}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		// Every case has ended its session; Shutdown also waits for the
		// daemon's own goroutines, which goleak checks.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("echod shutdown: %v", err)
		}
	})
	return server{addr: strings.TrimPrefix(srv.URL, "http://"), path: "/", h2: h2}
}
