package echod

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"go.uber.org/goleak"

	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/session"
)

// checkServing checks that the daemon still echoes.
func checkServing(t *testing.T, addr string) {
	t.Helper()
	c := dial(t, "ws://"+addr+"/", nil)
	echo(t, c, session.Text, []byte("still here"))
	closeClient(t, c, codec.CloseNormalClosure, "")
}

func TestBadHandshakes(t *testing.T) {
	s, addr := start(t, Config{})
	for _, tc := range []struct {
		name    string
		req     string
		status  int
		version bool // the response must say Sec-WebSocket-Version: 13
	}{
		{
			name:    "plain GET",
			req:     "GET / HTTP/1.1\r\nHost: " + addr + "\r\n\r\n",
			status:  http.StatusUpgradeRequired,
			version: true,
		},
		{
			name:    "version 8",
			req:     strings.Replace(handshakeRequest(addr, "/"), "Version: 13", "Version: 8", 1),
			status:  http.StatusUpgradeRequired,
			version: true,
		},
		{
			name:   "no version",
			req:    strings.Replace(handshakeRequest(addr, "/"), "Sec-WebSocket-Version: 13\r\n", "", 1),
			status: http.StatusBadRequest,
		},
		{
			name:   "no key",
			req:    strings.Replace(handshakeRequest(addr, "/"), "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 1),
			status: http.StatusBadRequest,
		},
		{
			name:   "key not base64",
			req:    strings.Replace(handshakeRequest(addr, "/"), "dGhlIHNhbXBsZSBub25jZQ==", "not a key at all!", 1),
			status: http.StatusBadRequest,
		},
		{
			name:   "key of 15 bytes",
			req:    strings.Replace(handshakeRequest(addr, "/"), "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ=", 1),
			status: http.StatusBadRequest,
		},
		{
			name:   "POST",
			req:    strings.Replace(handshakeRequest(addr, "/"), "GET", "POST", 1),
			status: http.StatusMethodNotAllowed,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rawDial(t, addr)
			resp, body := r.request(tc.req)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %s, want %d", resp.Status, body, tc.status)
			}
			if tc.version && resp.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Errorf("no Sec-WebSocket-Version: 13 in %v", resp.Header)
			}
			checkServing(t, addr)
		})
	}
	if got := statInt(t, stats(t, s), "handshake_failures"); got != 7 {
		t.Errorf("handshake_failures = %d, want 7", got)
	}
}

// TestHugeHeaders: 2 MiB of headers get 431 once net/http has read its
// limit, and the daemon does not read the rest into memory.
func TestHugeHeaders(t *testing.T) {
	_, addr := start(t, Config{})
	for _, tc := range []struct {
		name string
		pad  func(n int) string
	}{
		{
			name: "many header lines",
			pad: func(n int) string {
				var b strings.Builder
				for i := 0; b.Len() < n; i++ {
					b.WriteString("X-Pad: " + strings.Repeat("p", 1000) + "\r\n")
				}
				return b.String()
			},
		},
		{
			name: "one long header line",
			pad: func(n int) string {
				return "X-Pad: " + strings.Repeat("p", n) + "\r\n"
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const size = 2 << 20
			req := []byte(strings.TrimSuffix(handshakeRequest(addr, "/"), "\r\n") + tc.pad(size) + "\r\n")
			r := rawDial(t, addr)
			runtime.GC()
			before := totalAlloc()

			// Send in chunks, and stop as soon as the response is there.
			answered := make(chan struct{})
			sent := make(chan int, 1)
			go func() {
				n := 0
				for n < len(req) {
					select {
					case <-answered:
						sent <- n
						return
					default:
					}
					k, err := r.nc.Write(req[n:min(n+16<<10, len(req))])
					n += k
					if err != nil {
						break
					}
				}
				sent <- n
			}()
			resp, err := http.ReadResponse(r.br, nil)
			close(answered)
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			resp.Body.Close()
			n := <-sent
			grew := totalAlloc() - before
			t.Logf("%d of %d bytes sent when the response came; %d KiB allocated meanwhile", n, len(req), grew>>10)
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("%s, want 431", resp.Status)
			}
			if grew > 1<<20 {
				t.Errorf("%d KiB allocated while refusing %d KiB of headers", grew>>10, len(req)>>10)
			}
			checkServing(t, addr)
		})
	}
}

// TestSlowloris: a handshake that dribbles in, and a connection that sends
// nothing, are both cut at the handshake timeout.
func TestSlowloris(t *testing.T) {
	const hto = 300 * time.Millisecond
	_, addr := start(t, Config{HandshakeTimeout: hto})
	for _, tc := range []struct {
		name    string
		dribble bool
	}{
		{
			name:    "one byte every 100 ms",
			dribble: true,
		},
		{
			name: "silent",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rawDial(t, addr)
			began := time.Now()
			stop := make(chan struct{})
			wrote := make(chan int, 1)
			if tc.dribble {
				req := []byte(handshakeRequest(addr, "/"))
				go func() {
					tick := time.NewTicker(100 * time.Millisecond)
					defer tick.Stop()
					n := 0
					defer func() { wrote <- n }()
					for ; n < len(req); n++ {
						select {
						case <-stop:
							return
						case <-tick.C:
						}
						if _, err := r.nc.Write(req[n : n+1]); err != nil {
							return
						}
					}
				}()
			} else {
				wrote <- 0
			}
			_, err := io.Copy(io.Discard, r.nc) // until the server closes
			cut := time.Since(began)
			close(stop)
			n := <-wrote
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server did not close the connection within %v", testTimeout)
			}
			t.Logf("cut after %v, %d bytes sent", cut.Round(time.Millisecond), n)
			if cut < hto-50*time.Millisecond || cut > hto+slack {
				t.Errorf("cut after %v, want about %v", cut, hto)
			}
		})
	}
	checkServing(t, addr)
}

// TestLengthTopBit: a 64-bit length with its most significant bit set is a
// protocol error, never a panic.
func TestLengthTopBit(t *testing.T) {
	s, addr := start(t, Config{})
	for _, n := range []uint64{1 << 63, 1<<63 | 5, ^uint64(0)} {
		r := rawUpgrade(t, addr, "/")
		r.write(header64(n))
		r.write([]byte("abc"))
		r.expectClose(codec.CloseProtocolError)
	}
	waitOpen(t, s, 0)
	v := stats(t, s)
	if got := statInt(t, v, "closes_by_code.1002"); got != 3 {
		t.Errorf("closes_by_code[1002] = %d, want 3", got)
	}
	checkServing(t, addr)
}

// TestTooBig: a frame declaring more than the message limit gets 1009 at
// its header, before anything is allocated for it.
func TestTooBig(t *testing.T) {
	s, addr := start(t, Config{}) // the default limit, 16 MiB
	for _, tc := range []struct {
		name string
		n    uint64
	}{
		{
			name: "2^63-1",
			n:    1<<63 - 1,
		},
		{
			name: "limit+1",
			n:    DefaultMaxMessage + 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rawUpgrade(t, addr, "/")
			runtime.GC()
			before := totalAlloc()
			r.write(header64(tc.n))
			r.write(bytes.Repeat([]byte{'x'}, 1000))
			r.expectClose(codec.CloseMessageTooBig)
			if grew := totalAlloc() - before; grew > 1<<20 {
				t.Errorf("%d KiB allocated for a frame refused at its header", grew>>10)
			}
		})
	}
	t.Run("fragments over the limit", func(t *testing.T) {
		s, addr := start(t, Config{MaxMessage: 1000})
		r := rawUpgrade(t, addr, "/")
		r.write(clientFrame(false, ws.OpBinary, make([]byte, 600)))
		r.write(clientFrame(true, ws.OpContinuation, make([]byte, 600)))
		r.expectClose(codec.CloseMessageTooBig)
		waitOpen(t, s, 0)
	})
	waitOpen(t, s, 0)
	if got := statInt(t, stats(t, s), "closes_by_code.1009"); got != 2 {
		t.Errorf("closes_by_code[1009] = %d, want 2", got)
	}
}

// TestStalledFrame: a frame that declares 8 MiB, sends a few bytes and
// stalls allocates little and is closed at the idle timeout.
func TestStalledFrame(t *testing.T) {
	const idle = 300 * time.Millisecond
	s, addr := start(t, Config{IdleTimeout: idle})
	r := rawUpgrade(t, addr, "/")
	runtime.GC()
	before := totalAlloc()
	began := time.Now()
	r.write(header64(8 << 20))
	r.write([]byte("0123456789"))
	r.expectClose(codec.CloseGoingAway)
	took := time.Since(began)
	grew := totalAlloc() - before
	t.Logf("closed after %v; %d KiB allocated", took.Round(time.Millisecond), grew>>10)
	if took < idle-50*time.Millisecond || took > idle+slack {
		t.Errorf("closed after %v, want about %v", took, idle)
	}
	if grew > 2<<20 {
		t.Errorf("%d KiB allocated for a frame that sent 10 bytes of 8 MiB", grew>>10)
	}
	waitOpen(t, s, 0)
}

func TestMaxConns(t *testing.T) {
	s, addr := start(t, Config{MaxConns: 2})
	a := dial(t, "ws://"+addr+"/", nil)
	b := dial(t, "ws://"+addr+"/", nil)
	waitOpen(t, s, 2)

	r := rawDial(t, addr)
	resp, body := r.request(handshakeRequest(addr, "/"))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third connection: %s %s, want 503", resp.Status, body)
	}
	echo(t, a, session.Text, []byte("a"))
	echo(t, b, session.Text, []byte("b"))

	closeClient(t, a, codec.CloseNormalClosure, "")
	waitOpen(t, s, 1)
	c := dial(t, "ws://"+addr+"/", nil)
	echo(t, c, session.Text, []byte("c"))
	if got := statInt(t, stats(t, s), "rejected_conns"); got != 1 {
		t.Errorf("rejected_conns = %d, want 1", got)
	}
}

// TestAfterClose: what a client sends after its close frame, a second
// close included, is ignored; the session ends with the client's code.
func TestAfterClose(t *testing.T) {
	logs := new(logRecorder)
	s, addr := start(t, Config{Logger: slog.New(logs)})
	r := rawUpgrade(t, addr, "/")
	var b []byte
	b = append(b, closeFrame(4001, "first")...)
	b = append(b, clientFrame(true, ws.OpText, []byte("after close"))...)
	b = append(b, closeFrame(1000, "second")...)
	r.write(b)
	r.expectClose(4001)
	waitOpen(t, s, 0)
	ends := logs.sessionEnds()
	if len(ends) != 1 || ends[0]["code"].Int64() != 4001 || ends[0]["reason"].String() != "first" {
		t.Errorf("session end lines: %v", ends)
	}
	if v := stats(t, s); statInt(t, v, "messages_in") != 0 || statInt(t, v, "protocol_errors") != 0 {
		t.Errorf("messages_in %d, protocol_errors %d; want 0, 0", statInt(t, v, "messages_in"), statInt(t, v, "protocol_errors"))
	}
}

// TestAbandoned: many connections abandoned in the middle of a frame are
// all reclaimed, their goroutines included, whether the client went away
// or stays silent.
func TestAbandoned(t *testing.T) {
	const n = 1000
	for _, tc := range []struct {
		name string
		gone bool // the client closes its end; else it stays silent
	}{
		{
			name: "client gone",
			gone: true,
		},
		{
			name: "client silent",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			baseline := goleak.IgnoreCurrent()
			idle := 30 * time.Second
			if !tc.gone {
				idle = 300 * time.Millisecond
			}
			logs := new(logRecorder)
			s, addr := start(t, Config{IdleTimeout: idle, HandshakeTimeout: 5 * time.Second, Logger: slog.New(logs)})
			conns := make([]*raw, n)
			for i := range conns {
				r := rawUpgrade(t, addr, "/")
				if i%2 == 0 {
					r.write(header64(1 << 20)[:10]) // in the middle of the header
				} else {
					r.write(append(header64(1<<20), "abc"...)) // in the middle of the payload
				}
				conns[i] = r
			}
			if tc.gone {
				waitOpen(t, s, n)
				for _, r := range conns {
					r.nc.Close()
				}
			}
			waitOpen(t, s, 0)
			for _, r := range conns {
				r.nc.Close()
			}
			if err := goleak.Find(baseline, goleak.IgnoreAnyFunction("net/http.(*Server).Serve"), goleak.IgnoreAnyFunction("github.com/wsactor/wsactor/internal/app/echod.(*front).serve"), goleak.IgnoreAnyFunction("github.com/wsactor/wsactor/internal/app/echod.(*front).acceptLoop")); err != nil {
				t.Errorf("goroutines left after %d sessions ended: %v", n, err)
			}
			v := stats(t, s)
			if tc.gone {
				if got := statInt(t, v, "closes_by_code.1006"); got != n {
					t.Errorf("closes_by_code[1006] = %d, want %d: %v", got, n, v["closes_by_code"])
				}
				return
			}
			// The idle timeout ends a session with 1001. Under heavy load the
			// session's third idle tick may close the socket before its actor
			// has written the close frame, and the session then ends with the
			// write error (1006): reclaimed all the same.
			idled, cut := statInt(t, v, "closes_by_code.1001"), statInt(t, v, "closes_by_code.1006")
			if idled+cut != n {
				t.Errorf("closes_by_code: %v, want %d of 1001 and 1006", v["closes_by_code"], n)
			}
			if cut > 0 {
				for _, e := range logs.sessionEnds() {
					if e["code"].Int64() == 1006 {
						t.Logf("%d of %d idle sessions ended with 1006, for example: %v", cut, n, e["err"])
						break
					}
				}
			}
		})
	}
}

// TestStopReading: a client that sends without reading is slowed down by
// TCP; the daemon's memory does not follow what it sends.
func TestStopReading(t *testing.T) {
	s, addr := start(t, Config{IdleTimeout: 30 * time.Second})
	r := rawUpgrade(t, addr, "/")
	frame := clientFrame(true, ws.OpBinary, bytes.Repeat([]byte{0xab}, 64<<10))
	heapBefore := heapInuse()

	var sent int64
	for {
		r.nc.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := r.nc.Write(frame)
		sent += int64(n)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break // the pipe is full: the daemon stopped reading
		}
		if err != nil {
			t.Fatalf("write after %d bytes: %v", sent, err)
		}
		if sent > 1<<30 {
			t.Fatalf("sent 1 GiB without being slowed down")
		}
	}
	grew := heapInuse() - heapBefore
	t.Logf("sent %d MiB before TCP pushed back; the heap grew %d KiB", sent>>20, grew>>10)
	if grew > 8<<20 {
		t.Errorf("the heap grew %d KiB while the client did not read", grew>>10)
	}
	r.nc.Close()
	waitOpen(t, s, 0)
}

// heapInuse returns the bytes of heap in use after garbage collection
// (twice: pooled buffers survive one).
func heapInuse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}
