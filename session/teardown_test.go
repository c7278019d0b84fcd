package session

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
)

// A peer that keeps sending after a bad frame still reads the close frame
// and then a clean end of stream: the session half-closes and drops what
// follows instead of closing a socket with unread bytes, which would send a
// reset that can destroy the close frame (RFC 6455 section 7.1.7).
func TestFailureTeardownKeepsCloseFrame(t *testing.T) {
	for _, handler := range []bool{false, true} {
		name := "messages"
		if handler {
			name = "handler"
		}
		t.Run(name, func(t *testing.T) {
			opts := testOptions()
			if handler {
				opts.OnMessage = func(s *Session, m Message) { s.WriteMessage(&m, nil) }
			}
			s, p := openRaw(t, codec.Server, opts, rawConfig{})
			bad := encodeFrame(textFrame("unmasked from a client"), false)
			if err := p.writeRaw(bad); err != nil {
				t.Fatal(err)
			}
			// Bytes keep coming after the bad frame, as from a peer that
			// streams: bounded, and stopped once the test has its answer.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				junk := make([]byte, 16<<10)
				for range 256 {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := p.conn.Write(junk); err != nil {
						return
					}
				}
			})
			defer wg.Wait()
			defer close(stop)
			f := p.mustRead(t)
			if f.op != ws.OpClose || f.closeCode() != codec.CloseProtocolError {
				t.Fatalf("answer %v, want close 1002", f)
			}
			if err := p.expectEOF(); err != nil {
				t.Fatal(err)
			}
			err := awaitDone(t, s)
			if CloseCode(err) != codec.CloseProtocolError {
				t.Fatalf("Err() = %v (code %d), want 1002", err, CloseCode(err))
			}
		})
	}
}

// closeWatch is a TCP connection that reports when it is closed.
type closeWatch struct {
	*net.TCPConn
	once   sync.Once
	closed chan struct{}
}

func (c *closeWatch) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.TCPConn.Close()
}

// acceptWatched returns a server session on a connection that reports its
// close, and the raw client connected to it.
func acceptWatched(t *testing.T, opts *Options) (*Session, *closeWatch, *rawPeer) {
	t.Helper()
	watched := make(chan *closeWatch, 1)
	s, p := acceptRaw(t, opts, rawConfig{wrap: func(c net.Conn) net.Conn {
		w := &closeWatch{TCPConn: c.(*net.TCPConn), closed: make(chan struct{})}
		watched <- w
		return w
	}})
	return s, <-watched, p
}

// The teardown after a failure ends with the peer's FIN, or at the close
// timeout when the peer never closes.
func TestFailureTeardownEnds(t *testing.T) {
	t.Run("peer closes", func(t *testing.T) {
		opts := testOptions()
		opts.CloseTimeout = time.Hour // only the peer's FIN can end it
		s, w, p := acceptWatched(t, opts)
		if err := p.writeRaw(encodeFrame(textFrame("unmasked"), false)); err != nil {
			t.Fatal(err)
		}
		if f := p.mustRead(t); f.closeCode() != codec.CloseProtocolError {
			t.Fatalf("answer %v, want close 1002", f)
		}
		if err := p.expectEOF(); err != nil {
			t.Fatal(err)
		}
		awaitDone(t, s)
		select {
		case <-w.closed:
			t.Fatal("connection closed before the peer closed it")
		default:
		}
		p.conn.Close()
		select {
		case <-w.closed:
		case <-time.After(testTimeout):
			t.Fatal("connection not closed after the peer's FIN")
		}
	})
	t.Run("close timeout", func(t *testing.T) {
		const closeTimeout = 100 * time.Millisecond
		opts := testOptions()
		opts.CloseTimeout = closeTimeout
		s, w, p := acceptWatched(t, opts)
		start := time.Now()
		if err := p.writeRaw(encodeFrame(textFrame("unmasked"), false)); err != nil {
			t.Fatal(err)
		}
		if f := p.mustRead(t); f.closeCode() != codec.CloseProtocolError {
			t.Fatalf("answer %v, want close 1002", f)
		}
		var b [1]byte
		if _, err := p.src.Read(b[:]); !errors.Is(err, io.EOF) {
			t.Fatalf("after the close frame: %v, want EOF (the session's FIN)", err)
		}
		awaitDone(t, s)
		select {
		case <-w.closed:
		case <-time.After(testTimeout):
			t.Fatal("connection not closed at the close timeout")
		}
		if d := time.Since(start); d < closeTimeout {
			t.Fatalf("connection closed after %v, before the close timeout %v", d, closeTimeout)
		}
	})
}
