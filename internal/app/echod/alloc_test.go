package echod

import (
	"bytes"
	"io"
	"testing"

	"github.com/gobwas/ws"
)

// TestEchoAllocs: echoing allocates nothing in steady state. The client is
// a raw connection with a frame encoded once and a fixed read buffer, so
// every allocation counted is the daemon's.
func TestEchoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	_, addr := start(t, Config{})
	r := rawUpgrade(t, addr, "/")
	payload := bytes.Repeat([]byte("e"), 64)
	frame := clientFrame(true, ws.OpBinary, payload)
	echoed := make([]byte, 2+len(payload)) // a 2-byte header for 64 bytes
	roundTrip := func() {
		r.write(frame)
		if _, err := io.ReadFull(r.br, echoed); err != nil {
			t.Fatalf("read echo: %v", err)
		}
	}
	for range 1000 {
		roundTrip() // warm the pools
	}
	allocs := testing.AllocsPerRun(2000, roundTrip)
	t.Logf("%.3f allocations per echo", allocs)
	if !bytes.Equal(echoed[2:], payload) {
		t.Fatalf("echo %q", echoed)
	}
	if allocs >= 0.1 {
		// Measured: 4 per echo of 64 bytes, all in package session: three
		// pbytes.Put calls (after the EAGAIN read, after the read, after
		// the echo's write; gobwas/pool boxes the slice in an interface,
		// 24 B each) and reader.grow's 64-byte message buffer, below the
		// sizes pbytes pools (128 B and up).
		t.Errorf("%.3f allocations per echo, want none (the design: no allocation per message in steady state)", allocs)
	}
}
