package session

import (
	"fmt"
	"testing"

	"github.com/gobwas/ws"
)

// A peer that floods pings while it reads nothing must not grow the
// session's memory without bound: beyond maxQueuedPongs waiting pongs only
// the latest ping is kept, and it is answered once the others are out.
func TestPingFloodKeepsOnlyTheLatest(t *testing.T) {
	s, p := acceptRaw(t, testOptions(), rawConfig{readBuffer: 4096})
	reply := make(chan Completion, 1)
	_, big := blockWriter(t, s, p, reply)
	const pings = 2000
	for i := 0; i < pings; i++ {
		p.mustWrite(t, frame{fin: true, op: ws.OpPing, payload: []byte(fmt.Sprintf("p%d", i))})
	}
	// The last ping has been read by the session once a message written
	// after it is delivered.
	p.mustWrite(t, textFrame("after the pings"))
	m := <-s.Messages()
	m.Release()
	if n := s.pongs.Load(); n > maxQueuedPongs {
		t.Fatalf("%d pongs queued, bound %d", n, maxQueuedPongs)
	}
	finishBigWrite(t, p, big)
	if c := await(t, reply); c.Err != nil {
		t.Fatal(c.Err)
	}
	var got []string
	for len(got) == 0 || got[len(got)-1] != fmt.Sprintf("p%d", pings-1) {
		f := p.mustRead(t)
		if f.op != ws.OpPong {
			t.Fatalf("got %v, want pongs", f)
		}
		got = append(got, string(f.payload))
		if len(got) > pings {
			t.Fatal("more pongs than pings")
		}
	}
	if len(got) >= pings {
		t.Fatalf("%d pongs for %d pings: nothing was coalesced", len(got), pings)
	}
	for i, g := range got[:len(got)-1] {
		if want := fmt.Sprintf("p%d", i); g != want {
			t.Fatalf("pong %d = %q, want %q (queued pongs answer in order)", i, g, want)
		}
	}
	endSession(t, s)
}
