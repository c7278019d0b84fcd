package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wsactor/wsactor/session"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The client against an echo server: it prints the four echoes in order
// and closes cleanly.
func TestClient(t *testing.T) {
	opts := &session.Options{OnMessage: func(s *session.Session, m session.Message) {
		defer m.Release()
		s.WriteMessage(&m, nil)
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session.Accept(w, r, opts)
	}))
	defer srv.Close()
	out := captureStdout(t, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := run(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")); err != nil {
			t.Fatal(err)
		}
	})
	if want := "one\ntwo\nthree\nfour\n"; out != want {
		t.Errorf("printed %q, want %q", out, want)
	}
}

func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	got := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		got <- string(b)
	}()
	defer func() { os.Stdout = old }()
	f()
	w.Close()
	return <-got
}
