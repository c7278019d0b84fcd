package session

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/internal/netpoll"
)

// benchServer accepts sessions on a loopback listener with opts until the
// benchmark ends.
func benchServer(b testing.TB, opts *Options) (addr string, sessions chan *Session) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	sessions = make(chan *Session, 16384)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := AcceptConn(c, opts)
			if err != nil {
				continue
			}
			sessions <- s
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		<-done
		close(sessions)
		for s := range sessions {
			s.Cancel(Terminal, nil)
			<-s.Done()
		}
	})
	return ln.Addr().String(), sessions
}

// BenchmarkWrite measures the session's write path: Write, the vectored
// write, and the completion, with a peer that reads and discards.
func BenchmarkWrite(b *testing.B) {
	for _, size := range []int{64, 1024, 64 << 10} {
		b.Run(sizeName(size), func(b *testing.B) {
			addr, sessions := benchServer(b, &Options{IdleTimeout: -1})
			peer, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer peer.Close()
			if _, _, err := ws.DefaultDialer.Upgrade(peer, mustURL("ws://"+addr+"/")); err != nil {
				b.Fatal(err)
			}
			s := <-sessions
			go io.Copy(io.Discard, peer)
			p := make([]byte, size)
			const window = 64
			reply := make(chan Completion, window)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			inflight := 0
			for i := 0; i < b.N; i++ {
				if inflight == window {
					if c := <-reply; c.Err != nil {
						b.Fatal(c.Err)
					}
					inflight--
				}
				s.WriteBinary(p, reply)
				inflight++
			}
			for ; inflight > 0; inflight-- {
				<-reply
			}
		})
	}
}

// BenchmarkEcho measures a round trip through two sessions: a client
// session writes, a server session echoes with WriteMessage, the client
// receives from Messages. 16 messages are in flight.
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{64, 1024, 64 << 10} {
		b.Run(sizeName(size), func(b *testing.B) {
			addr, _ := benchServer(b, &Options{IdleTimeout: -1, OnMessage: func(s *Session, m Message) { s.WriteMessage(&m, nil) }})
			c, err := Dial(context.Background(), "ws://"+addr+"/", &Options{InboundSize: 64})
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				c.Cancel(Terminal, nil)
				<-c.Done()
				for m := range c.Messages() {
					m.Release()
				}
			}()
			p := make([]byte, size)
			const window = 16
			reply := make(chan Completion, 2*window)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			sent, got := 0, 0
			for got < b.N {
				for sent < b.N && sent-got < window {
					c.WriteBinary(p, reply)
					sent++
				}
				m, ok := <-c.Messages()
				if !ok {
					b.Fatal(c.Err())
				}
				if len(m.Payload) != size {
					b.Fatalf("echo of %d bytes, want %d", len(m.Payload), size)
				}
				m.Release()
				got++
			drain:
				for {
					select {
					case <-reply:
					default:
						break drain
					}
				}
			}
		})
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// BenchmarkIdleSessions opens WSACTOR_IDLE_SESSIONS (default 5000) idle
// server sessions, their clients in a child process so that only the
// sessions are measured, and reports memory per session: Go heap plus
// stacks from runtime.MemStats, and the process's resident set.
//
//	go test -run='^$' -bench=IdleSessions -benchtime=1x ./session/
func BenchmarkIdleSessions(b *testing.B) {
	n := 5000
	if v := os.Getenv("WSACTOR_IDLE_SESSIONS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	for i := 0; i < b.N; i++ {
		heap, rss := measureIdle(b, n)
		b.ReportMetric(heap/1024, "heap+stack-KiB/session")
		b.ReportMetric(rss/1024, "rss-KiB/session")
	}
}

func measureIdle(b *testing.B, n int) (heapPer, rssPer float64) {
	// The lean way a server reads (the echo daemon's): a handler, no channel.
	addr, sessions := benchServer(b, &Options{
		ParkAfter: 200 * time.Millisecond,
		OnMessage: func(s *Session, m Message) { s.WriteMessage(&m, nil) },
	})
	heap0, rss0 := memNow()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClientProcess$")
	cmd.Env = append(os.Environ(), "WSACTOR_IDLE_CLIENT="+addr, "WSACTOR_IDLE_N="+strconv.Itoa(n))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	held := make([]*Session, 0, n)
	defer func() {
		for _, s := range held {
			s.Cancel(Terminal, nil)
			<-s.Done()
		}
	}()
	for i := 0; i < n; i++ {
		select {
		case s := <-sessions:
			held = append(held, s)
		case <-time.After(30 * time.Second):
			b.Fatalf("only %d of %d sessions accepted", i, n)
		}
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		b.Fatalf("client process: %q %v", line, err)
	}
	// An idle session parks its reader after ParkAfter: measure then.
	for deadline := time.Now().Add(30 * time.Second); netpoll.Supported() && netpoll.Shared().Parked() < n; {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d sessions parked", netpoll.Shared().Parked(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	heap1, rss1 := memNow()
	if os.Getenv("WSACTOR_IDLE_VERBOSE") != "" {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.Logf("heap inuse %d, stack inuse %d, goroutines %d", ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine())
		if f, err := os.Create("/tmp/idle-heap.prof"); err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	return float64(heap1-heap0) / float64(n), float64(rss1-rss0) / float64(n)
}

func memNow() (heapAndStacks, rss uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse, readRSS()
}

func readRSS() uint64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// TestIdleClientProcess is the client side of BenchmarkIdleSessions, run in
// a child process; it does nothing in a normal test run.
func TestIdleClientProcess(t *testing.T) {
	addr := os.Getenv("WSACTOR_IDLE_CLIENT")
	if addr == "" {
		t.Skip("runs only as BenchmarkIdleSessions' child process")
	}
	n, _ := strconv.Atoi(os.Getenv("WSACTOR_IDLE_N"))
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, _, _, err := ws.Dial(context.Background(), "ws://"+addr+"/")
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}
