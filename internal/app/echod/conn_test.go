package echod

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/session"
)

// TestBeforeRegister: a session's first message, and its end, may come
// before Accept has returned it to the Server. Its record, made by OnOpen,
// is there for them, and the session counts, logs and leaves like any other.
func TestBeforeRegister(t *testing.T) {
	for _, tc := range []struct {
		name  string
		path  string
		ended bool // the session ends before register, not only its message comes
	}{
		{
			name: "echo message",
			path: "/",
		},
		{
			name:  "echo end",
			path:  "/",
			ended: true,
		},
		{
			name: "broadcast message",
			path: "/broadcast",
		},
		{
			name:  "broadcast end",
			path:  "/broadcast",
			ended: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := new(logRecorder)
			s := New(Config{Broadcast: true, Logger: slog.New(logs)})
			broadcast := tc.path == "/broadcast"
			// The Server's own Options, with word of each handler's return.
			handled, closed := make(chan struct{}, 1), make(chan struct{})
			opts := s.echoOpts
			if broadcast {
				opts = s.roomOpts
			}
			onMessage, onClose := opts.OnMessage, opts.OnClose
			opts.OnMessage = func(ss *session.Session, m session.Message) {
				onMessage(ss, m)
				handled <- struct{}{}
			}
			opts.OnClose = func(ss *session.Session, err error) {
				onClose(ss, err)
				close(closed)
			}

			server, client := tcpPair(t)
			if msg := s.reserve(); msg != "" {
				t.Fatal(msg)
			}
			start := s.now()
			client.Write([]byte(handshakeRequest("localhost", tc.path)))
			ss, err := session.AcceptConn(server, &opts)
			if err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(client)
			if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("handshake: %v %v", resp, err)
			}
			client.Write(clientFrame(true, ws.OpText, []byte("hi")))
			<-handled
			if tc.ended {
				client.Write(closeFrame(codec.CloseNormalClosure, "bye"))
				<-closed
			}
			s.register(ss, broadcast, start)
			if !tc.ended {
				client.Write(closeFrame(codec.CloseNormalClosure, "bye"))
				<-closed
			}

			v := stats(t, s)
			for _, want := range []struct {
				key string
				n   int64
			}{
				{"sessions_open", 0},
				{"sessions_total", 1},
				{"messages_in", 1},
				{"messages_out", 1},
				{"bytes_in", 2},
				{"closes_by_code.1000", 1},
			} {
				if got := statInt(t, v, want.key); got != want.n {
					t.Errorf("%s = %d, want %d", want.key, got, want.n)
				}
			}
			ends := logs.sessionEnds()
			if len(ends) != 1 {
				t.Fatalf("%d session end lines, want 1", len(ends))
			}
			if e := ends[0]; e["path"].String() != tc.path || e["code"].Int64() != 1000 ||
				e["messages_in"].Int64() != 1 || e["duration"].Duration() <= 0 {
				t.Errorf("session end line: %v", e)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.conns.len() != 0 || s.open != 0 || s.pending != 0 {
				t.Errorf("%d records, %d open, %d pending left", s.conns.len(), s.open, s.pending)
			}
			if broadcast && s.rooms.Len() != 0 {
				t.Errorf("%d rooms left with members", s.rooms.Len())
			}
		})
	}
}

// tcpPair returns both ends of a loopback TCP connection, closed when the
// test ends.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return server, client
}
