package actor

import "sync"

// Outbox delivers an actor's replies to channels that belong to its callers,
// without ever blocking the actor. A reply goes straight into its channel
// when the channel has room and nothing is queued before it; otherwise it
// waits in the outbox, and one goroutine, started for as long as the queue
// is not empty, hands the queued replies over in order. A caller that
// drains its channel late delays only its own replies and those queued
// behind them; the actor goes on.
//
// Deliver must be called from one goroutine at a time (the actor's): that is
// what keeps the replies in order. The zero Outbox is ready.
type Outbox[T any] struct {
	mu       sync.Mutex
	queue    []envelope[T]
	spare    []envelope[T]
	flushing bool
	flushFn  func()
}

type envelope[T any] struct {
	ch chan<- T
	v  T
}

// Deliver hands v to ch, now or later, exactly once, and never blocks.
func (o *Outbox[T]) Deliver(ch chan<- T, v T) {
	o.mu.Lock()
	if !o.flushing {
		select {
		case ch <- v:
			o.mu.Unlock()
			return
		default:
		}
		o.flushing = true
		if o.flushFn == nil {
			o.flushFn = o.flush
		}
		o.queue = append(o.queue, envelope[T]{ch, v})
		o.mu.Unlock()
		go o.flushFn()
		return
	}
	o.queue = append(o.queue, envelope[T]{ch, v})
	o.mu.Unlock()
}

// Pending returns the number of replies waiting for their channels.
func (o *Outbox[T]) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queue)
}

func (o *Outbox[T]) flush() {
	for {
		o.mu.Lock()
		if len(o.queue) == 0 {
			o.flushing = false
			o.mu.Unlock()
			return
		}
		q := o.queue
		o.queue = o.spare[:0]
		o.spare = nil
		o.mu.Unlock()
		for i := range q {
			q[i].ch <- q[i].v
			q[i] = envelope[T]{}
		}
		o.mu.Lock()
		if o.spare == nil {
			o.spare = q[:0]
		}
		o.mu.Unlock()
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
