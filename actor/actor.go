package actor

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Behavior is what an actor does with its messages. Every method runs on the
// actor's goroutine, one call at a time, so the state it touches needs no
// lock.
type Behavior[T any] interface {
	// Receive handles one message.
	Receive(msg T)
	// Flush runs after each drained set of messages, before the actor looks
	// for more: the place to act on a batch (one vectored write for all the
	// frames the messages produced).
	Flush()
	// Panicked runs after Receive or Flush panicked, with a *PanicError.
	// The actor goes on delivering messages afterwards, so that the
	// behavior can answer every one of them (typically with an error).
	Panicked(err error)
}

// PanicError is a panic contained by the run loop.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("actor: panic: %v", e.Value) }

// Actor is a mailbox and the goroutine that drains it. Create one with New.
type Actor[T any] struct {
	mu       sync.Mutex
	normal   []T // bounded lane, in order of acceptance
	urgent   []T // unbounded lane, drained before the normal one
	spareN   []T
	spareU   []T
	capacity int
	running  bool
	nUrgent  atomic.Int32 // len(urgent), readable without the lock

	cur  []T // the normal messages taken for the current drain
	pos  int // next message of cur to deliver
	curU []T // the urgent messages taken for delivery
	posU int

	behavior Behavior[T]
	runFn    func()

	done    chan struct{}
	stopped atomic.Bool
	err     error
}

// New returns an actor whose normal lane holds at most capacity messages
// (at least 1). b receives its messages.
func New[T any](capacity int, b Behavior[T]) *Actor[T] {
	if capacity < 1 {
		capacity = 1
	}
	a := &Actor[T]{capacity: capacity, behavior: b, done: make(chan struct{})}
	a.runFn = a.run // one method value, so that scheduling allocates nothing
	return a
}

// Send queues m on the normal lane without blocking. It reports false, and
// queues nothing, when the lane holds capacity messages.
func (a *Actor[T]) Send(m T) bool {
	a.mu.Lock()
	if len(a.normal) >= a.capacity {
		a.mu.Unlock()
		return false
	}
	a.normal = append(a.normal, m)
	a.scheduleLocked()
	a.mu.Unlock()
	return true
}

// SendUrgent queues m on the urgent lane, which has no bound and is drained
// before the normal lane, also in the middle of a drain.
func (a *Actor[T]) SendUrgent(m T) {
	a.mu.Lock()
	a.urgent = append(a.urgent, m)
	a.nUrgent.Store(int32(len(a.urgent)))
	a.scheduleLocked()
	a.mu.Unlock()
}

func (a *Actor[T]) scheduleLocked() {
	if !a.running {
		a.running = true
		go a.runFn()
	}
}

// Len returns the number of messages waiting in the normal lane.
func (a *Actor[T]) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.normal)
}

// Drain passes every normal message that has not been delivered yet (the
// rest of the current drain and what waits in the lane) to fn instead of to
// Receive, in order. Call it only from the behavior, on the actor's
// goroutine: it is how a cancellation answers everything queued.
func (a *Actor[T]) Drain(fn func(T)) {
	for a.pos < len(a.cur) {
		m := a.cur[a.pos]
		var zero T
		a.cur[a.pos] = zero
		a.pos++
		fn(m)
	}
	a.mu.Lock()
	rest := a.normal
	a.normal = a.spareN[:0]
	a.spareN = nil
	a.mu.Unlock()
	for i, m := range rest {
		var zero T
		rest[i] = zero
		fn(m)
	}
	a.mu.Lock()
	if a.spareN == nil {
		a.spareN = rest[:0]
	}
	a.mu.Unlock()
}

func (a *Actor[T]) run() {
	for a.drain() {
	}
}

// drain delivers one set of ready messages and reports whether the actor
// should look again; false means it went idle and its goroutine must exit.
func (a *Actor[T]) drain() (more bool) {
	defer func() {
		if v := recover(); v != nil {
			a.panicked(v)
			more = true
		}
	}()
	if a.pos < len(a.cur) || a.posU < len(a.curU) {
		// A panic interrupted the last drain: deliver its remaining messages.
		a.deliverUrgent()
		a.deliverCur()
		a.behavior.Flush()
		return true
	}
	a.mu.Lock()
	if len(a.normal) == 0 && len(a.urgent) == 0 {
		a.running = false
		a.mu.Unlock()
		return false
	}
	a.cur, a.normal = a.normal, a.spareN[:0]
	a.spareN = nil
	a.pos = 0
	a.mu.Unlock()

	a.deliverUrgent()
	a.deliverCur()
	a.behavior.Flush()
	return true
}

func (a *Actor[T]) deliverCur() {
	for a.pos < len(a.cur) {
		if a.nUrgent.Load() != 0 {
			a.deliverUrgent()
			continue
		}
		m := a.cur[a.pos]
		var zero T
		a.cur[a.pos] = zero
		a.pos++
		a.behavior.Receive(m)
	}
	a.mu.Lock()
	if a.spareN == nil {
		a.spareN = a.cur[:0]
	}
	a.cur, a.pos = nil, 0
	a.mu.Unlock()
}

func (a *Actor[T]) deliverUrgent() {
	for {
		for a.posU < len(a.curU) {
			m := a.curU[a.posU]
			var zero T
			a.curU[a.posU] = zero
			a.posU++
			a.behavior.Receive(m)
		}
		a.mu.Lock()
		if a.curU != nil && a.spareU == nil {
			a.spareU = a.curU[:0]
		}
		a.curU, a.posU = nil, 0
		if len(a.urgent) == 0 {
			a.mu.Unlock()
			return
		}
		a.curU = a.urgent
		a.urgent = a.spareU[:0]
		a.spareU = nil
		a.nUrgent.Store(0)
		a.mu.Unlock()
	}
}

func (a *Actor[T]) panicked(v any) {
	err := &PanicError{Value: v, Stack: debug.Stack()}
	a.Stop(err)
	func() {
		defer func() { _ = recover() }() // a behavior that panics in Panicked too
		a.behavior.Panicked(err)
	}()
}

// Stop ends the actor's life with err (ErrStopped when nil): Done is closed
// and Err returns err. Only the first call counts; it reports whether it
// was that one. Messages are still delivered afterwards, so that the
// behavior can answer them.
func (a *Actor[T]) Stop(err error) bool {
	if err == nil {
		err = ErrStopped
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped.Load() {
		return false
	}
	a.err = err
	a.stopped.Store(true)
	close(a.done)
	return true
}

// ErrStopped is the terminal error of an actor stopped without a reason.
var ErrStopped = errors.New("actor: stopped")

// Done is closed when the actor is stopped.
func (a *Actor[T]) Done() <-chan struct{} { return a.done }

// Stopped reports whether Stop was called.
func (a *Actor[T]) Stopped() bool { return a.stopped.Load() }

// Err returns the terminal error, or nil while the actor lives.
func (a *Actor[T]) Err() error {
	if !a.stopped.Load() {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}
