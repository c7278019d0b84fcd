package session_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/session"
)

// An echo server: Accept upgrades each request, and OnMessage hands every
// message back with WriteMessage, which takes it (emptying m), sends it
// without a copy and releases its buffer once written; the deferred
// Release then does nothing.
func ExampleAccept() {
	opts := &session.Options{
		OnMessage: func(s *session.Session, m session.Message) {
			defer m.Release()
			s.WriteMessage(&m, nil) // nil: no completion wanted
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := session.Accept(w, r, opts); err != nil {
			return // Accept has answered with the fitting HTTP status
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := session.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	reply := make(chan session.Completion, 1)
	for _, text := range []string{"hello", "echo"} {
		c.WriteText([]byte(text), reply)
		<-reply
		m := <-c.Messages()
		fmt.Printf("%s: %s\n", m.Type, m.Payload)
		m.Release()
	}
	c.Close(session.CloseReason{Code: codec.CloseNormalClosure}, reply)
	fmt.Println("close:", (<-reply).Err)
	// Output:
	// text: hello
	// text: echo
	// close: <nil>
}

// A client: Dial, write a message and wait for its completion, read the
// answer from Messages, and close with the handshake.
func ExampleDial() {
	// A server that answers every message with its length.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session.Accept(w, r, &session.Options{
			OnMessage: func(s *session.Session, m session.Message) {
				s.WriteText(fmt.Appendf(nil, "%d bytes", len(m.Payload)), nil)
				m.Release()
			},
		})
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := session.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	reply := make(chan session.Completion, 1)
	payload := []byte("twelve bytes")
	id, _ := s.WriteBinary(payload, reply) // payload is the session's until the completion
	c := <-reply
	fmt.Println(c.Kind, c.ID == id, c.N, c.Err)

	m := <-s.Messages()
	fmt.Printf("server says: %s\n", m.Payload)
	m.Release()

	s.Close(session.CloseReason{Code: codec.CloseNormalClosure, Reason: "done"}, reply)
	c = <-reply
	fmt.Println(c.Kind, c.Err)
	<-s.Done()
	fmt.Println(s.Err())
	// Output:
	// write true 12 <nil>
	// server says: 12 bytes
	// close <nil>
	// session: closed by this side with 1000 (normal closure): "done"
}

// A message streamed from a reader without holding it in memory: the
// MessageWriter sends a frame each time its buffer fills, and io.Copy reads
// straight into those buffers. The peer gets one message.
func ExampleSession_NewWriter() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := session.Accept(w, r, &session.Options{FragmentSize: 64 << 10})
		if err != nil {
			return
		}
		mw := s.NewWriter(r.Context(), session.Binary)
		_, err = io.Copy(mw, io.LimitReader(zeros{}, 1<<20)) // 1 MiB, 16 frames
		if cerr := mw.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			s.Cancel(session.Terminal, nil)
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := session.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	m := <-c.Messages()
	fmt.Println(m.Type, len(m.Payload))
	m.Release()
	c.Cancel(session.Terminal, nil)
	<-c.Done()
	// Output:
	// binary 1048576
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Per-session state for handlers that many sessions share: OnOpen gives
// each session its value before it reads a byte, and the handlers find it
// with Value.
func ExampleSession_SetValue() {
	type counter struct{ messages int }
	opts := &session.Options{
		OnOpen: func(_ context.Context, s *session.Session) { s.SetValue(new(counter)) },
		OnMessage: func(s *session.Session, m session.Message) {
			n := s.Value().(*counter)
			n.messages++ // OnMessage calls of one session never overlap
			s.WriteText(fmt.Appendf(nil, "message %d: %s", n.messages, m.Payload), nil)
			m.Release()
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session.Accept(w, r, opts)
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := session.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, text := range []string{"a", "b"} {
		c.WriteText([]byte(text), nil)
		m := <-c.Messages()
		fmt.Printf("%s\n", m.Payload)
		m.Release()
	}
	c.Cancel(session.Terminal, nil)
	<-c.Done()
	// Output:
	// message 1: a
	// message 2: b
}

// Compression: both ends set Options.Compression, so permessage-deflate is
// negotiated and messages travel compressed when that pays.
func ExampleCompression() {
	opts := &session.Options{
		Compression: &session.Compression{},
		OnMessage: func(s *session.Session, m session.Message) {
			s.WriteMessage(&m, nil)
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session.Accept(w, r, opts)
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := session.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &session.Options{Compression: &session.Compression{}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("compressed:", c.Compressed())
	c.WriteText([]byte(strings.Repeat("compress me ", 1000)), nil)
	m := <-c.Messages()
	fmt.Println(len(m.Payload), "bytes back")
	m.Release()
	c.Cancel(session.Terminal, nil)
	<-c.Done()
	// Output:
	// compressed: true
	// 12000 bytes back
}
