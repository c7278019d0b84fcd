package natsbroker_test

import (
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wsactor/wsactor/session"
)

// TestRestart: the NATS server stops while node a publishes to a room
// whose member is on node b, and starts again on the same port. The
// messages published meanwhile are refused and counted as lost, none
// reaches b late or twice, b's member gets the others in order, and
// delivery resumes by itself within seconds.
func TestRestart(t *testing.T) {
	srv := startRestartable(t)
	a, b := newNode(t, "a", natsURL(srv.server())), newNode(t, "b", natsURL(srv.server()))
	m := join(t, b, "live")
	flush(t, a, b)
	o := outage(t, srv, a, m)
	t.Logf("published %d, refused while NATS was down %d (counted lost), received %d, lost uncounted %d (in flight at the stop, or before b had subscribed again); delivery resumed %v after the restart",
		o.published, o.refused, o.received, o.published-o.refused-o.received, o.resume)
}

// TestRepeatedOutages: five outages leave no goroutine and no memory
// behind.
func TestRepeatedOutages(t *testing.T) {
	if testing.Short() {
		t.Skip("five NATS restarts")
	}
	srv := startRestartable(t)
	a, b := newNode(t, "a", natsURL(srv.server())), newNode(t, "b", natsURL(srv.server()))
	m := join(t, b, "live")
	flush(t, a, b)
	var g0 int
	var h0 uint64
	for i := range 5 {
		o := outage(t, srv, a, m)
		g, h := settle(g0)
		t.Logf("outage %d: refused %d, resumed after %v; %d goroutines, heap %d KiB", i+1, o.refused, o.resume, g, h>>10)
		if i == 0 {
			g0, h0 = g, h
			continue
		}
		if g > g0 {
			t.Errorf("outage %d: %d goroutines, %d after the first", i+1, g, g0)
		}
		if h > h0+2<<20 {
			t.Errorf("outage %d: heap %d KiB, %d KiB after the first", i+1, h>>10, h0>>10)
		}
	}
}

// settle returns the goroutine count and the live heap, once the count is
// down to want (goroutines that end soon, as the reconnection's, have had
// a chance to) or after a second.
func settle(want int) (int, uint64) {
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > want && want > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapAlloc
}

type outageResult struct {
	published, refused, received int
	resume                       time.Duration // from the restart to the first message delivered
}

// outage publishes sequence numbers from a to the room "live", whose member
// m is on another node, stops srv during the traffic, starts a server on
// its port again, and checks what m got: in order, never twice, nothing
// that Publish refused, and something again after the restart.
func outage(t *testing.T, srv *restartable, a *node, m *member) outageResult {
	t.Helper()
	lost0 := a.rooms.Stats().Lost

	var mu sync.Mutex
	var (
		published, refused int
		refusedSeq         = map[int]bool{}
		got                []int
		upAt, resumedAt    time.Time
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	stopPublisher := func() {
		stopOnce.Do(func() { close(stop) })
		wg.Wait()
	}
	wg.Go(func() { // the publisher: one message every 500 µs
		tick := time.NewTicker(500 * time.Microsecond)
		defer tick.Stop()
		for seq := 0; ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_, err := a.rooms.Publish("live", session.Text, []byte(strconv.Itoa(seq)))
			mu.Lock()
			published++
			if err != nil {
				refused++
				refusedSeq[seq] = true
			}
			mu.Unlock()
		}
	})
	done := make(chan struct{})
	collected := make(chan struct{})
	go func() { // the collector, until the marker "end"
		defer close(collected)
		for {
			var r received
			select {
			case r = <-m.got:
			case <-done:
				return
			}
			if r.p == "end" {
				return
			}
			seq, err := strconv.Atoi(r.p)
			if err != nil {
				t.Errorf("unexpected message %q", r.p)
				continue
			}
			mu.Lock()
			got = append(got, seq)
			if !upAt.IsZero() && resumedAt.IsZero() {
				resumedAt = time.Now()
			}
			mu.Unlock()
		}
	}()
	defer func() {
		stopPublisher()
		close(done)
		<-collected
	}()
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(testTimeout)
		for {
			mu.Lock()
			ok := cond()
			mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %v: %s has not happened", testTimeout, what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	waitUntil("delivery before the stop", func() bool { return len(got) >= 100 })
	start := srv.stop()
	mu.Lock()
	n := len(got)
	mu.Unlock()
	waitUntil("refusals while NATS is down", func() bool { return refused >= 100 })
	start(t)
	mu.Lock()
	upAt = time.Now()
	after := len(got)
	mu.Unlock()
	if after > n+50 {
		t.Errorf("%d messages delivered while NATS was down", after-n)
	}
	waitUntil("delivery after the restart", func() bool { return len(got) >= after+100 })

	// Stop publishing, then send the marker through NATS: every message
	// on its way is in front of it.
	stopPublisher()
	if _, err := a.rooms.Publish("live", session.Text, []byte("end")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-collected:
	case <-time.After(testTimeout):
		t.Fatal("the end marker did not arrive")
	}

	mu.Lock()
	defer mu.Unlock()
	for i, seq := range got {
		if refusedSeq[seq] {
			t.Errorf("message %d was refused by Publish but delivered", seq)
		}
		if i > 0 && seq <= got[i-1] {
			t.Errorf("message %d after %d: repeated or out of order", seq, got[i-1])
		}
	}
	if lost := a.rooms.Stats().Lost - lost0; lost != uint64(refused) {
		t.Errorf("RoomsStats.Lost went up by %d, Publish refused %d", lost, refused)
	}
	if refused == 0 {
		t.Error("no message refused while NATS was down")
	}
	resume := resumedAt.Sub(upAt)
	if resume > 5*time.Second {
		t.Errorf("delivery resumed %v after the restart, want within 5s", resume)
	}
	return outageResult{published: published, refused: refused, received: len(got), resume: resume}
}

// TestLateServer: nodes started while no NATS server answers serve their
// rooms locally (their publications refused, counted), and join the room
// space when the server comes.
func TestLateServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	a, b := newNode(t, "a", url), newNode(t, "b", url)
	ma, mb := join(t, a, "late"), join(t, b, "late")
	ma.send(t, "alone")
	if got := ma.next(t, testTimeout); got != "alone" {
		t.Fatalf("got %q, want alone", got)
	}
	if lost := a.rooms.Stats().Lost; lost != 1 {
		t.Errorf("a lost %d, want 1", lost)
	}

	startNATS(t, port)
	deadline := time.Now().Add(testTimeout)
	for !a.broker.Stats().Connected || !b.broker.Stats().Connected {
		if time.Now().After(deadline) {
			t.Fatal("the nodes did not connect to the server that came late")
		}
		time.Sleep(5 * time.Millisecond)
	}
	flush(t, a, b)
	ma.send(t, "together")
	for _, m := range []*member{ma, mb} {
		if got := m.next(t, testTimeout); got != "together" {
			t.Errorf("got %q, want together", got)
		}
	}
}
