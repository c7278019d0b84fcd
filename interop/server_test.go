package interop

import (
	"strings"
	"testing"

	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/session"
)

// closeClean runs a client-initiated close handshake with 1000 and waits
// for the server session to end with it.
func closeClean(t *testing.T, c peerConn, s *session.Session) {
	t.Helper()
	peerCloseClean(t, c)
	awaitEnd(t, s, "server session")
	checkCloseErr(t, "server session Err", s.Err(), 1000, "done")
}

// peerCloseClean runs a client-initiated close handshake with 1000 "done"
// and checks that the server echoed 1000.
func peerCloseClean(t *testing.T, c peerConn) {
	t.Helper()
	code, err := c.closeHandshake(1000, "done")
	if err != nil {
		t.Fatalf("close handshake: %v", err)
	}
	if code != 1000 {
		t.Errorf("close echo %d, want 1000", code)
	}
}

// peerEcho sends want as a message of type typ and checks that it comes
// back whole, with its type.
func peerEcho(t *testing.T, c peerConn, typ session.MessageType, want []byte) {
	t.Helper()
	ctx := testContext(t)
	if err := c.write(ctx, typ, want); err != nil {
		t.Fatalf("write: %v", err)
	}
	gotTyp, got, err := c.read(ctx)
	if err != nil {
		t.Fatalf("read the echo: %v", err)
	}
	if gotTyp != typ {
		t.Errorf("echo type %s, want %s", gotTyp, typ)
	}
	checkPayload(t, "echo", got, want)
}

// TestServerEcho: gorilla and coder clients send text and binary messages
// of every echo size to a wsactor server, which echoes them with
// OnMessage and WriteMessage; each comes back whole, with its type.
func TestServerEcho(t *testing.T) {
	srv := startWsactorServer(t)
	for _, lib := range peerLibs {
		for _, tc := range echoCases() {
			t.Run(lib.name+"/"+tc.name, func(t *testing.T) {
				c := dialPeer(t, lib, srv.URL)
				s := srv.next(t)
				peerEcho(t, c, tc.typ, payload(tc.typ, tc.size, tc.size))
				closeClean(t, c, s)
			})
		}
	}
}

// TestServerPing: a ping from each client is answered with a pong (gorilla:
// its pong handler sees the ping's payload; coder: Ping returns).
func TestServerPing(t *testing.T) {
	srv := startWsactorServer(t)
	for _, lib := range peerLibs {
		t.Run(lib.name, func(t *testing.T) {
			c := dialPeer(t, lib, srv.URL)
			s := srv.next(t)
			if err := c.pingPong(testContext(t)); err != nil {
				t.Fatalf("ping: %v", err)
			}
			closeClean(t, c, s)
		})
	}
}

// peerCloseCases are the close frames a client of another library starts
// the closing handshake with, in the tests of a wsactor server and of the
// daemon.
var peerCloseCases = []struct {
	name   string
	code   int
	reason string
}{
	{
		name:   "normal",
		code:   1000,
		reason: "client done",
	},
	{
		name:   "going-away-no-reason",
		code:   1001,
		reason: "",
	},
	{
		name:   "application-code",
		code:   4999,
		reason: "app: fin ✓",
	},
	{
		name:   "longest-reason-utf8",
		code:   3000,
		reason: strings.Repeat("é", 61) + "!", // 123 bytes
	},
}

// TestServerClientInitiatedClose: the client sends a close frame with a
// code and reason; the wsactor server echoes the code and closes, and its
// session ends with a *session.CloseError carrying the client's code and
// reason.
func TestServerClientInitiatedClose(t *testing.T) {
	srv := startWsactorServer(t)
	for _, lib := range peerLibs {
		for _, tc := range peerCloseCases {
			t.Run(lib.name+"/"+tc.name, func(t *testing.T) {
				c := dialPeer(t, lib, srv.URL)
				s := srv.next(t)
				code, err := c.closeHandshake(tc.code, tc.reason)
				if err != nil {
					t.Fatalf("close handshake: %v", err)
				}
				if code != tc.code {
					t.Errorf("the server's close frame has code %d, want the echo %d", code, tc.code)
				}
				awaitEnd(t, s, "server session")
				checkCloseErr(t, "server session Err", s.Err(), tc.code, tc.reason)
			})
		}
	}
}

// TestServerServerInitiatedClose: the wsactor server closes with a code and
// reason; the client sees them, its library answers, and the Close
// completion is nil once the handshake is done.
func TestServerServerInitiatedClose(t *testing.T) {
	cases := []struct {
		name   string
		code   codec.CloseCode
		reason string
	}{
		{
			name:   "application-code",
			code:   4000,
			reason: "bye",
		},
		{
			name:   "going-away",
			code:   1001,
			reason: "server shutting down",
		},
		{
			name:   "longest-reason-utf8",
			code:   4500,
			reason: strings.Repeat("é", 61) + "!", // 123 bytes
		},
	}
	srv := startWsactorServer(t)
	for _, lib := range peerLibs {
		for _, tc := range cases {
			t.Run(lib.name+"/"+tc.name, func(t *testing.T) {
				c := dialPeer(t, lib, srv.URL)
				s := srv.next(t)
				reply := make(chan session.Completion, 1)
				id, _ := s.Close(session.CloseReason{Code: tc.code, Reason: tc.reason}, reply)
				code, reason, err := c.awaitClose(testContext(t))
				if err != nil {
					t.Fatalf("client: %v", err)
				}
				if code != int(tc.code) || reason != tc.reason {
					t.Errorf("client saw close %d %q, want %d %q", code, reason, tc.code, tc.reason)
				}
				if comp := awaitCompletion(t, reply, session.KindClose, id); comp.Err != nil {
					t.Errorf("Close completion: %v, want nil", comp.Err)
				}
				awaitEnd(t, s, "server session")
				if got := session.CloseCode(s.Err()); got != tc.code {
					t.Errorf("server session Err %v: code %d, want the client's echo %d", s.Err(), got, tc.code)
				}
			})
		}
	}
}

// TestServerProtocolErrors: a client of another library sends what the
// wsactor server must refuse; the client sees the close code RFC 6455
// gives for it, and the server session ends with an error naming it.
func TestServerProtocolErrors(t *testing.T) {
	cases := []struct {
		name string
		opts session.Options
		typ  session.MessageType
		msg  []byte
		code int
	}{
		{
			name: "invalid-utf8-text",
			typ:  session.Text,
			msg:  []byte("ok so far \xff"),
			code: 1007,
		},
		{
			name: "truncated-rune-text",
			typ:  session.Text,
			msg:  []byte("caf\xc3"),
			code: 1007,
		},
		{
			name: "message-over-limit",
			opts: session.Options{MaxMessageSize: 1024},
			typ:  session.Binary,
			msg:  payload(session.Binary, 1025, 0),
			code: 1009,
		},
	}
	for _, tc := range cases {
		srv := startWsactorServerWith(t, tc.opts)
		for _, lib := range peerLibs {
			t.Run(lib.name+"/"+tc.name, func(t *testing.T) {
				c := dialPeer(t, lib, srv.URL)
				s := srv.next(t)
				ctx := testContext(t)
				if err := c.write(ctx, tc.typ, tc.msg); err != nil {
					t.Fatalf("write: %v", err)
				}
				code, _, err := c.awaitClose(ctx)
				if err != nil {
					t.Fatalf("client: %v", err)
				}
				if code != tc.code {
					t.Errorf("client saw close %d, want %d", code, tc.code)
				}
				awaitEnd(t, s, "server session")
				if got := session.CloseCode(s.Err()); int(got) != tc.code {
					t.Errorf("server session Err %v: code %d, want %d", s.Err(), got, tc.code)
				}
			})
		}
	}
}
