package actor

import (
	"sync"
	"sync/atomic"
)

// Outbox delivers an actor's replies to channels that belong to its callers,
// without ever blocking the actor and without dropping a reply. A reply goes
// straight into its channel when the channel has room and no earlier reply
// to the same channel is still waiting; otherwise it waits in the outbox,
// and a goroutine of that channel's own, started for as long as replies to
// it wait, hands them over in order. A caller that drains its channel late
// delays only its own replies; replies to every other channel go on.
//
// Replies to one channel arrive in the order of the Deliver calls. A caller
// must receive every reply it asked for: one that never does keeps the
// goroutine and the replies waiting for it alive (Pending counts them, so
// that the owner can refuse new work to such a caller). A channel closed
// while replies to it are due is contained: those replies are dropped and
// counted by Dropped, and nothing panics. Deliver is safe for concurrent
// use; the order holds among the calls of one goroutine (the actor's). The
// zero Outbox is ready.
type Outbox[T any] struct {
	mu      sync.Mutex
	waiting map[chan<- T]*backlog[T] // channels with replies waiting
	pending atomic.Int64
	dropped atomic.Uint64
}

// backlog holds the replies waiting for one channel; its goroutine runs
// flush.
type backlog[T any] struct {
	o    *Outbox[T]
	ch   chan<- T
	vals []T
}

// trySend sends v on ch if it has room. closed reports a channel that was
// closed: the send panicked, and v was not delivered.
func trySend[T any](ch chan<- T, v T) (sent, closed bool) {
	defer func() {
		if recover() != nil {
			sent, closed = false, true
		}
	}()
	select {
	case ch <- v:
		return true, false
	default:
		return false, false
	}
}

// sendWait sends v on ch, waiting as long as it takes. It reports false for a
// channel that was closed.
func sendWait[T any](ch chan<- T, v T) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	ch <- v
	return true
}

// Deliver hands v to ch, now or later, exactly once, and never blocks. A nil
// ch discards v. A closed ch drops v (counted by Dropped).
func (o *Outbox[T]) Deliver(ch chan<- T, v T) {
	if ch == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.waiting) != 0 {
		if b := o.waiting[ch]; b != nil {
			b.vals = append(b.vals, v)
			o.pending.Add(1)
			return
		}
	}
	switch sent, closed := trySend(ch, v); {
	case sent:
		return
	case closed:
		o.dropped.Add(1)
		return
	}
	b := &backlog[T]{o: o, ch: ch, vals: []T{v}}
	if o.waiting == nil {
		o.waiting = make(map[chan<- T]*backlog[T])
	}
	o.waiting[ch] = b
	o.pending.Add(1)
	go b.flush()
}

// Drop counts a reply that its owner chose not to deliver.
func (o *Outbox[T]) Drop() { o.dropped.Add(1) }

// Pending returns the number of replies waiting for their channels.
func (o *Outbox[T]) Pending() int { return int(o.pending.Load()) }

// Dropped returns the number of replies dropped: their channel had been
// closed, or Drop counted them.
func (o *Outbox[T]) Dropped() uint64 { return o.dropped.Load() }

// flush hands b's replies to b.ch in order, blocking on the channel as long
// as it takes, and retires b when none is left. A closed channel drops what
// waits for it.
func (b *backlog[T]) flush() {
	o := b.o
	var vals []T
	for {
		o.mu.Lock()
		if len(b.vals) == 0 {
			delete(o.waiting, b.ch)
			if len(o.waiting) == 0 {
				o.waiting = nil // an idle outbox holds no map
			}
			o.mu.Unlock()
			return
		}
		vals, b.vals = b.vals, vals[:0]
		o.mu.Unlock()
		for i := range vals {
			if !sendWait(b.ch, vals[i]) {
				o.dropped.Add(1)
			}
			var zero T
			vals[i] = zero
			o.pending.Add(-1)
		}
	}
}

// Reply is the destination of one answer: Deliver sends it exactly once,
// and every later call reports false and sends nothing. It is a value to
// keep inside the record of a pending request; use it through a pointer.
type Reply[T any] struct {
	ch   chan<- T
	done bool
}

// NewReply returns a Reply that answers on ch. A nil ch makes a Reply
// whose answer is discarded (the caller asked for none).
func NewReply[T any](ch chan<- T) Reply[T] { return Reply[T]{ch: ch} }

// Deliver sends v through o, the first time only, and reports whether this
// call was the one.
func (r *Reply[T]) Deliver(o *Outbox[T], v T) bool {
	if r.done {
		return false
	}
	r.done = true
	if r.ch != nil {
		o.Deliver(r.ch, v)
	}
	return true
}

// Delivered reports whether Deliver was called.
func (r *Reply[T]) Delivered() bool { return r.done }
