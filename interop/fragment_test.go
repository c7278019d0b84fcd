package interop

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsactor/wsactor/session"
)

// countingConn counts the writes made on a connection. gorilla writes each
// frame with one Write, so during a message the count is its frame count.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestFragmentedEcho: a gorilla client streams a message through
// NextWriter in many Write calls; with a small WriteBufferSize gorilla
// sends a frame each time its buffer fills, so the message goes out as a
// first frame and continuation frames. The wsactor server reassembles it
// and echoes it whole, text split inside multi-byte runes included.
func TestFragmentedEcho(t *testing.T) {
	cases := []struct {
		name      string
		typ       session.MessageType
		msg       []byte
		bufSize   int // gorilla's WriteBufferSize
		chunkSize int // bytes per Write call
	}{
		{
			name:      "text-1000B-buf128-chunk7",
			typ:       session.Text,
			msg:       payload(session.Text, 1000, 1),
			bufSize:   128,
			chunkSize: 7,
		},
		{
			name:      "text-utf8-runes-split-across-frames",
			typ:       session.Text,
			msg:       bytes.Repeat([]byte("aé€😀"), 300),
			bufSize:   64,
			chunkSize: 5,
		},
		{
			name:      "binary-65536B-buf1024-chunk1000",
			typ:       session.Binary,
			msg:       payload(session.Binary, 65536, 2),
			bufSize:   1024,
			chunkSize: 1000,
		},
		{
			name:      "binary-1MiB-buf4096-chunk65536",
			typ:       session.Binary,
			msg:       payload(session.Binary, 1<<20, 3),
			bufSize:   4096,
			chunkSize: 65536,
		},
		{
			name:      "binary-300B-buf256-one-write",
			typ:       session.Binary,
			msg:       payload(session.Binary, 300, 4),
			bufSize:   256,
			chunkSize: 300,
		},
	}
	srv := startWsactorServer(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cc *countingConn
			d := websocket.Dialer{
				HandshakeTimeout: testTimeout,
				WriteBufferSize:  tc.bufSize,
				NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					var nd net.Dialer
					c, err := nd.DialContext(ctx, network, addr)
					if err != nil {
						return nil, err
					}
					cc = &countingConn{Conn: c}
					return cc, nil
				},
			}
			ctx := testContext(t)
			c, _, err := d.DialContext(ctx, srv.URL, nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			g := &gorillaConn{c: c, pongs: make(chan string, 1)}
			t.Cleanup(g.abort)
			s := srv.next(t)

			before := cc.writes.Load()
			c.SetWriteDeadline(deadline(ctx))
			w, err := c.NextWriter(gorillaType(tc.typ))
			if err != nil {
				t.Fatalf("NextWriter: %v", err)
			}
			for p := tc.msg; len(p) > 0; {
				n := min(tc.chunkSize, len(p))
				if _, err := w.Write(p[:n]); err != nil {
					t.Fatalf("write a chunk: %v", err)
				}
				p = p[n:]
			}
			if err := w.Close(); err != nil {
				t.Fatalf("close the message writer: %v", err)
			}
			frames := cc.writes.Load() - before
			if frames < 2 {
				t.Fatalf("gorilla sent the message in %d frame(s); the test needs it fragmented", frames)
			}
			t.Logf("%d bytes in %d frames", len(tc.msg), frames)

			typ, got, err := g.read(ctx)
			if err != nil {
				t.Fatalf("read the echo: %v", err)
			}
			if typ != tc.typ {
				t.Errorf("echo type %s, want %s", typ, tc.typ)
			}
			checkPayload(t, "echo", got, tc.msg)
			closeClean(t, g, s)
		})
	}
}

// fragmentingEnd is how gorillaFragmentingEcho saw a connection end.
type fragmentingEnd struct {
	pongs int
	code  int
	err   error
}

// gorillaFragmentingEcho is a gorilla echo server that streams each echo
// through NextWriter in chunks of chunk bytes with a write buffer of
// bufSize bytes, so that gorilla sends it in many frames, and pings the
// client between two of those frames.
func gorillaFragmentingEcho(bufSize, chunk int, ends chan<- fragmentingEnd) http.HandlerFunc {
	upgrader := websocket.Upgrader{WriteBufferSize: bufSize}
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			ends <- fragmentingEnd{err: err}
			return
		}
		defer c.Close()
		var pongs int
		c.SetPongHandler(func(data string) error {
			if data == "mid-message" {
				pongs++
			}
			return nil
		})
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					ends <- fragmentingEnd{pongs: pongs, code: ce.Code}
				} else {
					ends <- fragmentingEnd{pongs: pongs, err: err}
				}
				return
			}
			mw, err := c.NextWriter(mt)
			if err != nil {
				ends <- fragmentingEnd{pongs: pongs, err: err}
				return
			}
			pinged := false
			for p, written := msg, 0; len(p) > 0; {
				n := min(chunk, len(p))
				if _, err := mw.Write(p[:n]); err != nil {
					ends <- fragmentingEnd{pongs: pongs, err: err}
					return
				}
				p, written = p[n:], written+n
				if !pinged && written > 2*bufSize && len(p) > 0 {
					// A frame of this message has gone out and more follow.
					pinged = true
					if err := c.WriteControl(websocket.PingMessage, []byte("mid-message"), time.Now().Add(testTimeout)); err != nil {
						ends <- fragmentingEnd{pongs: pongs, err: err}
						return
					}
				}
			}
			if err := mw.Close(); err != nil {
				ends <- fragmentingEnd{pongs: pongs, err: err}
				return
			}
		}
	}
}

// TestFragmentedToClient: a gorilla server sends each echo in many frames,
// with a ping between two of them; the wsactor client delivers the message
// whole and answers the ping in the middle of it.
func TestFragmentedToClient(t *testing.T) {
	cases := []struct {
		name      string
		typ       session.MessageType
		msg       []byte
		bufSize   int
		chunkSize int
	}{
		{
			name:      "text-1000B-buf128-chunk50",
			typ:       session.Text,
			msg:       payload(session.Text, 1000, 5),
			bufSize:   128,
			chunkSize: 50,
		},
		{
			name:      "text-utf8-runes-split-across-frames",
			typ:       session.Text,
			msg:       bytes.Repeat([]byte("aé€😀"), 300),
			bufSize:   64,
			chunkSize: 5,
		},
		{
			name:      "binary-65536B-buf1024-chunk100",
			typ:       session.Binary,
			msg:       payload(session.Binary, 65536, 6),
			bufSize:   1024,
			chunkSize: 100,
		},
		{
			name:      "binary-1MiB-buf4096-chunk4000",
			typ:       session.Binary,
			msg:       payload(session.Binary, 1<<20, 7),
			bufSize:   4096,
			chunkSize: 4000,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ends := make(chan fragmentingEnd, 1)
			var wg sync.WaitGroup
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				wg.Add(1)
				defer wg.Done()
				gorillaFragmentingEcho(tc.bufSize, tc.chunkSize, ends)(w, r)
			}))
			t.Cleanup(func() {
				srv.Close()
				wg.Wait()
			})
			pings := make(chan string, 1)
			s := dialSession(t, wsURL(srv.URL), &session.Options{
				OnControl: func(_ *session.Session, op session.ControlOp, p []byte) {
					if op == session.ControlPing {
						select {
						case pings <- string(p):
						default:
						}
					}
				},
			})
			reply := make(chan session.Completion, 2)
			s.Write(tc.typ, tc.msg, reply)
			if comp := <-reply; comp.Err != nil {
				t.Fatalf("Write completion: %v", comp.Err)
			}
			m := receive(t, s)
			if m.Type != tc.typ {
				t.Errorf("echo type %s, want %s", m.Type, tc.typ)
			}
			checkPayload(t, "echo", m.Payload, tc.msg)
			m.Release()
			select {
			case p := <-pings:
				if p != "mid-message" {
					t.Errorf("ping payload %q", p)
				}
			default:
				t.Errorf("the ping sent between two frames of the echo was not seen before the echo")
			}
			id, _ := s.Close(session.CloseReason{Code: 1000}, reply)
			if comp := awaitCompletion(t, reply, session.KindClose, id); comp.Err != nil {
				t.Errorf("Close completion: %v", comp.Err)
			}
			var e fragmentingEnd
			select {
			case e = <-ends:
			case <-time.After(testTimeout):
				t.Fatalf("the server's handler did not end within %v", testTimeout)
			}
			if e.err != nil || e.code != 1000 || e.pongs != 1 {
				t.Errorf("the server saw %d pong(s) then close %d (err %v), want 1 pong then 1000", e.pongs, e.code, e.err)
			}
		})
	}
}
