package actor

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestOrder(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  string
	}{
		{
			name:  "normal lane keeps the order of one sender",
			steps: join(sendHeld("b"), waitHeld("b"), sends(ids("n", 5)), release()),
			want:  "b F n1 n2 n3 n4 n5 F",
		},
		{
			name: "urgent overtakes queued normal messages",
			steps: join(
				sendHeld("b"), waitHeld("b"),
				send("n1"), send("n2"), urgent("u1"), urgent("u2"),
				release(),
			),
			want: "b F u1 u2 n1 n2 F",
		},
		{
			name: "urgent in the middle of a drain",
			steps: join(
				sendHeld("b"), waitHeld("b"),
				send("n1"), sendHeld("n2"), send("n3"), send("n4"),
				release(), waitHeld("n2"),
				urgent("u1"), send("n5"),
				release(),
			),
			want: "b F n1 n2 u1 n3 n4 F n5 F",
		},
		{
			name: "urgent sent while an urgent one is held",
			steps: join(
				urgentMsg(msg{id: "u0", hold: true}), waitHeld("u0"),
				send("n1"), urgent("u1"), urgent("u2"),
				release(),
			),
			want: "u0 u1 u2 F n1 F",
		},
		{
			name: "urgent lane keeps its order",
			steps: join(
				sendHeld("b"), waitHeld("b"),
				urgents(ids("u", 5)),
				release(),
			),
			want: "b F u1 u2 u3 u4 u5 F",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			s := newScript(16)
			s.play(t, before, tt.steps)
			if got := s.words(); got != tt.want {
				t.Errorf("log:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestSendOrder sends many messages from one goroutine through a small lane
// and checks that Receive sees them in the order they were accepted.
func TestSendOrder(t *testing.T) {
	const n = 20000
	done := make(chan struct{})
	next := 0
	var bad atomic.Int64
	a := New[int](8, &funcs[int]{receive: func(m int) {
		if m != next {
			bad.Add(1)
		}
		next = m + 1
		if next == n {
			close(done)
		}
	}})
	refused := 0
	for i := 0; i < n; i++ {
		for !a.Send(i) {
			refused++
			runtime.Gosched()
		}
	}
	wait(t, done, "the last message")
	if bad.Load() != 0 {
		t.Errorf("%d messages out of order", bad.Load())
	}
	t.Logf("%d sends refused on a full lane", refused)
}

func TestCapacity(t *testing.T) {
	tests := []struct {
		name     string
		capacity int
		want     int // messages the lane holds
	}{
		{
			name:     "one",
			capacity: 1,
			want:     1,
		},
		{
			name:     "three",
			capacity: 3,
			want:     3,
		},
		{
			name:     "sixty-four",
			capacity: 64,
			want:     64,
		},
		{
			name:     "zero means one",
			capacity: 0,
			want:     1,
		},
		{
			name:     "negative means one",
			capacity: -7,
			want:     1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			s := newScript(tt.capacity)
			// The held message has left the lane: the lane is empty.
			s.play(t, before, nil) // idle to start with
			if !s.a.Send(msg{id: "b", hold: true}) {
				t.Fatal("Send to an empty actor refused")
			}
			s.waitHeld(t, "b")
			for _, id := range ids("n", tt.want) {
				if !s.a.Send(msg{id: id}) {
					t.Fatalf("Send(%s) refused with %d queued", id, s.a.Len())
				}
			}
			if got := s.a.Len(); got != tt.want {
				t.Errorf("Len = %d, want %d", got, tt.want)
			}
			for range 3 {
				if s.a.Send(msg{id: "refused"}) {
					t.Fatal("Send to a full lane accepted")
				}
			}
			if got := s.a.Len(); got != tt.want {
				t.Errorf("Len after refused sends = %d, want %d", got, tt.want)
			}
			for _, id := range ids("u", 3) {
				s.a.SendUrgent(msg{id: id})
			}
			if got := s.a.Len(); got != tt.want {
				t.Errorf("Len after urgent sends = %d, want %d", got, tt.want)
			}
			s.unhold(t)
			waitIdle(t, before)
			want := "b F u1 u2 u3 " + strings.Join(ids("n", tt.want), " ") + " F"
			if got := s.words(); got != want {
				t.Errorf("log:\n got %s\nwant %s", got, want)
			}
			if s.a.Len() != 0 {
				t.Errorf("Len after the drain = %d, want 0", s.a.Len())
			}
		})
	}
}

func TestScheduling(t *testing.T) {
	before := goleak.IgnoreCurrent()
	s := newScript(4)
	// New starts nothing: Find returns at once when nothing is running.
	if err := goleak.Find(before); err != nil {
		t.Fatalf("New started a goroutine: %v", err)
	}
	var want []string
	for round := range 5 {
		id := fmt.Sprintf("r%d", round+1)
		if !s.a.Send(msg{id: id}) {
			t.Fatalf("Send(%s) refused", id)
		}
		waitIdle(t, before) // the goroutine exits once the mailbox is empty
		want = append(want, id, "F")
		if got, want := s.words(), strings.Join(want, " "); got != want {
			t.Fatalf("round %d: log %q, want %q", round, got, want)
		}
	}
	// The urgent lane schedules too.
	s.a.SendUrgent(msg{id: "u"})
	waitIdle(t, before)
	want = append(want, "u", "F")
	if got, want := s.words(), strings.Join(want, " "); got != want {
		t.Fatalf("log %q, want %q", got, want)
	}
}

func TestDrain(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  string
	}{
		{
			name: "cancel in the middle of a drain takes the rest of the set and the lane",
			steps: join(
				sendHeld("b"), waitHeld("b"),
				send("n1"), sendHeld("n2"), send("n3"), send("n4"),
				release(), waitHeld("n2"),
				send("n5"), send("n6"), cancel("c"),
				release(),
			),
			want: "b F n1 n2 c D:n3 D:n4 D:n5 D:n6 F",
		},
		{
			name: "cancel in the middle of a drain with an empty lane",
			steps: join(
				sendHeld("b"), waitHeld("b"),
				send("n1"), sendHeld("n2"), send("n3"),
				release(), waitHeld("n2"),
				cancel("c"),
				release(),
			),
			want: "b F n1 n2 c D:n3 F",
		},
		{
			name: "cancel before the set is delivered",
			steps: join(
				sendHeld("b"), waitHeld("b"),
				sends(ids("n", 4)), cancel("c"),
				release(),
			),
			want: "b F c D:n1 D:n2 D:n3 D:n4 F",
		},
		{
			name: "cancel with only the lane",
			steps: join(
				urgentMsg(msg{id: "u0", hold: true}), waitHeld("u0"),
				send("n1"), send("n2"), cancel("c"),
				release(),
			),
			want: "u0 c D:n1 D:n2 F",
		},
		{
			name:  "cancel with an empty mailbox",
			steps: join(cancel("c")),
			want:  "c F",
		},
		{
			name: "drain from a normal message",
			steps: join(
				sendHeld("b"), waitHeld("b"),
				send("n1"), sendMsg(msg{id: "n2", cancel: true}), send("n3"), send("n4"),
				release(),
			),
			want: "b F n1 n2 D:n3 D:n4 F",
		},
		{
			name: "two cancels",
			steps: join(
				sendHeld("b"), waitHeld("b"),
				send("n1"), send("n2"), cancel("c1"), cancel("c2"),
				release(),
			),
			want: "b F c1 D:n1 D:n2 c2 F",
		},
		{
			name: "a panic in fn loses nothing: the rest goes to Receive",
			steps: join(
				sendHeld("b"), waitHeld("b"),
				send("n1"), sendHeld("n2"), send("n3"),
				release(), waitHeld("n2"),
				send("n4"), send("n5"), send("n6"),
				urgentMsg(msg{id: "c", cancel: true, drainPanic: "n4"}),
				release(),
			),
			want: "b F n1 n2 c D:n3 D:n4 P:drain n4 n5 n6 F",
		},
		{
			name: "a panic in fn within the current set",
			steps: join(
				sendHeld("b"), waitHeld("b"),
				send("n1"), sendHeld("n2"), send("n3"), send("n4"),
				release(), waitHeld("n2"),
				send("n5"),
				urgentMsg(msg{id: "c", cancel: true, drainPanic: "n3"}),
				release(),
			),
			want: "b F n1 n2 c D:n3 P:drain n3 n4 n5 F",
		},
		{
			name: "drain from Flush",
			steps: join(
				sendMsg(msg{id: "b", hold: true, flushDrain: true}), waitHeld("b"),
				sends(ids("n", 3)),
				release(),
			),
			want: "b F D:n1 D:n2 D:n3",
		},
		{
			name: "drain from Flush, a panic in fn loses nothing",
			steps: join(
				sendMsg(msg{id: "b", hold: true, flushDrain: true, drainPanic: "n2"}), waitHeld("b"),
				sends(ids("n", 4)),
				release(),
			),
			want: "b F D:n1 D:n2 P:drain n2 n3 n4 F",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			s := newScript(16)
			s.play(t, before, tt.steps)
			if got := s.words(); got != tt.want {
				t.Errorf("log:\n got %s\nwant %s", got, tt.want)
			}
			// The actor goes on as before.
			s.play(t, before, join(send("after")))
			if got, want := s.words(), tt.want+" after F"; got != want {
				t.Errorf("log after one more message:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestPanic(t *testing.T) {
	tests := []struct {
		name           string
		steps          []step
		panickedPanics bool
		panickedExits  bool
		want           string
		stackHas       string // in the first PanicError's Stack
	}{
		{
			name: "in Receive, normal lane",
			steps: join(
				sendHeld("b"), waitHeld("b"),
				send("n1"), sendPanic("n2"), send("n3"), send("n4"),
				release(),
			),
			want:     "b F n1 n2 P:boom n2 n3 n4 F",
			stackHas: "(*script).Receive",
		},
		{
			name: "in Receive, last of the set: Flush still follows",
			steps: join(
				sendHeld("b"), waitHeld("b"),
				send("n1"), sendPanic("n2"),
				release(),
			),
			want:     "b F n1 n2 P:boom n2 F",
			stackHas: "(*script).Receive",
		},
		{
			name: "in Receive, alone in its set",
			steps: join(
				sendHeldPanic("b"), waitHeld("b"),
				release(),
			),
			want:     "b P:boom b F",
			stackHas: "(*script).Receive",
		},
		{
			name: "in Receive, urgent lane",
			steps: join(
				sendHeld("b"), waitHeld("b"),
				send("n1"), urgentMsg(msg{id: "u1", panics: true}), urgent("u2"),
				release(),
			),
			want:     "b F u1 P:boom u1 u2 n1 F",
			stackHas: "(*script).Receive",
		},
		{
			name: "in Receive, last urgent of the set",
			steps: join(
				urgentMsg(msg{id: "u0", hold: true}), waitHeld("u0"),
				urgentMsg(msg{id: "u1", panics: true}),
				release(),
			),
			want:     "u0 u1 P:boom u1 F",
			stackHas: "(*script).Receive",
		},
		{
			name: "in Flush",
			steps: join(
				sendMsg(msg{id: "b", hold: true, flushPanic: true}), waitHeld("b"),
				send("n1"), send("n2"),
				release(),
			),
			want:     "b F P:flush n1 n2 F",
			stackHas: "(*script).Flush",
		},
		{
			name: "in Panicked too",
			steps: join(
				sendHeld("b"), waitHeld("b"),
				send("n1"), sendPanic("n2"), send("n3"), send("n4"),
				release(),
			),
			panickedPanics: true,
			want:           "b F n1 n2 P:boom n2 n3 n4 F",
			stackHas:       "(*script).Receive",
		},
		{
			name: "twice: the first error stays",
			steps: join(
				sendHeld("b"), waitHeld("b"),
				sendPanic("n1"), sendPanic("n2"), send("n3"),
				release(),
			),
			want:     "b F n1 P:boom n1 n2 P:boom n2 n3 F",
			stackHas: "(*script).Receive",
		},
		{
			name: "runtime.Goexit in Receive",
			steps: join(
				sendHeld("b"), waitHeld("b"),
				send("n1"), sendMsg(msg{id: "n2", goexit: true}), send("n3"),
				release(),
			),
			want:     "b F n1 n2 P:" + errGoexit.Error() + " n3 F",
			stackHas: "(*script).Receive",
		},
		{
			name: "runtime.Goexit in Flush",
			steps: join(
				sendMsg(msg{id: "b", hold: true, flushExit: true}), waitHeld("b"),
				send("n1"), send("n2"),
				release(),
			),
			want:     "b F P:" + errGoexit.Error() + " n1 n2 F",
			stackHas: "(*script).Flush",
		},
		{
			name: "runtime.Goexit in Panicked is not reported again",
			steps: join(
				sendHeld("b"), waitHeld("b"),
				send("n1"), sendPanic("n2"), send("n3"),
				release(),
			),
			panickedExits: true,
			want:          "b F n1 n2 P:boom n2 n3 F",
			stackHas:      "(*script).Receive",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			s := newScript(16)
			s.panickedPanics = tt.panickedPanics
			s.panickedExits = tt.panickedExits
			s.play(t, before, tt.steps)
			if got := s.words(); got != tt.want {
				t.Errorf("log:\n got %s\nwant %s", got, tt.want)
			}
			errs := s.panicErrors()
			if len(errs) == 0 {
				t.Fatal("Panicked was not called")
			}
			var first *PanicError
			if !errors.As(errs[0], &first) {
				t.Fatalf("Panicked(%T), want *PanicError", errs[0])
			}
			if !strings.Contains(string(first.Stack), tt.stackHas) {
				t.Errorf("Stack does not show %s:\n%s", tt.stackHas, first.Stack)
			}
			if !strings.HasPrefix(first.Error(), "actor: panic: ") {
				t.Errorf("Error() = %q", first.Error())
			}
			select {
			case <-s.a.Done():
			default:
				t.Error("Done is not closed")
			}
			if !s.a.Stopped() {
				t.Error("Stopped() = false")
			}
			if err := s.a.Err(); err != errs[0] {
				t.Errorf("Err() = %v, want the first panic %v", err, errs[0])
			}
			// A stopped actor still delivers, so that the behavior can answer.
			s.play(t, before, join(send("after")))
			if got, want := s.words(), tt.want+" after F"; got != want {
				t.Errorf("log after one more message:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// counted is a message of TestExactlyOnce.
type counted struct {
	id       int
	urgent   bool
	cancel   bool // Receive drains the normal lane
	panics   bool // Receive panics after counting
	sentinel bool // sent last, after every sender is done
}

// counter counts every message it is handed, by Receive or by Drain.
type counter struct {
	a        *Actor[counted]
	counts   []int32 // by id; the last slot counts the sentinel
	dirty    bool    // a message since the last Flush
	idle     int     // Flushes with nothing received since the last one
	sentinel bool
	done     chan struct{}
	panics   int
}

func (c *counter) take(m counted) {
	c.counts[m.id]++
	c.dirty = true
	if m.sentinel {
		c.sentinel = true
	}
}

func (c *counter) Receive(m counted) {
	c.take(m)
	if m.cancel {
		c.a.Drain(c.take)
	}
	if m.panics {
		panic(m.id)
	}
}

func (c *counter) Flush() {
	if !c.dirty {
		c.idle++
	}
	c.dirty = false
	if c.sentinel {
		c.sentinel = false
		close(c.done)
	}
}

func (c *counter) Panicked(error) { c.panics++ }

func TestExactlyOnce(t *testing.T) {
	tests := []struct {
		name        string
		senders     int
		perSender   int
		capacity    int
		cancelEvery int // every n-th urgent message is a cancel; 0 for none
		panicEvery  int // every n-th message panics; 0 for none
	}{
		{
			name:      "send and urgent",
			senders:   8,
			perSender: 3000,
			capacity:  32,
		},
		{
			name:        "with cancels",
			senders:     8,
			perSender:   3000,
			capacity:    32,
			cancelEvery: 40,
		},
		{
			name:        "with cancels and panics",
			senders:     8,
			perSender:   3000,
			capacity:    32,
			cancelEvery: 40,
			panicEvery:  97,
		},
		{
			name:      "capacity one",
			senders:   4,
			perSender: 2000,
			capacity:  1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.senders * tt.perSender
			c := &counter{counts: make([]int32, n+1), done: make(chan struct{})}
			c.a = New[counted](tt.capacity, c)
			var refused atomic.Int64
			var wg sync.WaitGroup
			for g := range tt.senders {
				wg.Go(func() {
					for i := range tt.perSender {
						m := counted{id: g*tt.perSender + i, urgent: i%2 == 1}
						if tt.panicEvery > 0 && m.id%tt.panicEvery == 0 {
							m.panics = true
						}
						if m.urgent {
							m.cancel = tt.cancelEvery > 0 && (i/2)%tt.cancelEvery == 0
							c.a.SendUrgent(m)
							continue
						}
						for !c.a.Send(m) {
							refused.Add(1)
							runtime.Gosched()
						}
					}
				})
			}
			wg.Wait()
			// The lane is FIFO, and urgent messages queued before the
			// sentinel are delivered before it: once the sentinel is
			// handled, every message is.
			for !c.a.Send(counted{id: n, sentinel: true}) {
				runtime.Gosched()
			}
			wait(t, c.done, "the sentinel")
			for id, got := range c.counts {
				if got != 1 {
					t.Errorf("message %d handled %d times, want 1", id, got)
				}
			}
			if c.idle != 0 {
				t.Errorf("%d Flushes after no message", c.idle)
			}
			if tt.panicEvery > 0 && c.panics == 0 {
				t.Error("no panic contained")
			}
			t.Logf("%d sends refused, %d panics contained", refused.Load(), c.panics)
		})
	}
}

func TestStop(t *testing.T) {
	e1 := errors.New("first")
	e2 := errors.New("second")
	tests := []struct {
		name  string
		errs  []error // Stop is called with each in turn
		wants []bool  // what each call returns
		want  error   // Err afterwards
	}{
		{
			name:  "nil means ErrStopped",
			errs:  []error{nil},
			wants: []bool{true},
			want:  ErrStopped,
		},
		{
			name:  "an error",
			errs:  []error{e1},
			wants: []bool{true},
			want:  e1,
		},
		{
			name:  "the first call wins",
			errs:  []error{e1, e2, nil},
			wants: []bool{true, false, false},
			want:  e1,
		},
		{
			name:  "nil first wins too",
			errs:  []error{nil, e1},
			wants: []bool{true, false},
			want:  ErrStopped,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := New[int](1, &funcs[int]{})
			if a.Err() != nil || a.Stopped() {
				t.Fatalf("new actor: Err() = %v, Stopped() = %v", a.Err(), a.Stopped())
			}
			select {
			case <-a.Done():
				t.Fatal("Done closed before Stop")
			default:
			}
			for i, err := range tt.errs {
				if got := a.Stop(err); got != tt.wants[i] {
					t.Errorf("Stop #%d(%v) = %v, want %v", i+1, err, got, tt.wants[i])
				}
			}
			wait(t, a.Done(), "Done")
			if !a.Stopped() {
				t.Error("Stopped() = false")
			}
			if got := a.Err(); got != tt.want {
				t.Errorf("Err() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStopConcurrent(t *testing.T) {
	for range 50 {
		a := New[int](1, &funcs[int]{})
		const n = 8
		errs := make([]error, n)
		won := make([]bool, n)
		var wg sync.WaitGroup
		for i := range n {
			errs[i] = errors.New(strings.Repeat("x", i+1))
			wg.Go(func() { won[i] = a.Stop(errs[i]) })
		}
		wg.Wait()
		winners := 0
		for i := range n {
			if won[i] {
				winners++
				if a.Err() != errs[i] {
					t.Fatalf("Err() = %v, want the winner's %v", a.Err(), errs[i])
				}
			}
		}
		if winners != 1 {
			t.Fatalf("%d calls of Stop won, want 1", winners)
		}
	}
}

func TestStoppedActorStillDelivers(t *testing.T) {
	before := goleak.IgnoreCurrent()
	s := newScript(4)
	s.a.Stop(nil)
	s.play(t, before, join(send("n1"), urgent("u1")))
	// The two may share a set or not, and the urgent one may come first.
	got := strings.Fields(s.words())
	slices.Sort(got)
	if want := []string{"F", "n1", "u1"}; !slices.Equal(slices.Compact(got), want) {
		t.Errorf("log %q, want n1, u1 and Flush", s.words())
	}
}

// funcs is a Behavior made of functions; nil ones do nothing.
type funcs[T any] struct {
	receive  func(T)
	flush    func()
	panicked func(error)
}

func (f *funcs[T]) Receive(m T) {
	if f.receive != nil {
		f.receive(m)
	}
}

func (f *funcs[T]) Flush() {
	if f.flush != nil {
		f.flush()
	}
}

func (f *funcs[T]) Panicked(err error) {
	if f.panicked != nil {
		f.panicked(err)
	}
}

// wait fails the test unless ch is closed within timeout.
func wait(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func join(parts ...any) []step {
	var out []step
	for _, p := range parts {
		switch p := p.(type) {
		case step:
			out = append(out, p)
		case []step:
			out = append(out, p...)
		default:
			panic("join: not a step")
		}
	}
	return out
}

func sends(ids []string) []step {
	out := make([]step, len(ids))
	for i, id := range ids {
		out[i] = send(id)
	}
	return out
}

func urgents(ids []string) []step {
	out := make([]step, len(ids))
	for i, id := range ids {
		out[i] = urgent(id)
	}
	return out
}

// TestIdleShrinks checks that a burst does not leave its buffers behind
// once the actor has gone quiet, and that a busy actor keeps them.
func TestIdleShrinks(t *testing.T) {
	buffers := func(a *Actor[msg]) (total int, inUse bool) {
		a.mu.Lock()
		defer a.mu.Unlock()
		total = cap(a.normal) + cap(a.spareN) + cap(a.urgent) + cap(a.spareU)
		return total, a.cur != nil || a.curU != nil
	}
	before := goleak.IgnoreCurrent()
	s := newScript(256)
	s.play(t, before, join(
		sendHeld("b"), waitHeld("b"),
		sends(ids("n", 200)), urgents(ids("u", 100)),
		release(),
	))
	total, inUse := buffers(s.a)
	if inUse {
		t.Error("an idle actor holds a set")
	}
	if total < 300 {
		t.Errorf("buffers hold %d messages right after a burst, want them kept for the next one", total)
	}
	for i := range quietSpells {
		s.play(t, before, join(send(fmt.Sprintf("q%d", i)), urgent(fmt.Sprintf("p%d", i))))
	}
	total, inUse = buffers(s.a)
	if inUse {
		t.Error("an idle actor holds a set")
	}
	if total > 4*idleKeep {
		t.Errorf("buffers hold %d messages after %d quiet spells, want at most %d", total, quietSpells, 4*idleKeep)
	}
}
