package session

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
)

// connState is what a test's handlers keep per session.
type connState struct {
	role     codec.Role
	messages int // touched only by the session's OnMessage
}

// OnOpen gives a session its value before the first message: handlers
// shared by every session find their state with Value, for both roles,
// even when the messages come right behind the handshake.
func TestValueSetInOnOpen(t *testing.T) {
	for _, role := range []codec.Role{codec.Server, codec.Client} {
		t.Run(fmt.Sprint(role), func(t *testing.T) {
			const n = 20
			events := make(chan string, 2*n+2)
			opts := testOptions()
			opts.OnOpen = func(_ context.Context, s *Session) {
				events <- "open"
				s.SetValue(&connState{role: s.Role()})
			}
			opts.OnMessage = func(s *Session, m Message) {
				st, ok := s.Value().(*connState)
				switch {
				case !ok:
					events <- fmt.Sprintf("message %q without a value", m.Payload)
				case st.role != s.Role():
					events <- fmt.Sprintf("message %q with another session's value", m.Payload)
				default:
					st.messages++
					events <- "message"
				}
				s.WriteMessage(&m, nil)
			}
			opts.OnClose = func(s *Session, err error) {
				st := s.Value().(*connState)
				events <- fmt.Sprintf("close after %d", st.messages)
			}
			s, p := openRaw(t, role, opts, rawConfig{})
			for i := range n {
				p.mustWrite(t, textFrame(fmt.Sprint(i)))
			}
			for i := range n {
				if f := p.mustRead(t); string(f.payload) != fmt.Sprint(i) {
					t.Fatalf("echo %d: %v", i, f)
				}
			}
			p.mustWrite(t, closeFrame(codec.CloseNormalClosure, ""))
			if f := p.mustRead(t); f.op != ws.OpClose {
				t.Fatalf("got %v, want the close frame's echo", f)
			}
			if !p.client {
				p.conn.(*net.TCPConn).CloseWrite() // the server closes first
			}
			if err := p.expectEOF(); err != nil {
				t.Fatal(err)
			}
			awaitDone(t, s)
			want := "open"
			for i := range n + 2 {
				if i == n+1 {
					want = fmt.Sprintf("close after %d", n)
				} else if i > 0 {
					want = "message"
				}
				if got := <-events; got != want {
					t.Fatalf("event %d: %s, want %s", i, got, want)
				}
			}
		})
	}
}

// Value is nil until SetValue, and SetValue and Value may race.
func TestValueConcurrent(t *testing.T) {
	s, _ := openRaw(t, codec.Server, testOptions(), rawConfig{})
	if v := s.Value(); v != nil {
		t.Fatalf("Value() = %v before SetValue, want nil", v)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				s.SetValue(i*100 + j)
				if _, ok := s.Value().(int); !ok {
					t.Errorf("Value() = %v, want an int", s.Value())
					return
				}
			}
		})
	}
	wg.Wait()
	s.SetValue("last")
	if v := s.Value(); v != "last" {
		t.Fatalf("Value() = %v, want the last value set", v)
	}
	s.SetValue(nil)
	if v := s.Value(); v != nil {
		t.Fatalf("Value() = %v after SetValue(nil), want nil", v)
	}
}

// A panic in OnOpen goes up to the caller of AcceptConn, after the session
// ended and its connection closed.
func TestOnOpenPanic(t *testing.T) {
	ln := listen(t, rawConfig{})
	opened := make(chan *Session, 1)
	opts := testOptions()
	opts.OnOpen = func(_ context.Context, s *Session) {
		opened <- s
		panic("open failed")
	}
	client := make(chan error, 1)
	go func() {
		conn, err := net.DialTimeout("tcp", ln.Addr().String(), testTimeout)
		if err != nil {
			client <- err
			return
		}
		defer conn.Close()
		u := &url.URL{Scheme: "ws", Host: ln.Addr().String(), Path: "/"}
		if _, _, err := (ws.Dialer{}).Upgrade(conn, u); err != nil {
			client <- err
			return
		}
		var b [1]byte
		_, err = conn.Read(b[:]) // the server's end of the stream
		client <- err
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if v := recover(); v != "open failed" {
				t.Errorf("recovered %v, want OnOpen's panic", v)
			}
		}()
		AcceptConn(c, opts)
		t.Error("AcceptConn returned")
	}()
	s := <-opened
	if err := awaitDone(t, s); !errors.Is(err, ErrCanceled) {
		t.Errorf("Err() = %v, want ErrCanceled", err)
	}
	if err := <-client; err == nil {
		t.Error("client read a byte; want the connection closed")
	}
}

// Messages that come in the same packet as the handshake request (net/http
// has read them with the request) are read only after OnOpen: the handler
// never sees a session without its value.
func TestOnOpenBeforePipelinedMessages(t *testing.T) {
	const n = 10
	var mu sync.Mutex
	var events []string
	record := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	opts := testOptions()
	opts.OnOpen = func(_ context.Context, s *Session) {
		record("open")
		s.SetValue(new(connState))
	}
	opts.OnMessage = func(s *Session, m Message) {
		if _, ok := s.Value().(*connState); ok {
			record("message")
		} else {
			record("message without a value")
		}
		s.WriteMessage(&m, nil)
	}
	accepted := make(chan accepted1, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Accept(w, r, opts)
		accepted <- accepted1{s, err}
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b := []byte("GET / HTTP/1.1\r\nHost: " + addr + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	for i := range n {
		b = append(b, encodeFrame(textFrame(fmt.Sprint(i)), true)...)
	}
	if _, err := conn.Write(b); err != nil { // one write: one packet on loopback
		t.Fatal(err)
	}
	res := <-accepted
	if res.err != nil {
		t.Fatalf("Accept: %v", res.err)
	}
	endSession(t, res.s)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v, %v", resp, err)
	}
	p := &rawPeer{conn: conn, src: br, client: true}
	for i := range n {
		if f := p.mustRead(t); string(f.payload) != fmt.Sprint(i) {
			t.Fatalf("echo %d: %v", i, f)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := append([]string{"open"}, slices.Repeat([]string{"message"}, n)...)
	if !slices.Equal(events, want) {
		t.Fatalf("events %q, want %q", events, want)
	}
}

type identityKey struct{}

// OnOpen sees the request's context on Accept (what authentication
// middleware put there) and the dial context on Dial.
func TestOnOpenContext(t *testing.T) {
	got := make(chan string, 2)
	onOpen := func(ctx context.Context, s *Session) {
		id, _ := ctx.Value(identityKey{}).(string)
		got <- s.Role().String() + " " + id
	}
	srvOpts := testOptions()
	srvOpts.OnOpen = onOpen
	srvOpts.OnMessage = func(s *Session, m Message) { m.Release() }
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), identityKey{}, "alice")) // the middleware
		s, err := Accept(w, r, srvOpts)
		if err != nil {
			return
		}
		<-s.Done()
		close(done)
	}))
	t.Cleanup(srv.Close)
	cliOpts := testOptions()
	cliOpts.OnOpen = onOpen
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), identityKey{}, "bob"), testTimeout)
	defer cancel()
	c, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), cliOpts)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"server alice": true, "client bob": true}
	for range 2 {
		select {
		case g := <-got:
			if !want[g] {
				t.Errorf("OnOpen saw %q, want one of %v", g, want)
			}
			delete(want, g)
		case <-time.After(testTimeout):
			t.Fatal("OnOpen was not called")
		}
	}
	c.Cancel(Terminal, nil)
	<-c.Done()
	<-done
}
