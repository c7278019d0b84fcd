package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsactor/wsactor/session"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestEcho: one handler, sessions over HTTP/2 (h2c) and over HTTP/1.1.
func TestEcho(t *testing.T) {
	srv := httptest.NewUnstartedServer(echo())
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	pool := new(session.HTTP2)
	defer pool.CloseIdleConnections()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	for _, opts := range []*session.Options{{HTTP2: pool}, nil} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := session.Dial(ctx, url, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WriteContext(ctx, session.Text, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		m, err := c.Read(ctx)
		if err != nil || string(m.Payload) != "hello" {
			t.Fatalf("echo: %q, %v", m.Payload, err)
		}
		m.Release()
		if err := c.CloseContext(ctx, session.CloseReason{Code: session.CloseNormalClosure}); err != nil {
			t.Fatal(err)
		}
	}
}
