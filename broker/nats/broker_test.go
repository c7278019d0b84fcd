package natsbroker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	natsbroker "github.com/wsactor/wsactor/broker/nats"
	"github.com/wsactor/wsactor/session"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestTwoNodes: two nodes share one NATS server; a sender on each writes
// 1000 messages to one room; every member, on either node, senders
// included, gets each message exactly once, in its sender's order.
func TestTwoNodes(t *testing.T) {
	const n = 1000
	srv := startNATS(t, -1)
	a, b := newNode(t, "a", natsURL(srv)), newNode(t, "b", natsURL(srv))
	var members []*member
	for _, nd := range []*node{a, b, a, b} {
		members = append(members, join(t, nd, "lobby"))
	}
	senders := map[string]*member{"A": join(t, a, "lobby"), "B": join(t, b, "lobby")}
	members = append(members, senders["A"], senders["B"])
	flush(t, a, b)

	start := time.Now()
	var wg sync.WaitGroup
	for name, s := range senders {
		wg.Go(func() {
			for i := range n {
				if err := s.write(fmt.Sprintf("%s-%d", name, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, m := range members {
		got := make([]string, 0, 2*n)
		for range 2 * n {
			got = append(got, m.next(t, testTimeout))
		}
		if err := inOrder(got, []string{"A", "B"}, n); err != nil {
			t.Errorf("member %d: %v", i, err)
		}
	}
	elapsed := time.Since(start)
	for _, nd := range []*node{a, b} {
		st := nd.rooms.Stats()
		if st.Published != n || st.Lost != 0 || st.Remote != n || st.Dropped != 0 {
			t.Errorf("%s: %+v, want %d published, %d from the other node, none lost or dropped", nd.name, st, n, n)
		}
	}
	t.Logf("%d messages to %d members on two nodes in %v: %.0f deliveries/s", 2*n, len(members), elapsed,
		float64(2*n*len(members))/elapsed.Seconds())
}

// TestRoomNames: rooms whose names stress the subject mapping stay apart; a
// member gets its own room's messages, once, and nothing of the others',
// and a node's own members get its publication once (no echo from NATS).
func TestRoomNames(t *testing.T) {
	names := []string{
		"a", "b", "a.b", "a.b.c", "a~2Eb", "a b", " ", "*", ">", "a.*", "a.>", "*.>",
		"", ".", "..", "~", "~~", "\t", "a\r\nb", "café", "日本語", "emoji 🎉",
		strings.Repeat("x", natsbroker.MaxTokenLen), strings.Repeat("x", natsbroker.MaxTokenLen+1),
		strings.Repeat("y.", 3000), strings.Repeat("é", 500),
	}
	srv := startNATS(t, -1)
	a, b := newNode(t, "a", natsURL(srv)), newNode(t, "b", natsURL(srv))
	senders := make([]*member, len(names))
	receivers := make([]*member, len(names))
	for i, name := range names {
		senders[i] = join(t, a, name)
		receivers[i] = join(t, b, name)
	}
	flush(t, a, b)

	// Every room's message, then every room's end: a message that leaked
	// into another room, or an echo, would come before that room's end or
	// before its fin.
	for i := range names {
		senders[i].send(t, fmt.Sprintf("msg %d", i))
	}
	for i := range names {
		senders[i].send(t, fmt.Sprintf("end %d", i))
	}
	for i := range names {
		for _, want := range []string{fmt.Sprintf("msg %d", i), fmt.Sprintf("end %d", i)} {
			if got := receivers[i].next(t, testTimeout); got != want {
				t.Fatalf("room %.40q on b: got %q, want %q", names[i], got, want)
			}
		}
	}
	// A fin from b after b has the end: an echo of a's messages would
	// reach a before it.
	for i := range names {
		receivers[i].send(t, fmt.Sprintf("fin %d", i))
	}
	for i := range names {
		for _, m := range []*member{senders[i], receivers[i]} {
			for _, want := range []string{fmt.Sprintf("msg %d", i), fmt.Sprintf("end %d", i), fmt.Sprintf("fin %d", i)} {
				if m == receivers[i] && want != fmt.Sprintf("fin %d", i) {
					continue // read above
				}
				if got := m.next(t, testTimeout); got != want {
					t.Fatalf("room %.40q: got %q, want %q", names[i], got, want)
				}
			}
		}
	}
	if st := a.broker.Stats(); st.Subscriptions != len(names) || st.Received != uint64(len(names)) || st.Refused != 0 {
		t.Errorf("a: %+v, want %d subscriptions, %d received, none refused", st, len(names), len(names))
	}
}

// TestBinary: the message type crosses nodes with the payload unchanged.
func TestBinary(t *testing.T) {
	srv := startNATS(t, -1)
	a, b := newNode(t, "a", natsURL(srv)), newNode(t, "b", natsURL(srv))
	m := join(t, b, "bin")
	join(t, a, "bin") // a subscribes too, and gets nothing back
	flush(t, a, b)
	p := []byte{0, 0xff, 0xfe, '.', '*'}
	if _, err := a.rooms.Publish("bin", session.Binary, p); err != nil {
		t.Fatal(err)
	}
	if _, err := a.rooms.Publish("bin", session.Text, []byte("text")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []received{{session.Binary, string(p)}, {session.Text, "text"}} {
		if got := m.nextMessage(t, testTimeout); got != want {
			t.Errorf("got %v %q, want %v %q", got.typ, got.p, want.typ, want.p)
		}
	}
}

// TestChurn: members that join and leave many times leave no subscription
// behind, and the last join is subscribed.
func TestChurn(t *testing.T) {
	srv := startNATS(t, -1)
	a, b := newNode(t, "a", natsURL(srv)), newNode(t, "b", natsURL(srv))
	before := srv.NumSubscriptions()
	for i := range 20 {
		m := join(t, b, fmt.Sprintf("churn-%d", i%3))
		m.s.CloseNow()
		<-m.done
	}
	deadline := time.Now().Add(testTimeout)
	for b.rooms.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("b still has %d rooms", b.rooms.Len())
		}
		time.Sleep(time.Millisecond)
	}
	flush(t, b)
	if st := b.broker.Stats(); st.Subscriptions != 0 {
		t.Errorf("b: %d subscriptions after every member left, want 0", st.Subscriptions)
	}
	if n := srv.NumSubscriptions(); n != before {
		t.Errorf("the server has %d subscriptions, want %d as before the members came", n, before)
	}
	m := join(t, b, "churn-0")
	flush(t, b)
	if _, err := a.rooms.Publish("churn-0", session.Text, []byte("back")); err != nil {
		t.Fatal(err)
	}
	if got := m.next(t, testTimeout); got != "back" {
		t.Errorf("got %q, want back", got)
	}
}

// TestCluster: three NATS servers with routes between them, a node on each;
// every member gets every sender's messages once, in order.
func TestCluster(t *testing.T) {
	const n = 300
	srvs := startCluster(t)
	var nodes []*node
	var members []*member
	senders := map[string]*member{}
	for i, s := range srvs {
		nd := newNode(t, fmt.Sprint("node", i), natsURL(s))
		nodes = append(nodes, nd)
		members = append(members, join(t, nd, "cluster"), join(t, nd, "cluster"))
		senders[fmt.Sprint("S", i)] = join(t, nd, "cluster")
	}
	flush(t, nodes...)
	waitInterest(t, srvs, "cluster", len(nodes))
	var wg sync.WaitGroup
	for name, s := range senders {
		members = append(members, s)
		wg.Go(func() {
			for i := range n {
				if err := s.write(fmt.Sprintf("%s-%d", name, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, m := range members {
		got := make([]string, 0, 3*n)
		for range 3 * n {
			got = append(got, m.next(t, testTimeout))
		}
		if err := inOrder(got, []string{"S0", "S1", "S2"}, n); err != nil {
			t.Errorf("member %d: %v", i, err)
		}
	}
}

// TestNew: New refuses a connection that would break the guarantees, and
// takes one that keeps them, which Close leaves open.
func TestNew(t *testing.T) {
	srv := startNATS(t, -1)
	for _, tc := range []struct {
		name string
		opts []nats.Option
		ok   bool
	}{
		{
			name: "echo",
			opts: []nats.Option{nats.ReconnectBufSize(-1)},
		},
		{
			name: "reconnect buffer",
			opts: []nats.Option{nats.NoEcho()},
		},
		{
			name: "both",
			opts: []nats.Option{nats.NoEcho(), nats.ReconnectBufSize(-1)},
			ok:   true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := nats.Connect(natsURL(srv), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			b, err := natsbroker.New(nc, &natsbroker.Options{Logger: quiet})
			if (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok %v", err, tc.ok)
			}
			if err != nil {
				return
			}
			if err := b.Subscribe("r", func(session.MessageType, []byte) {}); err != nil {
				t.Fatal(err)
			}
			if err := b.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			b.Close()
			if !nc.IsConnected() {
				t.Error("Close closed the caller's connection")
			}
			if n := nc.NumSubscriptions(); n != 0 {
				t.Errorf("%d subscriptions left on the caller's connection", n)
			}
			if err := b.Publish("r", session.Text, nil); !errors.Is(err, natsbroker.ErrClosed) {
				t.Errorf("Publish after Close: %v, want ErrClosed", err)
			}
		})
	}
}

// TestLossesCounted: a message over the server's max_payload is refused and
// counted; messages that find a receiving node's delivery queue full are
// dropped and counted, and the others are delivered in order.
func TestLossesCounted(t *testing.T) {
	srv := startNATS(t, -1)
	a := newNode(t, "a", natsURL(srv))
	if _, err := a.rooms.Publish("big", session.Binary, make([]byte, 2<<20)); err == nil {
		t.Error("a 2 MiB message was taken by a server whose max_payload is 1 MiB")
	}
	if st := a.rooms.Stats(); st.Lost != 1 {
		t.Errorf("Lost %d after a refused message, want 1", st.Lost)
	}

	b, err := natsbroker.Connect(natsURL(srv), &natsbroker.Options{QueueSize: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	release := make(chan struct{})
	var got []string
	b.Subscribe("slow", func(_ session.MessageType, p []byte) {
		<-release
		got = append(got, string(p))
	})
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		if err := a.broker.Publish("slow", session.Text, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.broker.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Each message has reached b (a's flush is answered after the server
	// handed them to b's connection) once b answers its own flush.
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(release)
	deadline := time.Now().Add(testTimeout)
	for {
		st := b.Stats()
		if st.Received+st.Dropped == n {
			if st.Dropped == 0 {
				t.Error("no message dropped with a queue of 1 and a stuck delivery")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d + dropped %d, want %d", st.Received, st.Dropped, n)
		}
		time.Sleep(time.Millisecond)
	}
	b.Close()
	prev := -1
	for _, p := range got {
		var i int
		fmt.Sscan(p, &i)
		if i <= prev {
			t.Fatalf("%d after %d", i, prev)
		}
		prev = i
	}
	t.Logf("queue of 1: %d delivered, %d dropped and counted", len(got), n-len(got))
}
