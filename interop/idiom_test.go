package interop

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/wsactor/wsactor/session"
)

// idiomClients is how many clients of each library echo at once.
const idiomClients = 32

// idiomLibs are the libraries whose clients TestIdiomEcho runs, all at once
// against one server. Client ids are idiomClients apart from one library to
// the next, so that no two clients send the same bytes.
var idiomLibs = []string{"gorilla", "coder"}

// TestIdiomEcho: 32 gorilla and 32 coder clients at once echo through a
// wsactor server whose handler is the idiom of session.Message's doc:
//
//	defer m.Release()
//	s.WriteMessage(&m, nil)
//
// Each client has a writer and a reader goroutine and up to window messages
// in flight, so that the server reads many messages per read buffer and
// many buffers are in use across sessions at once. Every 8 bytes of every
// message name their client, their message and their place in it: a pooled
// buffer released twice (once by the deferred Release, once after the
// write) and reused by another read shows up as corrupt, misplaced or
// foreign bytes. Every echo must come back whole, unchanged and in order.
func TestIdiomEcho(t *testing.T) {
	cases := []struct {
		name     string
		size     int
		messages int // per client
		window   int // messages a client has written and not yet checked, at most
	}{
		{
			name:     "64B",
			size:     64,
			messages: 400,
			window:   64,
		},
		{
			name:     "4KiB",
			size:     4 << 10,
			messages: 200,
			window:   64,
		},
		{
			name:     "64KiB",
			size:     64 << 10,
			messages: 40,
			window:   32,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startIdiomServer(t)
			for li, name := range idiomLibs {
				lib := peerLibNamed(t, name)
				t.Run(lib.name, func(t *testing.T) {
					t.Parallel()
					ctx := testContext(t)
					clients := make([]*idiomClient, idiomClients)
					for i := range clients {
						ctx, cancel := context.WithCancel(ctx)
						t.Cleanup(cancel)
						clients[i] = &idiomClient{
							id:       li*idiomClients + i,
							conn:     dialPeer(t, lib, srv.URL),
							ctx:      ctx,
							cancel:   cancel,
							inFlight: make(chan struct{}, tc.window),
						}
					}
					var wg sync.WaitGroup
					for _, c := range clients {
						wg.Go(func() { c.write(tc.size, tc.messages) })
						wg.Go(func() { c.read(tc.size, tc.messages) })
					}
					wg.Wait()

					least, most := tc.window, 0
					for _, c := range clients {
						least, most = min(least, c.maxInFlight), max(most, c.maxInFlight)
						if c.err != nil {
							t.Errorf("%s client %d: %v", lib.name, c.id, c.err)
							continue
						}
						peerCloseClean(t, c.conn)
					}
					t.Logf("%d clients × %d messages of %d B; most in flight per client: %d to %d (window %d)",
						len(clients), tc.messages, tc.size, least, most, tc.window)
				})
			}
		})
	}
}

// peerLibNamed returns the entry of peerLibs called name.
func peerLibNamed(t *testing.T, name string) peerLib {
	t.Helper()
	for _, lib := range peerLibs {
		if lib.name == name {
			return lib
		}
	}
	t.Fatalf("no client library %q in peerLibs", name)
	return peerLib{}
}

// startIdiomServer starts a wsactor echo server whose OnMessage is the
// idiomatic handler, with the other options of startWsactorServer. At the
// test's end (after its parallel subtests) every session it accepted must
// have ended with the client's close 1000 "done".
func startIdiomServer(t *testing.T) *wsactorServer {
	t.Helper()
	e := &wsactorServer{}
	opts := &session.Options{
		HandshakeTimeout: 5 * time.Second,
		OnMessage: func(s *session.Session, m session.Message) {
			defer m.Release()
			s.WriteMessage(&m, nil)
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := session.Accept(w, r, opts)
		if err != nil {
			t.Errorf("wsactor server: %v", err)
			return
		}
		e.mu.Lock()
		e.all = append(e.all, s)
		e.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, s := range e.all {
			awaitEnd(t, s, "server session")
			if !t.Failed() {
				checkCloseErr(t, "server session Err", s.Err(), 1000, "done")
			}
		}
	})
	e.URL = wsURL(srv.URL)
	return e
}

// idiomClient is one client of TestIdiomEcho. Its writer and reader share
// inFlight, a token per message written and not yet checked; the first
// error of either cancels ctx and aborts the connection, so that the other
// ends too.
type idiomClient struct {
	id       int
	conn     peerConn
	ctx      context.Context
	cancel   context.CancelFunc
	inFlight chan struct{}

	maxInFlight int // the writer's

	once sync.Once
	err  error // the first error; read once writer and reader are done
}

func (c *idiomClient) fail(err error) {
	c.once.Do(func() {
		c.err = err
		c.cancel()
		c.conn.abort()
	})
}

// write sends messages messages of size bytes, waiting whenever the window
// is full for the reader to check an echo.
func (c *idiomClient) write(size, messages int) {
	buf := newIdiomBuf(size)
	for k := range messages {
		select {
		case c.inFlight <- struct{}{}:
		case <-c.ctx.Done():
			return // the reader failed, or time ran out
		}
		c.maxInFlight = max(c.maxInFlight, len(c.inFlight))
		if err := c.conn.write(c.ctx, session.Binary, buf.message(c.id, k)); err != nil {
			c.fail(fmt.Errorf("write message %d: %w", k, err))
			return
		}
	}
}

// read checks that the echoes come back in order, each as binary and with
// every byte as sent.
func (c *idiomClient) read(size, messages int) {
	buf := newIdiomBuf(size)
	for k := range messages {
		typ, got, err := c.conn.read(c.ctx)
		if err != nil {
			c.fail(fmt.Errorf("read the echo of message %d: %w", k, err))
			return
		}
		if typ != session.Binary {
			c.fail(fmt.Errorf("echo of message %d: type %s, want %s", k, typ, session.Binary))
			return
		}
		if want := buf.message(c.id, k); !bytes.Equal(got, want) {
			c.fail(fmt.Errorf("echo of message %d: %s", k, idiomDiff(got, want, c.id, k)))
			return
		}
		<-c.inFlight
	}
}

// An idiom word is 8 bytes of a message that name their place: client c
// in 12 bits, message k in 16, word w (bytes 8w to 8w+7) in 28, and a check
// byte over those 56 bits, so that a flipped bit reads as corrupt rather
// than as another message's word. It is stored masked, in native byte
// order: the mask keeps word 0 of message 0 of client 0 from being zeros.
const (
	idiomMask  = 0x9e3779b97f4a7c15
	idiomCheck = 0xbf58476d1ce4e5b9
)

// idiomWord is word w of message k of client c.
func idiomWord(c, k, w int) uint64 {
	x := uint64(c)&0xfff<<44 | uint64(k)&0xffff<<28 | uint64(w)&0xfffffff
	return (x*idiomCheck>>56<<56 | x) ^ idiomMask
}

// idiomUnword decodes an idiom word; ok is false for 8 bytes that are no
// word of any message.
func idiomUnword(x uint64) (c, k, w int, ok bool) {
	x ^= idiomMask
	payload := x & (1<<56 - 1)
	ok = x>>56 == payload*idiomCheck>>56
	return int(x >> 44 & 0xfff), int(x >> 28 & 0xffff), int(x & 0xfffffff), ok
}

// idiomBuf holds one message at a time. Its words are written as uint64s
// and read as bytes: under -race one store per word instead of eight keeps
// the test's own share of the run small.
type idiomBuf struct {
	words []uint64
	bytes []byte
}

func newIdiomBuf(n int) *idiomBuf {
	words := make([]uint64, (n+7)/8+1) // +1: never empty
	return &idiomBuf{
		words: words,
		bytes: unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), 8*len(words))[:n],
	}
}

// message fills b with message k of client c and returns its bytes, valid
// until the next call.
func (b *idiomBuf) message(c, k int) []byte {
	for w := range b.words {
		b.words[w] = idiomWord(c, k, w)
	}
	return b.bytes
}

// idiomDiff says how got differs from want, message k of client c: how
// many 8-byte words are wrong and whose bytes the first wrong one holds.
func idiomDiff(got, want []byte, c, k int) string {
	if len(got) != len(want) {
		return fmt.Sprintf("got %d bytes, want %d", len(got), len(want))
	}
	var wrong, foreign, misplaced int
	first := ""
	for i := 0; i < len(got); i += 8 {
		g, w := got[i:min(i+8, len(got))], want[i:min(i+8, len(want))]
		if bytes.Equal(g, w) {
			continue
		}
		wrong++
		what := fmt.Sprintf("% x, no message's bytes", g)
		if len(g) == 8 {
			if gc, gk, gw, ok := idiomUnword(binary.NativeEndian.Uint64(g)); ok {
				switch {
				case gc != c:
					foreign++
					what = fmt.Sprintf("word %d of message %d of client %d (foreign)", gw, gk, gc)
				case gk != k:
					misplaced++
					what = fmt.Sprintf("word %d of its message %d", gw, gk)
				default:
					misplaced++
					what = fmt.Sprintf("its word %d", gw)
				}
			}
		}
		if first == "" {
			first = fmt.Sprintf("first at offset %d: %s", i, what)
		}
	}
	return fmt.Sprintf("%d B, %d of %d words wrong (%d foreign, %d misplaced), %s",
		len(got), wrong, (len(want)+7)/8, foreign, misplaced, first)
}
