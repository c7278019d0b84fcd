package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsactor/wsactor/session"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// send streams 1 MiB as one message, in frames of 64 KiB: the server gets
// it whole.
func TestSend(t *testing.T) {
	data := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	got := make(chan []byte, 1)
	opts := &session.Options{OnMessage: func(s *session.Session, m session.Message) {
		got <- bytes.Clone(m.Payload)
		m.Release()
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session.Accept(w, r, opts)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := session.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.CloseNow()
	if err := send(ctx, s, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if !bytes.Equal(p, data) {
			t.Errorf("the server got %d bytes, not the %d sent", len(p), len(data))
		}
	case <-ctx.Done():
		t.Fatal("the message did not arrive")
	}
}
