package session

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
)

// A handler's messages that arrived whole in one read alias that read's
// buffer (no copy), each payload capped at its length, and the messages of
// one read share it.
func TestHandlerMessagesAliasTheRead(t *testing.T) {
	got := make(chan Message, 3)
	opts := testOptions()
	opts.OnMessage = func(s *Session, m Message) { got <- m }
	_, p := openRaw(t, codec.Server, opts, rawConfig{})
	var b []byte
	for _, s := range []string{"one", "two", "three"} {
		b = append(b, encodeFrame(textFrame(s), true)...)
	}
	if err := p.writeRaw(b); err != nil { // one write, so most likely one read
		t.Fatal(err)
	}
	var ms []Message
	for range 3 {
		ms = append(ms, <-got)
	}
	defer func() {
		for i := range ms {
			ms[i].Release()
		}
	}()
	for i, m := range ms {
		if m.ref == nil || m.ref.shared == nil {
			t.Fatalf("message %d (%q) was copied; want it to alias the read", i, m.Payload)
		}
		if cap(m.Payload) != len(m.Payload) {
			t.Errorf("message %d: cap %d, want its length %d", i, cap(m.Payload), len(m.Payload))
		}
	}
	if ms[0].ref.shared != ms[1].ref.shared || ms[1].ref.shared != ms[2].ref.shared {
		t.Skip("the frames came in more than one read; nothing to compare")
	}
	if n := ms[0].ref.shared.refs.Load(); n != 3 {
		t.Errorf("read buffer references = %d, want 3 (one per message, the reader's gone)", n)
	}
}

// Messages a handler keeps beyond their read stay intact while later reads
// come, and are written out intact by another goroutine: the read buffer
// they alias goes back to the pool only when the last one is released.
func TestAliasedMessagesOutliveTheirRead(t *testing.T) {
	const rounds, perRound = 20, 8
	var mu sync.Mutex
	var kept []Message
	arrived := make(chan struct{}, rounds*perRound)
	opts := testOptions()
	opts.OnMessage = func(s *Session, m Message) {
		mu.Lock()
		kept = append(kept, m)
		mu.Unlock()
		arrived <- struct{}{}
	}
	s, p := openRaw(t, codec.Server, opts, rawConfig{})
	payload := func(r, i int) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("%02d-%d|", r, i)), 1+i*37)
	}
	for r := range rounds {
		var b []byte
		for i := range perRound {
			b = append(b, encodeFrame(frame{fin: true, op: ws.OpBinary, payload: payload(r, i)}, true)...)
		}
		if err := p.writeRaw(b); err != nil {
			t.Fatal(err)
		}
		// Each round is read after the last one's messages arrived: new
		// reads, new buffers from the pool, while the old messages live.
		for range perRound {
			<-arrived
		}
	}
	mu.Lock()
	ms := kept
	kept = nil
	mu.Unlock()
	for k, m := range ms {
		if want := payload(k/perRound, k%perRound); !bytes.Equal(m.Payload, want) {
			t.Fatalf("message %d changed while kept: %.40q..., want %.40q...", k, m.Payload, want)
		}
	}
	// Echo them from this goroutine: written from the read buffers, then
	// released by the session.
	go func() {
		for _, m := range ms {
			s.WriteMessage(&m, nil)
		}
	}()
	for k := range ms {
		f := p.mustRead(t)
		if want := payload(k/perRound, k%perRound); !bytes.Equal(f.payload, want) {
			t.Fatalf("echo %d: %.40q..., want %.40q...", k, f.payload, want)
		}
	}
}
