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
	_ "github.com/wsactor/wsactor/xconnect" // RFC 8441 in net/http's HTTP/2 server
)

// WebSockets over HTTP/2 (RFC 8441): the handler, served through Handler,
// returns right after Accept, as it may over HTTP/1.1; Handler keeps the
// stream for the session. The client dials through an HTTP2 pool, here
// over cleartext HTTP/2 (h2c); its sessions share one connection.
func ExampleHandler() {
	opts := &session.Options{
		OnMessage: func(s *session.Session, m session.Message) { s.WriteMessage(&m, nil) },
	}
	proto := make(chan string, 1)
	srv := httptest.NewUnstartedServer(session.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := session.Accept(w, r, opts); err != nil {
			return
		}
		proto <- r.Proto
	})))
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Start()
	defer srv.Close()
	pool := new(session.HTTP2)
	defer pool.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := session.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &session.Options{HTTP2: pool})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("accepted over", <-proto)
	c.WriteContext(ctx, session.Text, []byte("hello"))
	m, _ := c.Read(ctx)
	fmt.Printf("%s: %s\n", m.Type, m.Payload)
	m.Release()
	fmt.Println("close:", c.CloseContext(ctx, session.CloseReason{Code: codec.CloseNormalClosure}))
	// Output:
	// accepted over HTTP/2.0
	// text: hello
	// close: <nil>
}
