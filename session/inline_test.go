package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
)

// burst encodes n text frames "0000", "0001", ... as the raw peer sends
// them, back to back: one write.
func burst(p *rawPeer, n int) []byte {
	var b []byte
	for i := range n {
		b = append(b, encodeFrame(textFrame(fmt.Sprintf("%04d", i)), p.client)...)
	}
	return b
}

// A handler that echoes a burst of tiny messages, all in one write from
// the peer, gets every echo out in order, and none is refused: the reader
// runs the actor before the held answers can fill the mailbox, whatever its
// size, for a handler that issues up to four commands per message.
func TestInlineEchoBurst(t *testing.T) {
	const n = 1000
	tests := []struct {
		name       string
		mailbox    int
		readBuffer int
		copies     int // answers per message; 1 when 0
	}{
		{
			name: "defaults",
		},
		{
			name:    "mailbox 64",
			mailbox: 64,
		},
		{
			name:       "mailbox 64, the whole burst in one read",
			mailbox:    64,
			readBuffer: 64 << 10,
		},
		{
			name:       "mailbox 1",
			mailbox:    1,
			readBuffer: 64 << 10,
		},
		{
			name:       "default mailbox, the whole burst in one read",
			readBuffer: 64 << 10,
		},
		{
			name:       "mailbox 64, four answers per message",
			mailbox:    64,
			readBuffer: 64 << 10,
			copies:     4,
		},
		{
			name:       "default mailbox, four answers per message",
			readBuffer: 64 << 10,
			copies:     4,
		},
	}
	for _, r := range roles {
		for _, tt := range tests {
			t.Run(r.name+"/"+tt.name, func(t *testing.T) {
				copies := max(1, tt.copies)
				reply := make(chan Completion, n*copies)
				opts := testOptions()
				opts.MailboxSize = tt.mailbox
				opts.ReadBufferSize = tt.readBuffer
				opts.OnMessage = func(s *Session, m Message) {
					for range copies - 1 {
						s.WriteText(slices.Clone(m.Payload), reply)
					}
					s.WriteMessage(&m, reply)
				}
				_, p := openRaw(t, r.role, opts, rawConfig{})
				if err := p.writeRaw(burst(p, n)); err != nil {
					t.Fatal(err)
				}
				for i := range n * copies {
					f := p.mustRead(t)
					if want := fmt.Sprintf("%04d", i/copies); f.op != ws.OpText || string(f.payload) != want {
						t.Fatalf("echo %d: %v, want %q", i, f, want)
					}
				}
				var last uint64
				for i := range n * copies {
					c := await(t, reply)
					if c.Err != nil {
						t.Fatalf("completion %d: %v", i, c.Err)
					}
					if c.ID <= last {
						t.Fatalf("completion %d has id %d after %d", i, c.ID, last)
					}
					last = c.ID
				}
			})
		}
	}
}

// A handler may wait for a write of its own session with WriteContext: the
// held actor is started, the answers held before go out first, and
// WriteContext returns nil.
func TestInlineWriteContext(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			errc := make(chan error, 1)
			opts := testOptions()
			opts.OnMessage = func(s *Session, m Message) {
				if string(m.Payload) != "wait" {
					s.WriteMessage(&m, nil)
					return
				}
				m.Release()
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				errc <- s.WriteContext(ctx, Text, []byte("waited"))
			}
			_, p := openRaw(t, r.role, opts, rawConfig{})
			var b []byte
			for _, w := range []string{"before", "wait", "after"} {
				b = append(b, encodeFrame(textFrame(w), p.client)...)
			}
			if err := p.writeRaw(b); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"before", "waited", "after"} {
				if f := p.mustRead(t); string(f.payload) != want {
					t.Fatalf("got %v, want %q", f, want)
				}
			}
			select {
			case err := <-errc:
				if err != nil {
					t.Fatalf("WriteContext in the handler = %v", err)
				}
			case <-time.After(testTimeout):
				t.Fatal("WriteContext in the handler did not return")
			}
		})
	}
}

// A handler that calls CloseContext on its own session would wait for the
// peer's close frame, which only its own goroutine can read: CloseContext
// returns ErrHandlerWait at once, and the handler's Close then runs the
// handshake as usual.
func TestInlineCloseContext(t *testing.T) {
	errc := make(chan error, 1)
	opts := testOptions()
	opts.OnMessage = func(s *Session, m Message) {
		if string(m.Payload) != "bye" {
			s.WriteMessage(&m, nil)
			return
		}
		m.Release()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		errc <- s.CloseContext(ctx, CloseReason{Code: codec.CloseNormalClosure, Reason: "bye"})
		s.Close(CloseReason{Code: codec.CloseNormalClosure, Reason: "bye"}, nil)
	}
	s, p := openRaw(t, codec.Server, opts, rawConfig{})
	b := append(encodeFrame(textFrame("hello"), true), encodeFrame(textFrame("bye"), true)...)
	if err := p.writeRaw(b); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrHandlerWait) {
			t.Fatalf("CloseContext in the handler: %v, want ErrHandlerWait", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("CloseContext in the handler did not return")
	}
	if f := p.mustRead(t); string(f.payload) != "hello" {
		t.Fatalf("got %v, want the echo before the close", f)
	}
	f := p.mustRead(t)
	if f.op != ws.OpClose || f.closeCode() != codec.CloseNormalClosure {
		t.Fatalf("got %v, want close 1000", f)
	}
	p.mustWrite(t, closeFrame(codec.CloseNormalClosure, ""))
	awaitDone(t, s)
	if ce := CloseCode(s.Err()); ce != codec.CloseNormalClosure {
		t.Errorf("session ended with %v, want a clean close 1000", s.Err())
	}
}

func TestInlineCommandOrder(t *testing.T) {
	tests := []struct {
		name  string
		cmds  []string // "ping x", "write x", "close x": what the handler does, in order
		wire  []string // the frames the peer reads
		kinds []Kind   // the completions, in order
	}{
		{
			name:  "ping, write, close",
			cmds:  []string{"ping p", "write w", "close c"},
			wire:  []string{"ping p", "text w", "close c"},
			kinds: []Kind{KindPing, KindWrite, KindClose},
		},
		{
			name:  "write, ping, write, close",
			cmds:  []string{"write w1", "ping p", "write w2", "close c"},
			wire:  []string{"text w1", "ping p", "text w2", "close c"},
			kinds: []Kind{KindWrite, KindPing, KindWrite, KindClose},
		},
		{
			name:  "close, then a write refused",
			cmds:  []string{"write w", "close c", "write late"},
			wire:  []string{"text w", "close c"},
			kinds: []Kind{KindWrite, KindWrite, KindClose}, // the refused one completes at once
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply := make(chan Completion, len(tt.cmds))
			opts := testOptions()
			opts.OnMessage = func(s *Session, m Message) {
				m.Release()
				for _, c := range tt.cmds {
					verb, arg, _ := bytes.Cut([]byte(c), []byte(" "))
					switch string(verb) {
					case "ping":
						s.Ping(arg, reply)
					case "write":
						s.WriteText(arg, reply)
					case "close":
						s.Close(CloseReason{Code: codec.CloseNormalClosure, Reason: string(arg)}, reply)
					}
				}
			}
			s, p := openRaw(t, codec.Server, opts, rawConfig{})
			p.mustWrite(t, textFrame("go"))
			for _, want := range tt.wire {
				f := p.mustRead(t)
				got := ""
				switch f.op {
				case ws.OpPing:
					got = "ping " + string(f.payload)
				case ws.OpText:
					got = "text " + string(f.payload)
				case ws.OpClose:
					got = fmt.Sprintf("close %s", f.payload[2:])
				default:
					got = f.String()
				}
				if got != want {
					t.Fatalf("got %q on the wire, want %q", got, want)
				}
			}
			if err := p.finishClose(codec.CloseNormalClosure); err != nil {
				t.Fatal(err)
			}
			var kinds []Kind
			for range tt.cmds {
				c := await(t, reply)
				kinds = append(kinds, c.Kind)
				if c.Kind == KindWrite && string(c.Payload) == "late" {
					if !errors.Is(c.Err, ErrClosing) {
						t.Fatalf("write after close completed with %v, want ErrClosing", c.Err)
					}
				} else if c.Err != nil {
					t.Fatalf("%v completed with %v", c.Kind, c.Err)
				}
			}
			if !slices.Equal(kinds, tt.kinds) {
				t.Fatalf("completions %v, want %v", kinds, tt.kinds)
			}
			if err := awaitDone(t, s); !errors.Is(err, ErrClosed) {
				t.Fatalf("Err() = %v, want ErrClosed", err)
			}
		})
	}
}

// The echo of a peer that never reads: the reader, writing the answers
// itself, blocks in the write and reads no more, so the peer's writes block
// too (TCP backpressure) and nothing piles up in the process. Cancel(Terminal)
// from another goroutine still ends the session at once, the write in
// flight interrupted.
func TestInlineEchoPeerNotReading(t *testing.T) {
	const most = 64 << 20 // bytes: far more than every buffer on the way
	tests := []struct {
		name      string
		size      int // of each message
		pingEvery int // a ping after every pingEvery messages; 0 for none
	}{
		{
			name: "16 KiB messages",
			size: 16 << 10,
		},
		{
			name: "64 B messages",
			size: 64,
		},
		{
			name:      "16 KiB messages and pings",
			size:      16 << 10,
			pingEvery: 4,
		},
		{
			name:      "64 B messages and pings",
			size:      64,
			pingEvery: 64,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions()
			opts.OnMessage = func(s *Session, m Message) { s.WriteMessage(&m, nil) }
			s, p := openRaw(t, codec.Server, opts, smallBuffer)
			// Whatever the machine's TCP autotuning allows, the session's
			// send buffer stays small.
			if err := s.conn.(*net.TCPConn).SetWriteBuffer(64 << 10); err != nil {
				t.Fatal(err)
			}
			// One write carries a batch of messages (and a ping), so that
			// the small ones arrive many to a read.
			var chunk []byte
			for len(chunk) < 64<<10 {
				for range max(1, tt.pingEvery) {
					chunk = append(chunk, encodeFrame(frame{fin: true, op: ws.OpBinary, payload: make([]byte, tt.size)}, true)...)
				}
				if tt.pingEvery > 0 {
					chunk = append(chunk, encodeFrame(frame{fin: true, op: ws.OpPing, payload: []byte("p")}, true)...)
				}
			}
			sent := 0
			for ; sent < most; sent += len(chunk) {
				p.conn.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
				if _, err := p.conn.Write(chunk); err != nil {
					break
				}
			}
			if sent >= most {
				t.Fatalf("the peer wrote %d MiB without blocking", sent>>20)
			}
			t.Logf("the peer blocked after %d KiB", sent>>10)
			// The reader is not in a read: it writes the answers, or waits
			// for the actor's goroutine (started by a pong) that does.
			waitReaderWriting(t)
			reply := make(chan Completion, 1)
			start := time.Now()
			id, _ := s.Cancel(Terminal, reply)
			check(t, await(t, reply), KindCancel, id, nil)
			if err := awaitDone(t, s); !errors.Is(err, ErrCanceled) {
				t.Fatalf("Err() = %v, want ErrCanceled", err)
			}
			t.Logf("Cancel(Terminal) ended the session in %v", time.Since(start))
		})
	}
}

// waitReaderWriting waits until a session's reader is parked in process,
// which reads nothing: in the write of the answers it runs itself, or in
// RunHeld, waiting for the actor's goroutine to hand the actor over.
func waitReaderWriting(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	buf := make([]byte, 1<<20)
	for time.Now().Before(deadline) {
		n := runtime.Stack(buf, true)
		for g := range bytes.SplitSeq(buf[:n], []byte("\n\n")) {
			header, _, _ := strings.Cut(string(g), "\n")
			if bytes.Contains(g, []byte("(*reader).process(")) &&
				(strings.Contains(header, "[IO wait") || strings.Contains(header, "[chan receive")) {
				return
			}
		}
		runtime.Gosched()
	}
	t.Fatal("no reader parked in process")
}

// A handler's answers that fill the mailbox within one read (a message
// over MaxPendingBytes followed by small ones, or more answers than
// MailboxSize) are not refused: the reader writes what waits, then takes
// the next answer.
func TestInlineAnswersOverTheBounds(t *testing.T) {
	tests := []struct {
		name    string
		mailbox int
		pending int64
		big     int // size of the first message
		small   int // how many small messages follow in the same write
		copies  int // answers per message
	}{
		{
			name:    "bytes: a large message, then small ones",
			pending: 64 << 10,
			big:     100 << 10,
			small:   20,
			copies:  1,
		},
		{
			name:    "count: more answers than the mailbox holds",
			mailbox: 4,
			big:     10,
			small:   30,
			copies:  3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions()
			opts.MailboxSize = tt.mailbox
			opts.MaxPendingBytes = tt.pending
			refused := make(chan error, 1)
			opts.OnMessage = func(s *Session, m Message) {
				defer m.Release()
				for range tt.copies - 1 {
					if _, err := s.Write(m.Type, slices.Clone(m.Payload), nil); err != nil {
						select {
						case refused <- err:
						default:
						}
					}
				}
				if _, err := s.WriteMessage(&m, nil); err != nil {
					select {
					case refused <- err:
					default:
					}
				}
			}
			_, p := openRaw(t, codec.Server, opts, rawConfig{})
			b := encodeFrame(frame{fin: true, op: ws.OpBinary, payload: make([]byte, tt.big)}, true)
			for i := range tt.small {
				b = append(b, encodeFrame(textFrame(fmt.Sprintf("%04d", i)), true)...)
			}
			if err := p.writeRaw(b); err != nil {
				t.Fatal(err)
			}
			for range tt.copies {
				if f := p.mustRead(t); f.op != ws.OpBinary || len(f.payload) != tt.big {
					t.Fatalf("got %v, want the echo of the first message", f)
				}
			}
			for i := range tt.small * tt.copies {
				want := fmt.Sprintf("%04d", i/tt.copies)
				if f := p.mustRead(t); string(f.payload) != want {
					t.Fatalf("answer %d: %v, want %q", i, f, want)
				}
			}
			select {
			case err := <-refused:
				t.Fatalf("an answer was refused: %v", err)
			default:
			}
		})
	}
}
