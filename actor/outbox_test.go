package actor

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestOutboxDirect(t *testing.T) {
	before := goleak.IgnoreCurrent()
	var o Outbox[int]
	ch := make(chan int, 4)
	for i := range 4 {
		o.Deliver(ch, i)
	}
	if p := o.Pending(); p != 0 {
		t.Errorf("Pending = %d, want 0", p)
	}
	// Delivered in the call: the values are in the channel now.
	for want := range 4 {
		select {
		case got := <-ch:
			if got != want {
				t.Fatalf("got %d, want %d", got, want)
			}
		default:
			t.Fatalf("reply %d is not in the channel after Deliver returned", want)
		}
	}
	if err := goleak.Find(before); err != nil {
		t.Errorf("the direct path started a goroutine: %v", err)
	}
}

func TestOutboxFull(t *testing.T) {
	tests := []struct {
		name     string
		capacity int // of the reply channel
		queued   int // replies delivered while the channel is full
	}{
		{
			name:     "unbuffered",
			capacity: 0,
			queued:   5,
		},
		{
			name:     "one slot",
			capacity: 1,
			queued:   1,
		},
		{
			name:     "eight slots",
			capacity: 8,
			queued:   100,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			var o Outbox[int]
			ch := make(chan int, tt.capacity)
			n := tt.capacity + tt.queued
			delivered := make(chan struct{})
			go func() {
				defer close(delivered)
				for i := range n {
					o.Deliver(ch, i)
				}
			}()
			// Nobody receives yet: Deliver must return all the same.
			wait(t, delivered, "Deliver to a full channel to return")
			if p := o.Pending(); p != tt.queued {
				t.Errorf("Pending = %d, want %d", p, tt.queued)
			}
			for want := range n {
				select {
				case got := <-ch:
					if got != want {
						t.Fatalf("got %d, want %d", got, want)
					}
				case <-time.After(timeout):
					t.Fatalf("reply %d never arrived", want)
				}
			}
			waitIdle(t, before) // the goroutine that handed them over is gone
			if p := o.Pending(); p != 0 {
				t.Errorf("Pending after the drain = %d, want 0", p)
			}
			// And the direct path works again.
			if tt.capacity > 0 {
				o.Deliver(ch, -1)
				select {
				case <-ch:
				default:
					t.Error("direct delivery after the queue drained did not happen")
				}
			}
		})
	}
}

// TestOutboxStuckCaller checks that a caller who stopped draining its
// channel delays only its own replies.
func TestOutboxStuckCaller(t *testing.T) {
	before := goleak.IgnoreCurrent()
	var o Outbox[int]
	stuck := make(chan int, 1)
	other := make(chan int, 1)
	o.Deliver(stuck, 1)
	o.Deliver(stuck, 2) // queued
	o.Deliver(stuck, 3) // queued
	o.Deliver(other, 10)
	select {
	case got := <-other:
		if got != 10 {
			t.Errorf("other got %d, want 10", got)
		}
	default:
		t.Error("a reply to a channel with room waits behind a stuck channel")
	}
	if p := o.Pending(); p != 2 {
		t.Errorf("Pending = %d, want 2", p)
	}
	for want := 1; want <= 3; want++ {
		select {
		case got := <-stuck:
			if got != want {
				t.Fatalf("stuck got %d, want %d", got, want)
			}
		case <-time.After(timeout):
			t.Fatalf("reply %d never arrived", want)
		}
	}
	waitIdle(t, before)
}

func TestOutboxManyChannels(t *testing.T) {
	const (
		channels = 64
		replies  = 50
	)
	before := goleak.IgnoreCurrent()
	var o Outbox[int]
	chs := make([]chan int, channels)
	for i := range chs {
		chs[i] = make(chan int, i%3) // unbuffered, 1 and 2 slots
	}
	// Every reply is delivered before any caller receives: most are queued.
	for r := range replies {
		for i, ch := range chs {
			o.Deliver(ch, i*replies+r)
		}
	}
	if o.Pending() == 0 {
		t.Fatal("Pending = 0 with full channels")
	}
	var wg sync.WaitGroup
	errs := make(chan error, channels)
	for i, ch := range chs {
		wg.Go(func() {
			for r := range replies {
				select {
				case got := <-ch:
					if want := i*replies + r; got != want {
						errs <- fmt.Errorf("channel %d: got %d, want %d", i, got, want)
						return
					}
				case <-time.After(timeout):
					errs <- fmt.Errorf("channel %d: reply %d never arrived", i, r)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitIdle(t, before)
	if p := o.Pending(); p != 0 {
		t.Errorf("Pending after the drain = %d, want 0", p)
	}
}

// TestOutboxOrderUnderRace delivers while the caller receives, so that the
// direct path and the queue take turns: the order must hold throughout.
func TestOutboxOrderUnderRace(t *testing.T) {
	tests := []struct {
		name     string
		capacity int
		replies  int
		channels int
	}{
		{
			name:     "one unbuffered channel",
			capacity: 0,
			replies:  5000,
			channels: 1,
		},
		{
			name:     "one channel with a slot",
			capacity: 1,
			replies:  20000,
			channels: 1,
		},
		{
			name:     "four channels",
			capacity: 2,
			replies:  5000,
			channels: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			var o Outbox[int]
			chs := make([]chan int, tt.channels)
			var wg sync.WaitGroup
			bad := make([]int, tt.channels)
			for i := range chs {
				chs[i] = make(chan int, tt.capacity)
				wg.Go(func() {
					for want := range tt.replies {
						if got := <-chs[i]; got != want {
							bad[i]++
						}
					}
				})
			}
			for r := range tt.replies {
				for _, ch := range chs {
					o.Deliver(ch, r)
				}
			}
			wg.Wait()
			for i, n := range bad {
				if n != 0 {
					t.Errorf("channel %d: %d replies out of order", i, n)
				}
			}
			waitIdle(t, before)
		})
	}
}

func TestReply(t *testing.T) {
	tests := []struct {
		name     string
		capacity int  // of the reply channel; -1 for a nil channel
		zero     bool // use the zero Reply instead of NewReply
		want     int  // replies that reach the channel
	}{
		{
			name:     "buffered channel",
			capacity: 1,
			want:     1,
		},
		{
			name:     "full channel: queued, then delivered once",
			capacity: 0,
			want:     1,
		},
		{
			name:     "nil channel discards",
			capacity: -1,
		},
		{
			name: "zero Reply discards",
			zero: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			var o Outbox[int]
			var ch chan int
			if tt.capacity >= 0 && !tt.zero {
				ch = make(chan int, tt.capacity)
			}
			var r Reply[int]
			if !tt.zero {
				r = NewReply[int](ch)
			}
			if r.Delivered() {
				t.Fatal("Delivered() = true before Deliver")
			}
			if !r.Deliver(&o, 1) {
				t.Fatal("first Deliver = false")
			}
			for i := range 3 {
				if r.Deliver(&o, 2+i) {
					t.Fatalf("Deliver #%d = true", i+2)
				}
			}
			if !r.Delivered() {
				t.Error("Delivered() = false after Deliver")
			}
			got := 0
			for range tt.want {
				select {
				case v := <-ch:
					if v != 1 {
						t.Errorf("got %d, want 1", v)
					}
					got++
				case <-time.After(timeout):
					t.Fatal("the reply never arrived")
				}
			}
			waitIdle(t, before)
			select {
			case v := <-ch:
				t.Errorf("a second reply %d arrived", v)
			default:
			}
			if p := o.Pending(); p != 0 {
				t.Errorf("Pending = %d, want 0", p)
			}
		})
	}
}

func TestOutboxNilChannel(t *testing.T) {
	before := goleak.IgnoreCurrent()
	var o Outbox[int]
	o.Deliver(nil, 1)
	if p := o.Pending(); p != 0 {
		t.Errorf("Pending = %d, want 0", p)
	}
	if err := goleak.Find(before); err != nil {
		t.Errorf("Deliver to a nil channel left a goroutine: %v", err)
	}
}

// TestOutboxConcurrentDeliver delivers from several goroutines into shared
// channels: each goroutine's replies keep their order, none is lost.
func TestOutboxConcurrentDeliver(t *testing.T) {
	const (
		senders  = 4
		channels = 3
		replies  = 3000
	)
	before := goleak.IgnoreCurrent()
	var o Outbox[[2]int] // sender, sequence
	chs := make([]chan [2]int, channels)
	bad := make([]int, channels)
	var recv sync.WaitGroup
	for i := range chs {
		chs[i] = make(chan [2]int, i) // unbuffered, 1 and 2 slots
		recv.Go(func() {
			next := make([]int, senders)
			for range senders * replies {
				v := <-chs[i]
				if v[1] != next[v[0]] {
					bad[i]++
				}
				next[v[0]] = v[1] + 1
			}
		})
	}
	var send sync.WaitGroup
	for s := range senders {
		send.Go(func() {
			for r := range replies {
				for _, ch := range chs {
					o.Deliver(ch, [2]int{s, r})
				}
			}
		})
	}
	send.Wait()
	recv.Wait()
	for i, n := range bad {
		if n != 0 {
			t.Errorf("channel %d: %d replies out of order", i, n)
		}
	}
	waitIdle(t, before)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending.Load() != 0 || o.waiting != nil {
		t.Errorf("idle outbox: pending %d, waiting %v; want 0 and no map", o.pending.Load(), o.waiting)
	}
}

// TestOutboxClosedChannel checks that a caller who closed its reply channel
// makes Deliver panic (in the actor, which contains it) without leaving the
// outbox locked for the replies to everyone else.
// A channel closed by mistake loses its replies, counted, and nothing
// panics. (The backlog's goroutine, blocked on a channel that is then
// closed, is in norace_test.go: the race detector reports a close that
// races with a send, which is the caller's mistake made loud.)
func TestOutboxClosedChannel(t *testing.T) {
	var o Outbox[int]
	closed := make(chan int, 1)
	close(closed)
	o.Deliver(closed, 1)
	if d := o.Dropped(); d != 1 {
		t.Errorf("Dropped = %d after a Deliver to a closed channel, want 1", d)
	}

	ok := make(chan int, 1)
	o.Deliver(ok, 4)
	if got := <-ok; got != 4 {
		t.Errorf("got %d, want 4", got)
	}
}
