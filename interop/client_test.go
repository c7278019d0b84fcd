package interop

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/session"
)

// dialSession dials url with session.Dial; at the test's end the session
// must have ended (or it is canceled and the test fails).
func dialSession(t *testing.T, url string, opts *session.Options) *session.Session {
	t.Helper()
	if opts == nil {
		opts = &session.Options{}
	}
	opts.HandshakeTimeout = 5 * time.Second
	s, err := session.Dial(testContext(t), url, opts)
	if err != nil {
		t.Fatalf("Dial %s: %v", url, err)
	}
	t.Cleanup(func() {
		awaitEnd(t, s, "client session")
		drainMessages(s)
	})
	return s
}

// closeSession closes s with code and reason and checks the handshake:
// the Close completion is nil, the server saw the code and reason, and the
// session ends with the server's echo of the code.
func closeSession(t *testing.T, s *session.Session, ps *peerServer, code codec.CloseCode, reason string) {
	t.Helper()
	reply := make(chan session.Completion, 1)
	id, _ := s.Close(session.CloseReason{Code: code, Reason: reason}, reply)
	if comp := awaitCompletion(t, reply, session.KindClose, id); comp.Err != nil {
		t.Errorf("Close completion: %v, want nil", comp.Err)
	}
	awaitEnd(t, s, "client session")
	if got := session.CloseCode(s.Err()); got != code {
		t.Errorf("session Err %v: code %d, want the server's echo %d", s.Err(), got, code)
	}
	if e := ps.end(t); e.err != nil || e.code != int(code) || e.reason != reason {
		t.Errorf("the server saw %d %q (err %v), want %d %q", e.code, e.reason, e.err, code, reason)
	}
}

// TestClientEcho: a wsactor client sends text and binary messages of every
// echo size to gorilla and coder echo servers; each comes back whole, with
// its type, and the session closes cleanly.
func TestClientEcho(t *testing.T) {
	for _, lib := range peerServerLibs {
		ps := startPeerServer(t, lib)
		for _, tc := range echoCases() {
			t.Run(lib.name+"/"+tc.name, func(t *testing.T) {
				s := dialSession(t, ps.URL, nil)
				want := payload(tc.typ, tc.size, tc.size+1)
				reply := make(chan session.Completion, 1)
				id, _ := s.Write(tc.typ, want, reply)
				comp := awaitCompletion(t, reply, session.KindWrite, id)
				if comp.Err != nil || comp.N != tc.size {
					t.Fatalf("Write completion: N=%d err=%v, want N=%d, nil", comp.N, comp.Err, tc.size)
				}
				m := receive(t, s)
				if m.Type != tc.typ {
					t.Errorf("echo type %s, want %s", m.Type, tc.typ)
				}
				checkPayload(t, "echo", m.Payload, want)
				m.Release()
				closeSession(t, s, ps, 1000, "done")
			})
		}
	}
}

// TestClientPing: a wsactor client's ping is answered by each server; the
// pong, with the ping's payload, reaches Options.OnControl.
func TestClientPing(t *testing.T) {
	const ping = "ping from wsactor"
	for _, lib := range peerServerLibs {
		t.Run(lib.name, func(t *testing.T) {
			ps := startPeerServer(t, lib)
			pongs := make(chan string, 1)
			s := dialSession(t, ps.URL, &session.Options{
				OnControl: func(_ *session.Session, op session.ControlOp, p []byte) {
					if op == session.ControlPong {
						select {
						case pongs <- string(p):
						default:
						}
					}
				},
			})
			reply := make(chan session.Completion, 1)
			id, _ := s.Ping([]byte(ping), reply)
			if comp := awaitCompletion(t, reply, session.KindPing, id); comp.Err != nil {
				t.Fatalf("Ping completion: %v", comp.Err)
			}
			select {
			case got := <-pongs:
				if got != ping {
					t.Errorf("pong payload %q, want %q", got, ping)
				}
			case <-time.After(testTimeout):
				t.Fatalf("no pong within %v", testTimeout)
			}
			closeSession(t, s, ps, 1000, "done")
		})
	}
}

// TestClientInitiatedClose: session.Close with a code and reason; the
// Close completion is nil once the server answered and closed TCP, and the
// server saw the code and reason.
func TestClientInitiatedClose(t *testing.T) {
	cases := []struct {
		name   string
		code   codec.CloseCode
		reason string
	}{
		{
			name:   "normal",
			code:   1000,
			reason: "done",
		},
		{
			name:   "application-code",
			code:   4001,
			reason: "client-bye",
		},
		{
			name:   "no-reason",
			code:   1001,
			reason: "",
		},
		{
			name:   "longest-reason-utf8",
			code:   4500,
			reason: strings.Repeat("é", 61) + "!", // 123 bytes
		},
	}
	for _, lib := range peerServerLibs {
		ps := startPeerServer(t, lib)
		for _, tc := range cases {
			t.Run(lib.name+"/"+tc.name, func(t *testing.T) {
				s := dialSession(t, ps.URL, nil)
				closeSession(t, s, ps, tc.code, tc.reason)
				if _, open := <-s.Messages(); open {
					t.Errorf("a message came after the close handshake")
				}
			})
		}
	}
}

// TestClientServerInitiatedClose: the server echoes a message and then
// closes with a code and reason; the wsactor client delivers the message,
// answers the close, and its session ends with a *session.CloseError
// carrying the server's code and reason; the server saw its code echoed.
func TestClientServerInitiatedClose(t *testing.T) {
	for _, lib := range peerServerLibs {
		t.Run(lib.name, func(t *testing.T) {
			ps := startPeerServer(t, lib)
			s := dialSession(t, ps.URL, nil)
			reply := make(chan session.Completion, 2)
			s.WriteText([]byte("before the close"), reply)
			s.WriteText([]byte(closeCommand), reply)
			for range 2 {
				if comp := <-reply; comp.Err != nil {
					t.Fatalf("Write completion: %v", comp.Err)
				}
			}
			if m := receive(t, s); string(m.Payload) != "before the close" {
				t.Errorf("got %q, want the echo sent before the server's close", m.Payload)
			}
			awaitEnd(t, s, "client session")
			checkCloseErr(t, "client session Err", s.Err(), serverCloseCode, serverCloseReason)
			if _, open := <-s.Messages(); open {
				t.Errorf("a message came with the close")
			}
			if e := ps.end(t); e.err != nil || e.code != serverCloseCode {
				t.Errorf("the server saw %d %q (err %v), want the echo of %d", e.code, e.reason, e.err, serverCloseCode)
			}
		})
	}
}

// TestClientAnswersServerPing: each server pings the wsactor client and
// gets its pong with the ping's payload (gorilla's pong handler compares
// it; coder's Ping waits for the pong that carries its own payload).
func TestClientAnswersServerPing(t *testing.T) {
	for _, lib := range peerServerLibs {
		t.Run(lib.name, func(t *testing.T) {
			ps := startPeerServer(t, lib)
			s := dialSession(t, ps.URL, nil)
			s.WriteText([]byte(pingCommand), nil)
			if m := receive(t, s); string(m.Payload) != "pong" {
				t.Errorf("server: %q, want \"pong\"", m.Payload)
			}
			closeSession(t, s, ps, 1000, "done")
		})
	}
}

// TestClientWritesBeforeClose: writes queued just before Close all reach
// the server, before the close frame; every write completes without error
// and so does the Close.
func TestClientWritesBeforeClose(t *testing.T) {
	const n = 100
	for _, lib := range peerServerLibs {
		t.Run(lib.name, func(t *testing.T) {
			ps := startPeerServer(t, lib)
			// Echoes of writes flushed before the close frame are delivered:
			// room for all of them, so that this test does not depend on
			// the application reading (TestClientCloseWithoutReading does).
			s := dialSession(t, ps.URL, &session.Options{InboundSize: 2 * n})
			reply := make(chan session.Completion, n+1)
			ids := make([]uint64, n)
			for i := range ids {
				ids[i], _ = s.WriteBinary(payload(session.Binary, 1000, i), reply)
			}
			closeID, _ := s.Close(session.CloseReason{Code: 1000, Reason: "done"}, reply)
			for _, id := range ids {
				if comp := awaitCompletion(t, reply, session.KindWrite, id); comp.Err != nil || comp.N != 1000 {
					t.Errorf("write #%d: N=%d err=%v, want 1000, nil", id, comp.N, comp.Err)
				}
			}
			if comp := awaitCompletion(t, reply, session.KindClose, closeID); comp.Err != nil {
				t.Errorf("Close completion: %v, want nil", comp.Err)
			}
			awaitEnd(t, s, "client session")
			if e := ps.end(t); e.err != nil || e.messages != n || e.code != 1000 {
				t.Errorf("the server saw %d messages then %d %q (err %v), want %d then 1000", e.messages, e.code, e.reason, e.err, n)
			}
		})
	}
}

// awaitFull waits until ch is full. There is no event to wait for: it
// yields until the condition holds, bounded by testTimeout.
func awaitFull[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	limit := time.Now().Add(testTimeout)
	for len(ch) < cap(ch) {
		if time.Now().After(limit) {
			t.Fatalf("the channel holds %d of %d after %v", len(ch), cap(ch), testTimeout)
		}
		runtime.Gosched()
	}
}

// TestClientCloseWithoutReading: a client that stops reading its Messages
// channel (echoes pile up past Options.InboundSize) and then calls Close.
// The server answers the close at once; the Close must complete with nil
// when the handshake is done, not with ErrCloseTimeout: DESIGN.md says data
// that comes after our close frame is read and dropped, and Boost.Beast's
// close, the model, reads and discards until the peer's close frame.
func TestClientCloseWithoutReading(t *testing.T) {
	const n = 40 // over the default InboundSize of 16
	for _, lib := range peerServerLibs {
		t.Run(lib.name, func(t *testing.T) {
			ps := startPeerServer(t, lib)
			s := dialSession(t, ps.URL, &session.Options{CloseTimeout: 2 * time.Second})
			reply := make(chan session.Completion, n+1)
			for i := range n {
				s.WriteText(payload(session.Text, 100, i), reply)
			}
			for range n {
				if comp := <-reply; comp.Err != nil {
					t.Fatalf("Write completion: %v", comp.Err)
				}
			}
			// The server handles frames in order: once it has our ping, it
			// has echoed every message before it. Once the Messages channel
			// is full, the reader is on the 17th echo, which it finds
			// before our close frame is sent: it waits to deliver it, and
			// stops reading the socket (TCP backpressure).
			s.Ping([]byte("barrier"), nil)
			ps.pinged(t)
			awaitFull(t, s.Messages())

			id, _ := s.Close(session.CloseReason{Code: 1000, Reason: "done"}, reply)
			if comp := awaitCompletion(t, reply, session.KindClose, id); comp.Err != nil {
				t.Errorf("Close completion: %v, want nil: the server answered the close at once, but the session's reader, blocked on the full Messages channel, never read the answer", comp.Err)
			}
			awaitEnd(t, s, "client session")
			if e := ps.end(t); e.err != nil || e.messages != n || e.code != 1000 {
				t.Errorf("the server saw %d messages then %d %q (err %v), want %d then 1000", e.messages, e.code, e.reason, e.err, n)
			}
		})
	}
}
