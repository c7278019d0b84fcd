package session

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/pool/pbytes"
	"github.com/wsactor/wsactor/codec"
)

// Every accepted command is answered exactly once, whatever else happens
// to its session: 100 sessions against an echo server, each driven by
// several goroutines with a random mix of writes, pings, closes and
// cancellations, 10,000 commands in all.
func TestCompletionsExactlyOnce(t *testing.T) {
	const (
		sessions  = 100
		drivers   = 4 // goroutines per session
		perDriver = 25
		total     = sessions * drivers * perDriver
	)
	url := echoServer(t, testOptions())
	prepared := Prepare(Text, []byte("prepared for everyone"))
	defer prepared.Release()

	ss := make([]*Session, sessions)
	for i := range ss {
		opts := testOptions()
		opts.OnMessage = func(s *Session, m Message) { m.Release() }
		if i%3 == 0 {
			opts.MailboxSize = 4 // bursts overflow it: some commands are refused
		}
		s := dialSession(t, url, opts)
		ss[i] = s
	}

	// A driver issues bursts of commands on its session and waits for as
	// many completions on its own channel before the next burst; it counts
	// every completion by id. When all drivers are through, every session is
	// ended, and each driver sends one more command: its completion comes
	// after whatever else its session delivers to the driver's channel, so
	// a second completion of any earlier command would have arrived first.
	type result struct {
		issued   map[uint64]Kind
		seen     map[uint64]int
		outcomes map[string]int
		err      error
	}
	deadline := time.Now().Add(3 * testTimeout)
	allIssued := make(chan struct{})
	var issuing sync.WaitGroup
	results := make(chan result, sessions*drivers)
	for i, s := range ss {
		for d := range drivers {
			issuing.Add(1)
			go func() {
				rng := rand.New(rand.NewPCG(uint64(i), uint64(d)))
				reply := make(chan Completion, 2) // small: the outbox has to wait for us
				r := result{issued: map[uint64]Kind{}, seen: map[uint64]int{}, outcomes: map[string]int{}}
				timer := time.NewTimer(time.Until(deadline))
				defer timer.Stop()
				receive := func() (Completion, bool) {
					select {
					case c := <-reply:
						if c.Session != s {
							r.err = fmt.Errorf("completion from another session: %+v", c)
						}
						return c, true
					case <-timer.C:
						r.err = fmt.Errorf("session %d driver %d: %d of %d completions in time", i, d, len(r.seen), len(r.issued))
						return Completion{}, false
					}
				}
				count := func(c Completion) {
					r.seen[c.ID]++
					r.outcomes[outcome(c.Err)]++
				}
				for n := 0; n < perDriver; {
					burst := min(1+rng.IntN(8), perDriver-n)
					for range burst {
						id, kind := randomCommand(rng, s, prepared, reply)
						if _, dup := r.issued[id]; dup {
							r.err = fmt.Errorf("id %d returned twice", id)
						}
						r.issued[id] = kind
					}
					n += burst
					for range burst {
						c, ok := receive()
						if !ok {
							issuing.Done()
							results <- r
							return
						}
						count(c)
					}
				}
				issuing.Done()
				<-allIssued
				s.Cancel(Terminal, nil)
				<-s.Done()
				last, _ := s.WriteText([]byte("after the end"), reply)
				for {
					c, ok := receive()
					if !ok {
						break
					}
					if c.ID == last {
						if c.Err == nil {
							r.err = fmt.Errorf("write after the end succeeded")
						}
						break
					}
					count(c)
				}
				results <- r
			}()
		}
	}
	issuing.Wait()
	close(allIssued)

	var kinds [KindCancel + 1]int
	outcomes := map[string]int{}
	issued := 0
	for range sessions * drivers {
		r := <-results
		if r.err != nil {
			t.Error(r.err)
		}
		for id, kind := range r.issued {
			switch n := r.seen[id]; {
			case n == 0:
				t.Errorf("%v %d: no completion", kind, id)
			case n > 1:
				t.Errorf("%v %d: %d completions", kind, id, n)
			}
			kinds[kind]++
		}
		for id := range r.seen {
			if _, ok := r.issued[id]; !ok {
				t.Errorf("completion for id %d, which this driver never issued", id)
			}
		}
		for k, v := range r.outcomes {
			outcomes[k] += v
		}
		issued += len(r.issued)
	}
	if issued != total {
		t.Errorf("%d commands issued, want %d", issued, total)
	}
	t.Logf("%d writes, %d pings, %d closes, %d cancels; outcomes %v",
		kinds[KindWrite], kinds[KindPing], kinds[KindClose], kinds[KindCancel], outcomes)
}

// randomCommand issues one command of a random kind on s.
func randomCommand(rng *rand.Rand, s *Session, prepared *PreparedMessage, reply chan<- Completion) (uint64, Kind) {
	switch n := rng.IntN(1000); {
	case n < 500:
		typ := Text
		if n%2 == 0 {
			typ = Binary
		}
		return idOf(s.Write(typ, make([]byte, rng.IntN(2048)), reply)), KindWrite
	case n < 600:
		return idOf(s.WriteMessage(&Message{Type: Binary, Payload: pbytes.GetLen(rng.IntN(512))}, reply)), KindWrite
	case n < 700:
		return idOf(s.WritePrepared(prepared, reply)), KindWrite
	case n < 900:
		return idOf(s.Ping([]byte("ping"), reply)), KindPing
	case n < 975:
		return idOf(s.Cancel(Total, reply)), KindCancel
	case n < 995:
		return idOf(s.Close(CloseReason{Code: codec.CloseNormalClosure}, reply)), KindClose
	default:
		return idOf(s.Cancel(Terminal, reply)), KindCancel
	}
}

// outcome names an error for the tally of TestCompletionsExactlyOnce.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrMailboxFull):
		return "mailbox full"
	case errors.Is(err, ErrClosing):
		return "closing"
	case errors.Is(err, ErrCanceled):
		return "canceled"
	case errors.Is(err, ErrClosed):
		return "closed"
	}
	return "other"
}

// A completion is never delivered from inside the command's call: the
// caller may receive it afterwards on an unbuffered channel. Every command
// kind, on an open session, on an ended one, and with a full mailbox.
func TestCompletionAfterCall(t *testing.T) {
	type call struct {
		name string
		kind Kind
		do   func(s *Session, reply chan<- Completion) uint64
	}
	calls := []call{
		{
			name: "Write",
			kind: KindWrite,
			do:   func(s *Session, r chan<- Completion) uint64 { return idOf(s.Write(Binary, []byte("w"), r)) },
		},
		{
			name: "WriteText",
			kind: KindWrite,
			do:   func(s *Session, r chan<- Completion) uint64 { return idOf(s.WriteText([]byte("t"), r)) },
		},
		{
			name: "WriteBinary",
			kind: KindWrite,
			do:   func(s *Session, r chan<- Completion) uint64 { return idOf(s.WriteBinary([]byte("b"), r)) },
		},
		{
			name: "WriteMessage",
			kind: KindWrite,
			do: func(s *Session, r chan<- Completion) uint64 {
				p := pbytes.GetLen(3)
				copy(p, "msg")
				return idOf(s.WriteMessage(&Message{Type: Text, Payload: p}, r))
			},
		},
		{
			name: "WritePrepared",
			kind: KindWrite,
			do: func(s *Session, r chan<- Completion) uint64 {
				pf := Prepare(Text, []byte("prepared"))
				defer pf.Release()
				return idOf(s.WritePrepared(pf, r))
			},
		},
		{
			name: "Ping",
			kind: KindPing,
			do:   func(s *Session, r chan<- Completion) uint64 { return idOf(s.Ping([]byte("p"), r)) },
		},
		{
			name: "Ping too long",
			kind: KindPing,
			do:   func(s *Session, r chan<- Completion) uint64 { return idOf(s.Ping(make([]byte, 126), r)) },
		},
		{
			name: "Cancel total",
			kind: KindCancel,
			do:   func(s *Session, r chan<- Completion) uint64 { return idOf(s.Cancel(Total, r)) },
		},
		{
			name: "Close bad code",
			kind: KindClose,
			do:   func(s *Session, r chan<- Completion) uint64 { return idOf(s.Close(CloseReason{Code: 1005}, r)) },
		},
		{
			name: "Close",
			kind: KindClose,
			do: func(s *Session, r chan<- Completion) uint64 {
				return idOf(s.Close(CloseReason{Code: codec.CloseNormalClosure}, r))
			},
		},
		{
			name: "Write after Close",
			kind: KindWrite,
			do:   func(s *Session, r chan<- Completion) uint64 { return idOf(s.WriteText([]byte("late"), r)) },
		},
		{
			name: "Cancel terminal",
			kind: KindCancel,
			do:   func(s *Session, r chan<- Completion) uint64 { return idOf(s.Cancel(Terminal, r)) },
		},
	}
	tests := []struct {
		name    string
		mailbox int
		// setup readies the session and returns what lets its completions
		// come (nil when nothing needs to).
		setup func(t *testing.T, s *Session, p *rawPeer) (release func())
	}{
		{
			name: "open",
			setup: func(t *testing.T, s *Session, p *rawPeer) func() {
				p.serve()
				return nil
			},
		},
		{
			name: "ended",
			setup: func(t *testing.T, s *Session, p *rawPeer) func() {
				s.Cancel(Terminal, nil)
				awaitDone(t, s)
				return nil
			},
		},
		{
			name:    "full mailbox",
			mailbox: 1,
			setup: func(t *testing.T, s *Session, p *rawPeer) func() {
				blockWriter(t, s, p, nil)
				s.WriteText([]byte("fills the mailbox"), nil)
				// The last call, Cancel(Terminal), interrupts the big write:
				// every completion comes without the peer reading.
				return nil
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.MailboxSize = tc.mailbox
			s, p := openRaw(t, codec.Server, opts, smallBuffer)
			release := tc.setup(t, s, p)
			replies := make([]chan Completion, len(calls))
			ids := make([]uint64, len(calls))
			for i, c := range calls {
				replies[i] = make(chan Completion) // unbuffered: only a receiver can take it
				returned := make(chan struct{})
				go func() {
					ids[i] = c.do(s, replies[i])
					close(returned)
				}()
				select {
				case <-returned:
				case <-time.After(testTimeout):
					t.Fatalf("%s blocked", c.name)
				}
			}
			if release != nil {
				release()
			}
			for i, c := range calls {
				select {
				case comp := <-replies[i]:
					if comp.Kind != c.kind || comp.ID != ids[i] || comp.Session != s {
						t.Errorf("%s: completion %v %d, want %v %d", c.name, comp.Kind, comp.ID, c.kind, ids[i])
					}
				case <-time.After(testTimeout):
					t.Fatalf("%s: no completion", c.name)
				}
			}
		})
	}
}

// The same from the caller's own goroutine, one command at a time: the call
// returns, then the same goroutine receives its completion.
func TestCompletionAfterCallSameGoroutine(t *testing.T) {
	s, p := openRaw(t, codec.Server, testOptions(), rawConfig{})
	p.serve()
	reply := make(chan Completion)
	for i := range 100 {
		var id uint64
		var kind Kind
		switch i % 3 {
		case 0:
			id, kind = idOf(s.WriteText(fmt.Appendf(nil, "%d", i), reply)), KindWrite
		case 1:
			id, kind = idOf(s.Ping(nil, reply)), KindPing
		case 2:
			id, kind = idOf(s.Cancel(Total, reply)), KindCancel
		}
		check(t, await(t, reply), kind, id, nil)
	}
	id, _ := s.Close(CloseReason{Code: codec.CloseNormalClosure}, reply)
	check(t, await(t, reply), KindClose, id, nil)
	id, _ = s.Ping(nil, reply)
	c := await(t, reply)
	if c.ID != id || c.Err == nil {
		t.Fatalf("ping after the end: %+v", c)
	}
}
