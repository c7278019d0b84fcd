package session_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/session"
)

// An echo server: Accept upgrades each request, and OnMessage hands every
// message back with WriteMessage, which sends it without a copy and
// releases its buffer once written.
func ExampleAccept() {
	opts := &session.Options{
		OnMessage: func(s *session.Session, m session.Message) {
			s.WriteMessage(m, nil) // nil: no completion wanted
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
	id := s.WriteBinary(payload, reply) // payload is the session's until the completion
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
	// session: closed by peer with 1000 (normal closure)
}
