package echod

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/session"
)

// TestShutdown: Shutdown sends 1001 to every session, answers 503 to
// /healthz and to new handshakes meanwhile, and returns once every session
// has closed.
func TestShutdown(t *testing.T) {
	s, addr := start(t, Config{HandshakeTimeout: 5 * time.Second})
	clients := []*session.Session{
		dial(t, "ws://"+addr+"/", nil),
		dial(t, "ws://"+addr+"/", nil),
		dial(t, "ws://"+addr+"/", nil),
	}
	for _, c := range clients {
		echo(t, c, session.Text, []byte("hi"))
	}
	r := rawUpgrade(t, addr, "/") // answers the close only when the test says
	waitOpen(t, s, 4)
	if code := get(t, s, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz before Shutdown: %d", code)
	}

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	if reason := r.expectCloseFrame(codec.CloseGoingAway); reason != "server shutting down" {
		t.Errorf("close reason %q", reason)
	}
	for _, c := range clients {
		<-c.Done()
		if code := session.CloseCode(c.Err()); code != codec.CloseGoingAway {
			t.Errorf("client ended with %v, want 1001", c.Err())
		}
	}

	// The raw client has not answered: Shutdown waits for it.
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) before every session closed", err)
	default:
	}
	if code := get(t, s, "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz during Shutdown: %d, want 503", code)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Upgrade", "websocket")
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("handshake during Shutdown: %d, want 503", rec.Code)
	}

	r.write(closeFrame(codec.CloseGoingAway, ""))
	r.expectEOF()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Shutdown did not return once every session closed")
	}
	if n := s.m.sessionsOpen.Value(); n != 0 {
		t.Errorf("%d sessions open after Shutdown", n)
	}
	if got := statInt(t, stats(t, s), "closes_by_code.1001"); got != 4 {
		t.Errorf("closes_by_code[1001] = %d, want 4", got)
	}
	if code := get(t, s, "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz after Shutdown: %d, want 503", code)
	}
	if nc, err := net.Dial("tcp", addr); err == nil {
		nc.Close()
		t.Errorf("the listener still accepts after Shutdown")
	}
}

// TestShutdownDeadline: a session that does not answer the close is cut
// when Shutdown's context ends.
func TestShutdownDeadline(t *testing.T) {
	s, addr := start(t, Config{HandshakeTimeout: 5 * time.Second})
	r := rawUpgrade(t, addr, "/")
	waitOpen(t, s, 1)
	const deadline = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	began := time.Now()
	err := s.Shutdown(ctx)
	took := time.Since(began)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want context.DeadlineExceeded", err)
	}
	if took < deadline || took > deadline+slack {
		t.Errorf("Shutdown took %v, want about %v", took, deadline)
	}
	r.expectCloseFrame(codec.CloseGoingAway)
	r.expectEOF()
	if n := s.m.sessionsOpen.Value(); n != 0 {
		t.Errorf("%d sessions open after Shutdown", n)
	}
}

// TestServeAfterShutdown: a Server that shut down serves no more.
func TestServeAfterShutdown(t *testing.T) {
	s := New(Config{Logger: slog.New(slog.DiscardHandler)})
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v, want http.ErrServerClosed", err)
	}
}

// get requests path from the Server's handler and returns the status.
func get(t *testing.T, s *Server, path string) int {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code
}
