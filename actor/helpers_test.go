package actor

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// timeout bounds every wait in these tests: a wait that reaches it is a
// failure (a lost message, a stuck goroutine), never a way to let time pass.
const timeout = 10 * time.Second

// msg is a message for the script behavior: an id that the log records, and
// what Receive should do besides recording it.
type msg struct {
	id         string
	hold       bool   // block in Receive until the test calls release
	panics     bool   // panic in Receive
	flushPanic bool   // the next Flush panics
	flushExit  bool   // the next Flush calls runtime.Goexit
	flushDrain bool   // the next Flush drains, as cancel does
	goexit     bool   // call runtime.Goexit in Receive
	cancel     bool   // hand every undelivered normal message to Drain
	drainPanic string // with cancel: Drain's fn panics on this id
}

// script is a Behavior that records what the actor does to it, one word per
// call: the id of a received message, "F" for Flush, "P:value" for
// Panicked, "D:id" for a message that Drain handed over.
type script struct {
	a *Actor[msg]

	held    chan string // Receive of a hold message sends its id here
	release chan struct{}

	panickedPanics bool // Panicked panics too
	panickedExits  bool // Panicked calls runtime.Goexit

	flushPanic bool // only touched on the actor goroutine
	flushExit  bool
	flushDrain *msg

	mu     sync.Mutex
	log    []string
	panics []error
}

func newScript(capacity int) *script {
	s := &script{held: make(chan string), release: make(chan struct{})}
	s.a = New[msg](capacity, s)
	return s
}

func (s *script) record(w string) {
	s.mu.Lock()
	s.log = append(s.log, w)
	s.mu.Unlock()
}

func (s *script) Receive(m msg) {
	s.record(m.id)
	if m.hold {
		s.held <- m.id
		<-s.release
	}
	if m.flushPanic {
		s.flushPanic = true
	}
	if m.flushExit {
		s.flushExit = true
	}
	if m.flushDrain {
		s.flushDrain = &m
	}
	if m.cancel {
		s.drain(m)
	}
	if m.panics {
		panic("boom " + m.id)
	}
	if m.goexit {
		runtime.Goexit()
	}
}

func (s *script) Flush() {
	s.record("F")
	if s.flushPanic {
		s.flushPanic = false
		panic("flush")
	}
	if s.flushExit {
		s.flushExit = false
		runtime.Goexit()
	}
	if m := s.flushDrain; m != nil {
		s.flushDrain = nil
		s.drain(*m)
	}
}

// drain hands every undelivered normal message to the log, as a
// cancellation would answer them.
func (s *script) drain(m msg) {
	s.a.Drain(func(d msg) {
		s.record("D:" + d.id)
		if d.id == m.drainPanic {
			panic("drain " + d.id)
		}
	})
}

func (s *script) Panicked(err error) {
	s.mu.Lock()
	s.panics = append(s.panics, err)
	s.mu.Unlock()
	if pe, ok := err.(*PanicError); ok {
		s.record(fmt.Sprintf("P:%v", pe.Value))
	} else {
		s.record("P:?")
	}
	if s.panickedPanics {
		panic("in Panicked")
	}
	if s.panickedExits {
		runtime.Goexit()
	}
}

// words returns the log so far, space-separated.
func (s *script) words() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.log, " ")
}

func (s *script) panicErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.panics...)
}

// waitHeld waits until Receive is blocked on the hold message id.
func (s *script) waitHeld(t *testing.T, id string) {
	t.Helper()
	select {
	case got := <-s.held:
		if got != id {
			t.Fatalf("held on %q, want %q (log: %s)", got, id, s.words())
		}
	case <-time.After(timeout):
		t.Fatalf("Receive never held on %q (log: %s)", id, s.words())
	}
}

// unhold lets the held Receive return.
func (s *script) unhold(t *testing.T) {
	t.Helper()
	select {
	case s.release <- struct{}{}:
	case <-time.After(timeout):
		t.Fatalf("no Receive is held (log: %s)", s.words())
	}
}

// waitIdle waits until no goroutine is left beyond those in before: the
// actor has drained its mailbox and its goroutine has exited, and no outbox
// goroutine is left.
func waitIdle(t testing.TB, before goleak.Option) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := goleak.Find(before) // retries for a while on its own
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left running: %v", err)
		}
	}
}

// stepKind is what one step of a scripted scenario does.
type stepKind int

const (
	stepSend     stepKind = iota // Send on the normal lane; it must be accepted
	stepUrgent                   // SendUrgent
	stepWaitHeld                 // wait until Receive holds on the message id
	stepRelease                  // let the held Receive return
)

type step struct {
	kind stepKind
	m    msg
}

func send(id string) step          { return step{kind: stepSend, m: msg{id: id}} }
func sendMsg(m msg) step           { return step{kind: stepSend, m: m} }
func sendHeld(id string) step      { return step{kind: stepSend, m: msg{id: id, hold: true}} }
func urgent(id string) step        { return step{kind: stepUrgent, m: msg{id: id}} }
func urgentMsg(m msg) step         { return step{kind: stepUrgent, m: m} }
func waitHeld(id string) step      { return step{kind: stepWaitHeld, m: msg{id: id}} }
func release() step                { return step{kind: stepRelease} }
func cancel(id string) step        { return urgentMsg(msg{id: id, cancel: true}) }
func sendPanic(id string) step     { return sendMsg(msg{id: id, panics: true}) }
func sendHeldPanic(id string) step { return sendMsg(msg{id: id, hold: true, panics: true}) }

// play runs steps against s, then waits until the actor is idle.
func (s *script) play(t *testing.T, before goleak.Option, steps []step) {
	t.Helper()
	for _, st := range steps {
		switch st.kind {
		case stepSend:
			if !s.a.Send(st.m) {
				t.Fatalf("Send(%q) refused (log: %s)", st.m.id, s.words())
			}
		case stepUrgent:
			s.a.SendUrgent(st.m)
		case stepWaitHeld:
			s.waitHeld(t, st.m.id)
		case stepRelease:
			s.unhold(t)
		}
	}
	waitIdle(t, before)
}

// ids returns "prefix1 prefix2 ... prefixN".
func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i+1)
	}
	return out
}
