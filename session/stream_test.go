package session

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
)

// pattern returns n bytes that differ from one offset to the next.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// readMessage reads frames up to a message's last one, failing the test on
// anything but the message's own data frames, and returns the frames.
func readMessage(t *testing.T, p *rawPeer) []frame {
	t.Helper()
	var fs []frame
	for {
		f := p.mustRead(t)
		fs = append(fs, f)
		if f.op.IsControl() {
			t.Fatalf("control frame %v inside the message", f)
		}
		if f.fin {
			return fs
		}
	}
}

// A MessageWriter's message goes out as frames of FragmentSize bytes, the
// first with the message's type and the others continuations, whatever the
// sizes of the writes; both roles, through Write and io.Copy.
func TestMessageWriterFrames(t *testing.T) {
	const size, total = 1000, 10_500
	for _, role := range []codec.Role{codec.Server, codec.Client} {
		for _, viaCopy := range []bool{false, true} {
			name := role.String() + "/write"
			if viaCopy {
				name = role.String() + "/copy"
			}
			t.Run(name, func(t *testing.T) {
				opts := testOptions()
				opts.FragmentSize = size
				s, p := openRaw(t, role, opts, rawConfig{})
				want := pattern(total)
				w := s.NewWriter(context.Background(), Text)
				if viaCopy {
					n, err := io.Copy(w, bytes.NewReader(want))
					if err != nil || n != total {
						t.Fatalf("io.Copy = %d, %v", n, err)
					}
				} else {
					rest := want
					rng := rand.New(rand.NewPCG(1, 2))
					for len(rest) > 0 {
						k := min(len(rest), 1+rng.IntN(2500))
						if n, err := w.Write(rest[:k]); err != nil || n != k {
							t.Fatalf("Write = %d, %v; want %d", n, err, k)
						}
						rest = rest[k:]
					}
				}
				if err := w.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if err := w.Close(); err != nil {
					t.Fatalf("second Close: %v", err)
				}
				if _, err := w.Write([]byte("x")); !errors.Is(err, ErrWriterClosed) {
					t.Fatalf("Write after Close: %v, want ErrWriterClosed", err)
				}
				fs := readMessage(t, p)
				var got []byte
				for i, f := range fs {
					wantOp := ws.OpContinuation
					if i == 0 {
						wantOp = ws.OpText
					}
					wantLen := size
					if i == len(fs)-1 {
						wantLen = total - size*(len(fs)-1)
					}
					if f.op != wantOp || len(f.payload) != wantLen {
						t.Fatalf("frame %d: %v with %d bytes; want %v with %d", i, f.op, len(f.payload), wantOp, wantLen)
					}
					got = append(got, f.payload...)
				}
				if len(fs) != (total+size-1)/size || !bytes.Equal(got, want) {
					t.Fatalf("%d frames, %d bytes; want %d frames and the bytes written", len(fs), len(got), (total+size-1)/size)
				}
			})
		}
	}
}

// An empty message is one empty final frame.
func TestMessageWriterEmpty(t *testing.T) {
	s, p := openRaw(t, codec.Server, testOptions(), rawConfig{})
	if err := s.NewWriter(context.Background(), Binary).Close(); err != nil {
		t.Fatal(err)
	}
	if f := p.mustRead(t); f.op != ws.OpBinary || !f.fin || len(f.payload) != 0 {
		t.Fatalf("got %v, want one empty binary frame", f)
	}
}

// While a message is under way, other data writes wait behind it and
// pings go between its frames.
func TestMessageWriterHoldsOtherWrites(t *testing.T) {
	opts := testOptions()
	opts.FragmentSize = 100
	s, p := openRaw(t, codec.Server, opts, rawConfig{})
	reply := make(chan Completion, 4)
	w := s.NewWriter(context.Background(), Binary)
	if _, err := w.Write(pattern(150)); err != nil { // the first frame goes
		t.Fatal(err)
	}
	if f := p.mustRead(t); f.op != ws.OpBinary || f.fin {
		t.Fatalf("got %v, want the message's first frame", f)
	}
	other, _ := s.WriteText([]byte("other"), reply)
	ping, _ := s.Ping([]byte("between"), reply)
	if f := p.mustRead(t); f.op != ws.OpPing {
		t.Fatalf("got %v, want the ping between the message's frames", f)
	}
	check(t, await(t, reply), KindPing, ping, nil)
	noCompletion(t, reply, "while the message is under way")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if f := p.mustRead(t); f.op != ws.OpContinuation || !f.fin || len(f.payload) != 50 {
		t.Fatalf("got %v, want the message's last frame", f)
	}
	if f := p.mustRead(t); f.op != ws.OpText || string(f.payload) != "other" {
		t.Fatalf("got %v, want the write held behind the message", f)
	}
	check(t, await(t, reply), KindWrite, other, nil)
}

// A message cut short by its context once part of it is on the wire closes
// the session with 1011, and the writes held behind it complete with
// ErrClosing; one with nothing on the wire costs nothing.
func TestMessageWriterContextCut(t *testing.T) {
	t.Run("part on the wire", func(t *testing.T) {
		opts := testOptions()
		opts.FragmentSize = 100
		s, p := openRaw(t, codec.Server, opts, rawConfig{})
		ctx, cancel := context.WithCancel(context.Background())
		w := s.NewWriter(ctx, Binary)
		if _, err := w.Write(pattern(150)); err != nil {
			t.Fatal(err)
		}
		p.mustRead(t) // the first frame: on the wire
		reply := make(chan Completion, 1)
		held, _ := s.WriteText([]byte("held"), reply)
		cancel()
		err := w.Close()
		if !errors.Is(err, ErrCanceled) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Close: %v, want ErrCanceled wrapping context.Canceled", err)
		}
		check(t, await(t, reply), KindWrite, held, ErrClosing)
		if f := p.mustRead(t); f.op != ws.OpClose || f.closeCode() != codec.CloseInternalError {
			t.Fatalf("got %v, want close 1011", f)
		}
		if err := p.finishClose(codec.CloseInternalError); err != nil {
			t.Fatal(err)
		}
		awaitDone(t, s)
	})
	t.Run("nothing on the wire", func(t *testing.T) {
		s, p := openRaw(t, codec.Server, testOptions(), rawConfig{})
		ctx, cancel := context.WithCancel(context.Background())
		w := s.NewWriter(ctx, Binary)
		if _, err := w.Write([]byte("buffered, not sent")); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := w.Close(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Close: %v, want context.Canceled", err)
		}
		reply := make(chan Completion, 1)
		id, _ := s.WriteText([]byte("after"), reply)
		check(t, await(t, reply), KindWrite, id, nil)
		if f := p.mustRead(t); f.op != ws.OpText || string(f.payload) != "after" {
			t.Fatalf("got %v, want the next write, the session untouched", f)
		}
	})
}

// Cancel(Total) leaves a message that has begun alone and cancels the
// writes held behind it; a message with nothing on the wire is canceled.
func TestMessageWriterCancelTotal(t *testing.T) {
	t.Run("begun", func(t *testing.T) {
		opts := testOptions()
		opts.FragmentSize = 100
		s, p := openRaw(t, codec.Server, opts, rawConfig{})
		w := s.NewWriter(context.Background(), Binary)
		if _, err := w.Write(pattern(150)); err != nil {
			t.Fatal(err)
		}
		p.mustRead(t)
		reply := make(chan Completion, 2)
		held, _ := s.WriteText([]byte("held"), reply)
		cancel, _ := s.Cancel(Total, reply)
		check(t, await(t, reply), KindWrite, held, ErrCanceled)
		check(t, await(t, reply), KindCancel, cancel, nil)
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if f := p.mustRead(t); f.op != ws.OpContinuation || !f.fin {
			t.Fatalf("got %v, want the message's last frame", f)
		}
	})
	t.Run("not begun", func(t *testing.T) {
		s, p := openRaw(t, codec.Server, testOptions(), smallBuffer)
		reply := make(chan Completion, 2)
		bigID, big := blockWriter(t, s, p, reply) // the actor is inside it
		w := s.NewWriter(context.Background(), Binary)
		if _, err := w.Write(pattern(DefaultStreamFrameSize + 1)); err != nil { // the first frame waits
			t.Fatal(err)
		}
		cancel, _ := s.Cancel(Total, reply)
		finishBigWrite(t, p, big)
		check(t, await(t, reply), KindWrite, bigID, nil)
		check(t, await(t, reply), KindCancel, cancel, nil)
		if err := w.Close(); !errors.Is(err, ErrCanceled) {
			t.Fatalf("Close: %v, want ErrCanceled", err)
		}
		after, _ := s.WriteText([]byte("after"), reply)
		check(t, await(t, reply), KindWrite, after, nil)
		if f := p.mustRead(t); f.op != ws.OpText || string(f.payload) != "after" {
			t.Fatalf("got %v, want the next write: nothing of the canceled message", f)
		}
	})
}

// A handler may stream its answer with a MessageWriter.
func TestMessageWriterFromHandler(t *testing.T) {
	opts := testOptions()
	opts.FragmentSize = 10
	opts.OnMessage = func(s *Session, m Message) {
		w := s.NewWriter(context.Background(), m.Type)
		for range 3 {
			w.Write(m.Payload)
		}
		if err := w.Close(); err != nil {
			panic(err)
		}
		m.Release()
	}
	_, p := openRaw(t, codec.Server, opts, rawConfig{})
	p.mustWrite(t, textFrame("0123456789"))
	fs := readMessage(t, p)
	if len(fs) != 3 {
		t.Fatalf("%d frames, want 3", len(fs))
	}
	for _, f := range fs {
		if string(f.payload) != "0123456789" {
			t.Fatalf("frame %v", f)
		}
	}
}

// Streamed messages under fire: on each session a writer streams messages
// of random sizes, some cut short by their context, while other goroutines
// issue random commands (writes, pings, closes, cancels of both kinds).
// Every writer call returns, every command completes exactly once, every
// message that comes back whole is intact, and no peer ever sees frames of
// two messages mixed (it would close with 1002).
func TestMessageWriterUnderFire(t *testing.T) {
	const (
		sessions = 20
		messages = 15
		drivers  = 2
		commands = 40
	)
	url := echoServer(t, testOptions())
	prepared := Prepare(Text, []byte("prepared"))
	defer prepared.Release()
	var corrupt atomic.Int64
	var wg sync.WaitGroup
	for i := range sessions {
		opts := testOptions()
		opts.FragmentSize = 300
		opts.OnMessage = func(s *Session, m Message) {
			// Streamed messages are pattern(n); the others are zeros or
			// "prepared": only a mix of two messages fails both.
			if !bytes.Equal(m.Payload, pattern(len(m.Payload))) && bytes.ContainsFunc(m.Payload, func(r rune) bool { return r != 0 }) && string(m.Payload) != "prepared" {
				corrupt.Add(1)
			}
			m.Release()
		}
		s := dialSession(t, url, opts)
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for range messages {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				w := s.NewWriter(ctx, Binary)
				msg := pattern(rng.IntN(5000))
				cut := rng.IntN(10) == 0
				for rest := msg; len(rest) > 0; {
					k := min(len(rest), 1+rng.IntN(700))
					if _, err := w.Write(rest[:k]); err != nil {
						break
					}
					rest = rest[k:]
					if cut && len(rest) < len(msg)/2 {
						cancel()
					}
				}
				w.Close()
				cancel()
			}
		})
		for d := range drivers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(i), uint64(d)))
				reply := make(chan Completion, commands)
				seen := map[uint64]int{}
				var issued []uint64
				for range commands {
					id, _ := randomCommand(rng, s, prepared, reply)
					issued = append(issued, id)
				}
				timer := time.NewTimer(3 * testTimeout)
				defer timer.Stop()
				for range issued {
					select {
					case c := <-reply:
						seen[c.ID]++
					case <-timer.C:
						t.Errorf("session %d driver %d: %d of %d completions in time", i, d, len(seen), len(issued))
						return
					}
				}
				for _, id := range issued {
					if seen[id] != 1 {
						t.Errorf("session %d: command %d completed %d times", i, id, seen[id])
					}
				}
			})
		}
		t.Cleanup(func() {
			if code := CloseCode(s.Err()); code == codec.CloseProtocolError || code == codec.CloseInvalidFramePayloadData {
				t.Errorf("session %d ended with %d: %v", i, code, s.Err())
			}
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * testTimeout):
		t.Fatal("writers or drivers did not finish")
	}
	if n := corrupt.Load(); n > 0 {
		t.Errorf("%d echoed messages mixed", n)
	}
}
