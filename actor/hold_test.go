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

// goid returns the id of the calling goroutine, as runtime.Stack names it:
// how these tests tell the caller of RunHeld from the actor's goroutine.
func goid() string {
	var b [64]byte
	n := runtime.Stack(b[:], false)
	f := strings.Fields(string(b[:n])) // "goroutine 18 [running]:"
	return f[1]
}

// where is a Behavior that records, for every call, what it got and on
// which goroutine. It is locked because the tests read it; tally, below,
// is the one that leaves the race detector to check that calls never
// overlap.
type where struct {
	mu    sync.Mutex
	got   []int
	gids  []string
	flush []string // the goroutine of each Flush
	more  func(n int)
}

func (w *where) Receive(n int) {
	w.mu.Lock()
	w.got = append(w.got, n)
	w.gids = append(w.gids, goid())
	more := w.more
	w.mu.Unlock()
	if more != nil {
		more(n)
	}
}

func (w *where) Flush() {
	w.mu.Lock()
	w.flush = append(w.flush, goid())
	w.mu.Unlock()
}

func (w *where) Panicked(error) {}

// snapshot returns what was received and the goroutines of the receives
// and the Flushes.
func (w *where) snapshot() (got []int, gids, flush []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got), slices.Clone(w.gids), slices.Clone(w.flush)
}

// settle waits until every goroutine not in before has exited, and then
// checks that nothing was received: a goroutine that Send or Kick started
// would have drained the lane before exiting.
func settle(t *testing.T, before goleak.Option, w *where, a *Actor[int], queued int) {
	t.Helper()
	waitIdle(t, before)
	if got, _, _ := w.snapshot(); len(got) != 0 {
		t.Fatalf("received %v while held", got)
	}
	if n := a.Len(); n != queued {
		t.Fatalf("Len() = %d while held, want %d", n, queued)
	}
}

// A held actor queues what Send accepts, starts no goroutine, and runs once
// on the goroutine that calls RunHeld: one set, one Flush.
func TestHoldRunsOnCaller(t *testing.T) {
	before := goleak.IgnoreCurrent()
	w := &where{}
	a := New[int](16, w)
	a.Hold()
	for i := range 5 {
		if !a.Send(i) {
			t.Fatalf("Send(%d) refused", i)
		}
	}
	settle(t, before, w, a, 5)
	if !a.RunHeld(4) {
		t.Fatal("RunHeld = false with 5 messages queued")
	}
	me := goid()
	got, gids, flush := w.snapshot()
	if want := []int{0, 1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Fatalf("received %v, want %v", got, want)
	}
	for i, g := range gids {
		if g != me {
			t.Errorf("message %d received on goroutine %s, want the caller's %s", got[i], g, me)
		}
	}
	if !slices.Equal(flush, []string{me}) {
		t.Errorf("Flushes on goroutines %v, want one on the caller's %s", flush, me)
	}
	// RunHeld went idle before returning: no goroutine of the actor's is left.
	waitIdle(t, before)

	// The Hold is over: Send starts the goroutine again.
	if !a.Send(5) {
		t.Fatal("Send(5) refused")
	}
	waitIdle(t, before)
	got, gids, _ = w.snapshot()
	if got[len(got)-1] != 5 || gids[len(gids)-1] == me {
		t.Fatalf("after RunHeld, Send delivered %v on %v, want 5 on the actor's goroutine", got, gids)
	}
}

// RunHeld does nothing, and reports false, when there is nothing to run
// (the actor's goroutine may be in the middle of a set), and ends the Hold
// all the same.
func TestRunHeldDoesNothing(t *testing.T) {
	tests := []struct {
		name    string
		hold    bool
		running bool // a goroutine of the actor's is in Receive
	}{
		{
			name: "held, empty",
			hold: true,
		},
		{
			name: "not held, empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			me := goid()
			entered := make(chan struct{})
			unblock := make(chan struct{})
			w := &where{more: func(n int) {
				if n == -1 {
					close(entered)
					<-unblock
				}
			}}
			a := New[int](16, w)
			if tt.running {
				a.Send(-1)
				wait(t, entered, "the blocking Receive")
			}
			if tt.hold {
				a.Hold()
			}
			if a.RunHeld(4) {
				t.Fatal("RunHeld = true")
			}
			close(unblock)
			waitIdle(t, before)
			_, gids, flush := w.snapshot()
			if slices.Contains(gids, me) || slices.Contains(flush, me) {
				t.Fatalf("RunHeld ran the actor on the caller (receives on %v, Flushes on %v)", gids, flush)
			}
			// RunHeld ended the Hold.
			a.Send(100)
			waitIdle(t, before)
			got, _, _ := w.snapshot()
			if got[len(got)-1] != 100 {
				t.Fatalf("Send after RunHeld not delivered: %v", got)
			}
		})
	}
}

// A RunHeld while the actor's goroutine delivers a set waits for that set
// even with nothing queued (the set may hold the caller's own messages:
// a Kick started it), then takes the actor over.
func TestRunHeldWaitsForRunningSet(t *testing.T) {
	before := goleak.IgnoreCurrent()
	entered := make(chan struct{})
	unblock := make(chan struct{})
	w := &where{more: func(n int) {
		if n == -1 {
			close(entered)
			<-unblock
		}
	}}
	a := New[int](16, w)
	a.Send(-1)
	wait(t, entered, "the blocking Receive")
	a.Hold()
	returned := make(chan bool, 1)
	go func() { returned <- a.RunHeld(4) }()
	waitParked(t, "(*Actor[...]).RunHeld", "chan receive")
	select {
	case <-returned:
		t.Fatal("RunHeld returned while the set was being delivered")
	default:
	}
	close(unblock)
	select {
	case ran := <-returned:
		if !ran {
			t.Error("RunHeld = false after taking the actor over")
		}
	case <-time.After(timeout):
		t.Fatal("RunHeld did not return after the set ended")
	}
	waitIdle(t, before)
}

// waitParked waits until a goroutine whose stack holds fn is parked in
// state (as runtime.Stack names them).
func waitParked(t *testing.T, fn, state string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n := runtime.Stack(buf, true)
		for g := range strings.SplitSeq(string(buf[:n]), "\n\n") {
			header, _, _ := strings.Cut(g, "\n")
			if strings.Contains(header, "["+state) && strings.Contains(g, fn) {
				return
			}
		}
		runtime.Gosched()
	}
	t.Fatalf("no goroutine in %s parked in %s", fn, state)
}

// RunHeld while the actor's goroutine is in a set waits for the set to
// end, then runs the rest on the caller: the caller cannot outrun the
// actor. A second caller meanwhile does not wait: it reports false.
func TestRunHeldTakesOver(t *testing.T) {
	before := goleak.IgnoreCurrent()
	entered := make(chan struct{})
	unblock := make(chan struct{})
	w := &where{more: func(n int) {
		if n == -1 {
			close(entered)
			<-unblock
		}
	}}
	a := New[int](16, w)
	a.Send(-1)
	wait(t, entered, "the blocking Receive")
	a.Hold()
	for i := range 3 {
		a.Send(i)
	}
	type result struct {
		ran bool
		gid string
	}
	res := make(chan result, 1)
	go func() {
		gid := goid()
		res <- result{a.RunHeld(4), gid}
	}()
	waitParked(t, ").RunHeld(", "chan receive")
	if a.RunHeld(4) {
		t.Fatal("a second RunHeld ran the actor while one waits")
	}
	select {
	case r := <-res:
		t.Fatalf("RunHeld returned %t while the actor's set went on", r.ran)
	default:
	}
	close(unblock)
	var r result
	select {
	case r = <-res:
	case <-time.After(timeout):
		t.Fatal("RunHeld did not return once the set was over")
	}
	if !r.ran {
		t.Fatal("RunHeld = false")
	}
	waitIdle(t, before)
	got, gids, flush := w.snapshot()
	if want := []int{-1, 0, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("received %v, want %v", got, want)
	}
	if gids[0] == r.gid || !slices.Equal(gids[1:], []string{r.gid, r.gid, r.gid}) {
		t.Fatalf("received on goroutines %v; want the first on the actor's, the rest on RunHeld's %s", gids, r.gid)
	}
	if len(flush) != 2 || flush[1] != r.gid {
		t.Fatalf("Flushes on %v, want the second on RunHeld's %s", flush, r.gid)
	}
}

// RunHeld runs at most sets sets on the caller; a behavior that keeps its
// mailbox from emptying does not keep the caller: a goroutine takes over and
// delivers the rest, in order, exactly once.
func TestRunHeldSetsBound(t *testing.T) {
	const total = 200
	tests := []struct {
		name string
		sets int
	}{
		{
			name: "zero",
			sets: 0,
		},
		{
			name: "one",
			sets: 1,
		},
		{
			name: "two",
			sets: 2,
		},
		{
			name: "inlineSets of the session",
			sets: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			done := make(chan struct{})
			w := &where{}
			a := New[int](4, w)
			// Each message sends the next from Receive: every set holds one
			// message and leaves one behind.
			w.more = func(n int) {
				if n+1 < total {
					if !a.Send(n + 1) {
						panic("Send refused")
					}
				} else {
					close(done)
				}
			}
			a.Hold()
			a.Send(0)
			if !a.RunHeld(tt.sets) {
				t.Fatal("RunHeld = false")
			}
			// RunHeld returned: the goroutine that took over may be anywhere.
			me := goid()
			wait(t, done, "the last message")
			waitIdle(t, before)
			got, gids, flush := w.snapshot()
			want := make([]int, total)
			for i := range want {
				want[i] = i
			}
			if !slices.Equal(got, want) {
				t.Fatalf("received %d messages %v..., want 0..%d in order", len(got), got[:min(10, len(got))], total-1)
			}
			for i, g := range gids {
				if onCaller := g == me; onCaller != (i < tt.sets) {
					t.Fatalf("RunHeld(%d): message %d on the caller: %t, want %t", tt.sets, i, onCaller, i < tt.sets)
				}
			}
			if n := len(flush); n != total {
				t.Errorf("%d Flushes, want one per set: %d", n, total)
			}
		})
	}
}

// Kick ends a Hold and starts the actor's goroutine when messages wait; with
// none, it starts nothing, and Send schedules again afterwards.
func TestKick(t *testing.T) {
	tests := []struct {
		name   string
		queued int
	}{
		{
			name:   "with messages",
			queued: 3,
		},
		{
			name: "empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			me := goid()
			w := &where{}
			a := New[int](16, w)
			a.Hold()
			for i := range tt.queued {
				a.Send(i)
			}
			settle(t, before, w, a, tt.queued)
			a.Kick()
			waitIdle(t, before) // a goroutine that Kick started has drained the lane
			got, gids, _ := w.snapshot()
			if len(got) != tt.queued || a.Len() != 0 {
				t.Fatalf("after Kick: received %v, %d still queued; want %d received", got, a.Len(), tt.queued)
			}
			if slices.Contains(gids, me) {
				t.Fatal("Kick ran the actor on the caller")
			}
			a.Send(100)
			waitIdle(t, before)
			if got, _, _ := w.snapshot(); len(got) != tt.queued+1 || got[tt.queued] != 100 {
				t.Fatalf("Send after Kick: received %v", got)
			}
		})
	}
}

// SendUrgent starts the goroutine of a held actor at once; the goroutine
// delivers the normal messages queued during the Hold too, after the urgent
// one. The Hold itself goes on: what Send accepts afterwards waits for
// RunHeld.
func TestSendUrgentDuringHold(t *testing.T) {
	before := goleak.IgnoreCurrent()
	s := newScript(16)
	s.a.Hold()
	s.play(t, before, join(send("n1"), send("n2"), urgent("u1")))
	if got, want := s.words(), "u1 n1 n2 F"; got != want {
		t.Fatalf("log %q, want %q", got, want)
	}
	s.play(t, before, join(send("n3")))
	if got, want := s.words(), "u1 n1 n2 F"; got != want {
		t.Fatalf("the Hold ended with the urgent message: log %q, want %q", got, want)
	}
	if !s.a.RunHeld(4) {
		t.Fatal("RunHeld = false with n3 queued")
	}
	if got, want := s.words(), "u1 n1 n2 F n3 F"; got != want {
		t.Fatalf("log %q, want %q", got, want)
	}
	waitIdle(t, before)
}

// A panic in the behavior while RunHeld runs it is contained as on the
// actor's goroutine: Panicked is called, the set goes on, RunHeld returns
// to its caller, and later messages are delivered.
func TestRunHeldPanic(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  string
	}{
		{
			name:  "in Receive",
			steps: join(send("n1"), sendPanic("n2"), send("n3")),
			want:  "n1 n2 P:boom n2 n3 F",
		},
		{
			name:  "in Flush",
			steps: join(send("n1"), sendMsg(msg{id: "n2", flushPanic: true})),
			want:  "n1 n2 F P:flush",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			s := newScript(16)
			s.a.Hold()
			s.play(t, before, tt.steps)
			if !s.a.RunHeld(4) {
				t.Fatal("RunHeld = false")
			}
			if got := s.words(); got != tt.want {
				t.Fatalf("log after RunHeld:\n got %s\nwant %s", got, tt.want)
			}
			var pe *PanicError
			if errs := s.panicErrors(); len(errs) != 1 || !errors.As(s.a.Err(), &pe) {
				t.Fatalf("Panicked with %v, Err() = %v; want one *PanicError", errs, s.a.Err())
			}
			s.play(t, before, join(send("after")))
			if got, want := s.words(), tt.want+" after F"; got != want {
				t.Fatalf("log after one more message:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// runtime.Goexit in Receive while RunHeld runs the actor ends the caller's
// goroutine (nothing can stop that), but not the actor: a goroutine of its
// own reports it and delivers the rest.
func TestRunHeldGoexit(t *testing.T) {
	before := goleak.IgnoreCurrent()
	s := newScript(16)
	s.a.Hold()
	s.play(t, before, join(send("n1"), sendMsg(msg{id: "n2", goexit: true}), send("n3")))
	exited := make(chan struct{})
	returned := false
	go func() {
		defer close(exited)
		s.a.RunHeld(4)
		returned = true
	}()
	wait(t, exited, "the caller of RunHeld")
	if returned {
		t.Fatal("RunHeld returned after runtime.Goexit")
	}
	waitIdle(t, before)
	want := "n1 n2 P:" + errGoexit.Error() + " n3 F"
	if got := s.words(); got != want {
		t.Fatalf("log:\n got %s\nwant %s", got, want)
	}
	s.play(t, before, join(send("after")))
	if got := s.words(); got != want+" after F" {
		t.Fatalf("log after one more message:\n got %s\nwant %s after F", got, want)
	}
}

// holdMsg is a message of TestHoldExactlyOnce: who sent it, its rank among
// that sender's messages of its lane, and its id for counting.
type holdMsg struct {
	from   int
	seq    int
	urgent bool
	id     int
	last   bool
}

// tally checks every delivery: exactly once, in each sender's order per
// lane, never two calls at a time. Its fields are not locked: the race
// detector sees two goroutines running the actor at once.
type tally struct {
	counts []int32
	next   map[[2]int]int // [from, urgent] -> the seq expected next
	bad    []string
	busy   atomic.Bool
	done   chan struct{}
}

func (c *tally) Receive(m holdMsg) {
	if !c.busy.CompareAndSwap(false, true) {
		c.bad = append(c.bad, "two Receives at once")
	}
	defer c.busy.Store(false)
	if m.last {
		close(c.done)
		return
	}
	c.counts[m.id]++
	lane := 0
	if m.urgent {
		lane = 1
	}
	key := [2]int{m.from, lane}
	if want := c.next[key]; m.seq != want && len(c.bad) < 10 {
		c.bad = append(c.bad, fmt.Sprintf("sender %d lane %d: seq %d, want %d", m.from, lane, m.seq, want))
	}
	c.next[key] = m.seq + 1
}

func (c *tally) Flush() {
	if !c.busy.CompareAndSwap(false, true) {
		c.bad = append(c.bad, "Flush during a Receive")
	}
	c.busy.Store(false)
}

func (c *tally) Panicked(err error) { c.bad = append(c.bad, err.Error()) }

// Hold, RunHeld and Kick racing with other goroutines' Sends and
// SendUrgents lose, duplicate and reorder nothing, and never run the
// behavior on two goroutines at once. A holder plays the session's reader:
// it holds the actor, sends a burst, and runs it; with two, RunHeld hands
// the actor from one to the other.
func TestHoldExactlyOnce(t *testing.T) {
	tests := []struct {
		name     string
		capacity int
		holders  int
		bursts   int // of each holder
		burst    int
		sets     int
		senders  int  // besides the holders
		each     int  // messages per sender
		kick     bool // the senders Kick now and then, as WriteContext does
	}{
		{
			name:     "holder and senders",
			capacity: 64,
			holders:  1,
			bursts:   300,
			burst:    20,
			sets:     4,
			senders:  3,
			each:     2000,
		},
		{
			name:     "small mailbox, one set",
			capacity: 4,
			holders:  1,
			bursts:   300,
			burst:    10,
			sets:     1,
			senders:  3,
			each:     2000,
		},
		{
			name:     "senders that kick",
			capacity: 16,
			holders:  1,
			bursts:   300,
			burst:    20,
			sets:     4,
			senders:  2,
			each:     2000,
			kick:     true,
		},
		{
			name:     "two holders",
			capacity: 16,
			holders:  2,
			bursts:   300,
			burst:    10,
			sets:     2,
			senders:  2,
			each:     2000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			held := tt.bursts * tt.burst // messages of each holder
			n := tt.holders*held + tt.senders*tt.each
			c := &tally{counts: make([]int32, n), next: map[[2]int]int{}, done: make(chan struct{})}
			a := New[holdMsg](tt.capacity, c)
			var wg sync.WaitGroup
			var ranHeld atomic.Int64
			// A full lane that a holder holds empties only once it runs the
			// actor, as the reader does.
			for h := range tt.holders {
				wg.Go(func() {
					for seq := range held {
						if seq%tt.burst == 0 {
							a.Hold()
						}
						m := holdMsg{from: h, seq: seq, id: h*held + seq}
						for !a.Send(m) {
							a.RunHeld(tt.sets)
							a.Hold()
							runtime.Gosched()
						}
						if seq%tt.burst == tt.burst-1 {
							if seq%(7*tt.burst) == tt.burst-1 {
								runtime.Gosched() // let the others fill the held lane
							}
							if a.RunHeld(tt.sets) {
								ranHeld.Add(1)
							}
						}
					}
				})
			}
			for g := range tt.senders {
				wg.Go(func() {
					from := tt.holders + g
					base := tt.holders*held + g*tt.each
					seqs := [2]int{}
					for i := range tt.each {
						m := holdMsg{from: from, id: base + i, urgent: i%3 == 0}
						if m.urgent {
							m.seq = seqs[1]
							seqs[1]++
							a.SendUrgent(m)
							continue
						}
						m.seq = seqs[0]
						seqs[0]++
						for !a.Send(m) {
							runtime.Gosched()
						}
						if tt.kick && i%5 == 0 {
							a.Kick() // as WriteContext does from any goroutine
						}
					}
				})
			}
			wg.Wait()
			// Every sender is done, and every RunHeld has returned: the lane
			// is FIFO, and a Send that is not held is scheduled, so the
			// sentinel comes after everything.
			for !a.Send(holdMsg{last: true}) {
				runtime.Gosched()
			}
			wait(t, c.done, "the sentinel")
			waitIdle(t, before)
			if len(c.bad) > 0 {
				t.Fatalf("%d problems: %v", len(c.bad), c.bad)
			}
			for id, got := range c.counts {
				if got != 1 {
					t.Fatalf("message %d delivered %d times", id, got)
				}
			}
			if ranHeld.Load() == 0 {
				t.Error("RunHeld never ran the actor on a holder")
			}
			t.Logf("RunHeld ran %d of %d bursts on the holders", ranHeld.Load(), tt.holders*tt.bursts)
		})
	}
}

// SendNow ends a Hold: a caller that will wait for its message is not
// left waiting for the holder's RunHeld.
func TestSendNowEndsHold(t *testing.T) {
	before := goleak.IgnoreCurrent()
	got := make(chan int, 4)
	w := &where{more: func(n int) { got <- n }}
	a := New[int](16, w)
	a.Hold()
	a.Send(1)
	settle(t, before, w, a, 1)
	if !a.SendNow(2) {
		t.Fatal("SendNow refused with room in the lane")
	}
	for _, want := range []int{1, 2} {
		select {
		case n := <-got:
			if n != want {
				t.Fatalf("received %d, want %d", n, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d was not received: SendNow left the actor held", want)
		}
	}
	waitIdle(t, before)
	a.Send(3) // no longer held: runs at once
	if n := <-got; n != 3 {
		t.Fatalf("received %d, want 3", n)
	}
	waitIdle(t, before)
}

// SendMerge folds a message into the last one waiting in the lane when
// merge says so, and queues it otherwise; a message the actor has taken
// is never merged into, and a full lane refuses.
func TestSendMerge(t *testing.T) {
	before := goleak.IgnoreCurrent()
	w := &where{}
	a := New[int](2, w)
	a.Hold()
	// Tens merge into a waiting message of the same tens.
	sameTens := func(tail *int, m int) bool {
		if *tail/10 != m/10 {
			return false
		}
		*tail += m % 10
		return true
	}
	steps := []struct {
		m              int
		merged, queued bool
	}{
		{10, false, true},
		{11, true, true},
		{12, true, true},
		{20, false, true},
		{21, true, true},
		{30, false, false}, // the lane (2) is full and 30 merges with nothing
	}
	var queued []int
	note := func(m int) { queued = append(queued, m) }
	for _, st := range steps {
		merged, ok := a.SendMerge(st.m, sameTens, note)
		if merged != st.merged || ok != st.queued {
			t.Fatalf("SendMerge(%d) = %v, %v; want %v, %v", st.m, merged, ok, st.merged, st.queued)
		}
	}
	if !slices.Equal(queued, []int{10, 20}) {
		t.Fatalf("queued was called with %v, want [10 20]: the messages queued on their own", queued)
	}
	settle(t, before, w, a, 2)
	a.RunHeld(4)
	if got, _, _ := w.snapshot(); !slices.Equal(got, []int{13, 21}) {
		t.Fatalf("received %v, want [13 21]", got)
	}
	// Taken messages are not merged into: 14 is queued on its own.
	a.Hold()
	if merged, ok := a.SendMerge(14, sameTens, nil); merged || !ok {
		t.Fatalf("SendMerge(14) after the lane was taken = %v, %v; want queued", merged, ok)
	}
	a.RunHeld(4)
	if got, _, _ := w.snapshot(); !slices.Equal(got, []int{13, 21, 14}) {
		t.Fatalf("received %v, want [13 21 14]", got)
	}
	waitIdle(t, before)
}

// Merge folds into the waiting tail only, and queues nothing otherwise.
func TestMerge(t *testing.T) {
	before := goleak.IgnoreCurrent()
	w := &where{}
	a := New[int](4, w)
	add := func(tail *int, m int) bool { *tail += m; return true }
	a.Hold()
	if a.Merge(1, add) {
		t.Fatal("Merge into an empty lane reported true")
	}
	a.Send(10)
	if !a.Merge(5, add) {
		t.Fatal("Merge into a waiting message reported false")
	}
	settle(t, before, w, a, 1)
	a.RunHeld(4)
	if got, _, _ := w.snapshot(); !slices.Equal(got, []int{15}) {
		t.Fatalf("received %v, want [15]", got)
	}
	waitIdle(t, before)
}
