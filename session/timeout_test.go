package session

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
)

// idleTimeout is short, but leaves a peer half of it (the time from a
// keep-alive ping to the next tick) to answer on a loaded machine.
const idleTimeout = 400 * time.Millisecond

// slack bounds how late a timer-driven event may come on a loaded machine.
const slack = 2 * time.Second

// A peer that answers the keep-alive pings keeps the session open for as
// long as it does.
func TestIdleKeepAlive(t *testing.T) {
	const pings = 4 // one per idle timeout: the session lives through four
	opts := testOptions()
	opts.IdleTimeout = idleTimeout
	s, p := openRaw(t, codec.Server, opts, rawConfig{})
	start := time.Now()
	frames := p.serve()
	for i := range pings {
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatalf("connection ended after %d pings: %v", i, s.Err())
			}
			if f.op != ws.OpPing {
				t.Fatalf("got %v, want a keep-alive ping", f)
			}
		case <-time.After(testTimeout):
			t.Fatalf("ping %d did not come", i)
		}
	}
	if d := time.Since(start); d < (pings-1)*idleTimeout {
		t.Fatalf("%d pings in %v: more than one per idle timeout", pings, d)
	}
	select {
	case <-s.Done():
		t.Fatalf("session ended: %v", s.Err())
	default:
	}
	reply := make(chan Completion, 1)
	closeID, _ := s.Close(CloseReason{Code: codec.CloseNormalClosure}, reply)
	check(t, await(t, reply), KindClose, closeID, nil)
}

// A peer that stays silent, pongs included, is closed with 1001 after the
// idle timeout, and the session ends with ErrIdleTimeout.
func TestIdleTimeout(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			opts := testOptions()
			opts.IdleTimeout = idleTimeout
			s, p := openRaw(t, r.role, opts, rawConfig{})
			start := time.Now()
			fs, err := p.readAll()
			elapsed := time.Since(start)
			if err != io.EOF {
				t.Fatalf("stream ended with %v, want EOF", err)
			}
			if len(fs) < 2 || fs[0].op != ws.OpPing || fs[len(fs)-1].op != ws.OpClose {
				t.Fatalf("frames %v, want keep-alive pings, then a close frame", fs)
			}
			if code := fs[len(fs)-1].closeCode(); code != codec.CloseGoingAway {
				t.Fatalf("close code %d, want 1001", code)
			}
			if elapsed < idleTimeout*3/4 || elapsed > idleTimeout+slack {
				t.Fatalf("closed after %v, want about the idle timeout %v", elapsed, idleTimeout)
			}
			err = awaitDone(t, s)
			if !errors.Is(err, ErrIdleTimeout) || CloseCode(err) != codec.CloseGoingAway {
				t.Fatalf("Err() = %v, want ErrIdleTimeout (1001)", err)
			}
		})
	}
}

// AcceptConn cuts a handshake that does not finish within
// HandshakeTimeout: a client that sends nothing, and one that sends its
// request one byte at a time, slower than that.
func TestHandshakeTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	request := "GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	tests := []struct {
		name  string
		every time.Duration // the client's pace, one byte each; 0 sends nothing
	}{
		{
			name: "silent client",
		},
		{
			name:  "one byte at a time",
			every: 20 * time.Millisecond, // the request takes 3 s: far past the timeout
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln := listen(t, rawConfig{})
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			srv, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			sent := make(chan int, 1)
			go func() {
				n := 0
				defer func() { sent <- n }()
				if tc.every == 0 {
					return
				}
				tick := time.NewTicker(tc.every)
				defer tick.Stop()
				for ; n < len(request); n++ {
					select {
					case <-tick.C:
					case <-stop:
						return
					}
					if _, err := conn.Write([]byte{request[n]}); err != nil {
						return
					}
				}
			}()
			opts := testOptions()
			opts.HandshakeTimeout = timeout
			start := time.Now()
			s, err := AcceptConn(srv, opts)
			elapsed := time.Since(start)
			close(stop)
			n := <-sent
			if err == nil {
				endSession(t, s)
				t.Fatal("AcceptConn succeeded")
			}
			if !errors.Is(err, ErrHandshake) {
				t.Fatalf("AcceptConn = %v, want ErrHandshake", err)
			}
			if elapsed < timeout || elapsed > timeout+slack {
				t.Fatalf("AcceptConn returned after %v, want the handshake timeout %v", elapsed, timeout)
			}
			if n == len(request) {
				t.Fatal("the whole request went out before the timeout")
			}
			// The server closed the connection: the client reads its end
			// (after whatever error response it got).
			conn.SetReadDeadline(time.Now().Add(testTimeout))
			_, err = io.Copy(io.Discard, conn)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("connection still open after the handshake timeout")
			}
		})
	}
}

// A write the peer does not take within WriteTimeout ends the session with
// ErrWriteTimeout, its command and the ones behind it answered.
func TestWriteTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	opts := testOptions()
	opts.WriteTimeout = timeout
	s, p := openRaw(t, codec.Server, opts, smallBuffer)
	if err := s.conn.(*net.TCPConn).SetWriteBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	_ = p // the peer reads nothing
	reply := make(chan Completion, 2)
	start := time.Now()
	big, _ := s.WriteBinary(make([]byte, bigWrite), reply)
	next, _ := s.WriteText([]byte("behind it"), reply)
	c := await(t, reply)
	check(t, c, KindWrite, big, ErrWriteTimeout)
	if d := time.Since(start); d < timeout {
		t.Fatalf("the write failed after %v, before the write timeout %v", d, timeout)
	}
	if c := await(t, reply); c.ID != next || c.Err == nil {
		t.Fatalf("the write behind it: %+v, want an error", c)
	}
	if err := awaitDone(t, s); !errors.Is(err, ErrWriteTimeout) {
		t.Fatalf("Err() = %v, want ErrWriteTimeout", err)
	}
}
