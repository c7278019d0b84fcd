package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsactor/wsactor/session"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEcho(t *testing.T) {
	srv := httptest.NewServer(echo())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := session.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, text := range []string{"hello", "again"} {
		if err := c.WriteContext(ctx, session.Text, []byte(text)); err != nil {
			t.Fatal(err)
		}
		m, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Type != session.Text || string(m.Payload) != text {
			t.Errorf("echo of %q: %v %q", text, m.Type, m.Payload)
		}
		m.Release()
	}
	if err := c.CloseContext(ctx, session.CloseReason{Code: session.CloseNormalClosure}); err != nil {
		t.Fatal(err)
	}
}
