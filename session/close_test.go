package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
)

var roles = []struct {
	name string
	role codec.Role
}{
	{
		name: "server",
		role: codec.Server,
	},
	{
		name: "client",
		role: codec.Client,
	},
}

// Beast: "close then write/ping". After Close, Write and Ping complete with
// ErrClosing, and the close frame is the last frame on the wire.
func TestCloseThenWriteAndPing(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			s, p := openRaw(t, r.role, testOptions(), rawConfig{})
			reply := make(chan Completion, 3)
			closeID, _ := s.Close(CloseReason{Code: codec.CloseNormalClosure, Reason: "bye"}, reply)
			writeID, _ := s.WriteText([]byte("after close"), reply)
			pingID, _ := s.Ping([]byte("after close"), reply)
			check(t, await(t, reply), KindWrite, writeID, ErrClosing)
			check(t, await(t, reply), KindPing, pingID, ErrClosing)

			f := p.mustRead(t)
			if f.op != ws.OpClose || f.closeCode() != codec.CloseNormalClosure || string(f.payload[2:]) != "bye" {
				t.Fatalf("first frame %v, want close 1000 \"bye\"", f)
			}
			// A second Close is refused too, and sends nothing.
			closeAgain, _ := s.Close(CloseReason{}, reply)
			check(t, await(t, reply), KindClose, closeAgain, ErrClosing)
			if err := p.finishClose(codec.CloseNormalClosure); err != nil {
				t.Fatal(err)
			}
			check(t, await(t, reply), KindClose, closeID, nil)
			endedBy(t, s, ErrClosed)
			err := s.Err()
			var ce *CloseError
			if !errors.As(err, &ce) || ce.Code != codec.CloseNormalClosure {
				t.Fatalf("Err() = %v, want a *CloseError with 1000", err)
			}
		})
	}
}

// Writes accepted before Close reach the wire before the close frame, in
// the order in which they were accepted, and complete in that order.
func TestWritesBeforeCloseArriveFirst(t *testing.T) {
	const writes = 200
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			s, p := openRaw(t, r.role, testOptions(), rawConfig{})
			reply := make(chan Completion, writes+1)
			ids := make([]uint64, writes)
			for i := range ids {
				ids[i], _ = s.WriteText(fmt.Appendf(nil, "message %d", i), reply)
			}
			closeID, _ := s.Close(CloseReason{Code: codec.CloseNormalClosure}, reply)
			for i := range writes {
				f := p.mustRead(t)
				if want := fmt.Sprintf("message %d", i); f.op != ws.OpText || !f.fin || string(f.payload) != want {
					t.Fatalf("frame %d: %v, want text %q", i, f, want)
				}
			}
			if f := p.mustRead(t); f.op != ws.OpClose {
				t.Fatalf("after the writes: %v, want the close frame", f)
			}
			for i, id := range ids {
				c := await(t, reply)
				check(t, c, KindWrite, id, nil)
				if want := len(fmt.Sprintf("message %d", i)); c.N != want {
					t.Fatalf("write %d: N = %d, want %d", i, c.N, want)
				}
			}
			if err := p.finishClose(codec.CloseNormalClosure); err != nil {
				t.Fatal(err)
			}
			check(t, await(t, reply), KindClose, closeID, nil)
			endedBy(t, s, ErrClosed)
		})
	}
}

// The Close completion waits for the peer's close frame (and, for a client,
// for the server's FIN after it).
func TestCloseWaitsForPeer(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			s, p := openRaw(t, r.role, testOptions(), rawConfig{})
			reply := make(chan Completion, 1)
			closeID, _ := s.Close(CloseReason{Code: codec.CloseGoingAway, Reason: "later"}, reply)
			if f := p.mustRead(t); f.op != ws.OpClose || f.closeCode() != codec.CloseGoingAway {
				t.Fatalf("got %v, want close 1001", f)
			}
			// Our close frame is on the wire; the peer's has not been sent.
			noCompletion(t, reply, "before the peer's close frame")
			select {
			case <-s.Done():
				t.Fatalf("session ended before the peer's close frame: %v", s.Err())
			default:
			}
			p.mustWrite(t, closeFrame(codec.CloseGoingAway, ""))
			if r.role == codec.Client {
				// The client waits for the server to close TCP first.
				if err := p.silentFor(100 * time.Millisecond); err != nil {
					t.Fatalf("client did not wait for the server's FIN: %v", err)
				}
				noCompletion(t, reply, "before the server's FIN")
				if err := p.conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.expectEOF(); err != nil {
				t.Fatal(err)
			}
			check(t, await(t, reply), KindClose, closeID, nil)
			endedBy(t, s, ErrClosed)
			if err := s.Err(); CloseCode(err) != codec.CloseGoingAway || !errors.Is(err, ErrClosed) {
				t.Fatalf("Err() = %v, want ErrClosed with 1001", err)
			}
		})
	}
}

// A peer that never answers our close frame: Close completes with
// ErrCloseTimeout after CloseTimeout, and the socket is closed by force.
func TestCloseTimeout(t *testing.T) {
	const closeTimeout = 200 * time.Millisecond
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			opts := testOptions()
			opts.CloseTimeout = closeTimeout
			s, p := openRaw(t, r.role, opts, rawConfig{})
			reply := make(chan Completion, 1)
			start := time.Now()
			closeID, _ := s.Close(CloseReason{Code: codec.CloseNormalClosure}, reply)
			if f := p.mustRead(t); f.op != ws.OpClose {
				t.Fatalf("got %v, want the close frame", f)
			}
			if err := p.expectEOF(); err != nil {
				t.Fatal(err)
			}
			check(t, await(t, reply), KindClose, closeID, ErrCloseTimeout)
			endedBy(t, s, ErrCloseTimeout)
			if d := time.Since(start); d < closeTimeout {
				t.Fatalf("Close completed after %v, before the close timeout %v", d, closeTimeout)
			}
			if err := awaitDone(t, s); !errors.Is(err, ErrCloseTimeout) {
				t.Fatalf("Err() = %v, want ErrCloseTimeout", err)
			}
		})
	}
}

// The peer starts the handshake: our close frame echoes its code, the
// inbound side ends, and Err is its *CloseError. The server closes TCP
// first; the client waits for the server's FIN.
func TestPeerInitiatedClose(t *testing.T) {
	tests := []struct {
		name     string
		role     codec.Role
		code     codec.CloseCode
		reason   string
		wantEcho codec.CloseCode
	}{
		{
			name:     "server/normal",
			role:     codec.Server,
			code:     codec.CloseNormalClosure,
			reason:   "done",
			wantEcho: codec.CloseNormalClosure,
		},
		{
			name:     "server/private code",
			role:     codec.Server,
			code:     4321,
			reason:   "app says bye",
			wantEcho: 4321,
		},
		{
			name:     "server/no status",
			role:     codec.Server,
			code:     0,
			wantEcho: codec.CloseNoStatusReceived,
		},
		{
			name:     "client/going away",
			role:     codec.Client,
			code:     codec.CloseGoingAway,
			reason:   "restart",
			wantEcho: codec.CloseGoingAway,
		},
		{
			name:     "client/no status",
			role:     codec.Client,
			code:     0,
			wantEcho: codec.CloseNoStatusReceived,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, p := openRaw(t, tc.role, testOptions(), rawConfig{})
			p.mustWrite(t, closeFrame(tc.code, tc.reason))
			f := p.mustRead(t)
			if f.op != ws.OpClose || f.closeCode() != tc.wantEcho {
				t.Fatalf("answer %v, want a close frame with %d", f, tc.wantEcho)
			}
			if len(f.payload) > 2 {
				t.Fatalf("echo carries a reason: %v", f)
			}
			if tc.role == codec.Client {
				if err := p.silentFor(100 * time.Millisecond); err != nil {
					t.Fatalf("client did not wait for the server's FIN: %v", err)
				}
				select {
				case <-s.Done():
					t.Fatalf("client session ended before the server's FIN: %v", s.Err())
				default:
				}
				if err := p.conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
			// As a server, the session closes TCP without waiting for the
			// raw client; as a client, it closes once the FIN came.
			if err := p.expectEOF(); err != nil {
				t.Fatal(err)
			}
			err := awaitDone(t, s)
			var ce *CloseError
			if !errors.As(err, &ce) || !errors.Is(err, ErrClosed) {
				t.Fatalf("Err() = %v, want a *CloseError matching ErrClosed", err)
			}
			if ce.Code != tc.wantEcho || ce.Reason != tc.reason {
				t.Fatalf("Err() = %d %q, want %d %q", ce.Code, ce.Reason, tc.wantEcho, tc.reason)
			}
			if CloseCode(err) != tc.wantEcho {
				t.Fatalf("CloseCode = %d, want %d", CloseCode(err), tc.wantEcho)
			}
			select {
			case m, ok := <-s.Messages():
				if ok {
					t.Fatalf("unexpected message %q", m.Payload)
				}
			case <-time.After(testTimeout):
				t.Fatal("Messages not closed")
			}
			// Commands after the end complete at once with an error.
			reply := make(chan Completion, 1)
			id, _ := s.WriteText([]byte("late"), reply)
			check(t, await(t, reply), KindWrite, id, ErrClosed)
		})
	}
}

// Data frames that arrive after our close frame are read and dropped.
func TestDataAfterCloseDropped(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			s, p := openRaw(t, r.role, testOptions(), rawConfig{})
			reply := make(chan Completion, 1)
			closeID, _ := s.Close(CloseReason{Code: codec.CloseNormalClosure}, reply)
			if f := p.mustRead(t); f.op != ws.OpClose {
				t.Fatalf("got %v, want the close frame", f)
			}
			p.mustWrite(t, textFrame("too late"))
			p.mustWrite(t, frame{fin: false, op: ws.OpBinary, payload: []byte("also ")})
			p.mustWrite(t, frame{fin: true, op: ws.OpContinuation, payload: []byte("too late")})
			if err := p.finishClose(codec.CloseNormalClosure); err != nil {
				t.Fatal(err)
			}
			check(t, await(t, reply), KindClose, closeID, nil)
			for m := range s.Messages() {
				t.Errorf("message delivered after our close frame: %q", m.Payload)
				m.Release()
			}
		})
	}
}

// CloseContext against a peer that never answers: when ctx is done first,
// the connection is closed by force and ctx's error returned.
func TestCloseContextForced(t *testing.T) {
	opts := testOptions()
	opts.CloseTimeout = testTimeout // the context, not the close timeout, ends it
	s, p := openRaw(t, codec.Server, opts, rawConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.CloseContext(ctx, CloseReason{Code: codec.CloseNormalClosure}) }()
	if f := p.mustRead(t); f.op != ws.OpClose {
		t.Fatalf("got %v, want the close frame", f)
	}
	if err := p.expectEOF(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("CloseContext = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("CloseContext did not return")
	}
	if err := awaitDone(t, s); !errors.Is(err, ErrCanceled) {
		t.Fatalf("Err() = %v, want ErrCanceled", err)
	}
}

// CloseContext against a peer that answers returns nil.
func TestCloseContextClean(t *testing.T) {
	s, p := openRaw(t, codec.Server, testOptions(), rawConfig{})
	frames := p.serve()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := s.CloseContext(ctx, CloseReason{Code: codec.CloseNormalClosure}); err != nil {
		t.Fatalf("CloseContext = %v", err)
	}
	for f := range frames {
		if f.op != ws.OpClose {
			t.Errorf("unexpected frame %v", f)
		}
	}
}

// Close refuses reasons that must not be sent, and sends nothing.
func TestCloseBadReason(t *testing.T) {
	tests := []struct {
		name   string
		reason CloseReason
		want   error
	}{
		{
			name:   "1005",
			reason: CloseReason{Code: codec.CloseNoStatusReceived},
			want:   ErrBadCloseCode,
		},
		{
			name:   "1006",
			reason: CloseReason{Code: codec.CloseAbnormalClosure},
			want:   ErrBadCloseCode,
		},
		{
			name:   "999",
			reason: CloseReason{Code: 999},
			want:   ErrBadCloseCode,
		},
		{
			name:   "2000 unassigned",
			reason: CloseReason{Code: 2000},
			want:   ErrBadCloseCode,
		},
		{
			name:   "5000",
			reason: CloseReason{Code: 5000},
			want:   ErrBadCloseCode,
		},
		{
			name:   "reason not UTF-8",
			reason: CloseReason{Code: codec.CloseNormalClosure, Reason: "\xff"},
			want:   ErrBadCloseCode,
		},
		{
			name:   "reason too long",
			reason: CloseReason{Code: codec.CloseNormalClosure, Reason: string(make([]byte, 124))},
			want:   ErrControlTooLong,
		},
	}
	s, p := openRaw(t, codec.Server, testOptions(), rawConfig{})
	reply := make(chan Completion, 1)
	for _, tc := range tests {
		id, _ := s.Close(tc.reason, reply)
		c := await(t, reply)
		if c.ID != id || !errors.Is(c.Err, tc.want) {
			t.Errorf("%s: Close completed with %v, want %v", tc.name, c.Err, tc.want)
		}
	}
	// Nothing was sent: the next frame is this write.
	id, _ := s.WriteText([]byte("still open"), reply)
	check(t, await(t, reply), KindWrite, id, nil)
	if f := p.mustRead(t); string(f.payload) != "still open" {
		t.Fatalf("got %v, want the write", f)
	}
}

// Close while the caller does not read Messages: the reader, waiting to
// deliver a message that came before our close frame, must go on to the
// peer's close frame, dropping what it holds (Beast's close reads and
// discards until the close frame). Messages already queued stay readable.
func TestCloseWhileMessagesFull(t *testing.T) {
	const inbound = 2
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			opts := testOptions()
			opts.InboundSize = inbound
			s, p := openRaw(t, r.role, opts, rawConfig{})
			for i := range inbound + 3 {
				p.mustWrite(t, textFrame(fmt.Sprintf("unread %d", i)))
			}
			// Messages is full, and the reader waits to deliver the next one.
			waitBlocked(t, "(*reader).endFrame", "select")
			reply := make(chan Completion, 1)
			closeID, _ := s.Close(CloseReason{Code: codec.CloseNormalClosure}, reply)
			if f := p.mustRead(t); f.op != ws.OpClose {
				t.Fatalf("got %v, want the close frame", f)
			}
			if err := p.finishClose(codec.CloseNormalClosure); err != nil {
				t.Fatal(err)
			}
			check(t, await(t, reply), KindClose, closeID, nil)
			for i := range inbound {
				m, ok := <-s.Messages()
				if !ok || string(m.Payload) != fmt.Sprintf("unread %d", i) {
					t.Fatalf("message %d: %q, %t; want the queued one", i, m.Payload, ok)
				}
				m.Release()
			}
			if m, ok := <-s.Messages(); ok {
				t.Fatalf("message %q delivered after the close handshake", m.Payload)
			}
		})
	}
}

func TestOnCloseCalledOnceAfterDone(t *testing.T) {
	type call struct {
		s   *Session
		err error
	}
	calls := make(chan call, 4)
	var srv *Session
	srvReady := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Accept(w, r, &Options{
			HandshakeTimeout: 10 * time.Second,
			OnMessage:        func(s *Session, m Message) { m.Release() },
			OnClose: func(s *Session, err error) {
				select {
				case <-s.Done():
				default:
					t.Error("OnClose before Done")
				}
				calls <- call{s, err}
			},
		})
		if err != nil {
			t.Error(err)
			return
		}
		srv = s
		close(srvReady)
	}))
	t.Cleanup(ts.Close)
	c, err := Dial(context.Background(), "ws"+strings.TrimPrefix(ts.URL, "http"), &Options{HandshakeTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	<-srvReady
	reply := make(chan Completion, 1)
	c.Close(CloseReason{Code: 4001, Reason: "bye"}, reply)
	if comp := <-reply; comp.Err != nil {
		t.Fatalf("close: %v", comp.Err)
	}
	got := <-calls
	if got.s != srv {
		t.Fatal("OnClose got another session")
	}
	var ce *CloseError
	if !errors.As(got.err, &ce) || ce.Code != 4001 || ce.Reason != "bye" {
		t.Fatalf("OnClose err = %v, want the peer's 4001 bye", got.err)
	}
	for range c.Messages() {
	}
	select {
	case extra := <-calls:
		t.Fatalf("OnClose called again: %v", extra.err)
	default:
	}
}

// A handler's answer to a message that arrived just before the peer's close
// frame goes out before our close frame: the peer sent the message first
// and is still reading until our close comes.
func TestAnswerBeforePeerCloseIsSent(t *testing.T) {
	opts := testOptions()
	opts.OnMessage = func(s *Session, m Message) { s.WriteMessage(&m, nil) }
	for i := 0; i < 20; i++ {
		s, p := openRaw(t, codec.Server, opts, rawConfig{})
		both := append(encodeFrame(textFrame("last words"), true), encodeFrame(closeFrame(4100, "done"), true)...)
		if err := p.writeRaw(both); err != nil {
			t.Fatal(err)
		}
		if f := p.mustRead(t); f.op != ws.OpText || string(f.payload) != "last words" {
			t.Fatalf("try %d: got %v, want the echo before the close", i, f)
		}
		if f := p.mustRead(t); f.op != ws.OpClose || f.closeCode() != 4100 {
			t.Fatalf("try %d: got %v, want close 4100", i, f)
		}
		if err := p.expectEOF(); err != nil {
			t.Fatal(err)
		}
		var ce *CloseError
		if err := awaitDone(t, s); !errors.As(err, &ce) || ce.Code != 4100 {
			t.Fatalf("try %d: Err() = %v", i, err)
		}
	}
}
