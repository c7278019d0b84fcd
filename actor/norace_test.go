//go:build !race

package actor

import (
	"testing"
	"time"
)

// The goroutine that drains a backlog into a channel closed while it waits
// drops what waits, counts it, and ends: the process goes on.
func TestOutboxClosedWhileWaiting(t *testing.T) {
	var o Outbox[int]
	full := make(chan int) // unbuffered, nobody receives: the replies wait
	o.Deliver(full, 1)
	o.Deliver(full, 2)
	if p := o.Pending(); p != 2 {
		t.Fatalf("Pending = %d, want 2", p)
	}
	close(full) // the backlog's goroutine is blocked sending to it
	deadline := time.Now().Add(10 * time.Second)
	for o.Pending() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Pending = %d 10 s after the channel was closed", o.Pending())
		}
		time.Sleep(time.Millisecond)
	}
	if d := o.Dropped(); d != 2 {
		t.Errorf("Dropped = %d, want 2", d)
	}
}
