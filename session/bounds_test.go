package session

// Tests of the bounds a session keeps against its peer (DESIGN.md, "Bounds
// against peers"): a message in progress must keep a minimum rate
// (MessageTimeout, MessageMinRate), a failure writes what was accepted
// before it and then the close frame, every end tears the connection down
// without a reset, and a server's writes are bounded in time by default.
//
// Each test says why it fails on old main (8144e36), which had none of
// these, or that it passes there: the controls that keep a bound from
// being met by cutting honest peers too.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/netpoll"
)

// The message timeout of these tests, its rate and the tick period they
// give (half the message timeout, the shortest of the session's periods).
const (
	boundsMessageTimeout = 300 * time.Millisecond
	boundsMinRate        = 1000 // bytes per second
	boundsTick           = boundsMessageTimeout / 2
)

// boundsDeadline is how long a test waits for a cut that must come: far
// past the message timeout, reached only when the bound does not hold.
const boundsDeadline = 5 * time.Second

// boundsEcho is an OnMessage that echoes every message.
func boundsEcho(s *Session, m Message) {
	defer m.Release()
	s.WriteMessage(&m, nil)
}

// messageTimeoutOptions returns the options of the message timeout tests:
// an echoing server whose idle timeout is far away, so that only the
// message timeout can cut the peer.
func messageTimeoutOptions() *Options {
	opts := testOptions()
	opts.IdleTimeout = time.Hour
	opts.MessageTimeout = boundsMessageTimeout
	opts.MessageMinRate = boundsMinRate
	opts.OnMessage = boundsEcho
	return opts
}

// acceptPipe returns a server session, with opts, accepted by AcceptConn on
// one end of a net.Pipe, and the raw client on the other end. Inside a
// synctest bubble the session's timers, the pipe's deadlines and every
// goroutine run on the bubble's fake clock. A session over a pipe has no
// raw socket: it never parks, and its teardown closes the pipe at once.
func acceptPipe(t *testing.T, opts *Options) (*Session, *rawPeer) {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close() })
	accepted := make(chan accepted1, 1)
	go func() {
		s, err := AcceptConn(server, opts)
		accepted <- accepted1{s, err}
	}()
	client.SetDeadline(time.Now().Add(testTimeout))
	u := &url.URL{Scheme: "ws", Host: "example.com", Path: "/"}
	br, _, err := ws.Dialer{}.Upgrade(client, u)
	client.SetDeadline(time.Time{})
	res := <-accepted
	if err != nil {
		t.Fatalf("raw client: handshake: %v", err)
	}
	if res.err != nil {
		t.Fatalf("AcceptConn: %v", res.err)
	}
	if res.s.raw != nil {
		t.Fatal("a session over net.Pipe has a raw socket")
	}
	endSession(t, res.s)
	p := &rawPeer{conn: client, src: client, client: true}
	if br != nil {
		p.src = io.MultiReader(br, client)
	}
	return res.s, p
}

// fromClient returns the frame f as a client sends it.
func fromClient(f frame) []byte { return encodeFrame(f, true) }

// binaryHeader returns the header of a masked binary frame of n bytes, as
// a client sends it ahead of the payload.
func binaryHeader(n int64) []byte {
	return codec.AppendHeader(nil, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: n, Masked: true, Mask: codec.NewMask()})
}

// filler returns n bytes that show where a byte went missing.
func filler(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// pacedSend writes first, and then piece(i) for i = 0, 1, ... once every
// every (an empty piece sends nothing), until piece returns nil, a write
// fails, or the test ends. The pace is the peer's behaviour under test (on
// the bubble's clock, or on the real one over TCP), not a synchronization.
func pacedSend(t *testing.T, conn net.Conn, first []byte, every time.Duration, piece func(i int) []byte) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
	wg.Go(func() {
		if _, err := conn.Write(first); err != nil || piece == nil {
			return
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-tick.C:
			case <-stop:
				return
			}
			b := piece(i)
			switch {
			case b == nil:
				return
			case len(b) == 0:
				continue // nothing this time
			}
			if _, err := conn.Write(b); err != nil {
				return
			}
		}
	})
}

// expectCut reads what the session sends until the end of the stream and
// fails the test unless it is one close frame with code, and then EOF. It
// returns when the close frame came.
func expectCut(t *testing.T, p *rawPeer, code codec.CloseCode, start time.Time) time.Duration {
	t.Helper()
	p.conn.SetReadDeadline(start.Add(boundsDeadline))
	h, err := p.readHeader()
	if err != nil {
		t.Fatalf("no close frame within %v: %v", boundsDeadline, err)
	}
	at := time.Since(start)
	b, err := p.readPayload(h)
	if err != nil {
		t.Fatalf("close frame payload: %v", err)
	}
	p.conn.SetReadDeadline(time.Time{})
	f := frame{fin: h.Fin, op: h.OpCode, payload: b}
	if f.op != ws.OpClose || f.closeCode() != code {
		t.Fatalf("got %v, want close %d", f, code)
	}
	if err := p.expectEOF(); err != nil {
		t.Fatal(err)
	}
	return at
}

// endedWith fails the test unless s ends with an error that matches want
// and carries code.
func endedWith(t *testing.T, s *Session, want error, code codec.CloseCode) {
	t.Helper()
	err := awaitDone(t, s)
	if !errors.Is(err, want) || CloseCode(err) != code {
		t.Fatalf("Err() = %v (code %d), want %v with %d", err, CloseCode(err), want, code)
	}
}

// A peer whose message in progress falls below the minimum rate is closed
// with 1008 and the session ends with ErrMessageTimeout, whatever the bytes
// it trickles: payload, whole fragments, or a header split across reads.
// Every case keeps the idle timeout (an hour) from ever firing.
//
// Old main had no message timeout: nothing cuts these peers, no close frame
// comes before boundsDeadline, and expectCut fails.
func TestMessageTimeoutCutsTricklers(t *testing.T) {
	header1M := binaryHeader(1 << 20) // 14 bytes: 2, 8 of length, 4 of mask
	tests := []struct {
		name  string
		first []byte             // sent at once
		every time.Duration      // then a piece every this long
		piece func(i int) []byte // nil, or returning nil: stall
		after time.Duration      // the cut comes no sooner than this after the first byte
		by    time.Duration      // nor later than this
	}{
		{
			name:  "payload one byte per 50ms",
			first: header1M,
			every: 50 * time.Millisecond, // 20 B/s against a minimum of 1000
			piece: func(int) []byte { return []byte{'x'} },
			after: boundsMessageTimeout,
			by:    boundsMessageTimeout + 100*time.Millisecond + 2*boundsTick,
		},
		{
			name:  "one-byte fragments every 50ms",
			first: fromClient(frame{op: ws.OpText, payload: []byte("a")}),
			every: 50 * time.Millisecond,
			piece: func(int) []byte { return fromClient(frame{op: ws.OpContinuation, payload: []byte("a")}) },
			after: boundsMessageTimeout,
			by:    boundsMessageTimeout + 200*time.Millisecond + 2*boundsTick,
		},
		{
			name:  "stall between fragments",
			first: fromClient(frame{op: ws.OpText, payload: bytes.Repeat([]byte("a"), 100)}),
			after: boundsMessageTimeout,
			by:    boundsMessageTimeout + 200*time.Millisecond + 2*boundsTick,
		},
		{
			name:  "header split, then a stall",
			first: header1M[:5],
			after: boundsMessageTimeout,
			by:    boundsMessageTimeout + 100*time.Millisecond + 2*boundsTick,
		},
		{
			name:  "header and payload one byte per 50ms",
			first: header1M[:1],
			every: 50 * time.Millisecond,
			piece: func(i int) []byte {
				if i+1 < len(header1M) {
					return header1M[i+1 : i+2]
				}
				return []byte{'x'}
			},
			after: boundsMessageTimeout,
			by:    boundsMessageTimeout + 100*time.Millisecond + 2*boundsTick,
		},
		{
			// 2 KiB every 2.5 s is 820 B/s: each piece buys 2 s and some,
			// not the 2.5 s until the next one.
			name:  "below the minimum rate",
			first: append(binaryHeader(64<<10), filler(2<<10)...),
			every: 2500 * time.Millisecond,
			piece: func(int) []byte { return filler(2 << 10) },
			after: boundsMessageTimeout + 2*time.Second,
			by:    2500 * time.Millisecond,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, p := acceptPipe(t, messageTimeoutOptions())
				start := time.Now()
				pacedSend(t, p.conn, tc.first, tc.every, tc.piece)
				at := expectCut(t, p, codec.ClosePolicyViolation, start)
				if at < tc.after || at > tc.by {
					t.Fatalf("cut after %v, want between %v and %v", at, tc.after, tc.by)
				}
				endedWith(t, s, ErrMessageTimeout, codec.ClosePolicyViolation)
			})
		})
	}
}

// A peer that keeps the minimum rate gets its message through however long
// it takes, and a peer that is quiet between messages is no message in
// progress at all.
//
// These pass on old main (it cut nobody); they are here so that the cuts
// above cannot come from a bound that also cuts honest peers.
func TestMessageTimeoutLetsHonestSendersThrough(t *testing.T) {
	msg60K := filler(60 << 10)
	msg10K := filler(10 << 10)
	head60K, body60K := splitClientFrame(frame{fin: true, op: ws.OpBinary, payload: msg60K})
	head10K, body10K := splitClientFrame(frame{fin: true, op: ws.OpBinary, payload: msg10K})
	small := fromClient(frame{fin: true, op: ws.OpBinary, payload: []byte("whole")})
	tests := []struct {
		name  string
		first []byte
		every time.Duration
		piece func(i int) []byte
		want  [][]byte // the echoes, in order
	}{
		{
			// 20 KB/s: twenty times the minimum rate; the message takes
			// three seconds, ten times the message timeout.
			name:  "2 KB every 100ms",
			first: head60K,
			every: 100 * time.Millisecond,
			piece: func(i int) []byte { return pieceOf(body60K, i, 2048) },
			want:  [][]byte{msg60K},
		},
		{
			name:  "fragments of 2 KB every 100ms",
			first: fromClient(frame{op: ws.OpBinary, payload: msg60K[:2048]}),
			every: 100 * time.Millisecond,
			piece: func(i int) []byte {
				lo := (i + 1) * 2048
				if lo >= len(msg60K) {
					return nil
				}
				hi := min(lo+2048, len(msg60K))
				return fromClient(frame{fin: hi == len(msg60K), op: ws.OpContinuation, payload: msg60K[lo:hi]})
			},
			want: [][]byte{msg60K},
		},
		{
			// 1250 B/s, a quarter above the minimum, for eight seconds.
			name:  "just above the minimum rate",
			first: head10K,
			every: 400 * time.Millisecond,
			piece: func(i int) []byte { return pieceOf(body10K, i, 500) },
			want:  [][]byte{msg10K},
		},
		{
			name:  "header split by a pause shorter than the timeout",
			first: small[:3],
			every: boundsMessageTimeout * 2 / 3,
			piece: func(i int) []byte {
				if i > 0 {
					return nil
				}
				return small[3:]
			},
			want: [][]byte{[]byte("whole")},
		},
		{
			// The first message comes in two reads, so that its deadline
			// is set; then the peer is silent for ten message timeouts
			// before the second: no message is in progress meanwhile.
			name:  "quiet between messages",
			first: small[:3],
			every: 100 * time.Millisecond,
			piece: func(i int) []byte {
				quiet := int(10 * boundsMessageTimeout / (100 * time.Millisecond))
				switch {
				case i == 0:
					return small[3:]
				case i <= quiet:
					return []byte{}
				case i == quiet+1:
					return small
				}
				return nil
			},
			want: [][]byte{[]byte("whole"), []byte("whole")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, p := acceptPipe(t, messageTimeoutOptions())
				pacedSend(t, p.conn, tc.first, tc.every, tc.piece)
				for i, want := range tc.want {
					f, err := p.read()
					if err != nil {
						t.Fatalf("echo %d: %v (session: %v)", i, err, s.Err())
					}
					if f.op != ws.OpBinary || !f.fin || !bytes.Equal(f.payload, want) {
						t.Fatalf("echo %d: %v, want the %d bytes sent", i, f, len(want))
					}
				}
				select {
				case <-s.Done():
					t.Fatalf("session ended: %v", s.Err())
				default:
				}
				// The session still waits for the next message: a clean
				// close ends it.
				p.mustWrite(t, closeFrame(codec.CloseNormalClosure, ""))
				if f := p.mustRead(t); f.op != ws.OpClose || f.closeCode() != codec.CloseNormalClosure {
					t.Fatalf("got %v, want the echo of our close frame", f)
				}
				if err := p.expectEOF(); err != nil {
					t.Fatal(err)
				}
				endedWith(t, s, ErrClosed, codec.CloseNormalClosure)
			})
		})
	}
}

// splitClientFrame returns f as a client sends it, cut into its header and
// its masked payload, for a peer that sends the payload in pieces.
func splitClientFrame(f frame) (header, payload []byte) {
	b := fromClient(f)
	n := len(b) - len(f.payload)
	return b[:n], b[n:]
}

// pieceOf returns the i-th piece of size bytes of b, or nil past its end.
func pieceOf(b []byte, i, size int) []byte {
	if i*size >= len(b) {
		return nil
	}
	return b[i*size : min((i+1)*size, len(b))]
}

// The tick enforces the message timeout while the reader is parked (it has
// no goroutine, and only the tick can see the message's deadline pass),
// with the idle timeout far away or off. Loopback TCP on Linux: parking
// needs a raw socket and the process's poller.
//
// Old main had no message timeout, and its tick stopped while the reader
// was parked when the idle timeout was off: the peer is never cut.
func TestMessageTimeoutWhileParked(t *testing.T) {
	if !netpoll.Supported() {
		t.Skip("parking needs Linux")
	}
	const (
		messageTimeout = 600 * time.Millisecond
		every          = 150 * time.Millisecond // three times ParkAfter: the reader parks between bytes
		trickled       = 3                      // then a stall: the cut comes while parked
	)
	tests := []struct {
		name string
		idle time.Duration
	}{
		{
			name: "idle timeout an hour",
			idle: time.Hour,
		},
		{
			name: "idle timeout off",
			idle: -1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := messageTimeoutOptions()
			opts.IdleTimeout = tc.idle
			opts.MessageTimeout = messageTimeout
			opts.ParkAfter = 50 * time.Millisecond
			s, p := openRaw(t, codec.Server, opts, rawConfig{})
			if s.raw == nil {
				t.Fatal("a session over TCP has no raw socket")
			}
			var parkedSeen atomic.Int32 // how many of the paced writes found the reader parked
			start := time.Now()
			pacedSend(t, p.conn, binaryHeader(1<<20), every, func(i int) []byte {
				if s.park.Load() == parkParked {
					parkedSeen.Add(1)
				}
				if i >= trickled {
					return nil
				}
				return []byte{'x'}
			})
			at := expectCut(t, p, codec.ClosePolicyViolation, start)
			if at < messageTimeout {
				t.Fatalf("cut after %v, before the message timeout %v", at, messageTimeout)
			}
			endedWith(t, s, ErrMessageTimeout, codec.ClosePolicyViolation)
			if parkedSeen.Load() == 0 {
				t.Fatal("the reader never parked: the test saw no parked cut")
			}
		})
	}
}

// A failure answers first: the echo of a valid message that came in front
// of a bad frame goes out before the close frame with the bad frame's code,
// and then the connection ends with our FIN, not a reset; with the Messages
// channel the valid message is delivered before the channel closes. The
// valid message and the bad frame come in one write (one read: the
// handler's echo and the failure meet in the same held batch), in one
// write with 64 KiB of data behind the bad frame (which the session must
// drain, not reset), and in two writes.
//
// Old main failed at once: it canceled every command that had not begun,
// the handler's echo among them, so the handler rows read the close frame
// where the echo should be. The Messages rows fail there only on Err, which
// was no *CloseError of ours: old main already delivered the message and
// lingered after a protocol error.
func TestFailureAnswersFirst(t *testing.T) {
	const maxMessage = 1024
	tests := []struct {
		name string
		bad  []byte
		code codec.CloseCode
	}{
		{
			name: "unmasked client frame",
			bad:  encodeFrame(textFrame("unmasked"), false),
			code: codec.CloseProtocolError,
		},
		{
			name: "reserved opcode",
			bad:  fromClient(frame{fin: true, op: 0x3, payload: []byte("x")}),
			code: codec.CloseProtocolError,
		},
		{
			name: "RSV1 without permessage-deflate",
			bad:  fromClient(frame{fin: true, rsv: ws.Rsv(true, false, false), op: ws.OpText, payload: []byte("x")}),
			code: codec.CloseProtocolError,
		},
		{
			name: "invalid UTF-8 text",
			bad:  fromClient(textFrame("bad \xff\xfe")),
			code: codec.CloseInvalidFramePayloadData,
		},
		{
			name: "message over MaxMessageSize",
			bad:  fromClient(frame{fin: true, op: ws.OpBinary, payload: filler(maxMessage + 1)}),
			code: codec.CloseMessageTooBig,
		},
		{
			name: "fragmented control frame",
			bad:  fromClient(frame{op: ws.OpPing, payload: []byte("p")}),
			code: codec.CloseProtocolError,
		},
		{
			name: "continuation without start",
			bad:  fromClient(frame{fin: true, op: ws.OpContinuation, payload: []byte("c")}),
			code: codec.CloseProtocolError,
		},
	}
	valid := fromClient(textFrame("valid"))
	behind := slices.Concat(junkFromClient, junkFromClient, junkFromClient, junkFromClient)
	for _, tc := range tests {
		writes := []struct {
			name  string
			parts [][]byte
		}{
			{
				name:  "one write",
				parts: [][]byte{slices.Concat(valid, tc.bad)},
			},
			{
				name:  "one write, data behind",
				parts: [][]byte{slices.Concat(valid, tc.bad, behind)},
			},
			{
				name:  "two writes",
				parts: [][]byte{valid, tc.bad},
			},
		}
		for _, w := range writes {
			for _, handler := range []bool{true, false} {
				mode := "messages"
				if handler {
					mode = "handler"
				}
				t.Run(fmt.Sprintf("%s/%s/%s", tc.name, w.name, mode), func(t *testing.T) {
					opts := testOptions()
					opts.MaxMessageSize = maxMessage
					if handler {
						opts.OnMessage = boundsEcho
					}
					s, p := openRaw(t, codec.Server, opts, rawConfig{})
					for _, b := range w.parts {
						if err := p.writeRaw(b); err != nil {
							t.Fatal(err)
						}
					}
					if handler {
						if f := p.mustRead(t); f.op != ws.OpText || string(f.payload) != "valid" {
							t.Fatalf("got %v, want the echo of the valid message first", f)
						}
					}
					if f := p.mustRead(t); f.op != ws.OpClose || f.closeCode() != tc.code {
						t.Fatalf("got %v, want close %d", f, tc.code)
					}
					if err := p.expectEOF(); err != nil {
						t.Fatal(err)
					}
					if !handler {
						expectMessages(t, s, "valid")
					}
					err := awaitDone(t, s)
					var ce *CloseError
					if CloseCode(err) != tc.code || !errors.As(err, &ce) || !ce.Local {
						t.Fatalf("Err() = %v (code %d), want our close with %d", err, CloseCode(err), tc.code)
					}
				})
			}
		}
	}
}

// expectMessages receives want from s.Messages, in order, and then the
// channel's close.
func expectMessages(t *testing.T, s *Session, want ...string) {
	t.Helper()
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	for i := 0; ; i++ {
		select {
		case m, ok := <-s.Messages():
			switch {
			case !ok && i == len(want):
				return
			case !ok:
				t.Fatalf("Messages closed after %d messages, want %q", i, want)
			case i == len(want):
				m.Release()
				t.Fatalf("message %q beyond %q", m.Payload, want)
			}
			got := string(m.Payload)
			m.Release()
			if got != want[i] {
				t.Fatalf("message %d: %q, want %q", i, got, want[i])
			}
		case <-timer.C:
			t.Fatalf("Messages: %d messages and no close, want %q", i, want)
		}
	}
}

// A write accepted before a bad frame arrives goes out before the close
// frame, and completes without error: whether it was queued behind a write
// in flight when the failure came (the actor learns of the failure, an
// urgent command, before it takes the write from its mailbox) or had just
// been accepted.
//
// Old main canceled what had not begun when it failed: the write behind
// the one in flight completed with the failure and never reached the wire.
// (So does HEAD: see the report of fail's cancelPending.)
func TestFailureWritesAcceptedFirst(t *testing.T) {
	tests := []struct {
		name     string
		inFlight bool // a big write holds the actor when the bad frame comes
	}{
		{
			name:     "behind a write in flight",
			inFlight: true,
		},
		{
			// Passes on old main too: the actor writes it at once, before
			// the bad frame comes. The control of the row above.
			name: "just accepted",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The reader reports a ping ahead of the bad frame, in the same
			// read: once it has, the failure is known to the actor, or
			// microseconds away, well before the peer has read the big
			// write.
			pinged := make(chan struct{}, 1)
			opts := testOptions()
			opts.OnControl = func(s *Session, op ControlOp, _ []byte) {
				if op == ControlPing {
					select {
					case pinged <- struct{}{}:
					default:
					}
				}
			}
			s, p := openRaw(t, codec.Server, opts, smallBuffer)
			reply := make(chan Completion, 4)
			var bigID uint64
			var big []byte
			if tc.inFlight {
				bigID, big = blockWriter(t, s, p, reply)
			}
			beforeID, err := s.WriteText([]byte("before"), reply)
			if err != nil {
				t.Fatal(err)
			}
			bad := slices.Concat(fromClient(frame{fin: true, op: ws.OpPing, payload: []byte("ahead")}),
				encodeFrame(textFrame("unmasked"), false))
			if err := p.writeRaw(bad); err != nil {
				t.Fatal(err)
			}
			select {
			case <-pinged:
			case <-time.After(testTimeout):
				t.Fatal("the reader did not get the ping")
			}
			if tc.inFlight {
				finishBigWrite(t, p, big)
			}
			var data []string
			for {
				f := p.mustRead(t)
				if f.op == ws.OpPong {
					continue
				}
				if f.op == ws.OpClose {
					if f.closeCode() != codec.CloseProtocolError {
						t.Fatalf("got %v, want close 1002", f)
					}
					break
				}
				data = append(data, string(f.payload))
			}
			if !slices.Equal(data, []string{"before"}) {
				t.Fatalf("data frames before the close frame: %q, want [before]", data)
			}
			if err := p.expectEOF(); err != nil {
				t.Fatal(err)
			}
			if tc.inFlight {
				if c := await(t, reply); c.ID != bigID || c.Err != nil || c.N != len(big) {
					t.Fatalf("big write: %+v, want %d bytes written", c, len(big))
				}
			}
			if c := await(t, reply); c.ID != beforeID || c.Err != nil || c.N != len("before") {
				t.Fatalf("the write before the failure: id %d, err %v, %d bytes; want id %d written", c.ID, c.Err, c.N, beforeID)
			}
			if err := awaitDone(t, s); CloseCode(err) != codec.CloseProtocolError {
				t.Fatalf("Err() = %v, want 1002", err)
			}
		})
	}
}

// junkFromClient is a data frame a client sends where the session drops it.
var junkFromClient = encodeFrame(frame{fin: true, op: ws.OpBinary, payload: filler(16 << 10)}, true)

// isResetErr reports whether err is a connection reset (or the broken pipe a
// write meets after one).
func isResetErr(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// A client that sends its close frame with more behind it in the same
// write (a ping, 64 KiB of data) reads the server's close frame intact and
// then a clean end of stream: the server half-closes and drains what
// follows instead of closing a socket with unread bytes, which makes Linux
// send a reset. Many connections, since a reset is a race with the read.
//
// Old main closed the socket at once with the junk unread: the client's
// read ended with ECONNRESET instead of EOF.
func TestPeerCloseFollowedByJunk(t *testing.T) {
	const conns = 50
	burst := slices.Concat(
		fromClient(closeFrame(codec.CloseNormalClosure, "bye")),
		fromClient(frame{fin: true, op: ws.OpPing, payload: []byte("after the close")}),
		junkFromClient, junkFromClient, junkFromClient, junkFromClient,
	)
	resets := 0
	for i := range conns {
		handler := i%2 == 0
		t.Run(fmt.Sprintf("conn%02d", i), func(t *testing.T) {
			opts := testOptions()
			if handler {
				opts.OnMessage = boundsEcho
			}
			s, p := openRaw(t, codec.Server, opts, rawConfig{})
			if err := p.writeRaw(burst); err != nil {
				t.Fatal(err)
			}
			f, err := p.read()
			if err != nil {
				if isResetErr(err) {
					resets++
				}
				t.Fatalf("reading the server's close frame: %v", err)
			}
			if f.op != ws.OpClose || f.closeCode() != codec.CloseNormalClosure {
				t.Fatalf("got %v, want the echo of our close 1000", f)
			}
			fs, err := p.readAll()
			if len(fs) > 0 || err != io.EOF {
				if isResetErr(err) {
					resets++
				}
				t.Fatalf("after the close frame: frames %v, then %v; want EOF", fs, err)
			}
			p.conn.Close()
			err = awaitDone(t, s)
			var ce *CloseError
			if !errors.As(err, &ce) || ce.Local || ce.Code != codec.CloseNormalClosure || ce.Reason != "bye" {
				t.Fatalf("Err() = %v, want the peer's close 1000 \"bye\"", err)
			}
		})
	}
	if resets > 0 {
		t.Logf("%d of %d connections were reset", resets, conns)
	}
}

// The server's close frame reaches a client that keeps sending data after
// it, and the connection ends with a clean end of stream once the client's
// close frame came, though data still follows that too (in the same write,
// and from a goroutine that goes on sending).
//
// Old main closed the socket as soon as the client's close frame came,
// with the data behind it unread: the client's read ended with ECONNRESET
// instead of EOF.
func TestServerCloseWhilePeerSends(t *testing.T) {
	const conns = 20
	for i := range conns {
		t.Run(fmt.Sprintf("conn%02d", i), func(t *testing.T) {
			opts := testOptions()
			opts.OnMessage = func(s *Session, m Message) { m.Release() }
			s, p := openRaw(t, codec.Server, opts, rawConfig{})
			// Data flows while the server closes, bounded (1 MiB) so that
			// the server, which reads through it to the client's close
			// frame, is not slowed down by a backlog of megabytes.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for range 64 {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := p.conn.Write(junkFromClient); err != nil {
						return
					}
				}
			})
			defer wg.Wait()
			defer close(stop)
			reply := make(chan Completion, 1)
			closeID, err := s.Close(CloseReason{Code: codec.CloseNormalClosure, Reason: "server"}, reply)
			if err != nil {
				t.Fatal(err)
			}
			f := p.mustRead(t)
			if f.op != ws.OpClose || f.closeCode() != codec.CloseNormalClosure || string(f.payload[2:]) != "server" {
				t.Fatalf("got %v, want our close 1000 \"server\"", f)
			}
			// Our close frame with data right behind it, in one write: the
			// server has unread bytes when it ends. Whole frames from two
			// goroutines: each Write holds the socket's write lock for all
			// of its bytes.
			if err := p.writeRaw(slices.Concat(fromClient(closeFrame(codec.CloseNormalClosure, "")), junkFromClient, junkFromClient)); err != nil {
				t.Fatal(err)
			}
			if err := p.expectEOF(); err != nil {
				t.Fatal(err)
			}
			check(t, await(t, reply), KindClose, closeID, nil)
			err = awaitDone(t, s)
			var ce *CloseError
			if !errors.As(err, &ce) || !ce.Local || ce.Code != codec.CloseNormalClosure {
				t.Fatalf("Err() = %v, want our close 1000", err)
			}
		})
	}
}

// The defaults of the bounds: servers bound writes (10 s) and messages in
// progress (20 s at 500 B/s, mod_reqtimeout's); clients neither; a negative
// value turns a bound off.
//
// Old main had no message timeout and no default write timeout (this does
// not compile there: its writeTimeout knew no role).
func TestBoundsDefaults(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		role    codec.Role
		write   time.Duration
		message time.Duration
		minRate int64
	}{
		{
			name:    "server, zero options",
			role:    codec.Server,
			write:   10 * time.Second,
			message: 20 * time.Second,
			minRate: 500,
		},
		{
			name:    "client, zero options",
			role:    codec.Client,
			minRate: 500,
		},
		{
			name:    "server, set",
			opts:    Options{WriteTimeout: time.Second, MessageTimeout: 2 * time.Second, MessageMinRate: 100},
			role:    codec.Server,
			write:   time.Second,
			message: 2 * time.Second,
			minRate: 100,
		},
		{
			name:    "client, set",
			opts:    Options{WriteTimeout: time.Second, MessageTimeout: 2 * time.Second, MessageMinRate: 100},
			role:    codec.Client,
			write:   time.Second,
			message: 2 * time.Second,
			minRate: 100,
		},
		{
			name:    "server, off",
			opts:    Options{WriteTimeout: -1, MessageTimeout: -1},
			role:    codec.Server,
			minRate: 500,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.opts.writeTimeout(tc.role); got != tc.write {
				t.Errorf("writeTimeout = %v, want %v", got, tc.write)
			}
			if got := tc.opts.messageTimeout(tc.role); got != tc.message {
				t.Errorf("messageTimeout = %v, want %v", got, tc.message)
			}
			if got := tc.opts.messageMinRate(); got != tc.minRate {
				t.Errorf("messageMinRate = %v, want %v", got, tc.minRate)
			}
		})
	}
}

// dialPipe returns a client session, with opts, dialed over one end of a
// net.Pipe, and the raw server on the other end. See acceptPipe.
func dialPipe(t *testing.T, opts *Options) (*Session, *rawPeer) {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { server.Close() })
	o := *opts
	o.NetDial = func(context.Context, string, string) (net.Conn, error) { return client, nil }
	upgraded := make(chan error, 1)
	go func() {
		server.SetDeadline(time.Now().Add(testTimeout))
		_, err := ws.Upgrader{}.Upgrade(server)
		server.SetDeadline(time.Time{})
		upgraded <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := Dial(ctx, "ws://example.com/", &o)
	if uerr := <-upgraded; uerr != nil {
		t.Fatalf("raw server: handshake: %v", uerr)
	}
	if err != nil {
		client.Close()
		t.Fatalf("Dial: %v", err)
	}
	endSession(t, s)
	return s, &rawPeer{conn: server, src: server}
}

// With the default options a server's write to a peer that never reads
// fails after 10 s with ErrWriteTimeout and ends the session; a client's
// waits (clients have no default write timeout). On the bubble's clock,
// over a pipe, which holds no byte its reader has not taken.
//
// Old main had no default write timeout: the server's write never
// completes either.
func TestWriteTimeoutByDefault(t *testing.T) {
	const defaultWriteTimeout = 10 * time.Second
	tests := []struct {
		name string
		role codec.Role
	}{
		{
			name: "server",
			role: codec.Server,
		},
		{
			name: "client",
			role: codec.Client,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// The defaults, but for keep-alive pings (whose pongs the
				// peer, not reading, could not send anyway) and room for
				// big writes.
				opts := &Options{IdleTimeout: -1, MaxPendingBytes: 64 << 20}
				var s *Session
				if tc.role == codec.Server {
					s, _ = acceptPipe(t, opts)
				} else {
					s, _ = dialPipe(t, opts)
				}
				reply := make(chan Completion, 2)
				start := time.Now()
				id, err := s.WriteBinary(filler(1<<20), reply)
				if err != nil {
					t.Fatal(err)
				}
				if tc.role == codec.Client {
					select {
					case c := <-reply:
						t.Fatalf("a client's write to a peer that does not read completed: %+v", c)
					case <-time.After(10 * defaultWriteTimeout):
					}
					s.Cancel(Terminal, nil)
					check(t, await(t, reply), KindWrite, id, ErrCanceled)
					return
				}
				// await's testTimeout is the default write timeout itself:
				// wait longer.
				select {
				case c := <-reply:
					check(t, c, KindWrite, id, ErrWriteTimeout)
				case <-time.After(6 * defaultWriteTimeout):
					t.Fatalf("no completion of a write to a peer that does not read after %v", 6*defaultWriteTimeout)
				}
				if d := time.Since(start); d < defaultWriteTimeout || d > defaultWriteTimeout+time.Second {
					t.Fatalf("the write failed after %v, want the default write timeout %v", d, defaultWriteTimeout)
				}
				endedWith(t, s, ErrWriteTimeout, codec.CloseAbnormalClosure)
			})
		})
	}
}

// Over loopback TCP, a server whose peer never reads issues writes of 1 MiB
// until the socket buffers are full: that write fails after WriteTimeout
// with ErrWriteTimeout, and the session ends. The options are the defaults
// but for the write timeout, short here (the default's 10 s is checked on
// the bubble's clock above), keep-alive pings and room for big writes.
//
// This passes on old main, which honoured an explicit WriteTimeout; it
// checks the real socket's path of the default tested above.
func TestWriteTimeoutPeerNeverReads(t *testing.T) {
	const (
		timeout = 200 * time.Millisecond
		mib     = 1 << 20
		most    = 256 // far more than loopback's buffers hold
	)
	opts := &Options{
		IdleTimeout:      -1,
		MaxPendingBytes:  64 << 20,
		WriteTimeout:     timeout,
		HandshakeTimeout: testTimeout,
		CloseTimeout:     testTimeout,
	}
	s, _ := openRaw(t, codec.Server, opts, rawConfig{}) // the peer reads nothing
	payload := filler(mib)
	reply := make(chan Completion, 1)
	for i := range most {
		start := time.Now()
		id, err := s.WriteBinary(payload, reply)
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		c := await(t, reply)
		if c.Err == nil {
			continue // the buffers took it
		}
		check(t, c, KindWrite, id, ErrWriteTimeout)
		if d := time.Since(start); d < timeout || d > timeout+slack {
			t.Fatalf("write %d failed after %v, want the write timeout %v", i, d, timeout)
		}
		endedWith(t, s, ErrWriteTimeout, codec.CloseAbnormalClosure)
		return
	}
	t.Fatalf("%d MiB written to a peer that reads nothing", most)
}

// TestWriteTimeoutSlowReader: the write timeout bounds a write that makes
// no progress, not a write that takes long: a peer that reads 1 MiB
// slowly, over several write timeouts, gets it whole.
func TestWriteTimeoutSlowReader(t *testing.T) {
	const timeout = 300 * time.Millisecond
	opts := &Options{
		IdleTimeout:      -1,
		WriteTimeout:     timeout,
		HandshakeTimeout: testTimeout,
		CloseTimeout:     testTimeout,
	}
	s, p := openRaw(t, codec.Server, opts, smallBuffer)
	payload := filler(1 << 20)
	reply := make(chan Completion, 1)
	start := time.Now()
	if _, err := s.WriteBinary(payload, reply); err != nil {
		t.Fatal(err)
	}
	// 16 KiB every 20 ms: about a second for the message, three timeouts.
	got := make([]byte, 0, len(payload)+16)
	buf := make([]byte, 16<<10)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for len(got) < len(payload)+10 { // the header of a 1 MiB server frame is 10 bytes
		<-tick.C
		n, err := p.conn.Read(buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	if c := await(t, reply); c.Err != nil {
		t.Fatalf("the slow reader's write failed after %v: %v", time.Since(start), c.Err)
	}
	if d := time.Since(start); d < 2*timeout {
		t.Logf("the message took %v, less than two write timeouts: the test did not read slowly enough", d)
	}
	if !bytes.Equal(got[len(got)-len(payload):], payload) {
		t.Error("the message arrived damaged")
	}
}
