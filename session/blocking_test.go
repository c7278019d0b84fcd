package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
)

// The blocking forms need no reply channel: Read returns messages in order
// and the session's error once it ended; WriteContext and CloseContext
// wait for their outcome.
func TestBlockingForms(t *testing.T) {
	url := echoServer(t, testOptions())
	c := dialSession(t, url, testOptions())
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, text := range []string{"one", "two"} {
		if err := c.WriteContext(ctx, Text, []byte(text)); err != nil {
			t.Fatalf("WriteContext: %v", err)
		}
	}
	for _, want := range []string{"one", "two"} {
		m, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if m.Type != Text || string(m.Payload) != want {
			t.Errorf("Read = %v %q, want text %q", m.Type, m.Payload, want)
		}
		m.Release()
	}
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if _, err := c.Read(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Read with nothing to read: %v, want the context's error", err)
	}
	if err := c.CloseContext(ctx, CloseReason{Code: codec.CloseNormalClosure}); err != nil {
		t.Fatalf("CloseContext: %v", err)
	}
	_, err := c.Read(ctx)
	var ce *CloseError
	if !errors.As(err, &ce) || !ce.Local || ce.Code != codec.CloseNormalClosure {
		t.Errorf("Read after the close: %v, want our CloseError 1000", err)
	}
}

func TestReadWithHandler(t *testing.T) {
	opts := testOptions()
	opts.OnMessage = func(s *Session, m Message) { m.Release() }
	s, _ := openRaw(t, codec.Server, opts, rawConfig{})
	if _, err := s.Read(context.Background()); !errors.Is(err, ErrReadWithHandler) {
		t.Errorf("Read with a handler: %v, want ErrReadWithHandler", err)
	}
}

// CloseNow ends the session at once, with every command completed, and
// reports nil; on a session that had already ended it reports why.
func TestCloseNow(t *testing.T) {
	s, p := openRaw(t, codec.Server, testOptions(), smallBuffer)
	reply := make(chan Completion, 2)
	bigID, _ := blockWriter(t, s, p, reply)
	queuedID, _ := s.WriteText([]byte("queued"), reply)
	if err := s.CloseNow(); err != nil {
		t.Fatalf("CloseNow: %v", err)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("CloseNow returned before the session ended")
	}
	got := map[uint64]error{}
	for range 2 {
		c := await(t, reply)
		got[c.ID] = c.Err
	}
	for _, id := range []uint64{bigID, queuedID} {
		if err, ok := got[id]; !ok || !errors.Is(err, ErrCanceled) {
			t.Errorf("command %d: %v, want ErrCanceled", id, err)
		}
	}
	if err := s.CloseNow(); err != nil {
		t.Errorf("a second CloseNow: %v, want nil", err)
	}
}

// PingContext returns once the pong to its own ping came; a peer that does
// not answer leaves it to its context; from the handler it is refused.
func TestPingContext(t *testing.T) {
	url := echoServer(t, testOptions())
	c := dialSession(t, url, testOptions())
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for range 3 {
		if err := c.PingContext(ctx); err != nil {
			t.Fatalf("PingContext: %v", err)
		}
	}

	// A raw peer that reads the ping and never answers it.
	s, p := openRaw(t, codec.Server, testOptions(), rawConfig{})
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	errc := make(chan error, 1)
	go func() { errc <- s.PingContext(short) }()
	if f := p.mustRead(t); f.op != ws.OpPing {
		t.Fatalf("got %v, want the ping", f)
	}
	if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("PingContext without a pong: %v, want the context's error", err)
	}

	inHandler := make(chan error, 1)
	opts := testOptions()
	opts.OnMessage = func(s *Session, m Message) {
		m.Release()
		inHandler <- s.PingContext(ctx)
	}
	h, hp := openRaw(t, codec.Server, opts, rawConfig{})
	_ = h
	hp.mustWrite(t, textFrame("go"))
	if err := <-inHandler; !errors.Is(err, ErrHandlerWait) {
		t.Errorf("PingContext in the handler: %v, want ErrHandlerWait", err)
	}
}
