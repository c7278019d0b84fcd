package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/netpoll"
)

// waitParked waits until n sessions are parked, or fails at the deadline.
func waitParked(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for netpoll.Shared().Parked() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions parked, want %d", netpoll.Shared().Parked(), n)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, bounded by the deadline
	}
}

func TestParkAndWake(t *testing.T) {
	if !netpoll.Supported() {
		t.Skip("parking needs Linux")
	}
	for _, mode := range []string{"handler", "channel"} {
		t.Run(mode, func(t *testing.T) {
			opts := &Options{ParkAfter: 30 * time.Millisecond, HandshakeTimeout: 10 * time.Second, IdleTimeout: -1}
			if mode == "handler" {
				opts.OnMessage = func(s *Session, m Message) { s.WriteMessage(&m, nil) }
			}
			addr, sessions := benchServer(t, opts)
			c, err := Dial(context.Background(), "ws://"+addr+"/", &Options{ParkAfter: -1, HandshakeTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			srv := <-sessions
			if mode == "channel" {
				go func() {
					for m := range srv.Messages() {
						srv.WriteMessage(&m, nil)
					}
				}()
			}
			for round := 0; round < 3; round++ {
				waitParked(t, 1)
				reply := make(chan Completion, 1)
				msg := strings.Repeat("x", 100*round)
				c.WriteText([]byte(msg), reply)
				if comp := <-reply; comp.Err != nil {
					t.Fatal(comp.Err)
				}
				select {
				case m := <-c.Messages():
					if string(m.Payload) != msg {
						t.Fatalf("round %d: echo %q", round, m.Payload)
					}
					m.Release()
				case <-time.After(10 * time.Second):
					t.Fatalf("round %d: no echo from a parked session", round)
				}
			}
			// Closed by the peer while parked: the session ends cleanly.
			waitParked(t, 1)
			reply := make(chan Completion, 1)
			c.Close(CloseReason{Code: 4000, Reason: "parked"}, reply)
			if comp := <-reply; comp.Err != nil {
				t.Fatal(comp.Err)
			}
			<-srv.Done()
			var ce *CloseError
			if !errors.As(srv.Err(), &ce) || ce.Code != 4000 {
				t.Fatalf("server err %v", srv.Err())
			}
			for range c.Messages() {
			}
			waitParked(t, 0)
		})
	}
}

func TestParkedSessionEndsByCancel(t *testing.T) {
	if !netpoll.Supported() {
		t.Skip("parking needs Linux")
	}
	// One side is canceled; the other sees the connection end (with its
	// reader parked too, it may see it before its own Cancel lands, so
	// each side is canceled in a run of its own).
	for _, canceled := range []codec.Role{codec.Server, codec.Client} {
		t.Run(canceled.String(), func(t *testing.T) {
			addr, sessions := benchServer(t, &Options{ParkAfter: 30 * time.Millisecond, HandshakeTimeout: 10 * time.Second})
			c, err := Dial(context.Background(), "ws://"+addr+"/", &Options{ParkAfter: 30 * time.Millisecond, HandshakeTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			srv := <-sessions
			waitParked(t, 2)
			// The parked reader has no goroutine to see the socket close:
			// ending the session must end its reading side (Messages
			// closes) itself.
			victim, other := srv, c
			if canceled == codec.Client {
				victim, other = c, srv
			}
			victim.Cancel(Terminal, nil)
			for _, s := range []*Session{victim, other} {
				<-s.Done()
				for range s.Messages() {
				}
			}
			if !errors.Is(victim.Err(), ErrCanceled) {
				t.Fatalf("%v: err %v, want ErrCanceled", victim.Role(), victim.Err())
			}
			waitParked(t, 0)
		})
	}
}

func TestParkedKeepalive(t *testing.T) {
	if !netpoll.Supported() {
		t.Skip("parking needs Linux")
	}
	// A parked server session still pings at half the idle timeout; the
	// client's pong wakes it, and it does not time out.
	pongs := make(chan struct{}, 16)
	addr, sessions := benchServer(t, &Options{
		ParkAfter:        20 * time.Millisecond,
		IdleTimeout:      400 * time.Millisecond,
		HandshakeTimeout: 10 * time.Second,
		OnControl: func(s *Session, op ControlOp, p []byte) {
			if op == ControlPong {
				pongs <- struct{}{}
			}
		},
		OnMessage: func(s *Session, m Message) { m.Release() },
	})
	c, err := Dial(context.Background(), "ws://"+addr+"/", &Options{HandshakeTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := <-sessions
	for i := 0; i < 3; i++ {
		select {
		case <-pongs:
		case <-srv.Done():
			t.Fatalf("session ended: %v", srv.Err())
		case <-time.After(10 * time.Second):
			t.Fatal("no keep-alive pong")
		}
	}
	c.Close(CloseReason{Code: 1000}, nil)
	<-srv.Done()
	<-c.Done()
	for range c.Messages() {
	}
}
