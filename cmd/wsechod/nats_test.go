package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	natsbroker "github.com/wsactor/wsactor/broker/nats"
	"github.com/wsactor/wsactor/session"
)

// TestNATSDown: a daemon whose NATS does not answer starts anyway, serves
// its rooms locally, counts what it could not pass on, and stops cleanly.
func TestNATSDown(t *testing.T) {
	outR, outW := io.Pipe()
	var stderr lockedBuffer
	sig := make(chan os.Signal, 1)
	exited := make(chan int, 1)
	go func() {
		exited <- run([]string{"-addr", "127.0.0.1:0", "-nats", "nats://127.0.0.1:1", "-nats-name", "lonely"}, outW, &stderr, sig)
		outW.Close()
	}()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("no start line: %v; stderr:\n%s", err, stderr.String())
	}
	m := startLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		t.Fatalf("start line %q", line)
	}
	go io.Copy(io.Discard, outR)
	d := &daemon{addr: m[2], stderr: &stderr}

	a := joinRoom(t, d, "alone")
	a.send(t, "hello")
	if got := a.next(t); got != "hello" {
		t.Errorf("got %q, want hello", got)
	}
	if lost := metric(t, d, "broker_lost"); lost != 1 {
		t.Errorf("broker_lost %v, want 1", lost)
	}
	sig <- syscall.SIGTERM
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit %d, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(testTimeout):
		t.Fatal("run did not return after the signal")
	}
	if !strings.Contains(stderr.String(), "no server answers yet") {
		t.Errorf("the log does not say that NATS is not there:\n%s", stderr.String())
	}
}

// TestRoomsAcrossDaemons runs three wsechod processes on one NATS server
// (then on a cluster of three), with real WebSocket clients on each daemon
// in /room/lobby: a message sent on any daemon reaches the members on
// every daemon exactly once, in the sender's order; the NATS server
// restarts and delivery comes back, the losses counted in /debug/vars; a
// daemon killed leaves the others and their members unaffected.
func TestRoomsAcrossDaemons(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wsechod and runs three of them")
	}
	bin := buildDaemon(t)

	t.Run("one server", func(t *testing.T) {
		ns := runNATS(t, -1)
		port := ns.Addr().(*net.TCPAddr).Port
		defer func() { stopNATS(ns) }()
		ds, members, senders := startRoomSpace(t, bin, []*server.Server{ns, ns, ns})
		deliverAll(t, members, senders, 300)

		// NATS stops: each daemon serves its own members; what it sends
		// meanwhile is lost for the others, and counted.
		stopNATS(ns)
		waitMetric(t, ds[0], func(v map[string]any) bool {
			st, _ := v["nats"].(map[string]any)
			return st != nil && st["Connected"] == false
		})
		lost0 := metric(t, ds[0], "broker_lost")
		for k := range 50 {
			senders[0].send(t, fmt.Sprintf("D0-%d", k))
		}
		for _, m := range members[0] {
			if err := inOrder(readN(t, m, 50), []string{"D0"}, 50); err != nil {
				t.Errorf("a member on the sender's daemon while NATS was down: %v", err)
			}
		}
		if lost := metric(t, ds[0], "broker_lost") - lost0; lost != 50 {
			t.Errorf("broker_lost went up by %v while NATS was down, want 50", lost)
		}

		// NATS is back on its port: delivery resumes by itself.
		ns = runNATS(t, port)
		began := time.Now()
		probe(t, senders[0], []*roomMember{members[1][0], members[2][0]})
		t.Logf("delivery across daemons resumed %v after the NATS server was back", time.Since(began).Round(time.Millisecond))
		for k := range 100 {
			senders[0].send(t, fmt.Sprintf("E0-%d", k))
		}
		for i := range members {
			for _, m := range members[i] {
				if err := inOrder(readSkipping(t, m, "P-", 100), []string{"E0"}, 100); err != nil {
					t.Errorf("a member on daemon %d after the restart: %v", i, err)
				}
			}
		}

		// A daemon killed: the others and their members go on.
		killDaemon(t, ds[2])
		for _, m := range members[2] {
			select {
			case <-m.s.Done():
			case <-time.After(testTimeout):
				t.Fatal("a member of the killed daemon is still open")
			}
		}
		var wg sync.WaitGroup
		for i, s := range senders[:2] {
			wg.Go(func() {
				for k := range 100 {
					if err := s.write(fmt.Sprintf("K%d-%d", i, k)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		for i := range 2 {
			for _, m := range members[i] {
				if err := inOrder(readN(t, m, 200), []string{"K0", "K1"}, 100); err != nil {
					t.Errorf("a member on daemon %d after daemon 2 was killed: %v", i, err)
				}
			}
		}
	})

	t.Run("cluster", func(t *testing.T) {
		srvs := runCluster(t)
		_, members, senders := startRoomSpace(t, bin, srvs)
		deliverAll(t, members, senders, 300)
	})
}

// buildDaemon builds wsechod from this module into a temporary directory.
func buildDaemon(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is not on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "wsechod")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startRoomSpace starts a daemon on each NATS server given, and on each
// two members and a sender (a member too) in /room/lobby; it returns once
// every daemon has its three members and every server knows of every
// daemon's subscription.
func startRoomSpace(t *testing.T, bin string, srvs []*server.Server) (ds []*daemon, members [][]*roomMember, senders []*roomMember) {
	t.Helper()
	for i, ns := range srvs {
		d := startBinary(t, bin, "-nats", "nats://"+ns.Addr().String(), "-nats-name", fmt.Sprint("daemon", i), "-log-level", "warn")
		ds = append(ds, d)
		s := joinRoom(t, d, "lobby")
		senders = append(senders, s)
		members = append(members, []*roomMember{joinRoom(t, d, "lobby"), joinRoom(t, d, "lobby"), s})
	}
	for _, d := range ds {
		waitMetric(t, d, func(v map[string]any) bool { return v["room_members"] == 3.0 })
	}
	subject := natsbroker.DefaultPrefix + "." + natsbroker.Token("lobby") + ".t"
	deadline := time.Now().Add(testTimeout)
	for _, ns := range srvs {
		for ns.GlobalAccount().Interest(subject) < len(ds) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if n := ns.GlobalAccount().Interest(subject); n < len(ds) {
			t.Fatalf("NATS server %s knows of %d subscriptions to %s, want %d", ns.Name(), n, subject, len(ds))
		}
	}
	return ds, members, senders
}

// deliverAll has every sender send n messages at once, and checks that
// every member gets all of them, once, in each sender's order.
func deliverAll(t *testing.T, members [][]*roomMember, senders []*roomMember, n int) {
	t.Helper()
	var names []string
	for i := range senders {
		names = append(names, fmt.Sprint("S", i))
	}
	began := time.Now()
	var wg sync.WaitGroup
	for i, s := range senders {
		wg.Go(func() {
			for k := range n {
				if err := s.write(fmt.Sprintf("S%d-%d", i, k)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	count := 0
	for i := range members {
		for _, m := range members[i] {
			if err := inOrder(readN(t, m, len(senders)*n), names, n); err != nil {
				t.Errorf("a member on daemon %d: %v", i, err)
			}
			count += len(senders) * n
		}
	}
	took := time.Since(began)
	t.Logf("%d senders x %d messages to %d members on %d daemons: %v, %.0f deliveries/s",
		len(senders), n, count/(len(senders)*n), len(members), took.Round(time.Millisecond), float64(count)/took.Seconds())
}

// probe sends "P-k" from s every 20 ms until each of the members has
// received one (they are on other daemons: NATS carries them).
func probe(t *testing.T, s *roomMember, members []*roomMember) {
	t.Helper()
	seen := make([]bool, len(members))
	deadline := time.Now().Add(testTimeout)
	for k := 0; ; k++ {
		s.send(t, fmt.Sprintf("P-%d", k))
		all := true
		for i, m := range members {
		drain:
			for !seen[i] {
				select {
				case p := <-m.got:
					if !strings.HasPrefix(p, "P-") {
						t.Errorf("a member on another daemon got %q after the restart, want only probes", p)
					}
					seen[i] = true
				default:
					break drain
				}
			}
			all = all && seen[i]
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery across daemons did not resume within %v of the NATS restart", testTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runNATS runs a NATS server in the test's process on port (-1: a free
// one); the test's cleanup stops it if the test has not.
func runNATS(t *testing.T, port int) *server.Server {
	t.Helper()
	return runServer(t, &server.Options{Host: "127.0.0.1", Port: port})
}

func runServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.NoLog, opts.NoSigs = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		stopNATS(ns)
		t.Fatal("NATS server not ready after 10s")
	}
	t.Cleanup(func() { stopNATS(ns) })
	return ns
}

func stopNATS(ns *server.Server) {
	ns.Shutdown()
	ns.WaitForShutdown()
}

// runCluster runs three NATS servers with routes between them.
func runCluster(t *testing.T) []*server.Server {
	t.Helper()
	var srvs []*server.Server
	var routes []*url.URL
	for range 3 {
		ns := runServer(t, &server.Options{
			Host:    "127.0.0.1",
			Port:    -1,
			Cluster: server.ClusterOpts{Name: "wsechod", Host: "127.0.0.1", Port: -1},
			Routes:  routes,
		})
		srvs = append(srvs, ns)
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: ns.ClusterAddr().String()})
	}
	return srvs
}

// killDaemon kills a daemon's process (SIGKILL: no shutdown).
func killDaemon(t *testing.T, d *daemon) {
	t.Helper()
	d.cmd.Process.Kill()
	d.wait(t)
}

// roomMember is a WebSocket client in a room of a daemon; what it receives
// goes to got, in order.
type roomMember struct {
	s    *session.Session
	got  chan string
	done chan struct{}
}

func joinRoom(t *testing.T, d *daemon, room string) *roomMember {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := session.Dial(ctx, "ws://"+d.addr+"/room/"+url.PathEscape(room), nil)
	if err != nil {
		t.Fatalf("join %s: %v", room, err)
	}
	m := &roomMember{s: s, got: make(chan string, 1<<14), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			msg, err := s.Read(context.Background())
			if err != nil {
				return
			}
			m.got <- string(msg.Payload)
			msg.Release()
		}
	}()
	t.Cleanup(func() {
		s.CloseNow()
		<-m.done
	})
	return m
}

func (m *roomMember) send(t *testing.T, p string) {
	t.Helper()
	if err := m.write(p); err != nil {
		t.Fatal(err)
	}
}

// write is send for goroutines other than the test's.
func (m *roomMember) write(p string) error {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	return m.s.WriteContext(ctx, session.Text, []byte(p))
}

func (m *roomMember) next(t *testing.T) string {
	t.Helper()
	select {
	case p := <-m.got:
		return p
	case <-time.After(testTimeout):
		t.Fatalf("no message within %v", testTimeout)
		return ""
	}
}

// readN returns the next n messages.
func readN(t *testing.T, m *roomMember, n int) []string {
	t.Helper()
	got := make([]string, 0, n)
	for range n {
		got = append(got, m.next(t))
	}
	return got
}

// readSkipping returns the next n messages that do not begin with skip.
func readSkipping(t *testing.T, m *roomMember, skip string, n int) []string {
	t.Helper()
	got := make([]string, 0, n)
	for len(got) < n {
		if p := m.next(t); !strings.HasPrefix(p, skip) {
			got = append(got, p)
		}
	}
	return got
}

// inOrder checks that got holds, for each sender, "SENDER-0" ...
// "SENDER-(n-1)", each exactly once and in that order, and nothing else.
func inOrder(got []string, senders []string, n int) error {
	next := make(map[string]int)
	for _, s := range senders {
		next[s] = 0
	}
	for _, p := range got {
		sender, seq, ok := strings.Cut(p, "-")
		want, known := next[sender]
		if !ok || !known {
			return fmt.Errorf("unexpected message %q", p)
		}
		if seq != fmt.Sprint(want) {
			return fmt.Errorf("from %s: got %q, want %s-%d (lost, repeated or out of order)", sender, p, sender, want)
		}
		next[sender]++
	}
	for _, s := range senders {
		if next[s] != n {
			return fmt.Errorf("from %s: %d messages, want %d", s, next[s], n)
		}
	}
	return nil
}

// vars returns the daemon's /debug/vars.
func vars(t *testing.T, d *daemon) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + d.addr + "/debug/vars")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	v := map[string]any{}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// metric returns one number of the daemon's /debug/vars.
func metric(t *testing.T, d *daemon, key string) float64 {
	t.Helper()
	n, ok := vars(t, d)[key].(float64)
	if !ok {
		t.Fatalf("/debug/vars has no number %s", key)
	}
	return n
}

// waitMetric waits until the daemon's /debug/vars satisfy cond.
func waitMetric(t *testing.T, d *daemon, cond func(map[string]any) bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond(vars(t, d)) {
		if time.Now().After(deadline) {
			t.Fatalf("/debug/vars of %s did not reach the state awaited within %v", d.addr, testTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRoomNamesAcrossDaemons: rooms whose names stress the subject mapping
// (dots, spaces, NATS wildcards, the escape character, unicode, the
// longest names the daemon takes, which NATS gets as hashes) stay apart
// across two wsechod processes: a member gets its own room's messages from
// the other daemon, once, in order, and nothing of the other rooms', and
// the sender's own members get nothing back from NATS.
func TestRoomNamesAcrossDaemons(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wsechod and runs two of them")
	}
	bin := buildDaemon(t)
	long := strings.Repeat("é", 64) // 128 bytes; its escaped token is hashed
	names := []string{
		"a", "a.b", "a..b", ".", "..", "a b", " ", "*", ">", "a.*", "a.>", "*.>",
		"~", "~2E", "a~2Eb", "%41", "café", "日本語", "emoji 🎉", "tab\there",
		strings.Repeat("x", 128), long, long[:126] + "è",
	}
	ns := runNATS(t, -1)
	natsURL := "nats://" + ns.Addr().String()
	d0 := startBinary(t, bin, "-nats", natsURL, "-nats-name", "names-0", "-log-level", "warn")
	d1 := startBinary(t, bin, "-nats", natsURL, "-nats-name", "names-1", "-log-level", "warn")
	senders := make([]*roomMember, len(names))
	receivers := make([]*roomMember, len(names))
	for i, name := range names {
		senders[i] = joinRoom(t, d0, name)
		receivers[i] = joinRoom(t, d1, name)
	}
	for _, d := range []*daemon{d0, d1} {
		waitMetric(t, d, func(v map[string]any) bool {
			return v["rooms"] == float64(len(names)) && v["room_members"] == float64(len(names))
		})
	}
	deadline := time.Now().Add(testTimeout)
	for _, name := range names {
		subject := natsbroker.DefaultPrefix + "." + natsbroker.Token(name) + ".t"
		for ns.GlobalAccount().Interest(subject) < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("room %q: NATS knows of %d subscriptions to %s, want 2", name, ns.GlobalAccount().Interest(subject), subject)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// Every room's message, then every room's end: a message that leaked
	// into another room would come before that room's end.
	for i := range names {
		senders[i].send(t, fmt.Sprintf("msg-%d", i))
	}
	for i := range names {
		senders[i].send(t, fmt.Sprintf("end-%d", i))
	}
	for i, name := range names {
		for _, m := range []*roomMember{senders[i], receivers[i]} {
			for _, want := range []string{fmt.Sprintf("msg-%d", i), fmt.Sprintf("end-%d", i)} {
				if got := m.next(t); got != want {
					t.Fatalf("room %q: got %q, want %q", name, got, want)
				}
			}
		}
	}
	// A fin from d1 once d1's member has the end: an echo of d0's own
	// messages through NATS would reach d0's member before it.
	for i := range names {
		receivers[i].send(t, fmt.Sprintf("fin-%d", i))
	}
	for i, name := range names {
		for _, m := range []*roomMember{senders[i], receivers[i]} {
			if got, want := m.next(t), fmt.Sprintf("fin-%d", i); got != want {
				t.Fatalf("room %q: got %q, want %q", name, got, want)
			}
		}
	}
	for _, d := range []*daemon{d0, d1} {
		if lost, remote := metric(t, d, "broker_lost"), metric(t, d, "broker_remote"); lost != 0 || remote != float64(len(names)*map[*daemon]int{d0: 1, d1: 2}[d]) {
			t.Errorf("%s: broker_lost %v, broker_remote %v", d.addr, lost, remote)
		}
	}
}

// TestDaemonOutages: five NATS restarts under two wsechod processes leave
// no goroutine and no memory behind in either: each outage's messages are
// counted as lost (exactly), never delivered late, and delivery resumes by
// itself each time.
func TestDaemonOutages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wsechod and restarts NATS five times under two of them")
	}
	bin := buildDaemon(t)
	ns := runNATS(t, -1)
	port := ns.Addr().(*net.TCPAddr).Port
	natsURL := "nats://" + ns.Addr().String()
	ds := []*daemon{
		startBinary(t, bin, "-nats", natsURL, "-log-level", "error"),
		startBinary(t, bin, "-nats", natsURL, "-log-level", "error"),
	}
	s0, m1 := joinRoom(t, ds[0], "live"), joinRoom(t, ds[1], "live")
	probe(t, s0, []*roomMember{m1})
	// probe stops at the first probe heard, and later ones may still be on
	// their way: a marker behind them, so that the probes after an outage
	// cannot be taken for ones from before it.
	s0.send(t, "M-0")
	for _, m := range []*roomMember{s0, m1} {
		if got := readSkipping(t, m, "P-", 1); got[0] != "M-0" {
			t.Fatalf("got %q, want the marker", got[0])
		}
	}
	const (
		outages = 5
		sent    = 5
	)
	var g0 [2]float64
	var h0 [2]float64
	for i := range outages {
		stopNATS(ns)
		for _, d := range ds {
			waitMetric(t, d, func(v map[string]any) bool {
				st, _ := v["nats"].(map[string]any)
				return st != nil && st["Connected"] == false
			})
		}
		lost0 := metric(t, ds[0], "broker_lost")
		for k := range sent {
			s0.send(t, fmt.Sprintf("D%d-%d", i, k))
		}
		if got := readSkipping(t, s0, "P-", sent); inOrder(got, []string{fmt.Sprint("D", i)}, sent) != nil {
			t.Fatalf("outage %d: the sender's daemon delivered %q", i+1, got)
		}
		if lost := metric(t, ds[0], "broker_lost") - lost0; lost != sent {
			t.Errorf("outage %d: broker_lost went up by %v, want %d", i+1, lost, sent)
		}

		ns = runNATS(t, port)
		probe(t, s0, []*roomMember{m1})
		// After the probes, a marker: the other daemon's member gets
		// probes and the marker, nothing sent while NATS was down, and no
		// probe of this outage is left for the next.
		s0.send(t, fmt.Sprintf("E%d-0", i))
		for j, m := range []*roomMember{s0, m1} {
			want := fmt.Sprintf("E%d-0", i)
		read:
			for {
				select {
				case p := <-m.got:
					if strings.HasPrefix(p, "P-") {
						continue
					}
					if p != want {
						t.Fatalf("outage %d: got %q, want the marker", i+1, p)
					}
					break read
				case <-time.After(testTimeout):
					for _, d := range ds {
						v := vars(t, d)
						t.Logf("%s: nats %v lost %v remote %v published %v", d.addr, v["nats"], v["broker_lost"], v["broker_remote"], v["broker_published"])
					}
					t.Fatalf("outage %d: member %d did not get the marker", i+1, j)
				}
			}
		}

		for j, d := range ds {
			g, h := settled(t, d, g0[j])
			t.Logf("outage %d, daemon %d: %v goroutines, heap in use %.0f KiB", i+1, j, g, h/1024)
			if i == 0 {
				g0[j], h0[j] = g, h
				continue
			}
			if g > g0[j] {
				t.Errorf("outage %d, daemon %d: %v goroutines, %v after the first", i+1, j, g, g0[j])
			}
			if h > h0[j]+2<<20 {
				t.Errorf("outage %d, daemon %d: heap in use %.0f KiB, %.0f KiB after the first", i+1, j, h/1024, h0[j]/1024)
			}
		}
	}
}

// settled returns a daemon's goroutines and heap in use after a garbage
// collection, once the goroutines are down to want (those of a
// reconnection end soon after it) or a second has passed.
func settled(t *testing.T, d *daemon, want float64) (goroutines, heap float64) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		resp, err := http.Get("http://" + d.addr + "/debug/vars?gc=1")
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Goroutines float64 `json:"goroutines"`
			Heap       float64 `json:"heap_inuse_bytes"`
		}
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want == 0 || v.Goroutines <= want || time.Now().After(deadline) {
			return v.Goroutines, v.Heap
		}
		time.Sleep(20 * time.Millisecond)
	}
}
