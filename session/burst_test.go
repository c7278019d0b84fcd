package session

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsactor/wsactor/codec"
)

// burstGroup is a group of plain and compressed members, each served by a
// well-behaved raw peer, and a publisher whose handler broadcasts every
// message it receives to the group (and is a member too, as a room's
// sender is), calling after(i) after its i-th broadcast.
type burstGroup struct {
	g       *Group
	pub     *Session
	pubPeer *rawPeer
	members []*Session
	frames  []<-chan frame // what each member's peer read, members' order
	deflate []bool
}

func newBurstGroup(t *testing.T, gopts *GroupOptions, plain, compressed int, after func(i int), readBuffer ...int) *burstGroup {
	t.Helper()
	b := &burstGroup{g: NewGroup(gopts)}
	for i := range plain + compressed {
		var s *Session
		var p *rawPeer
		if i < plain {
			s, p = openRaw(t, codec.Server, testOptions(), rawConfig{})
		} else {
			s, p = acceptCompressedRaw(t, compressedOptions())
		}
		b.g.Add(s)
		b.members = append(b.members, s)
		b.frames = append(b.frames, p.serve())
		b.deflate = append(b.deflate, i >= plain)
	}
	opts := testOptions()
	if len(readBuffer) > 0 {
		opts.ReadBufferSize = readBuffer[0]
	}
	n := 0
	opts.OnMessage = func(s *Session, m Message) {
		b.g.Broadcast(m.Type, m.Payload)
		m.Release()
		if after != nil {
			after(n)
		}
		n++
	}
	b.pub, b.pubPeer = openRaw(t, codec.Server, opts, rawConfig{})
	b.g.Add(b.pub)
	go func() {
		for range b.pubPeer.serve() { // the publisher's own broadcasts
		}
	}()
	return b
}

// payload returns what member i's peer read in f, inflated when the member
// negotiated compression.
func (b *burstGroup) payload(t *testing.T, i int, f frame) []byte {
	t.Helper()
	if f.rsv&codec.RSV1 == 0 {
		return f.payload
	}
	if !b.deflate[i] {
		t.Fatalf("member %d, which did not negotiate compression, got RSV1", i)
	}
	p, err := codec.Inflate(f.payload, 1<<20)
	if err != nil {
		t.Fatalf("member %d: inflate: %v", i, err)
	}
	return p
}

// expect reads from every member's peer the payloads want, in order.
func (b *burstGroup) expect(t *testing.T, want [][]byte) {
	t.Helper()
	for i, frames := range b.frames {
		for k, w := range want {
			select {
			case f, ok := <-frames:
				if !ok {
					t.Fatalf("member %d: the stream ended after %d of %d broadcasts", i, k, len(want))
				}
				if got := b.payload(t, i, f); !bytes.Equal(got, w) {
					t.Fatalf("member %d, broadcast %d: got %.40q, want %.40q", i, k, got, w)
				}
			case <-time.After(testTimeout):
				t.Fatalf("member %d got %d of %d broadcasts", i, k, len(want))
			}
		}
	}
}

// burstPayloads returns n payloads, compressible and long enough to be
// compressed for the members that negotiated it.
func burstPayloads(round, n int) [][]byte {
	var ps [][]byte
	for k := range n {
		ps = append(ps, fmt.Appendf(nil, "round %03d message %03d %s", round, k, bytes.Repeat([]byte("fan-out "), 40)))
	}
	return ps
}

// sendAll writes payloads as text frames with one write, so that the
// publisher's reader gets them in one read (or a few).
func sendAll(t *testing.T, p *rawPeer, payloads [][]byte) {
	t.Helper()
	var raw []byte
	for _, pl := range payloads {
		raw = append(raw, encodeFrame(frame{fin: true, op: 0x1, payload: pl}, true)...)
	}
	if err := p.writeRaw(raw); err != nil {
		t.Fatal(err)
	}
}

// A read's broadcasts from a handler are batched: every member, plain and
// compressed, gets every broadcast once and in order, while a member's
// mailbox holds one command for all of them (folded, actor.SendMerge)
// and its actor waits for the read to end (held). Without the batching, a
// member's mailbox grows by one command per broadcast, or its actor takes
// each at once (length 0).
func TestBurstBatchesAReadsBroadcasts(t *testing.T) {
	// After each broadcast: its place in the publisher's burst (1 for
	// the first) and member 0's mailbox length.
	type seen struct{ nth, len int }
	var mu sync.Mutex
	var lens []seen
	var b *burstGroup
	b = newBurstGroup(t, nil, 6, 2, func(int) {
		mu.Lock()
		lens = append(lens, seen{b.pub.burst.n, b.members[0].mb.Len()})
		mu.Unlock()
	})
	const rounds, perRound = 5, 40
	var all [][]byte
	for r := range rounds {
		ps := burstPayloads(r, perRound)
		sendAll(t, b.pubPeer, ps)
		all = append(all, ps...)
	}
	b.expect(t, all)
	mu.Lock()
	defer mu.Unlock()
	// Within a burst the mailbox does not grow: every broadcast after the
	// first folds into the command the first queued (the commands of an
	// earlier burst may still wait for the member's actor to take them).
	folded, first := 0, 0
	for i, s := range lens {
		if s.nth == 1 {
			first = s.len
		}
		if s.len > max(first, 1) {
			t.Fatalf("broadcast %d, the %dth of its burst: a member's mailbox held %d commands, %d after the burst's first (want no growth: folded)", i, s.nth, s.len, first)
		}
		if s.nth > 1 && s.len >= 1 {
			folded++
		}
	}
	// Some reads may hold a single message; most hold many.
	if folded < len(all)/2 {
		t.Errorf("a member's mailbox held the read's command after %d of %d broadcasts, want most (held)", folded, len(all))
	}
	if st := b.g.Stats(); st.Delivered != uint64(len(all)*(len(b.members)+1)) || st.Dropped != 0 {
		t.Errorf("Stats = %+v, want %d delivered", st, len(all)*(len(b.members)+1))
	}
	for i, s := range append(b.members, b.pub) {
		if q, o := s.pendingBytes.Load(), s.outstanding.Load(); q != 0 || o != 0 {
			t.Errorf("session %d still counts %d bytes, %d commands after every broadcast was read", i, q, o)
		}
	}
}

// A handler that broadcasts and then waits for a member (a blocking write,
// a close and its end) does not wait for itself: whatever may be waited
// for ends the member's hold.
func TestBurstHandlerWaitsForAHeldMember(t *testing.T) {
	errs := make(chan error, 2)
	var b *burstGroup
	b = newBurstGroup(t, nil, 5, 0, func(i int) {
		if i != 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		errs <- b.members[0].WriteContext(ctx, Text, []byte("direct"))
		b.members[1].Close(CloseReason{Code: CloseNormalClosure}, nil)
		select {
		case <-b.members[1].Done():
			errs <- nil
		case <-ctx.Done():
			errs <- fmt.Errorf("member 1 did not end: %w", ctx.Err())
		}
	})
	sendAll(t, b.pubPeer, [][]byte{[]byte("first"), []byte("second")})
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []string{"first", "direct", "second"} {
		select {
		case f := <-b.frames[0]:
			if string(f.payload) != want {
				t.Fatalf("member 0, frame %d: %q, want %q", i, f.payload, want)
			}
		case <-time.After(testTimeout):
			t.Fatalf("member 0 got %d frames", i)
		}
	}
}

// Members that end or cancel while a read's broadcasts wait for them
// settle every command once: their counts come back to zero, the casts'
// references balance (a release too many panics), and the others get
// everything.
func TestBurstSettlesWithEndsAndCancels(t *testing.T) {
	var b *burstGroup
	b = newBurstGroup(t, nil, 8, 0, func(i int) {
		switch i {
		case 10:
			b.members[6].Cancel(Total, nil)
		case 20:
			b.members[7].Cancel(Terminal, nil)
		}
	})
	// Members 6 and 7 are canceled half-way: the others are checked.
	watched := b.frames[:6]
	b.frames = watched
	var all [][]byte
	for r := range 4 {
		ps := burstPayloads(r, 25)
		sendAll(t, b.pubPeer, ps)
		all = append(all, ps...)
	}
	b.expect(t, all)
	awaitDone(t, b.members[7])
	for i, s := range b.members[:7] {
		// A blocking write completes after everything queued before it.
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		if err := s.WriteContext(ctx, Text, []byte("last")); err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		cancel()
	}
	for i, s := range b.members {
		if q, o := s.pendingBytes.Load(), s.outstanding.Load(); q != 0 || o != 0 {
			t.Errorf("member %d still counts %d bytes, %d commands", i, q, o)
		}
	}
}

// A member that does not read, under DropSlow, while a handler broadcasts
// reads of 16 messages: its backlog stays within the bound whatever the
// number of broadcasts (the read's broadcasts held for it count), the drops
// are counted, and a member that reads gets every broadcast.
func TestBurstSlowMemberBounded(t *testing.T) {
	const backlog = 128 << 10
	var peak atomic.Int64
	var slow *Session
	var b *burstGroup
	b = newBurstGroup(t, &GroupOptions{MaxBacklog: backlog}, 1, 0, func(int) {
		peak.Store(max(peak.Load(), slow.pendingBytes.Load()))
	})
	slow, _ = openRaw(t, codec.Server, testOptions(), smallBuffer) // never read
	b.g.Add(slow)
	// Three more members, so that the group is large enough to batch.
	for range 3 {
		s, p := openRaw(t, codec.Server, testOptions(), rawConfig{})
		b.g.Add(s)
		go func() {
			for range p.serve() {
			}
		}()
	}
	payload := bytes.Repeat([]byte("x"), 4096)
	const rounds, perRound = 150, 16 // 9.4 MiB: more than the kernel's buffers take
	for range rounds {
		ps := make([][]byte, perRound)
		for k := range ps {
			ps[k] = payload
		}
		sendAll(t, b.pubPeer, ps)
		b.expect(t, ps) // the reading member keeps up before the next read
	}
	// The bound, plus what a publisher's burst holds for every member
	// (shared): at most spanBytes and one read of the default size.
	if p, bound := peak.Load(), int64(backlog+spanBytes+(32<<10)+4096); p > bound {
		t.Errorf("the slow member held %d bytes, over its backlog of %d + a burst (%d)", p, backlog, bound)
	}
	// (The members read by goroutines of their own may lag too, under
	// -race: their drops are counted as well.)
	if st := b.g.Stats(); slow.Dropped() == 0 || st.Dropped < slow.Dropped() {
		t.Errorf("Stats = %+v, slow member's drops %d: want the slow member's drops counted", st, slow.Dropped())
	}
}

// A read that fills the reader's buffer is likely followed by more: the
// burst goes on over the next read, so that a member writes more of the
// publisher's messages at once than one read holds, and ends when a read
// would wait. (Without that, no burst outlives its read: at most 3 of
// these messages.)
func TestBurstSpansFullReads(t *testing.T) {
	var longest atomic.Int64
	var b *burstGroup
	b = newBurstGroup(t, nil, 4, 0, func(int) {
		longest.Store(max(longest.Load(), int64(b.pub.burst.n)))
	}, 1024)
	ps := burstPayloads(0, 60) // ~350 B each: 3 to a read of 1 KiB
	sendAll(t, b.pubPeer, ps)
	b.expect(t, ps)
	if n := longest.Load(); n <= 3 {
		t.Errorf("the longest burst held %d broadcasts, no more than a read of 1 KiB holds: bursts do not span full reads", n)
	}
	// The burst ended without another read: every member got everything
	// above although the publisher's peer sent nothing more.
}
