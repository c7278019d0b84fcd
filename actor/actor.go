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
	// Panicked runs after Receive or Flush panicked (or called
	// runtime.Goexit), with a *PanicError; the actor is stopped with that
	// error first. The actor goes on delivering messages afterwards, the
	// rest of the interrupted set and then a Flush included, so that the
	// behavior can answer every one of them (typically with an error). A
	// panic in Panicked is contained and dropped.
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
	held     bool         // Hold: Send queues without starting a goroutine
	nUrgent  atomic.Int32 // len(urgent), readable without the lock

	handoff chan struct{} // a RunHeld waiting for the running goroutine to hand over

	// Touched only by the goroutine that runs the actor; one hands them to
	// the next through mu (or through the go statement).
	cur   []T // the normal messages taken for the current set
	pos   int // next message of cur to deliver
	curU  []T // the urgent messages taken for delivery
	posU  int
	inSet bool // a set is being delivered; its Flush has not begun
	peak  int  // the largest set taken since the actor last went idle
	quiet int  // busy spells in a row whose sets all fit in idleKeep

	inPanicked bool   // Panicked is running
	goexit     []byte // the stack of a runtime.Goexit in the behavior, to report

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
	a := &Actor[T]{capacity: capacity, behavior: b}
	a.runFn = a.run // one method value, so that scheduling allocates nothing
	return a
}

// Send queues m on the normal lane without blocking. It reports false, and
// queues nothing, when the lane holds capacity messages.
func (a *Actor[T]) Send(m T) bool { return a.send(m, false) }

// SendNow is Send for a caller who may wait for what m does: it also ends
// a Hold (as Kick does), so that the actor runs without waiting for the
// holder's RunHeld.
func (a *Actor[T]) SendNow(m T) bool { return a.send(m, true) }

func (a *Actor[T]) send(m T, now bool) bool {
	a.mu.Lock()
	if len(a.normal) >= a.capacity {
		a.mu.Unlock()
		return false
	}
	a.normal = append(a.normal, m)
	if now {
		a.held = false
	}
	if !a.held {
		a.scheduleLocked()
	}
	a.mu.Unlock()
	return true
}

// Merge offers m to the last message waiting in the normal lane (not yet
// taken by the actor), as SendMerge does, and reports whether merge folded
// it in; when not, nothing is queued.
func (a *Actor[T]) Merge(m T, merge func(tail *T, m T) bool) bool {
	a.mu.Lock()
	n := len(a.normal)
	merged := n > 0 && merge(&a.normal[n-1], m)
	a.mu.Unlock()
	return merged
}

// SendMerge is Send that first offers m to the last message waiting in
// the normal lane (not yet taken by the actor): when merge(tail, m)
// reports true, it has folded m into *tail and nothing more is queued.
// merged reports that; ok is false when m was neither merged nor queued
// (the lane is full). When m is queued on its own, queued (if not nil) is
// called with it first, before the actor can take it: where a reference
// that m carries is counted. merge and queued run under the mailbox's
// lock: they must be quick and must not call the actor.
func (a *Actor[T]) SendMerge(m T, merge func(tail *T, m T) bool, queued func(m T)) (merged, ok bool) {
	a.mu.Lock()
	if n := len(a.normal); n > 0 && merge(&a.normal[n-1], m) {
		a.mu.Unlock()
		return true, true
	}
	if len(a.normal) >= a.capacity {
		a.mu.Unlock()
		return false, false
	}
	if queued != nil {
		queued(m)
	}
	a.normal = append(a.normal, m)
	if !a.held {
		a.scheduleLocked()
	}
	a.mu.Unlock()
	return false, true
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
// rest of the current set and what waits in the lane) to fn instead of to
// Receive, in order. Call it only from the behavior, on the actor's
// goroutine: it is how a cancellation answers everything queued. If fn
// panics, the messages it has not been handed yet go to Receive after
// Panicked, so that none is lost.
func (a *Actor[T]) Drain(fn func(T)) {
	a.mu.Lock()
	if len(a.normal) > 0 {
		if a.pos == len(a.cur) {
			// The set is done: the lane becomes its rest.
			a.retireCurLocked()
			a.cur, a.normal = a.normal, a.spareN[:0]
			a.spareN = nil
		} else {
			// Into the set, so that a panic in fn leaves the messages where
			// the run loop takes them up again.
			a.cur = append(a.cur, a.normal...)
			clear(a.normal)
			a.normal = a.normal[:0]
		}
	}
	a.mu.Unlock()
	// Called from Flush or Panicked, Drain is outside a set: make it one for
	// as long as fn runs, so that after a panic in fn the run loop delivers
	// the rest instead of dropping it.
	inSet := a.inSet
	a.inSet = true
	for a.pos < len(a.cur) {
		m := take(a.cur, &a.pos)
		fn(m)
	}
	a.inSet = inSet
}

// Hold makes Send queue without starting the actor's goroutine, until
// RunHeld. A caller that is about to produce a burst of messages (a reader
// handing a whole socket read to a handler that answers each message) holds
// the actor, then runs it once on its own goroutine: one set, one Flush, no
// goroutine started and no stack grown per burst. SendUrgent still starts
// the goroutine at once. While the actor is held, nothing that the caller
// does may wait for the actor to act: that is what Kick is for.
func (a *Actor[T]) Hold() {
	a.mu.Lock()
	a.held = true
	a.mu.Unlock()
}

// Kick ends a Hold early and starts the actor's goroutine if it has
// messages: for a caller that holds the actor and must now wait for it.
func (a *Actor[T]) Kick() {
	a.mu.Lock()
	a.held = false
	if len(a.normal) > 0 || len(a.urgent) > 0 {
		a.scheduleLocked()
	}
	a.mu.Unlock()
}

// RunHeld ends a Hold. If the actor has messages, it runs on the calling
// goroutine, for at most sets drained sets (then a goroutine of its own
// takes over), and RunHeld reports true. When another goroutine is running
// the actor, RunHeld first waits for it to finish its set and hand the
// actor over, with or without messages waiting: a caller that produces messages cannot outrun the actor (a
// reader whose answers wait behind a blocked write stops reading). Only
// one goroutine may wait in RunHeld at a time; another reports false.
func (a *Actor[T]) RunHeld(sets int) bool {
	a.mu.Lock()
	a.held = false
	// A running actor is waited for even with empty lanes: the set it is
	// delivering may hold the caller's messages (Kick started it), and
	// the caller must not outrun it.
	if !a.running && len(a.normal) == 0 && len(a.urgent) == 0 || a.running && a.handoff != nil {
		a.mu.Unlock()
		return false
	}
	if a.running {
		ch := make(chan struct{})
		a.handoff = ch
		a.mu.Unlock()
		<-ch // the actor is ours, still marked running
	} else {
		a.running = true
		a.mu.Unlock()
	}
	a.runInline(sets)
	return true
}

// runInline is run on the caller's goroutine, bounded.
func (a *Actor[T]) runInline(sets int) {
	returned := false
	defer func() {
		if !returned {
			// A Goexit in the behavior ends the caller's goroutine too;
			// the actor carries on in one of its own, as run does.
			if a.inPanicked {
				a.inPanicked = false
			} else {
				a.goexit = debug.Stack()
			}
			go a.runFn()
		}
	}()
	for i := 0; ; i++ {
		if i == sets {
			go a.runFn() // still marked running: the goroutine continues
			break
		}
		if !a.drain() {
			break
		}
	}
	returned = true
}

func (a *Actor[T]) run() {
	returned := false
	defer func() {
		if returned {
			return
		}
		// runtime.Goexit in the behavior. It is no panic, so drain's recover
		// saw nothing, and the actor would stay marked running with no
		// goroutine, deaf to every later message. Carry on in a new
		// goroutine, which reports it, unless it came from Panicked.
		if a.inPanicked {
			a.inPanicked = false
		} else {
			a.goexit = debug.Stack()
		}
		go a.runFn()
	}()
	for a.drain() {
	}
	returned = true
}

// errGoexit is the Value of the PanicError that reports a runtime.Goexit
// in the behavior.
var errGoexit = errors.New("actor: runtime.Goexit called by the behavior")

// drain delivers one set of ready messages and reports whether the actor
// should look again; false means it went idle, or went to a RunHeld that
// waits for it, and its goroutine must exit.
func (a *Actor[T]) drain() (more bool) {
	defer func() {
		if v := recover(); v != nil {
			a.panicked(&PanicError{Value: v, Stack: debug.Stack()})
			more = true
		}
	}()
	if a.goexit != nil {
		stack := a.goexit
		a.goexit = nil
		a.panicked(&PanicError{Value: errGoexit, Stack: stack})
	}
	if !a.inSet {
		a.mu.Lock()
		if a.handoff != nil {
			// RunHeld waits for the actor: it goes on on that goroutine.
			close(a.handoff)
			a.handoff = nil
			a.mu.Unlock()
			return false
		}
		if len(a.normal) == 0 && len(a.urgent) == 0 {
			a.running = false
			a.retireCurLocked()
			a.idleLocked()
			a.mu.Unlock()
			return false
		}
		a.retireCurLocked()
		a.cur, a.normal = a.normal, a.spareN[:0]
		a.spareN = nil
		a.peak = max(a.peak, len(a.cur))
		a.inSet = true
		a.mu.Unlock()
	}
	// Also where a set interrupted by a panic goes on: the messages after
	// the one that panicked are delivered, and the set still ends in Flush.
	a.deliverUrgent()
	a.deliverCur()
	a.inSet = false
	a.behavior.Flush()
	return true
}

// take returns s[*i], clears it (a delivered message is not kept alive by
// the buffer) and advances *i.
func take[T any](s []T, i *int) T {
	m := s[*i]
	var zero T
	s[*i] = zero
	*i++
	return m
}

func (a *Actor[T]) deliverCur() {
	for a.pos < len(a.cur) {
		if a.nUrgent.Load() != 0 {
			a.deliverUrgent()
			continue
		}
		m := take(a.cur, &a.pos)
		a.behavior.Receive(m)
	}
	a.mu.Lock()
	a.retireCurLocked()
	a.mu.Unlock()
}

// An idle actor should cost its struct, not the peak of its last burst; but
// dropping the lanes' buffers every time it goes idle would make a busy one
// grow them again and again. So the buffers are dropped after quietSpells
// busy spells in a row whose sets all held at most idleKeep messages: the
// few messages that wake a quiet session (keep-alive pings) shrink it.
const (
	idleKeep    = 4
	quietSpells = 4
)

// idleLocked runs as the actor goes idle.
func (a *Actor[T]) idleLocked() {
	if a.peak > idleKeep {
		a.quiet = 0
	} else if a.quiet < quietSpells {
		a.quiet++
	}
	a.peak = 0
	if a.quiet < quietSpells {
		return
	}
	if cap(a.normal) > idleKeep {
		a.normal = nil
	}
	if cap(a.spareN) > idleKeep {
		a.spareN = nil
	}
	if cap(a.urgent) > idleKeep {
		a.urgent = nil
	}
	if cap(a.spareU) > idleKeep {
		a.spareU = nil
	}
}

// retireCurLocked keeps the buffer of a delivered set for the lane to reuse.
func (a *Actor[T]) retireCurLocked() {
	if a.spareN == nil && a.cur != nil {
		a.spareN = a.cur[:0]
	}
	a.cur, a.pos = nil, 0
}

func (a *Actor[T]) deliverUrgent() {
	for {
		for a.posU < len(a.curU) {
			m := take(a.curU, &a.posU)
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
		a.peak = max(a.peak, len(a.curU))
		a.urgent = a.spareU[:0]
		a.spareU = nil
		a.nUrgent.Store(0)
		a.mu.Unlock()
	}
}

func (a *Actor[T]) panicked(err *PanicError) {
	a.Stop(err)
	a.inPanicked = true
	defer func() {
		// A behavior that panics in Panicked too. After a runtime.Goexit,
		// inPanicked stays set for run to see.
		if recover() != nil {
			a.inPanicked = false
		}
	}()
	a.behavior.Panicked(err)
	a.inPanicked = false
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
	if a.done == nil {
		a.done = closedChan
	} else {
		close(a.done)
	}
	return true
}

// closedChan is every Done channel asked for after Stop.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// ErrStopped is the terminal error of an actor stopped without a reason.
var ErrStopped = errors.New("actor: stopped")

// Done is closed when the actor is stopped. The channel is made on the
// first call: an actor nobody waits for costs no channel.
func (a *Actor[T]) Done() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done == nil {
		a.done = make(chan struct{})
	}
	return a.done
}

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
