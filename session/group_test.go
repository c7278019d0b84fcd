package session

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wsactor/wsactor/codec"
)

// A broadcast reaches every member once, the sender included; a session
// that ends leaves by itself, and Remove takes one out.
func TestGroupBroadcast(t *testing.T) {
	g := NewGroup(nil)
	var peers []*rawPeer
	var members []*Session
	for range 5 {
		s, p := openRaw(t, codec.Server, testOptions(), rawConfig{})
		if !g.Add(s) {
			t.Fatal("Add of a live session = false")
		}
		if g.Add(s) {
			t.Error("a second Add of the same session = true")
		}
		members, peers = append(members, s), append(peers, p)
	}
	if n := g.Broadcast(Text, []byte("to all")); n != 5 {
		t.Fatalf("Broadcast queued for %d members, want 5", n)
	}
	for i, p := range peers {
		if f := p.mustRead(t); string(f.payload) != "to all" {
			t.Fatalf("member %d got %v", i, f)
		}
	}
	members[0].Cancel(Terminal, nil)
	awaitDone(t, members[0])
	if !g.Remove(members[1]) || g.Remove(members[1]) {
		t.Error("Remove: want true once, then false")
	}
	if n := g.Len(); n != 3 {
		t.Fatalf("Len = %d after an end and a Remove, want 3", n)
	}
	if n := g.Broadcast(Binary, []byte("to the rest")); n != 3 {
		t.Fatalf("Broadcast queued for %d members, want 3", n)
	}
	for _, p := range peers[2:] {
		if f := p.mustRead(t); string(f.payload) != "to the rest" {
			t.Fatalf("got %v", f)
		}
	}
	if st := g.Stats(); st.Delivered != 8 || st.Dropped != 0 || st.Members != 3 {
		t.Errorf("Stats = %+v, want 8 delivered, 3 members", st)
	}
	if g.Add(members[0]) {
		t.Error("Add of an ended session = true")
	}
}

// Joins from OnOpen race with sessions that end at once, leaves and
// broadcasts: no ended session stays a member, and nothing races (-race).
func TestGroupJoinsRaceWithEnds(t *testing.T) {
	g := NewGroup(nil)
	opts := testOptions()
	opts.OnOpen = func(_ context.Context, s *Session) { g.Add(s) }
	opts.OnMessage = func(s *Session, m Message) { m.Release() }
	url := echoServer(t, testOptions())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				g.Broadcast(Text, []byte("tick"))
				runtime.Gosched()
			}
		}
	})
	var sessions []*Session
	for i := range 40 {
		s := dialSession(t, url, opts)
		sessions = append(sessions, s)
		switch i % 3 {
		case 0:
			s.Cancel(Terminal, nil)
		case 1:
			g.Remove(s)
		}
	}
	close(stop)
	wg.Wait()
	for i, s := range sessions {
		if i%3 == 0 {
			awaitDone(t, s)
		}
	}
	for s := range g.Members() {
		if s.Err() != nil {
			t.Errorf("an ended session is still a member: %v", s.Err())
		}
	}
	if want := 13; g.Len() != want {
		t.Errorf("Len = %d, want %d (40 sessions, 14 ended, 13 removed)", g.Len(), want)
	}
}

// Compressed and plain members get their own wire forms of one broadcast.
func TestGroupWireForms(t *testing.T) {
	g := NewGroup(nil)
	z, pz := acceptCompressedRaw(t, compressedOptions())
	plain, pp := openRaw(t, codec.Server, testOptions(), rawConfig{})
	g.Add(z)
	g.Add(plain)
	payload := bytes.Repeat([]byte("compressible "), 200)
	if n := g.Broadcast(Text, payload); n != 2 {
		t.Fatalf("Broadcast queued for %d, want 2", n)
	}
	h, err := pz.readHeader()
	if err != nil {
		t.Fatal(err)
	}
	body, err := pz.readPayload(h)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Rsv1() || len(body) >= len(payload) {
		t.Errorf("compressed member: RSV1 %v, %d bytes; want a compressed frame", h.Rsv1(), len(body))
	}
	if f := pp.mustRead(t); f.rsv != 0 || !bytes.Equal(f.payload, payload) {
		t.Errorf("plain member: rsv %d, %d bytes; want the plain message", f.rsv, len(f.payload))
	}
}

// A member that does not read: under DropSlow its broadcasts beyond the
// backlog are dropped and counted while the others get every one, and the
// memory it holds stays bounded whatever the number of broadcasts; under
// CloseSlow it is closed with 1013.
func TestGroupSlowMember(t *testing.T) {
	for _, policy := range []SlowPolicy{DropSlow, CloseSlow} {
		t.Run(fmt.Sprint(policy), func(t *testing.T) {
			g := NewGroup(&GroupOptions{MaxBacklog: 256 << 10, SlowPolicy: policy})
			slow, _ := openRaw(t, codec.Server, testOptions(), smallBuffer) // never read
			fast, pf := openRaw(t, codec.Server, testOptions(), rawConfig{})
			g.Add(slow)
			g.Add(fast)
			// The reading member's reader reports its progress, and the
			// publisher keeps within 8 messages of it, so that only the
			// member that does not read falls behind.
			progress := make(chan int, 1)
			received := make(chan int, 1)
			go func() {
				n := 0
				for {
					if _, err := pf.read(); err != nil {
						received <- n
						return
					}
					n++
					select {
					case <-progress:
					default:
					}
					progress <- n
				}
			}()
			const broadcasts = 3000
			payload := make([]byte, 4096) // 12 MiB in all: more than the kernel's buffers take
			var peak int64
			read := 0
			for i := range broadcasts {
				for read < i-8 {
					select {
					case read = <-progress:
					case <-time.After(testTimeout):
						t.Fatalf("the reading member is stuck at %d of %d", read, i)
					}
				}
				g.Broadcast(Binary, payload)
				if i%100 == 0 {
					peak = max(peak, slow.pendingBytes.Load())
				}
			}
			if peak > 256<<10+4096 {
				t.Errorf("the slow member held %d bytes, over its backlog of 256 KiB", peak)
			}
			st := g.Stats()
			switch policy {
			case DropSlow:
				if st.Dropped == 0 || st.SlowClosed != 0 {
					t.Errorf("Stats = %+v, want drops and no close", st)
				}
			case CloseSlow:
				if st.SlowClosed != 1 {
					t.Errorf("Stats = %+v, want the slow member closed once", st)
				}
			}
			for read < broadcasts {
				select {
				case read = <-progress:
				case <-time.After(testTimeout):
					t.Fatalf("the reading member got %d of %d broadcasts", read, broadcasts)
				}
			}
			fast.CloseNow()
			if n := <-received; n < broadcasts {
				t.Errorf("the reading member got %d of %d broadcasts", n, broadcasts)
			}
		})
	}
}

func (p SlowPolicy) String() string {
	if p == CloseSlow {
		return "CloseSlow"
	}
	return "DropSlow"
}

// Rooms are made on the first join and dropped with their last member.
func TestRooms(t *testing.T) {
	r := NewRooms(nil)
	a, pa := openRaw(t, codec.Server, testOptions(), rawConfig{})
	b, _ := openRaw(t, codec.Server, testOptions(), rawConfig{})
	if _, ok := r.Join("lobby", a); !ok {
		t.Fatal("Join = false")
	}
	r.Join("lobby", b)
	r.Join("other", b)
	if r.Len() != 2 {
		t.Fatalf("Len = %d, want 2 rooms", r.Len())
	}
	if n, _ := r.Publish("lobby", Text, []byte("hi")); n != 2 {
		t.Fatalf("Broadcast to lobby queued for %d, want 2", n)
	}
	if f := pa.mustRead(t); string(f.payload) != "hi" {
		t.Fatalf("got %v", f)
	}
	b.Cancel(Terminal, nil)
	awaitDone(t, b)
	if r.Get("other") != nil || r.Len() != 1 {
		t.Errorf("the room whose last member ended is still there (%d rooms)", r.Len())
	}
	a.Cancel(Terminal, nil)
	awaitDone(t, a)
	deadline := time.Now().Add(testTimeout)
	for r.Len() != 0 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if r.Len() != 0 {
		t.Errorf("%d rooms left with no member", r.Len())
	}
	if st := r.Stats(); st.Delivered != 2 {
		t.Errorf("Stats = %+v, want the 2 deliveries of the dropped rooms", st)
	}
}

// memBroker is an in-memory Broker between the Rooms of one test: what a
// node publishes reaches every other node subscribed to the room.
type memBroker struct {
	mu    *sync.Mutex
	subs  map[string]map[*memBroker]func(MessageType, []byte)
	fail  bool
	calls []string
}

func newMemBrokers(n int) []*memBroker {
	mu := new(sync.Mutex)
	subs := map[string]map[*memBroker]func(MessageType, []byte){}
	var bs []*memBroker
	for range n {
		bs = append(bs, &memBroker{mu: mu, subs: subs})
	}
	return bs
}

func (b *memBroker) Publish(room string, typ MessageType, p []byte) error {
	b.mu.Lock()
	if b.fail {
		b.mu.Unlock()
		return fmt.Errorf("broker down")
	}
	var deliver []func(MessageType, []byte)
	for node, f := range b.subs[room] {
		if node != b {
			deliver = append(deliver, f)
		}
	}
	b.mu.Unlock()
	for _, f := range deliver {
		f(typ, p)
	}
	return nil
}

func (b *memBroker) Subscribe(room string, deliver func(MessageType, []byte)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs[room] == nil {
		b.subs[room] = map[*memBroker]func(MessageType, []byte){}
	}
	b.subs[room][b] = deliver
	b.calls = append(b.calls, "sub "+room)
	return nil
}

func (b *memBroker) Unsubscribe(room string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs[room], b)
	b.calls = append(b.calls, "unsub "+room)
	return nil
}

// Rooms on two nodes share a room through a broker: a message published on
// one reaches the members on both, each once; a node is subscribed while
// it has members; a broker that refuses loses the message, counted.
func TestRoomsAcrossNodes(t *testing.T) {
	brokers := newMemBrokers(2)
	nodeA := NewRooms(&RoomsOptions{Broker: brokers[0]})
	nodeB := NewRooms(&RoomsOptions{Broker: brokers[1]})
	a, pa := openRaw(t, codec.Server, testOptions(), rawConfig{})
	b, pb := openRaw(t, codec.Server, testOptions(), rawConfig{})
	nodeA.Join("lobby", a)
	nodeB.Join("lobby", b)
	if n, err := nodeA.Publish("lobby", Text, []byte("from A")); n != 1 || err != nil {
		t.Fatalf("Publish = %d, %v; want 1 local member, nil", n, err)
	}
	for name, p := range map[string]*rawPeer{"A": pa, "B": pb} {
		if f := p.mustRead(t); string(f.payload) != "from A" {
			t.Fatalf("member on %s got %v", name, f)
		}
	}
	brokers[0].mu.Lock()
	brokers[0].fail = true
	brokers[0].mu.Unlock()
	if _, err := nodeA.Publish("lobby", Text, []byte("lost")); err == nil {
		t.Error("Publish through a failing broker returned nil")
	}
	brokers[0].mu.Lock()
	brokers[0].fail = false
	brokers[0].mu.Unlock()
	nodeA.Publish("lobby", Text, []byte("after"))
	if f := pb.mustRead(t); string(f.payload) != "after" {
		t.Fatalf("member on B got %v, want the next message (the lost one never comes)", f)
	}
	if f := pa.mustRead(t); string(f.payload) != "lost" {
		t.Fatalf("member on A got %v, want the local delivery of the lost message", f)
	}
	st := nodeA.Stats()
	if st.Published != 2 || st.Lost != 1 || nodeB.Stats().Remote != 2 {
		t.Errorf("stats A %+v, B %+v; want 2 published, 1 lost, 2 remote", st, nodeB.Stats())
	}
	b.Cancel(Terminal, nil)
	awaitDone(t, b)
	brokers[1].mu.Lock()
	calls := slices.Clone(brokers[1].calls)
	brokers[1].mu.Unlock()
	if want := []string{"sub lobby", "unsub lobby"}; !slices.Equal(calls, want) {
		t.Errorf("node B's broker calls %v, want %v", calls, want)
	}
}

// With GroupOptions.Workers, a broadcast from WorkerThreshold up is
// compressed off the publisher's goroutine: its compression is queued to
// the workers (or done by the first compressed member's writer, should it
// come first: here the only worker is held busy, so it does), and every
// member gets its wire form. Below the threshold, and with the workers'
// queue full, the publisher compresses as without workers.
func TestGroupCompressesOnWorkers(t *testing.T) {
	pool := codec.NewWorkers(1, 1)
	defer pool.Stop()
	g := NewGroup(&GroupOptions{Workers: pool, WorkerThreshold: 4096})
	z, pz := acceptCompressedRaw(t, compressedOptions())
	plain, pp := openRaw(t, codec.Server, testOptions(), rawConfig{})
	g.Add(z)
	g.Add(plain)
	zFrames, pFrames := pz.serve(), pp.serve()
	release := make(chan struct{})
	defer close(release) // before pool.Stop, which waits for the worker
	started := make(chan struct{})
	if !pool.Go(func() { close(started); <-release }) {
		t.Fatal("the worker refused a job")
	}
	<-started // the worker is busy; its queue (1) is empty
	next := func(frames <-chan frame, who string) frame {
		t.Helper()
		select {
		case f := <-frames:
			return f
		case <-time.After(testTimeout):
			t.Fatalf("the %s member got nothing", who)
		}
		return frame{}
	}
	both := func(want []byte) {
		t.Helper()
		f := next(zFrames, "compressed")
		if f.rsv&codec.RSV1 == 0 {
			t.Fatalf("the compressed member got an uncompressed frame")
		}
		if p, err := codec.Inflate(f.payload, 1<<20); err != nil || !bytes.Equal(p, want) {
			t.Fatalf("the compressed member's frame inflates to %d bytes, %v", len(p), err)
		}
		if f := next(pFrames, "plain"); f.rsv != 0 || !bytes.Equal(f.payload, want) {
			t.Fatal("the plain member did not get the plain message")
		}
	}

	// Below the threshold: compressed by the publisher, nothing queued.
	small := bytes.Repeat([]byte("compressible "), 100) // 1300 B
	g.Broadcast(Text, small)
	both(small)

	// At the threshold: the compression is queued to the workers, which
	// fills their queue of 1.
	large := bytes.Repeat([]byte("compressible "), 400) // 5200 B
	g.Broadcast(Text, large)
	if pool.Go(func() {}) {
		t.Fatal("the workers' queue had room after a broadcast over the threshold: it was compressed inline")
	}
	both(large)

	// The queue full: compressed by the publisher.
	g.Broadcast(Text, large)
	both(large)
}
