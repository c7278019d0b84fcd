package interop

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsactor/wsactor/internal/app/echod"
	"github.com/wsactor/wsactor/session"
)

// The tests in this file run the clients of the server tests (gorilla,
// coder, Python's websockets) against the echo daemon, internal/app/echod, the
// package cmd/wsechod runs, instead of an echo server written in the test.
// Each ends by reading the daemon's /debug/vars and checking that its
// metrics count what the clients did.

// daemon is the echo daemon behind an httptest server, configured as
// cmd/wsechod runs it by default, except that it logs nothing.
type daemon struct {
	URL string // the echo endpoint, ws://host:port/
	srv *httptest.Server
	d   *echod.Server
}

// startDaemon starts the daemon for the test. At the test's end it is shut
// down (sessions still open get 1001 and, past testTimeout, are closed by
// force), then its HTTP server is closed.
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	d := echod.New(echod.Config{
		Logger:           slog.New(slog.DiscardHandler),
		HandshakeTimeout: 10 * time.Second,
	})
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	dm := &daemon{URL: wsURL(srv.URL) + "/", srv: srv, d: d}
	// Registered after srv.Close, so it runs before it. Shutdown again
	// after a test's own is a no-op.
	t.Cleanup(func() { dm.shutdown(t) })
	return dm
}

// shutdown runs the daemon's Shutdown: it sends 1001 to every session and
// returns once each has ended and its end is counted in the metrics. It
// does not use the test's context, which is canceled before the cleanups
// run.
func (dm *daemon) shutdown(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := dm.d.Shutdown(ctx); err != nil {
		t.Errorf("daemon Shutdown: %v", err)
	}
}

// daemonVars are the daemon's metrics in its /debug/vars.
type daemonVars struct {
	SessionsOpen      int64            `json:"sessions_open"`
	SessionsTotal     int64            `json:"sessions_total"`
	MessagesIn        int64            `json:"messages_in"`
	MessagesOut       int64            `json:"messages_out"`
	BytesIn           int64            `json:"bytes_in"`
	BytesOut          int64            `json:"bytes_out"`
	ClosesByCode      map[string]int64 `json:"closes_by_code"`
	ProtocolErrors    int64            `json:"protocol_errors"`
	HandshakeFailures int64            `json:"handshake_failures"`
	RejectedConns     int64            `json:"rejected_conns"`
}

// vars reads the daemon's /debug/vars over HTTP.
func (dm *daemon) vars(t *testing.T) daemonVars {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), http.MethodGet, dm.srv.URL+"/debug/vars", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := dm.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET /debug/vars: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /debug/vars: %s", resp.Status)
	}
	var v daemonVars
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("GET /debug/vars: not the expected JSON: %v", err)
	}
	return v
}

// daemonTally is what a test did to the daemon, as its metrics should
// count it: data messages and their bytes (each echoed once), and sessions
// by the close code they ended with.
type daemonTally struct {
	messages int64
	bytes    int64
	closes   map[string]int64
}

func newDaemonTally() *daemonTally { return &daemonTally{closes: map[string]int64{}} }

// echoed counts a message of size bytes that came back.
func (d *daemonTally) echoed(size int) {
	d.messages++
	d.bytes += int64(size)
}

// closed counts a session that ended with code.
func (d *daemonTally) closed(code int) { d.closes[strconv.Itoa(code)]++ }

// checkDaemonVars shuts the daemon down, so that every session has ended
// and is counted, then checks its /debug/vars against the tally: messages
// and bytes in and out, sessions, and exactly the close codes seen. A test
// that already failed skips it: its tally is short of what it did.
func checkDaemonVars(t *testing.T, dm *daemon, want *daemonTally) {
	t.Helper()
	dm.shutdown(t)
	if t.Failed() {
		t.Log("the test failed: its metrics are not checked")
		return
	}
	v := dm.vars(t)
	var sessions int64
	for _, n := range want.closes {
		sessions += n
	}
	checks := []struct {
		name      string
		got, want int64
	}{
		{"sessions_open", v.SessionsOpen, 0},
		{"sessions_total", v.SessionsTotal, sessions},
		{"messages_in", v.MessagesIn, want.messages},
		{"messages_out", v.MessagesOut, want.messages},
		{"bytes_in", v.BytesIn, want.bytes},
		{"bytes_out", v.BytesOut, want.bytes},
		{"protocol_errors", v.ProtocolErrors, 0},
		{"handshake_failures", v.HandshakeFailures, 0},
		{"rejected_conns", v.RejectedConns, 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("/debug/vars %s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if !maps.Equal(v.ClosesByCode, want.closes) {
		t.Errorf("/debug/vars closes_by_code = %v, want %v", v.ClosesByCode, want.closes)
	}
}

// TestDaemonEcho: gorilla and coder clients send text and binary messages
// of every echo size to the daemon, each on a session of its own; each
// comes back whole, with its type, and the session closes with 1000.
func TestDaemonEcho(t *testing.T) {
	dm := startDaemon(t)
	tally := newDaemonTally()
	for _, lib := range peerLibs {
		for _, tc := range echoCases() {
			t.Run(lib.name+"/"+tc.name, func(t *testing.T) {
				c := dialPeer(t, lib, dm.URL)
				peerEcho(t, c, tc.typ, payload(tc.typ, tc.size, tc.size))
				tally.echoed(tc.size)
				peerCloseClean(t, c)
				tally.closed(1000)
			})
		}
	}
	checkDaemonVars(t, dm, tally)
}

// TestDaemonPing: the daemon answers a ping from each client with a pong
// carrying its payload (see peerConn.pingPong), before it echoes the
// message sent after the ping.
func TestDaemonPing(t *testing.T) {
	dm := startDaemon(t)
	tally := newDaemonTally()
	for _, lib := range peerLibs {
		t.Run(lib.name, func(t *testing.T) {
			c := dialPeer(t, lib, dm.URL)
			if err := c.pingPong(testContext(t)); err != nil {
				t.Fatalf("ping: %v", err)
			}
			tally.echoed(len(pingEchoText))
			peerCloseClean(t, c)
			tally.closed(1000)
		})
	}
	checkDaemonVars(t, dm, tally)
}

// TestDaemonClientInitiatedClose: each client sends a close frame with a
// code and reason (peerCloseCases); the daemon answers with the same code,
// and counts the session's end under it.
func TestDaemonClientInitiatedClose(t *testing.T) {
	dm := startDaemon(t)
	tally := newDaemonTally()
	for _, lib := range peerLibs {
		for _, tc := range peerCloseCases {
			t.Run(lib.name+"/"+tc.name, func(t *testing.T) {
				c := dialPeer(t, lib, dm.URL)
				code, err := c.closeHandshake(tc.code, tc.reason)
				if err != nil {
					t.Fatalf("close handshake: %v", err)
				}
				if code != tc.code {
					t.Errorf("the daemon's close frame has code %d, want the echo %d", code, tc.code)
				}
				tally.closed(tc.code)
			})
		}
	}
	checkDaemonVars(t, dm, tally)
}

// TestDaemonShutdownClose: one client of each library is open, each has
// had an echo, when the daemon shuts down. Each client sees the daemon's
// close frame, 1001 "server shutting down", and its library answers it;
// Shutdown returns nil once every session has closed.
func TestDaemonShutdownClose(t *testing.T) {
	const before = "before the shutdown"
	dm := startDaemon(t)
	tally := newDaemonTally()
	conns := make([]peerConn, len(peerLibs))
	for i, lib := range peerLibs {
		conns[i] = dialPeer(t, lib, dm.URL)
		peerEcho(t, conns[i], session.Text, []byte(before))
		tally.echoed(len(before))
	}

	// Shutdown waits for the clients' answers, which they send as they
	// read the close frame below. A test that fails before then cancels
	// its context, and with it Shutdown, which closes the sessions by
	// force.
	var shutdownErr error
	shutdownDone := make(chan struct{})
	go func() {
		defer close(shutdownDone)
		shutdownErr = dm.d.Shutdown(testContext(t))
	}()
	t.Cleanup(func() { <-shutdownDone })

	for i, lib := range peerLibs {
		t.Run(lib.name, func(t *testing.T) {
			code, reason, err := conns[i].awaitClose(testContext(t))
			if err != nil {
				t.Fatalf("client: %v", err)
			}
			if code != 1001 || reason != "server shutting down" {
				t.Errorf("client saw close %d %q, want 1001 \"server shutting down\"", code, reason)
			}
			tally.closed(1001)
		})
	}
	select {
	case <-shutdownDone:
		if shutdownErr != nil {
			t.Errorf("Shutdown: %v, want nil once every client answered", shutdownErr)
		}
	case <-time.After(testTimeout):
		t.Fatalf("Shutdown did not return within %v of every client answering", testTimeout)
	}
	checkDaemonVars(t, dm, tally)
}

// TestDaemonPythonClient runs testdata/py_client.py, a client on Python's
// websockets library, against the daemon: every check it prints must pass
// (see runPyClient), and the daemon counts each echo and the client's
// close, 4001.
func TestDaemonPythonClient(t *testing.T) {
	py := findPython(t)
	dm := startDaemon(t)
	checks := runPyClient(t, py, dm.URL, false)
	tally := newDaemonTally()
	for name, c := range checks {
		if strings.HasPrefix(name, "echo-") {
			tally.echoed(c.Size)
		}
	}
	tally.closed(4001)
	checkDaemonVars(t, dm, tally)
}
