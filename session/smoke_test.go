package session

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSmokeEcho(t *testing.T) {
	srvOpts := &Options{OnMessage: func(s *Session, m Message) { s.WriteMessage(&m, nil) }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := Accept(w, r, srvOpts); err != nil {
			t.Log(err)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	reply := make(chan Completion, 16)
	for _, size := range []int{0, 1, 125, 126, 65535, 65536, 1 << 20} {
		p := bytes.Repeat([]byte("x"), size)
		c.WriteBinary(p, reply)
		if comp := <-reply; comp.Err != nil || comp.N != size {
			t.Fatalf("write %d: %+v", size, comp)
		}
		m := <-c.Messages()
		if !bytes.Equal(m.Payload, p) {
			t.Fatalf("echo %d: got %d bytes", size, len(m.Payload))
		}
		m.Release()
	}
	c.Close(CloseReason{Code: 1000, Reason: "bye"}, reply)
	comp := <-reply
	if comp.Kind != KindClose || comp.Err != nil {
		t.Fatalf("close: %+v", comp)
	}
	<-c.Done()
	var ce *CloseError
	if !errors.As(c.Err(), &ce) || ce.Code != 1000 {
		t.Fatalf("err %v", c.Err())
	}
	for range c.Messages() {
	}
}
