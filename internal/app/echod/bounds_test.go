package echod

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/session"
)

// The bounds against peers: what a peer can make the daemon hold, in
// bytes and in time.

// TestBoundsReachSessions: the Config's bounds are every session's, with
// the daemon's defaults.
func TestBoundsReachSessions(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want session.Options // the bound fields only
	}{
		{
			name: "defaults",
			want: session.Options{
				WriteTimeout:    5 * time.Second,
				MessageTimeout:  20 * time.Second,
				MessageMinRate:  500,
				MaxPendingBytes: 1 << 20,
			},
		},
		{
			name: "set",
			cfg: Config{
				WriteTimeout:    time.Second,
				MessageTimeout:  3 * time.Second,
				MessageMinRate:  100,
				MaxPendingBytes: 64 << 10,
			},
			want: session.Options{
				WriteTimeout:    time.Second,
				MessageTimeout:  3 * time.Second,
				MessageMinRate:  100,
				MaxPendingBytes: 64 << 10,
			},
		},
		{
			name: "timeouts disabled",
			cfg: Config{
				WriteTimeout:   -1,
				MessageTimeout: -1,
			},
			want: session.Options{
				WriteTimeout:    -1,
				MessageTimeout:  -1,
				MessageMinRate:  500,
				MaxPendingBytes: 1 << 20,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Broadcast = true
			cfg.Logger = slog.New(slog.DiscardHandler)
			s := New(cfg)
			for name, o := range map[string]*session.Options{"echo": &s.echoOpts, "room": &s.roomOpts} {
				if o.WriteTimeout != tc.want.WriteTimeout || o.MessageTimeout != tc.want.MessageTimeout ||
					o.MessageMinRate != tc.want.MessageMinRate || o.MaxPendingBytes != tc.want.MaxPendingBytes {
					t.Errorf("%s sessions: WriteTimeout %v, MessageTimeout %v, MessageMinRate %d, MaxPendingBytes %d; want %v, %v, %d, %d",
						name, o.WriteTimeout, o.MessageTimeout, o.MessageMinRate, o.MaxPendingBytes,
						tc.want.WriteTimeout, tc.want.MessageTimeout, tc.want.MessageMinRate, tc.want.MaxPendingBytes)
				}
			}
		})
	}
}

// readMessages reads n data frames from r, skipping pings, and returns
// them; it stops early at a close frame, which it returns last.
func (r *raw) readMessages(n int) (ops []ws.OpCode, payloads [][]byte) {
	r.t.Helper()
	for len(ops) < n {
		h, p, err := r.frame()
		if err != nil {
			r.t.Fatalf("after %d of %d messages: %v", len(ops), n, err)
		}
		if h.OpCode == ws.OpPing || h.OpCode == ws.OpPong {
			continue
		}
		ops, payloads = append(ops, h.OpCode), append(payloads, p)
		if h.OpCode == ws.OpClose {
			break
		}
	}
	return ops, payloads
}

// TestEchoBehindLargeMessage: messages that follow a message larger than
// MaxPendingBytes in the same read are echoed too. The session takes one
// message over the bound when nothing else waits, and writes a read's
// answers once the read is handled; the echoes behind the large one would
// be over the bound, and must be written after it, not refused.
func TestEchoBehindLargeMessage(t *testing.T) {
	s, addr := start(t, Config{}) // MaxPendingBytes 1 MiB
	r := rawUpgrade(t, addr, "/")
	big := bytes.Repeat([]byte{0xab}, 2<<20)
	const small = 10
	b := clientFrame(true, ws.OpBinary, big)
	for i := range small {
		b = append(b, clientFrame(true, ws.OpText, fmt.Appendf(nil, "small %d", i))...)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := r.nc.Write(b)
		wrote <- err
	}()
	ops, ps := r.readMessages(1 + small)
	if err := <-wrote; err != nil {
		t.Fatalf("write: %v", err)
	}
	if ops[0] != ws.OpBinary || !bytes.Equal(ps[0], big) {
		t.Fatalf("first echo: %v of %d bytes, want the 2 MiB binary message", ops[0], len(ps[0]))
	}
	for i := range small {
		if want := fmt.Sprintf("small %d", i); ops[1+i] != ws.OpText || string(ps[1+i]) != want {
			t.Fatalf("echo %d: %v %q, want text %q", 1+i, ops[1+i], ps[1+i], want)
		}
	}
	if got := statInt(t, stats(t, s), "echo_refused"); got != 0 {
		t.Errorf("echo_refused = %d, want 0", got)
	}
}

// TestEchoNotLostSilently: an echo the session refuses (here with a bound of
// 1 KiB and twenty 400-byte messages in one read) is never lost in
// silence: the messages before it are echoed, then the session is closed
// with 1011 and the refusal counted. (Should the session write a read's
// answers before its backlog passes the bound, all twenty come back: that
// passes too.)
func TestEchoNotLostSilently(t *testing.T) {
	s, addr := start(t, Config{MaxPendingBytes: 1 << 10})
	r := rawUpgrade(t, addr, "/")
	const n = 20
	var b []byte
	for i := range n {
		b = append(b, clientFrame(true, ws.OpText, fmt.Appendf(bytes.Repeat([]byte{'.'}, 397), "%03d", i))...)
	}
	r.write(b)
	ops, ps := r.readMessages(n)
	echoed := 0
	for i, op := range ops {
		if op == ws.OpClose {
			break
		}
		if want := fmt.Sprintf("%03d", i); op != ws.OpText || !strings.HasSuffix(string(ps[i]), want) {
			t.Fatalf("echo %d: %v of %d bytes, want text ending in %s", i, op, len(ps[i]), want)
		}
		echoed++
	}
	refused := echoed < n
	if refused {
		code, reason, err := codec.ParseClosePayload(ps[echoed])
		if err != nil || code != codec.CloseInternalError {
			t.Fatalf("after %d echoes: close %d %q (%v), want 1011", echoed, code, reason, err)
		}
		t.Logf("%d of %d echoed, then close 1011 %q", echoed, n, reason)
		r.expectEOF()
	} else {
		t.Logf("all %d echoed", n)
		r.write(closeFrame(codec.CloseNormalClosure, ""))
		r.expectClose(codec.CloseNormalClosure)
	}
	waitOpen(t, s, 0)
	v := stats(t, s)
	want := int64(0)
	if refused {
		want = 1
	}
	if got := statInt(t, v, "echo_refused"); got != want {
		t.Errorf("echo_refused = %d, want %d", got, want)
	}
	if got := statInt(t, v, "messages_out"); got != int64(echoed) {
		t.Errorf("messages_out = %d, want the %d echoed", got, echoed)
	}
}

// TestTricklerDefaultConfig: against the daemon as it runs with no flags
// but the address, a client that declares a 1 MiB frame and sends one byte
// of it every 2 s (each byte resets the idle timeout) is closed with 1008
// once the message timeout, 20 s, has passed.
func TestTricklerDefaultConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("takes the default message timeout, 20 s")
	}
	logs := new(logRecorder)
	s, addr := serve(t, Config{Addr: "127.0.0.1:0", Logger: slog.New(logs)})
	const bound = 30 * time.Second
	r := rawUpgrade(t, addr, "/")
	r.nc.SetDeadline(time.Now().Add(bound + testTimeout))

	began := time.Now()
	r.write(header64(1 << 20))
	stop := make(chan struct{})
	trickled := make(chan int, 1)
	go func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		n := 0
		defer func() { trickled <- n }()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := r.nc.Write([]byte{'x'}); err != nil {
				return
			}
			n++
		}
	}()

	var code codec.CloseCode // 0: the connection ended without a close frame
	var end error
	for end == nil {
		h, p, err := r.frame()
		switch {
		case err != nil:
			end = err
		case h.OpCode == ws.OpClose:
			code, _, err = codec.ParseClosePayload(p)
			end = err
			if err == nil {
				end = errors.New("close frame")
			}
		case h.OpCode != ws.OpPing && h.OpCode != ws.OpPong:
			t.Fatalf("a %v frame of %d bytes from the server", h.OpCode, len(p))
		}
	}
	took := time.Since(began)
	close(stop)
	n := <-trickled
	r.nc.Close()
	t.Logf("closed after %v (%d bytes trickled): close code %d, %v", took.Round(time.Millisecond), n, code, end)
	var ne net.Error
	if errors.As(end, &ne) && ne.Timeout() {
		t.Fatalf("not closed within %v", bound+testTimeout)
	}
	if code != 0 && code != codec.ClosePolicyViolation {
		t.Fatalf("closed with %d, want 1008 (policy violation)", code)
	}
	if took > bound {
		t.Errorf("closed after %v, want within %v", took, bound)
	}
	if took < DefaultMessageTimeout-time.Second {
		t.Errorf("closed after %v, before the message timeout (%v)", took, DefaultMessageTimeout)
	}
	waitOpen(t, s, 0)
	ends := logs.sessionEnds()
	if len(ends) != 1 {
		t.Fatalf("%d session end lines, want 1", len(ends))
	}
	if got := ends[0]["code"].Int64(); got != int64(codec.ClosePolicyViolation) {
		t.Errorf("session ended with code %d (%v), want 1008", got, ends[0]["err"])
	}
	if err, _ := ends[0]["err"].Any().(error); !errors.Is(err, session.ErrMessageTimeout) {
		t.Errorf("session ended with %v, want ErrMessageTimeout", ends[0]["err"])
	}
}

// quiet waits, for at most max, until no goroutine but the caller runs or
// waits to run: the daemon has done with what it was given.
func quiet(max time.Duration) {
	s := []rtmetrics.Sample{{Name: "/sched/goroutines/runnable:goroutines"}, {Name: "/sched/goroutines/running:goroutines"}}
	for deadline := time.Now().Add(max); time.Now().Before(deadline); {
		rtmetrics.Read(s)
		if s[0].Value.Uint64()+s[1].Value.Uint64() <= 1 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// memory is what the process holds, in bytes: its heap spans in use
// (HeapInuse), its live heap as the last garbage collection found it (the
// objects alone, without the free room of their spans), and its goroutine
// stacks.
type memory struct{ inuse, live, stacks int64 }

// measure collects garbage (twice: pooled buffers survive one) and reads
// the process's memory.
func measure() memory {
	runtime.GC()
	runtime.GC()
	s := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	rtmetrics.Read(s)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memory{inuse: int64(ms.HeapInuse), live: int64(s[0].Value.Uint64()), stacks: int64(ms.StackInuse)}
}

// per returns what m holds above base, per session of n, as
// HeapInuse+StackInuse, live heap, and stacks.
func (m memory) per(base memory, n int) (total, live, stacks int64) {
	k := int64(n)
	return (m.inuse + m.stacks - base.inuse - base.stacks) / k, (m.live - base.live) / k, (m.stacks - base.stacks) / k
}

// trickleChildEnv, set, makes TestTricklers the client side of the test
// in a child process: "addr n interval": n connections to addr, each
// trickling a 1 MiB frame one byte per interval.
const trickleChildEnv = "ECHOD_TRICKLE_CHILD"

// pauseAfter is the round after which the child waits for "resume" on
// stdin: the parent measures the daemon's memory meanwhile, with no read
// in flight.
const pauseAfter = 2

// childDeadline is how long the child trickles before it gives up on the
// connections still open.
const childDeadline = 20 * time.Second

// TestTricklers: 2000 clients each declare a 1 MiB frame and send one byte
// of it every 500 ms. All are closed with 1008 within the message timeout
// (3 s here) and a few seconds, and meanwhile a trickler costs the daemon
// no more than an idle session and what it sent: at most 8 KiB. The
// clients run in a child process (this test binary again), so that the
// memory measured is the daemon's alone.
func TestTricklers(t *testing.T) {
	if spec := os.Getenv(trickleChildEnv); spec != "" {
		trickleChild(t, spec)
		return
	}
	const (
		n        = 2000
		timeout  = 3 * time.Second
		interval = 500 * time.Millisecond
		// The bound on what a trickler costs: 6.5-7.2 KiB under -race on
		// a quiet machine, up to 8.7 on a loaded one; 8144e36's
		// tricklers took 14-16 KiB and grew.
		perConn = 10 << 10
		// The last close may come this late: the ticks that enforce the
		// timeout run late on a machine loaded with other test binaries
		// (12 s seen); a trickler that is never cut runs into
		// childDeadline.
		closeBound = timeout + 3*slack
	)
	needFiles(t, n+512)
	s, addr := start(t, Config{MessageTimeout: timeout, IdleTimeout: time.Minute})
	base := measure()
	goroutines := runtime.NumGoroutine()

	child := exec.Command(os.Args[0], "-test.run=^TestTricklers$", "-test.count=1", "-test.timeout=2m")
	child.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d", trickleChildEnv, addr, n, interval.Milliseconds()))
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, n+16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), "trickle: "); ok {
				lines <- l
			}
		}
		close(lines)
		exited <- child.Wait()
	}()
	t.Cleanup(func() {
		stdin.Close()
		child.Process.Kill()
		for range lines {
		}
		<-exited
	})
	// next returns the child's next line that starts with prefix.
	next := func(prefix string, within time.Duration) string {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the child ended before %q; stderr:\n%s", prefix, stderr.String())
				}
				if strings.HasPrefix(l, prefix) {
					return l
				}
				if strings.HasPrefix(l, "failed") {
					t.Fatalf("child: %s", l)
				}
			case <-deadline:
				t.Fatalf("no %q from the child within %v; stderr:\n%s", prefix, within, stderr.String())
			}
		}
	}

	next("connected", 60*time.Second)
	waitOpen(t, s, n)
	// Idle sessions park their readers (Options.ParkAfter, 1 s): wait for
	// their goroutines to go, to measure what an idle session costs.
	parked := time.After(4 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
wait:
	for runtime.NumGoroutine() > goroutines+n/10 {
		select {
		case <-tick.C:
		case <-parked:
			break wait // measured all the same: some readers still wait
		}
	}
	idle := measure()
	idleGoroutines := runtime.NumGoroutine() - goroutines

	io.WriteString(stdin, "go\n")
	// Every message has begun and its second byte is out; the child waits.
	// What a trickler costs between its bytes is measured once the daemon
	// has read them all: while it reads a byte it holds a read buffer,
	// which is not per trickler. The pause stays within the tricklers'
	// usual gap, under a second, so that their readers do not park.
	next(fmt.Sprint("round ", pauseAfter), 10*time.Second)
	quiet(100 * time.Millisecond)
	trickling := measure()
	io.WriteString(stdin, "resume\n")
	trickleGoroutines := runtime.NumGoroutine() - goroutines
	idleTotal, idleLive, idleStacks := idle.per(base, n)
	total, live, stacks := trickling.per(base, n)
	t.Logf("an idle session costs %d B (live heap %d B, stacks %d B; %d goroutines for %d sessions)",
		idleTotal, idleLive, idleStacks, idleGoroutines, n)
	t.Logf("a trickler costs %d B (live heap %d B, stacks %d B; %d goroutines for %d tricklers), having sent %d B",
		total, live, stacks, trickleGoroutines, n, len(header64(0))+pauseAfter)
	if total > perConn {
		t.Errorf("a trickler costs the daemon %d B (HeapInuse+StackInuse), want at most %d", total, perConn)
	}

	var closed, policy, ended int
	var slowest, fastest time.Duration
	fastest = time.Hour
	for {
		l := next("", childDeadline+testTimeout)
		if l == "done" {
			break
		}
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "closed" {
			continue
		}
		ms, _ := strconv.Atoi(f[1])
		code, _ := strconv.Atoi(f[2])
		took := time.Duration(ms) * time.Millisecond
		switch code {
		case int(codec.ClosePolicyViolation):
			policy++
		case 0:
			ended++ // the connection ended without a close frame
		case -1:
			continue // still open when the child gave up
		default:
			t.Errorf("a trickler was closed with %d, want 1008", code)
		}
		closed++
		slowest, fastest = max(slowest, took), min(fastest, took)
	}
	t.Logf("%d of %d closed (%d with 1008, %d without a close frame) between %v and %v after their first byte",
		closed, n, policy, ended, fastest, slowest)
	if closed != n {
		t.Errorf("%d of %d tricklers closed within %v", closed, n, childDeadline)
	}
	if slowest > closeBound {
		t.Errorf("the last trickler was closed %v after its first byte, want within %v", slowest, closeBound)
	}
	if fastest < timeout-250*time.Millisecond {
		t.Errorf("a trickler was closed %v after its first byte, before the message timeout (%v)", fastest, timeout)
	}
	waitOpen(t, s, 0)
	if got := statInt(t, stats(t, s), "closes_by_code.1008"); got != n {
		t.Errorf("closes_by_code[1008] = %d, want %d", got, n)
	}
}

// trickleChild is TestTricklers' client side, in the child process. It
// writes its progress to stdout as lines that start with "trickle: ":
// "connected" once every connection is open; then, after "go" on stdin,
// each connection's frame header and one byte of payload per interval,
// "round K" after each round, "closed MS CODE" for each connection (the
// milliseconds from its header to its end; CODE 0 when it ended without a
// close frame, -1 when it was still open at the child's deadline), and
// "done".
func trickleChild(t *testing.T, spec string) {
	var addr string
	var n, ms int
	if _, err := fmt.Sscanf(spec, "%s %d %d", &addr, &n, &ms); err != nil {
		fmt.Printf("trickle: failed %s=%q: %v\n", trickleChildEnv, spec, err)
		t.Fatal(err)
	}
	type tconn struct {
		nc    net.Conn
		br    *bufio.Reader
		began time.Time
		done  atomic.Bool
	}
	conns := make([]*tconn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.nc.Close()
			}
		}
	}()
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				nc, err := net.DialTimeout("tcp", addr, testTimeout)
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					continue
				}
				nc.SetDeadline(time.Now().Add(testTimeout))
				br := bufio.NewReaderSize(nc, 512)
				io.WriteString(nc, handshakeRequest(addr, "/"))
				resp, err := http.ReadResponse(br, nil)
				if err == nil && resp.StatusCode != http.StatusSwitchingProtocols {
					err = errors.New(resp.Status)
				}
				if err != nil {
					failed.CompareAndSwap(nil, &err)
				}
				nc.SetDeadline(time.Time{})
				conns[i] = &tconn{nc: nc, br: br}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if e := failed.Load(); e != nil {
		fmt.Printf("trickle: failed connecting: %v\n", *e)
		t.Fatal(*e)
	}
	fmt.Println("trickle: connected")
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return // the parent gave up
	}

	interval := time.Duration(ms) * time.Millisecond
	deadline := time.Now().Add(childDeadline)
	results := make(chan string, n)
	header := header64(1 << 20)
	for _, c := range conns {
		c.began = time.Now()
		c.nc.Write(header)
		wg.Go(func() {
			code := 0
			for {
				h, err := ws.ReadHeader(c.br)
				if err != nil {
					break
				}
				if h.OpCode == ws.OpClose && h.Length >= 2 {
					var p [2]byte
					if _, err := io.ReadFull(c.br, p[:]); err == nil {
						code = int(binary.BigEndian.Uint16(p[:]))
					}
					break
				}
				if _, err := io.CopyN(io.Discard, c.br, h.Length); err != nil {
					break
				}
			}
			took := time.Since(c.began)
			c.done.Store(true)
			if time.Now().After(deadline) {
				code = -1
			}
			c.nc.Close()
			results <- fmt.Sprintf("closed %d %d", took.Milliseconds(), code)
		})
	}
	stop := make(chan struct{})
	var writer sync.WaitGroup
	writer.Go(func() {
		// Each round is spread over the interval, a slice of the
		// connections at a time, as tricklers that keep their own time
		// would be: not 2000 bytes at once.
		const slices = 50
		tick := time.NewTicker(interval / slices)
		defer tick.Stop()
		for round := 1; ; round++ {
			for k := range slices {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				for _, c := range conns[k*n/slices : (k+1)*n/slices] {
					if !c.done.Load() {
						c.nc.SetWriteDeadline(time.Now().Add(interval))
						c.nc.Write([]byte{'x'})
					}
				}
			}
			fmt.Printf("trickle: round %d\n", round)
			if round == pauseAfter {
				in.ReadString('\n') // "resume", or the parent is gone
				tick.Reset(interval / slices)
			}
		}
	})
	giveUp := time.AfterFunc(time.Until(deadline), func() {
		for _, c := range conns {
			c.nc.SetReadDeadline(time.Now())
		}
	})
	var out []string
	for range n {
		out = append(out, <-results)
	}
	giveUp.Stop()
	close(stop)
	writer.Wait()
	wg.Wait()
	for _, l := range out {
		fmt.Println("trickle: " + l)
	}
	fmt.Println("trickle: done")
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// eventually waits until cond holds, looking every few milliseconds, for at
// most within.
func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(within)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s: not within %v", what, within)
		}
	}
}

// sessionEnd returns the "session end" record of the session whose peer
// is at remote.
func (l *logRecorder) sessionEnd(remote string) (slog.Record, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.records {
		if r.Message != "session end" {
			continue
		}
		found := false
		r.Attrs(func(a slog.Attr) bool {
			found = a.Key == "remote" && a.Value.String() == remote
			return !found
		})
		if found {
			return r, true
		}
	}
	return slog.Record{}, false
}

// recordAttr returns the value of r's attribute named key.
func recordAttr(r slog.Record, key string) slog.Value {
	var v slog.Value
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}

// receiver is a broadcast member that reads: it counts the messages that
// come and checks that they come in order.
type receiver struct {
	c    *session.Session
	got  atomic.Int64
	bad  atomic.Pointer[string] // the first message out of order
	done chan struct{}          // closed once the session's messages end
}

func newReceiver(t *testing.T, url string) *receiver {
	t.Helper()
	r := &receiver{c: dial(t, url, nil), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		last := int64(-1) // the sequence number of the last message
		for m := range r.c.Messages() {
			seq := int64(-1)
			if len(m.Payload) >= 8 {
				seq = int64(binary.BigEndian.Uint64(m.Payload))
			}
			if seq <= last {
				msg := fmt.Sprintf("message %d after %d", seq, last)
				r.bad.CompareAndSwap(nil, &msg)
			}
			last = seq
			r.got.Add(1)
			m.Release()
		}
	}()
	return r
}

// TestBroadcastStuckMembers: on /broadcast, 45 members read, 5 never do
// (with a small receive buffer), and one more sends 5000 messages of 1 KiB.
// The daemon's heap stays bounded whatever the number of messages sent;
// the stuck members are ended by the write timeout (1 s here) soon after
// their connection stopped taking bytes, and leave; every member that
// reads gets every message in order, except those counted as dropped for
// it, which broadcast_dropped adds up.
func TestBroadcastStuckMembers(t *testing.T) {
	const (
		readers   = 45
		stuck     = 5
		messages  = 5000
		size      = 1 << 10
		wto       = time.Second
		heapBound = 64 << 20
	)
	logs := new(logRecorder)
	s, addr := start(t, Config{Broadcast: true, WriteTimeout: wto, IdleTimeout: time.Minute, Logger: slog.New(logs)})
	url := "ws://" + addr + "/broadcast"

	// The sender reads too: it is the first receiver.
	recv := make([]*receiver, readers+1)
	for i := range recv {
		recv[i] = newReceiver(t, url)
	}
	sender := recv[0].c
	stuckConns := make([]net.Conn, stuck)
	for i := range stuckConns {
		d := net.Dialer{Timeout: testTimeout, Control: smallReceiveBuffer}
		nc, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		r := &raw{t: t, nc: nc, br: bufio.NewReader(nc)}
		nc.SetDeadline(time.Now().Add(testTimeout))
		if resp, body := r.request(handshakeRequest(addr, "/broadcast")); resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake: %s %s", resp.Status, body)
		}
		nc.SetDeadline(time.Time{})
		stuckConns[i] = nc
	}
	members := len(recv) + stuck
	waitOpen(t, s, int64(members))
	eventually(t, "every member in the room", testTimeout, func() bool {
		return s.rooms.Stats().Members == members
	})
	// Each member's session, by its peer's address, for its drop count.
	byPeer := make(map[string]*session.Session)
	s.mu.Lock()
	for ss := range s.conns.all() {
		byPeer[ss.RemoteAddr().String()] = ss
	}
	s.mu.Unlock()

	// When each stuck connection last took bytes: the bytes in flight on
	// it, in the daemon's send queue and the member's receive queue, grew.
	var progressMu sync.Mutex
	lastProgress := make([]time.Time, stuck)
	queued := make([]int, stuck)
	stopWatch := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopWatch:
				return
			case <-tick.C:
			}
			progressMu.Lock()
			for i, nc := range stuckConns {
				q := inq(nc)
				if sq := sendQueue(addr, nc.LocalAddr().String()); q >= 0 && sq >= 0 {
					q += sq
				}
				// More than one byte: closing the socket queues its FIN,
				// which counts as one.
				if q > queued[i]+1 || lastProgress[i].IsZero() {
					lastProgress[i] = time.Now()
				}
				queued[i] = max(queued[i], q)
			}
			progressMu.Unlock()
		}
	})
	defer func() {
		close(stopWatch)
		watch.Wait()
	}()

	base := measure()
	var heap, live []int64 // above base, at the half and at the end
	p := make([]byte, size)
	began := time.Now()
	for i := range messages {
		binary.BigEndian.PutUint64(p, uint64(i))
		if err := sender.WriteContext(t.Context(), session.Binary, p); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if i+1 == messages/2 || i+1 == messages {
			m := measure()
			heap, live = append(heap, m.inuse-base.inuse), append(live, m.live-base.live)
		}
		if time.Since(began) > time.Minute {
			t.Fatalf("sent %d messages in a minute", i+1)
		}
	}
	sent := time.Since(began)
	t.Logf("%d messages of %d B sent in %v; the heap (HeapInuse) %d KiB above its start at %d messages (live heap %d KiB), %d KiB at %d (live %d KiB)",
		messages, size, sent.Round(time.Millisecond), heap[0]>>10, messages/2, live[0]>>10, heap[1]>>10, messages, live[1]>>10)
	for i, h := range heap {
		if h > heapBound {
			t.Errorf("the heap grew %d MiB at message %d, want under %d MiB", h>>20, (i+1)*messages/2, heapBound>>20)
		}
	}
	// Growth is judged on the live heap: HeapInuse also counts what was
	// allocated since the collection ended, which the race detector's
	// pools (they drop a quarter of what they are given) make noisy.
	if live[1] > live[0]+heapBound/4 {
		t.Errorf("the live heap kept growing: %d KiB at %d messages, %d KiB at %d", live[0]>>10, messages/2, live[1]>>10, messages)
	}

	// Every reading member has every message, or its drops account for
	// the rest.
	eventually(t, "the reading members received or lost every message", 30*time.Second, func() bool {
		for _, r := range recv {
			if r.got.Load()+int64(byPeer[r.c.LocalAddr().String()].Dropped()) != messages {
				return false
			}
		}
		return true
	})
	var got, lost int64
	for i, r := range recv {
		if b := r.bad.Load(); b != nil {
			t.Errorf("member %d: out of order: %s", i, *b)
		}
		got += r.got.Load()
		lost += int64(byPeer[r.c.LocalAddr().String()].Dropped())
	}
	t.Logf("%d reading members: %d messages received, %d dropped (counted)", len(recv), got, lost)

	// The stuck members are ended by the write timeout once their
	// connection stops taking bytes, and leave the hub.
	waitOpen(t, s, int64(len(recv)))
	if n := s.rooms.Stats().Members; n != len(recv) {
		t.Errorf("%d members in the hub, want the %d that read", n, len(recv))
	}
	progressMu.Lock()
	for i, nc := range stuckConns {
		rec, ok := logs.sessionEnd(nc.LocalAddr().String())
		if !ok {
			t.Errorf("stuck member %d: no session end line", i)
			continue
		}
		err, _ := recordAttr(rec, "err").Any().(error)
		after := rec.Time.Sub(lastProgress[i])
		// The write timeout bounds a write, not the time since the last
		// byte went: a write that still creeps on when its time is up
		// ends the session too (after is then about 0 or below).
		t.Logf("stuck member %d: ended %v after its connection last took bytes (%d B in flight), %d messages dropped: %v",
			i, after.Round(time.Millisecond), queued[i], recordAttr(rec, "broadcast_dropped").Int64(), err)
		if !errors.Is(err, session.ErrWriteTimeout) {
			t.Errorf("stuck member %d ended with %v, want ErrWriteTimeout", i, err)
		}
		if queued[i] >= 0 && after > wto+slack {
			t.Errorf("stuck member %d ended %v after its connection last took bytes, want within %v", i, after, wto+slack)
		}
	}
	progressMu.Unlock()

	for _, r := range recv {
		closeClient(t, r.c, codec.CloseNormalClosure, "")
		<-r.done
	}
	waitOpen(t, s, 0)
	var perMember int64
	for _, e := range logs.sessionEnds() {
		perMember += e["broadcast_dropped"].Int64()
	}
	v := stats(t, s)
	if total := statInt(t, v, "broadcast_dropped"); total != perMember || total < lost {
		t.Errorf("broadcast_dropped = %d; the members' session end lines count %d, the reading members lost %d", total, perMember, lost)
	}
	if in := statInt(t, v, "messages_in"); in != messages {
		t.Errorf("messages_in = %d, want %d", in, messages)
	}
	// The live heap: HeapInuse keeps the spans that pooled buffers
	// fragmented for a while after they are free.
	if m := measure(); m.live-base.live > 4<<20 {
		t.Errorf("the live heap is %d KiB above its start once every message is delivered and every member gone (HeapInuse %d KiB)",
			(m.live-base.live)>>10, (m.inuse-base.inuse)>>10)
	}
}
