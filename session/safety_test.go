package session

// Acceptance tests of issue 8: the runtime is safe against the mistakes Go
// programmers make every day (DESIGN.md, "Ownership and misuse"). Each test
// says above it why it would have failed on old main (8144e36), whose API
// these tests cannot call: there WriteMessage took a Message by value,
// commands returned only an id, a completion was delivered with a plain
// channel send, and a session's end was reported with bare sentinels.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/actor"
	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/bufpool"
)

// handlerWait is how long a handler waits for a completion of its own
// session before it reports a hang. Nothing else can start a held actor in
// that time: the tests that use it turn every tick off (idle, park and
// message timeouts).
const handlerWait = 3 * time.Second

// ---------------------------------------------------------------------------
// 1. Shared buffers

// idiomaticEchoServer serves sessions made by Accept with opts whose
// OnMessage is the handler the Message docs call idiomatic: a deferred
// Release and the echo through WriteMessage. It returns the ws:// URL and a
// function that lists the sessions accepted so far.
func idiomaticEchoServer(t *testing.T, opts *Options) (string, func() []*Session) {
	t.Helper()
	o := *opts
	o.OnMessage = func(s *Session, m Message) {
		defer m.Release()
		s.WriteMessage(&m, nil)
	}
	var mu sync.Mutex
	var sessions []*Session
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Accept(w, r, &o)
		if err != nil {
			return
		}
		mu.Lock()
		sessions = append(sessions, s)
		mu.Unlock()
	}))
	list := func() []*Session {
		mu.Lock()
		defer mu.Unlock()
		return append([]*Session(nil), sessions...)
	}
	t.Cleanup(func() {
		srv.Close()
		for _, s := range list() {
			select {
			case <-s.Done():
			default:
				s.Cancel(Terminal, nil)
			}
			select {
			case <-s.Done():
			case <-time.After(testTimeout):
				t.Errorf("echo session did not end")
				return
			}
		}
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http"), list
}

// echoPattern holds byte(j) at j: every message's pattern is a slice of it.
var echoPattern = func() []byte {
	b := make([]byte, 256+(64<<10))
	for j := range b {
		b[j] = byte(j)
	}
	return b
}()

// echoHeader is the part of a message that names it: its client and its
// number.
const echoHeader = 8

// fillEcho makes p message k of client c: the client and the number, big
// endian, then byte i = byte(c*7 + k + i). Every byte says whose it is.
func fillEcho(p []byte, c, k int) {
	binary.BigEndian.PutUint32(p, uint32(c))
	binary.BigEndian.PutUint32(p[4:], uint32(k))
	copy(p[echoHeader:], wantEcho(c, k, len(p)))
}

// wantEcho returns the pattern bytes (after the header) of message k of
// client c, of size n in all.
func wantEcho(c, k, n int) []byte {
	base := (c*7 + k + echoHeader) & 0xff
	return echoPattern[base : base+n-echoHeader]
}

// echoResult is what one client saw of its echoes.
type echoResult struct {
	client   int
	received int
	corrupt  int // bytes that differ from the ones the client sent
	foreign  int // echoes whose header names another message
	first    string
	err      error
}

// echoClient sends count messages of size bytes on s, at most window of them
// unanswered, and checks every byte of every echo against what it sent.
func echoClient(s *Session, c, size, count, window int) (r echoResult) {
	r.client = c
	slots := make(chan struct{}, window)
	for range window {
		slots <- struct{}{}
	}
	stop := make(chan struct{})
	sent := make(chan error, 1)
	go func() {
		for k := range count {
			select {
			case <-slots:
			case <-stop:
				sent <- nil
				return
			}
			p := make([]byte, size) // the session's until its (discarded) completion
			fillEcho(p, c, k)
			if _, err := s.WriteBinary(p, nil); err != nil {
				sent <- fmt.Errorf("write %d refused: %w", k, err)
				return
			}
		}
		sent <- nil
	}()
	defer func() {
		close(stop)
		if err := <-sent; err != nil && r.err == nil {
			r.err = err
		}
	}()
	stall := time.NewTimer(testTimeout) // reset by every echo: a bound on a stall, not on the run
	defer stall.Stop()
	for k := range count {
		var m Message
		select {
		case mm, ok := <-s.Messages():
			if !ok {
				r.err = fmt.Errorf("session ended after %d echoes: %v", k, s.Err())
				return r
			}
			m = mm
		case <-stall.C:
			r.err = fmt.Errorf("echo %d did not come", k)
			return r
		}
		stall.Reset(testTimeout)
		r.received++
		r.check(m, c, k, size)
		m.Release()
		select {
		case slots <- struct{}{}:
		default: // an echo nobody sent: counted by check
		}
	}
	return r
}

// check compares echo m with message k of client c.
func (r *echoResult) check(m Message, c, k, size int) {
	p := m.Payload
	note := func(format string, args ...any) {
		if r.first == "" {
			r.first = fmt.Sprintf("client %d, echo %d: ", c, k) + fmt.Sprintf(format, args...)
		}
	}
	if m.Type != Binary || len(p) != size {
		r.corrupt += max(size, len(p))
		note("type %v, %d bytes; want binary, %d bytes", m.Type, len(p), size)
		return
	}
	gc, gk := int(binary.BigEndian.Uint32(p)), int(binary.BigEndian.Uint32(p[4:]))
	if gc != c || gk != k {
		r.foreign++
		note("carries message %d of client %d", gk, gc)
	}
	var head [echoHeader]byte
	binary.BigEndian.PutUint32(head[:], uint32(c))
	binary.BigEndian.PutUint32(head[4:], uint32(k))
	want := wantEcho(c, k, size)
	if bytes.Equal(p[:echoHeader], head[:]) && bytes.Equal(p[echoHeader:], want) {
		return
	}
	bad := 0
	for i := range echoHeader {
		if p[i] != head[i] {
			bad++
		}
	}
	for i, b := range p[echoHeader:] {
		if b != want[i] {
			bad++
		}
	}
	r.corrupt += bad
	note("%d bytes differ", bad)
}

// The idiomatic handler (defer m.Release(); s.WriteMessage(&m, nil)) on a
// server over loopback TCP echoes every byte of 32 clients' messages, many
// in flight, intact: no corrupt byte, no byte of another message.
//
// Old main: WriteMessage took the Message by value, so the deferred Release
// gave the buffer back to the pool while the echo was still queued; the
// next read (of this or another session) took the buffer and the echo
// carried its bytes: corrupt and foreign bytes by the thousand, at every
// size (64 B messages alias the read buffer, large ones own theirs).
func TestIdiomaticEchoKeepsEveryByte(t *testing.T) {
	const clients = 32
	tests := []struct {
		name   string
		size   int
		count  int // messages per client
		window int // messages per client in flight
	}{
		{
			name:   "64B",
			size:   64,
			count:  2000,
			window: 64,
		},
		{
			name:   "4KiB",
			size:   4 << 10,
			count:  500,
			window: 64,
		},
		{
			name:   "64KiB",
			size:   64 << 10,
			count:  60,
			window: 16,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url, serverSessions := idiomaticEchoServer(t, testOptions())
			sessions := make([]*Session, clients)
			for c := range sessions {
				sessions[c] = dialSession(t, url, testOptions())
			}
			results := make(chan echoResult, clients)
			for c, s := range sessions {
				go func() { results <- echoClient(s, c, tc.size, tc.count, tc.window) }()
			}
			corrupt, foreign := 0, 0
			for range clients {
				var r echoResult
				select {
				case r = <-results:
				case <-time.After(3 * testTimeout):
					t.Fatal("a client did not finish")
				}
				if r.err != nil {
					t.Errorf("client %d: %v", r.client, r.err)
				}
				if r.received != tc.count {
					t.Errorf("client %d: %d echoes, want %d", r.client, r.received, tc.count)
				}
				if r.first != "" {
					t.Errorf("first bad echo: %s", r.first)
				}
				corrupt += r.corrupt
				foreign += r.foreign
			}
			if corrupt != 0 || foreign != 0 {
				t.Fatalf("%d corrupt bytes, %d echoes of another message; want none", corrupt, foreign)
			}
			reply := make(chan Completion, clients)
			for _, s := range sessions {
				if _, err := s.Close(CloseReason{Code: codec.CloseNormalClosure}, reply); err != nil {
					t.Fatalf("Close: %v", err)
				}
			}
			for range clients {
				if c := await(t, reply); c.Err != nil {
					t.Errorf("Close of %v: %v", c.Session.LocalAddr(), c.Err)
				}
			}
			for _, s := range serverSessions() {
				var ce *CloseError
				if err := awaitDone(t, s); !errors.As(err, &ce) || ce.Local || ce.Code != codec.CloseNormalClosure {
					t.Errorf("server session ended with %v, want the client's close 1000", err)
				}
			}
		})
	}
}

// pooledMessage returns a binary message that owns a pooled buffer, as the
// reader makes one, with payload p copied into it.
func pooledMessage(p []byte) Message {
	b := bufpool.Get(len(p))
	copy(b, p)
	return ownedMessage(Binary, b, b[:cap(b)])
}

// releasePanic releases m and returns what the release panicked with, or
// nil.
func releasePanic(m *Message) (v any) {
	defer func() { v = recover() }()
	m.Release()
	return nil
}

// isReleasedTwice reports whether v, a recovered panic value, is
// ErrReleasedTwice.
func isReleasedTwice(v any) bool {
	err, ok := v.(error)
	return ok && (err == ErrReleasedTwice || errors.Is(err, ErrReleasedTwice))
}

// A buffer has one owner: a second release through a copy panics with
// ErrReleasedTwice, a release of an emptied Message does nothing, and a
// stale copy whose buffer went back to the pool and on to a new message
// panics without touching the new owner's reference.
//
// Old main: Release of an owned message put the payload's slice back into
// the pool every time, through every copy, without a trace: the second
// release made the buffer the pool's and the new message's at once, and
// nothing panicked (ErrReleasedTwice did not exist).
func TestMessageReleaseOwnership(t *testing.T) {
	payload := []byte("one owner at a time")
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{
			name: "two copies both released",
			run: func(t *testing.T) {
				m := pooledMessage(payload)
				c := m
				if v := releasePanic(&m); v != nil {
					t.Fatalf("first release panicked: %v", v)
				}
				if v := releasePanic(&c); !isReleasedTwice(v) {
					t.Fatalf("second release through a copy: panic %v, want ErrReleasedTwice", v)
				}
			},
		},
		{
			name: "an emptied message released again",
			run: func(t *testing.T) {
				m := pooledMessage(payload)
				m.Release()
				if m.Payload != nil || m.Type != 0 {
					t.Fatalf("Release left %+v, want an empty Message", m)
				}
				for i := range 3 {
					if v := releasePanic(&m); v != nil {
						t.Fatalf("release %d of an emptied Message panicked: %v", i+2, v)
					}
				}
				var zero Message
				if v := releasePanic(&zero); v != nil {
					t.Fatalf("release of the zero Message panicked: %v", v)
				}
			},
		},
		{
			name: "a stale copy after the buffer was reused",
			run: func(t *testing.T) {
				const tries = 1000 // sync.Pool may drop or move a buffer; it reuses one soon
				fresh := []byte("the new owner's bytes, intact")
				for range tries {
					m := pooledMessage(payload)
					stale := m
					m.Release()
					next := pooledMessage(fresh)
					if &next.Payload[0] != &stale.Payload[0] {
						next.Release()
						continue
					}
					// next's payload lies in the buffer stale still points at.
					if v := releasePanic(&stale); !isReleasedTwice(v) {
						t.Fatalf("release of a stale copy: panic %v, want ErrReleasedTwice", v)
					}
					// Whatever the pool hands out now must not be next's.
					for range 8 {
						b := bufpool.Get(len(fresh))
						for i := range b {
							b[i] = 0xee
						}
						bufpool.Put(b)
					}
					if !bytes.Equal(next.Payload, fresh) {
						t.Fatalf("the new owner's payload is %q, want %q", next.Payload, fresh)
					}
					if v := releasePanic(&next); v != nil {
						t.Fatalf("the new owner's own release panicked: %v: the stale copy took its reference", v)
					}
					return
				}
				t.Fatalf("no buffer reused in %d tries", tries)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

// WriteMessage empties the caller's Message: a deferred Release then does
// nothing, and a second WriteMessage of it is refused with ErrEmptyMessage,
// at the call and in its completion, with nothing sent.
//
// Old main: WriteMessage(m Message) took a copy and left the caller's value
// as it was; the second write sent the buffer again (after the first had
// released it: a pooled buffer written by two commands and released twice),
// and ErrEmptyMessage did not exist.
func TestWriteMessageEmptiesTheCaller(t *testing.T) {
	s, p := openRaw(t, codec.Server, testOptions(), rawConfig{})
	reply := make(chan Completion, 4)
	m := pooledMessage([]byte("written once"))
	first, err := s.WriteMessage(&m, reply)
	if err != nil {
		t.Fatalf("WriteMessage: %v", err)
	}
	if m.Type != 0 || m.Payload != nil {
		t.Fatalf("WriteMessage left the caller's Message %+v, want it empty", m)
	}
	if v := releasePanic(&m); v != nil {
		t.Fatalf("Release after WriteMessage panicked: %v", v)
	}
	second, err := s.WriteMessage(&m, reply)
	if !errors.Is(err, ErrEmptyMessage) {
		t.Fatalf("WriteMessage of an emptied Message = %v, want ErrEmptyMessage", err)
	}
	third, err := s.WriteMessage(nil, reply)
	if !errors.Is(err, ErrEmptyMessage) {
		t.Fatalf("WriteMessage(nil) = %v, want ErrEmptyMessage", err)
	}
	marker, _ := s.WriteText([]byte("marker"), reply)
	got := map[uint64]Completion{}
	for range 4 {
		c := await(t, reply)
		got[c.ID] = c
	}
	check(t, got[first], KindWrite, first, nil)
	check(t, got[second], KindWrite, second, ErrEmptyMessage)
	check(t, got[third], KindWrite, third, ErrEmptyMessage)
	check(t, got[marker], KindWrite, marker, nil)
	if c := got[first]; c.Payload != nil || c.N != len("written once") {
		t.Fatalf("WriteMessage's completion: N %d, payload %q; want %d bytes and no payload", c.N, c.Payload, len("written once"))
	}
	for _, want := range []frame{
		{fin: true, op: ws.OpBinary, payload: []byte("written once")},
		textFrame("marker"),
	} {
		if f := p.mustRead(t); f.op != want.op || !bytes.Equal(f.payload, want.payload) {
			t.Fatalf("got %v, want %v: the refused writes sent nothing", f, want)
		}
	}
}

// A handler's message that aliases the read buffer (a small message, whole
// in one read) is protected like one with a buffer of its own: releasing a
// copy after the original panics with ErrReleasedTwice at that call, and
// the session goes on.
//
// Old main: the copy's release dropped the reader's reference to the read
// buffer, silently. So did the first fix (3abf10a to 82d5f44), whose
// generation named a buffer's life, not a holder: the copy named the same
// generation as the reader's reference, took it, and the buffer went back
// to the pool under the reader, which then panicked (1011).
func TestHandlerMessageCopyReleasedTwice(t *testing.T) {
	panics := make(chan any, 1)
	opts := testOptions()
	opts.OnMessage = func(s *Session, m Message) {
		if string(m.Payload) != "copy me" {
			s.WriteMessage(&m, nil)
			return
		}
		c := m
		m.Release()
		panics <- releasePanic(&c)
	}
	s, p := openRaw(t, codec.Server, opts, rawConfig{})
	p.mustWrite(t, textFrame("copy me"))
	select {
	case v := <-panics:
		if !isReleasedTwice(v) {
			t.Errorf("second release of an aliased message through a copy: panic %v, want ErrReleasedTwice", v)
		}
	case <-time.After(testTimeout):
		t.Fatal("the handler did not run")
	}
	p.mustWrite(t, textFrame("still there?"))
	f, err := p.read()
	if err != nil || string(f.payload) != "still there?" {
		t.Fatalf("after the double release: got %v, %v (session: %v); want the echo", f, err, s.Err())
	}
}

// A copy of a Message released while WriteMessage's write of the original
// waits to be written: the copy's release panics with ErrReleasedTwice (it
// is the second owner's release), and the write goes out intact and
// completes.
//
// Old main: WriteMessage took a copy, so this was the idiomatic handler's
// bug itself: the release gave the buffer back during the write. The first
// fix (3abf10a to 82d5f44) failed here too: the copy's release took the
// write's reference without a panic, the write sent the pool's next
// owner's bytes, the write's own release then panicked on the actor, and
// the batch's completions were lost.
func TestMessageCopyReleasedDuringItsWrite(t *testing.T) {
	ended := make(chan struct{}) // every command has completed
	opts := testOptions()
	opts.OnClose = func(*Session, error) { close(ended) }
	s, p := openRaw(t, codec.Server, opts, smallBuffer)
	reply := make(chan Completion, 4)
	bigID, big := blockWriter(t, s, p, reply)
	want := bytes.Repeat([]byte("owned by the write "), 100)
	m := pooledMessage(want)
	c := m // a helper that took m by value, as in echo(s, m) with a deferred m.Release()
	msgID, err := s.WriteMessage(&c, reply)
	if err != nil {
		t.Fatalf("WriteMessage: %v", err)
	}
	afterID, _ := s.WriteText([]byte("after"), reply)
	if v := releasePanic(&m); !isReleasedTwice(v) {
		t.Errorf("release of a copy of a message being written: panic %v, want ErrReleasedTwice", v)
	}
	// Whatever the pool hands out now must not be the write's buffer.
	for range 8 {
		b := bufpool.Get(len(want))
		for i := range b {
			b[i] = 0xee
		}
		bufpool.Put(b)
	}
	finishBigWrite(t, p, big)
	check(t, await(t, reply), KindWrite, bigID, nil)
	if f := p.mustRead(t); !bytes.Equal(f.payload, want) {
		t.Errorf("the message went out as %v, want its own bytes", f)
	}
	for _, id := range []uint64{msgID, afterID} {
		var c Completion
		select {
		case c = <-reply:
		case <-ended:
			select {
			case c = <-reply:
			default:
				err := s.Err()
				if !errors.Is(err, ErrClosed) {
					t.Errorf("the session ended with %v (%T), which does not match ErrClosed", err, err)
				}
				t.Fatalf("write %d: no completion, and the session has ended with every completion delivered", id)
			}
		case <-time.After(testTimeout):
			t.Fatalf("write %d: no completion", id)
		}
		check(t, c, KindWrite, id, nil)
	}
}

// ---------------------------------------------------------------------------
// 2. Waiting in a handler

// A handler that waits for the completion of a write of its own session
// (id, _ := s.WriteText(p, ch); <-ch) gets it promptly, on a server and on
// a client, with no tick running that could start the held actor.
// (testOptions turns the idle timeout off; parking and the message timeout
// are turned off here.)
//
// Old main: the actor was held while the handler ran (Send queued without
// starting it) and nothing but an urgent command (a keep-alive tick, a
// pong) could start it: with the idle timeout off, the handler waited for
// ever, and so did the reader.
func TestHandlerWaitsForItsOwnCompletion(t *testing.T) {
	type outcome struct {
		id   uint64
		err  error
		c    Completion
		hung bool
	}
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			got := make(chan outcome, 1)
			opts := testOptions()    // no idle timeout: no keep-alive tick
			opts.ParkAfter = -1      // no park tick
			opts.MessageTimeout = -1 // no message-rate tick: nothing but the call may start the actor
			opts.OnMessage = func(s *Session, m Message) {
				defer m.Release()
				if string(m.Payload) != "ask" {
					s.WriteMessage(&m, nil)
					return
				}
				ch := make(chan Completion, 1)
				id, err := s.WriteText([]byte("answer"), ch)
				select {
				case c := <-ch:
					got <- outcome{id: id, err: err, c: c}
				case <-time.After(handlerWait):
					got <- outcome{id: id, err: err, hung: true}
				}
			}
			_, p := openRaw(t, r.role, opts, rawConfig{})
			p.mustWrite(t, textFrame("ask"))
			var o outcome
			select {
			case o = <-got:
			case <-time.After(testTimeout):
				t.Fatal("the handler did not run")
			}
			if o.hung {
				t.Fatalf("the handler waited %v for its write's completion", handlerWait)
			}
			if o.err != nil {
				t.Fatalf("WriteText in the handler: %v", o.err)
			}
			check(t, o.c, KindWrite, o.id, nil)
			if f := p.mustRead(t); string(f.payload) != "answer" {
				t.Fatalf("got %v, want the answer", f)
			}
			p.mustWrite(t, textFrame("echo"))
			if f := p.mustRead(t); string(f.payload) != "echo" {
				t.Fatalf("got %v, want the echo after the wait", f)
			}
		})
	}
}

// CloseContext from inside OnMessage returns ErrHandlerWait at once, on
// both roles; the handler's Close then runs the handshake.
//
// Old main: CloseContext waited for the handshake, whose peer close frame
// only the handler's own goroutine could read: it returned only when its
// context was done (here after handlerWait, with DeadlineExceeded, and the
// connection killed).
func TestHandlerCloseContextRefused(t *testing.T) {
	type outcome struct {
		err  error
		took time.Duration
	}
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			got := make(chan outcome, 1)
			opts := testOptions()
			opts.ParkAfter = -1
			opts.MessageTimeout = -1
			opts.OnMessage = func(s *Session, m Message) {
				m.Release()
				ctx, cancel := context.WithTimeout(context.Background(), handlerWait)
				defer cancel()
				start := time.Now()
				err := s.CloseContext(ctx, CloseReason{Code: codec.CloseNormalClosure, Reason: "bye"})
				got <- outcome{err: err, took: time.Since(start)}
				s.Close(CloseReason{Code: codec.CloseNormalClosure, Reason: "bye"}, nil)
			}
			s, p := openRaw(t, r.role, opts, rawConfig{})
			p.mustWrite(t, textFrame("close from the handler"))
			var o outcome
			select {
			case o = <-got:
			case <-time.After(testTimeout):
				t.Fatal("the handler did not run")
			}
			if !errors.Is(o.err, ErrHandlerWait) {
				t.Fatalf("CloseContext in the handler = %v after %v, want ErrHandlerWait", o.err, o.took)
			}
			if o.took >= handlerWait {
				t.Fatalf("CloseContext in the handler took %v, want at once", o.took)
			}
			f := p.mustRead(t)
			if f.op != ws.OpClose || f.closeCode() != codec.CloseNormalClosure {
				t.Fatalf("got %v, want the handler's close 1000", f)
			}
			if err := p.finishClose(codec.CloseNormalClosure); err != nil {
				t.Fatal(err)
			}
			var ce *CloseError
			if err := awaitDone(t, s); !errors.As(err, &ce) || !ce.Local || ce.Code != codec.CloseNormalClosure {
				t.Fatalf("Err() = %v, want our close 1000", err)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 3. A closed reply channel

// A reply channel closed by its owner while its commands wait behind a
// write in flight loses those completions, not the process nor the
// session: the writes still go out, a later write with a fresh channel
// completes, and DroppedCompletions counts what was lost.
//
// The channel is closed while its completions are still queued, and a
// command issued after the close orders the close before the actor's
// deliveries (the race detector would report a close that races a send);
// every delivery is then a direct send that finds the channel closed.
//
// Old main: the actor's send on the closed channel panicked; the actor
// contained the panic by failing the session (1011), so the later write
// failed and the session was gone (and a send from an outbox goroutine,
// for a channel without room, took the process down).
func TestClosedReplyChannelContained(t *testing.T) {
	const lost = 10
	tests := []struct {
		name     string
		capacity int
	}{
		{
			name:     "room for every completion",
			capacity: 2 * lost,
		},
		{
			name:     "room for some",
			capacity: lost / 2,
		},
		{
			name:     "unbuffered",
			capacity: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, p := openRaw(t, codec.Server, testOptions(), smallBuffer)
			bigReply := make(chan Completion, 1)
			bigID, big := blockWriter(t, s, p, bigReply)
			ch := make(chan Completion, tc.capacity)
			for i := range lost {
				if _, err := s.WriteText(fmt.Appendf(nil, "lost %d", i), ch); err != nil {
					t.Fatalf("write %d refused: %v", i, err)
				}
			}
			close(ch)
			fresh := make(chan Completion, 2)
			afterID, err := s.WriteText([]byte("after"), fresh)
			if err != nil {
				t.Fatalf("write after the close refused: %v", err)
			}
			finishBigWrite(t, p, big)
			check(t, await(t, bigReply), KindWrite, bigID, nil)
			for i := range lost {
				if f := p.mustRead(t); string(f.payload) != fmt.Sprintf("lost %d", i) {
					t.Fatalf("got %v, want write %d: only its completion is lost", f, i)
				}
			}
			if f := p.mustRead(t); string(f.payload) != "after" {
				t.Fatalf("got %v, want the write after", f)
			}
			check(t, await(t, fresh), KindWrite, afterID, nil)
			if d := s.DroppedCompletions(); d != lost {
				t.Fatalf("DroppedCompletions() = %d, want %d", d, lost)
			}
			// The session keeps working.
			id, err := s.WriteText([]byte("later"), fresh)
			if err != nil {
				t.Fatalf("later write refused: %v", err)
			}
			check(t, await(t, fresh), KindWrite, id, nil)
			if f := p.mustRead(t); string(f.payload) != "later" {
				t.Fatalf("got %v, want the later write", f)
			}
			closeID, _ := s.Close(CloseReason{Code: codec.CloseNormalClosure}, fresh)
			if f := p.mustRead(t); f.op != ws.OpClose {
				t.Fatalf("got %v, want the close frame", f)
			}
			if err := p.finishClose(codec.CloseNormalClosure); err != nil {
				t.Fatal(err)
			}
			check(t, await(t, fresh), KindClose, closeID, nil)
		})
	}
}

// ---------------------------------------------------------------------------
// 4. Refusals visible and bounded

// With MailboxSize 4 and a write in flight, 1000 writes without a reply
// channel: all but the three that fit are refused at the call with
// ErrMailboxFull, the accepted ones are exactly what reaches the peer, and
// a Close right after is taken.
//
// Old main: a write returned only its id; its refusal was a completion,
// discarded with a nil reply channel: the caller could not tell which
// writes were sent.
func TestRefusalsVisibleAtTheCall(t *testing.T) {
	const mailbox = 4
	const calls = 1000
	opts := testOptions()
	opts.MailboxSize = mailbox
	s, p := openRaw(t, codec.Server, opts, smallBuffer)
	_, big := blockWriter(t, s, p, nil)
	var accepted []string
	refused := 0
	for i := range calls {
		w := fmt.Sprintf("write %04d", i)
		switch _, err := s.WriteText([]byte(w), nil); {
		case err == nil:
			accepted = append(accepted, w)
		case errors.Is(err, ErrMailboxFull):
			refused++
		default:
			t.Fatalf("%s: %v, want nil or ErrMailboxFull", w, err)
		}
	}
	// The write in flight holds one place of the mailbox until it completes.
	if len(accepted) != mailbox-1 || refused != calls-len(accepted) {
		t.Fatalf("%d accepted, %d refused; want %d accepted and the rest refused", len(accepted), refused, mailbox-1)
	}
	reply := make(chan Completion, 1)
	closeID, err := s.Close(CloseReason{Code: codec.CloseNormalClosure, Reason: "done"}, reply)
	if err != nil {
		t.Fatalf("Close with a full mailbox = %v, want it taken", err)
	}
	finishBigWrite(t, p, big)
	for _, want := range accepted {
		if f := p.mustRead(t); string(f.payload) != want {
			t.Fatalf("got %v, want %q", f, want)
		}
	}
	if f := p.mustRead(t); f.op != ws.OpClose {
		t.Fatalf("got %v, want the close frame right after the accepted writes", f)
	}
	if err := p.finishClose(codec.CloseNormalClosure); err != nil {
		t.Fatal(err)
	}
	check(t, await(t, reply), KindClose, closeID, nil)
}

// heapInuse returns the heap in use after a collection.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// Commands refused by a session whose peer does not read hold no memory:
// 200,000 writes without a reply channel and 200,000 with one that is
// never drained grow the heap by less than a few MiB.
//
// Old main: a refused command went on the unbounded urgent lane to be
// answered by the actor, which was blocked in the write: +129 B per call,
// about 50 MB here.
func TestRefusedCommandsHoldNoMemory(t *testing.T) {
	const calls = 200_000
	const bound = 4 << 20
	s, p := openRaw(t, codec.Server, testOptions(), smallBuffer)
	blockWriter(t, s, p, nil) // never finished: the session ends with the test
	payload := []byte("refused")
	undrained := make(chan Completion)
	before := heapInuse()
	dropped := s.DroppedCompletions()
	accepted := 0
	for _, reply := range []chan Completion{nil, undrained} {
		for range calls {
			switch _, err := s.WriteText(payload, reply); {
			case err == nil:
				accepted++
			case !errors.Is(err, ErrMailboxFull):
				t.Fatalf("write: %v, want nil or ErrMailboxFull", err)
			}
		}
	}
	after := heapInuse()
	delivered := calls - int(s.DroppedCompletions()-dropped) // waiting for undrained
	if want := testOptions().mailboxSize() - 1; accepted != want {
		t.Errorf("%d writes accepted, want %d (the mailbox, less the write in flight)", accepted, want)
	}
	if delivered < 0 || delivered > 4*testOptions().mailboxSize() {
		t.Errorf("%d refusals wait for an undrained channel, want at most a few mailboxes", delivered)
	}
	// Receive what waits, so that its goroutine ends.
	for i := range delivered {
		if c := await(t, undrained); !errors.Is(c.Err, ErrMailboxFull) {
			t.Fatalf("refusal %d completed with %v, want ErrMailboxFull", i, c.Err)
		}
	}
	if after > before && after-before >= bound {
		t.Fatalf("the heap grew by %d B (%d B per call), want less than %d", after-before, (after-before)/(2*calls), bound)
	}
	t.Logf("heap in use %d -> %d B over %d calls", before, after, 2*calls)
}

// MaxPendingBytes bounds the payload bytes a session holds for the wire,
// the write in flight included: 1 KiB writes are refused with
// ErrMailboxFull once the bound is reached, their completions say so, and
// only the accepted ones go out. A write larger than the bound is taken
// when nothing else waits.
//
// Old main had no MaxPendingBytes: a session held whatever its callers
// queued, in bytes, up to MailboxSize writes of any size.
func TestMaxPendingBytesRefuses(t *testing.T) {
	const small = 1 << 10
	const calls = 200
	tests := []struct {
		name         string
		maxPending   int64
		wantAccepted int
	}{
		{
			name:         "64 KiB queued behind the write in flight",
			maxPending:   bigWrite + 64<<10,
			wantAccepted: 64,
		},
		{
			name:         "64 KiB: the write in flight alone is over it",
			maxPending:   64 << 10,
			wantAccepted: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.MaxPendingBytes = tc.maxPending
			s, p := openRaw(t, codec.Server, opts, smallBuffer)
			reply := make(chan Completion, calls+2)
			bigID, big := blockWriter(t, s, p, reply)
			var accepted, refused []uint64
			for i := range calls {
				w := bytes.Repeat([]byte{byte('a' + i%26)}, small)
				id, err := s.WriteBinary(w, reply)
				switch {
				case err == nil:
					if len(refused) > 0 {
						t.Fatalf("write %d accepted after a refusal: the backlog did not shrink", i)
					}
					accepted = append(accepted, id)
				case errors.Is(err, ErrMailboxFull):
					refused = append(refused, id)
				default:
					t.Fatalf("write %d: %v, want nil or ErrMailboxFull", i, err)
				}
			}
			if len(accepted) != tc.wantAccepted {
				t.Fatalf("%d writes of %d B accepted with MaxPendingBytes %d, want %d", len(accepted), small, tc.maxPending, tc.wantAccepted)
			}
			for _, id := range refused {
				check(t, await(t, reply), KindWrite, id, ErrMailboxFull)
			}
			finishBigWrite(t, p, big)
			check(t, await(t, reply), KindWrite, bigID, nil)
			for i, id := range accepted {
				c := await(t, reply)
				check(t, c, KindWrite, id, nil)
				if f := p.mustRead(t); len(f.payload) != small || f.payload[0] != byte('a'+i%26) {
					t.Fatalf("got %v, want accepted write %d", f, i)
				}
			}
			// The backlog is written: the bound takes writes again.
			id, err := s.WriteText([]byte("room again"), reply)
			if err != nil {
				t.Fatalf("write after the backlog drained: %v", err)
			}
			check(t, await(t, reply), KindWrite, id, nil)
			if f := p.mustRead(t); string(f.payload) != "room again" {
				t.Fatalf("got %v, want the write after the backlog; refused writes must not go out", f)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 5. Errors

// Every way a session ends gives an Err that matches ErrClosed, with its
// cause reachable: the close frame that ended a handshake (errors.As
// *CloseError: who started it, its code and reason), or the failure. A
// command after the end is refused at the call with the same story.
//
// Old main: only a peer's clean close matched ErrClosed; Cancel(Terminal)
// ended with a bare ErrCanceled, the timeouts with their bare sentinels, a
// lost connection with the read error; CloseError had no Local, and our
// own Close ended with the peer's echo as if the peer had started.
func TestEndErrorsMatchErrClosed(t *testing.T) {
	const short = 200 * time.Millisecond
	tests := []struct {
		name  string
		opts  func(*Options)
		cfg   rawConfig
		end   func(t *testing.T, s *Session, p *rawPeer)
		is    []error     // besides ErrClosed
		as    any         // a pointer to a target errors.As must find, besides *CloseError
		close *CloseError // the handshake's close frame; nil when none ended it
		code  codec.CloseCode
	}{
		{
			name: "the peer's close",
			end: func(t *testing.T, s *Session, p *rawPeer) {
				p.mustWrite(t, closeFrame(4001, "peer says bye"))
				if f := p.mustRead(t); f.op != ws.OpClose || f.closeCode() != 4001 {
					t.Fatalf("got %v, want the echo of close 4001", f)
				}
				if err := p.expectEOF(); err != nil {
					t.Fatal(err)
				}
			},
			close: &CloseError{Code: 4001, Reason: "peer says bye"},
			code:  4001,
		},
		{
			name: "our Close",
			end: func(t *testing.T, s *Session, p *rawPeer) {
				reply := make(chan Completion, 1)
				id, _ := s.Close(CloseReason{Code: 4002, Reason: "we say bye"}, reply)
				if f := p.mustRead(t); f.op != ws.OpClose || f.closeCode() != 4002 {
					t.Fatalf("got %v, want close 4002", f)
				}
				if err := p.finishClose(4002); err != nil {
					t.Fatal(err)
				}
				check(t, await(t, reply), KindClose, id, nil)
			},
			close: &CloseError{Code: 4002, Reason: "we say bye", Local: true},
			code:  4002,
		},
		{
			name: "Cancel(Terminal)",
			end: func(t *testing.T, s *Session, p *rawPeer) {
				s.Cancel(Terminal, nil)
			},
			is:   []error{ErrCanceled},
			code: codec.CloseAbnormalClosure,
		},
		{
			name: "idle timeout",
			opts: func(o *Options) { o.IdleTimeout = short },
			end:  func(t *testing.T, s *Session, p *rawPeer) {}, // the peer answers nothing
			is:   []error{ErrIdleTimeout},
			close: &CloseError{
				Code:  codec.CloseGoingAway,
				Local: true,
			},
			code: codec.CloseGoingAway,
		},
		{
			name: "write timeout",
			opts: func(o *Options) { o.WriteTimeout = short / 2 },
			cfg:  smallBuffer,
			end: func(t *testing.T, s *Session, p *rawPeer) {
				if err := s.conn.(*net.TCPConn).SetWriteBuffer(64 << 10); err != nil {
					t.Fatal(err)
				}
				s.WriteBinary(make([]byte, bigWrite), nil) // the peer reads none of it
			},
			is:   []error{ErrWriteTimeout},
			code: codec.CloseAbnormalClosure,
		},
		{
			name: "close timeout",
			opts: func(o *Options) { o.CloseTimeout = short },
			end: func(t *testing.T, s *Session, p *rawPeer) {
				s.Close(CloseReason{Code: codec.CloseNormalClosure}, nil)
				if f := p.mustRead(t); f.op != ws.OpClose {
					t.Fatalf("got %v, want the close frame", f)
				}
				// The peer never answers it.
			},
			is:   []error{ErrCloseTimeout},
			code: codec.CloseAbnormalClosure,
		},
		{
			name: "connection lost",
			end: func(t *testing.T, s *Session, p *rawPeer) {
				p.conn.Close() // no close frame
			},
			is:   []error{io.EOF},
			code: codec.CloseAbnormalClosure,
		},
		{
			name: "protocol error",
			end: func(t *testing.T, s *Session, p *rawPeer) {
				p.mustWrite(t, frame{fin: true, rsv: codec.RSV1, op: ws.OpText, payload: []byte("no extension")})
				if f := p.mustRead(t); f.op != ws.OpClose || f.closeCode() != codec.CloseProtocolError {
					t.Fatalf("got %v, want close 1002", f)
				}
				if err := p.expectEOF(); err != nil {
					t.Fatal(err)
				}
			},
			is:    []error{codec.ErrReservedBits},
			as:    new(*codec.ProtocolError),
			close: &CloseError{Code: codec.CloseProtocolError, Local: true},
			code:  codec.CloseProtocolError,
		},
		{
			name: "handler panic",
			opts: func(o *Options) {
				o.OnMessage = func(s *Session, m Message) {
					m.Release()
					panic("handler exploded")
				}
			},
			end: func(t *testing.T, s *Session, p *rawPeer) {
				p.mustWrite(t, textFrame("boom"))
				if f := p.mustRead(t); f.op != ws.OpClose || f.closeCode() != codec.CloseInternalError {
					t.Fatalf("got %v, want close 1011", f)
				}
			},
			as:    new(*actor.PanicError),
			close: &CloseError{Code: codec.CloseInternalError, Local: true},
			code:  codec.CloseInternalError,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			if tc.opts != nil {
				tc.opts(opts)
			}
			s, p := openRaw(t, codec.Server, opts, tc.cfg)
			tc.end(t, s, p)
			err := awaitDone(t, s)
			if !errors.Is(err, ErrClosed) {
				t.Errorf("Err() = %v, want it to match ErrClosed", err)
			}
			for _, want := range tc.is {
				if !errors.Is(err, want) {
					t.Errorf("Err() = %v, want it to match %v", err, want)
				}
			}
			if tc.as != nil && !errors.As(err, tc.as) {
				t.Errorf("Err() = %v, want errors.As to find a %T", err, tc.as)
			}
			var ce *CloseError
			switch found := errors.As(err, &ce); {
			case tc.close == nil && found:
				t.Errorf("Err() = %v, a *CloseError; want no handshake", err)
			case tc.close != nil && !found:
				t.Errorf("Err() = %v (%T), want a *CloseError %+v", err, err, *tc.close)
			case tc.close != nil && (ce.Code != tc.close.Code || ce.Reason != tc.close.Reason || ce.Local != tc.close.Local):
				t.Errorf("CloseError code %d, reason %q, local %t; want %d, %q, %t",
					ce.Code, ce.Reason, ce.Local, tc.close.Code, tc.close.Reason, tc.close.Local)
			}
			if code := CloseCode(err); code != tc.code {
				t.Errorf("CloseCode(%v) = %d, want %d", err, code, tc.code)
			}
			reply := make(chan Completion, 1)
			id, werr := s.WriteText([]byte("too late"), reply)
			if !errors.Is(werr, ErrClosed) || werr.Error() != err.Error() {
				t.Errorf("write after the end = %v, want Err() %v", werr, err)
			}
			check(t, await(t, reply), KindWrite, id, ErrClosed)
		})
	}
}

// CloseCode is 0 for errors that are not a session's end and for nil, and
// the code of a CloseError however deeply wrapped.
//
// Old main: CloseCode gave 1006 for every non-nil error it did not know,
// ErrMailboxFull included.
func TestCloseCodeOfErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want codec.CloseCode
	}{
		{
			name: "nil",
			err:  nil,
			want: 0,
		},
		{
			name: "ErrMailboxFull",
			err:  ErrMailboxFull,
			want: 0,
		},
		{
			name: "a refusal of a full mailbox",
			err:  errMailboxCount,
			want: 0,
		},
		{
			name: "a refusal of a full byte bound",
			err:  errMailboxBytes,
			want: 0,
		},
		{
			name: "ErrClosing",
			err:  ErrClosing,
			want: 0,
		},
		{
			name: "ErrEmptyMessage",
			err:  ErrEmptyMessage,
			want: 0,
		},
		{
			name: "a CloseError",
			err:  &CloseError{Code: 4003, Reason: "x"},
			want: 4003,
		},
		{
			name: "a wrapped CloseError",
			err:  fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", &CloseError{Code: codec.CloseGoingAway, Local: true})),
			want: codec.CloseGoingAway,
		},
		{
			name: "an end without a handshake",
			err:  ended(ErrCloseTimeout),
			want: codec.CloseAbnormalClosure,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CloseCode(tc.err); got != tc.want {
				t.Fatalf("CloseCode(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}
