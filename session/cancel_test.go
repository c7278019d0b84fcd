package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
)

// smallBuffer is the raw peer's receive buffer in the tests that keep a
// write in flight.
var smallBuffer = rawConfig{readBuffer: 32 << 10}

// Beast: cancellation_type::total. The frame being written finishes; the
// 1000 writes queued behind it complete with ErrCanceled and never reach
// the wire; the session goes on.
func TestCancelTotal(t *testing.T) {
	const queued = 1000
	s, p := openRaw(t, codec.Server, testOptions(), smallBuffer)
	reply := make(chan Completion, queued+2)
	bigID, big := blockWriter(t, s, p, reply)
	ids := make([]uint64, queued)
	for i := range ids {
		ids[i], _ = s.WriteText(fmt.Appendf(nil, "queued %d", i), reply)
	}
	cancelID, _ := s.Cancel(Total, reply)
	// The actor is inside the big write: Cancel cannot overtake it.
	noCompletion(t, reply, "while the big write is in flight")

	finishBigWrite(t, p, big)
	c := await(t, reply)
	check(t, c, KindWrite, bigID, nil)
	if c.N != bigWrite {
		t.Fatalf("big write N = %d, want %d", c.N, bigWrite)
	}
	for _, id := range ids {
		c := await(t, reply)
		check(t, c, KindWrite, id, ErrCanceled)
		if c.N != 0 {
			t.Fatalf("canceled write %d: N = %d", id, c.N)
		}
	}
	// Cancel completes after everything it canceled.
	check(t, await(t, reply), KindCancel, cancelID, nil)

	// The session still works, and the next frame on the wire is the next
	// write: none of the canceled ones went out.
	afterID, _ := s.WriteText([]byte("after cancel"), reply)
	check(t, await(t, reply), KindWrite, afterID, nil)
	if f := p.mustRead(t); f.op != ws.OpText || string(f.payload) != "after cancel" {
		t.Fatalf("after Cancel(Total): %v, want text \"after cancel\"", f)
	}
	closeID, _ := s.Close(CloseReason{Code: codec.CloseNormalClosure}, reply)
	if f := p.mustRead(t); f.op != ws.OpClose {
		t.Fatalf("got %v, want the close frame", f)
	}
	if err := p.finishClose(codec.CloseNormalClosure); err != nil {
		t.Fatal(err)
	}
	check(t, await(t, reply), KindClose, closeID, nil)
}

// Cancel(Total) also withdraws a Close whose frame has not been written:
// the session is open again.
func TestCancelTotalWithdrawsClose(t *testing.T) {
	s, p := openRaw(t, codec.Server, testOptions(), smallBuffer)
	reply := make(chan Completion, 4)
	bigID, big := blockWriter(t, s, p, reply)
	writeID, _ := s.WriteText([]byte("queued"), reply)
	closeID, _ := s.Close(CloseReason{Code: codec.CloseNormalClosure}, reply)
	cancelID, _ := s.Cancel(Total, reply)
	finishBigWrite(t, p, big)
	check(t, await(t, reply), KindWrite, bigID, nil)
	got := map[uint64]Completion{}
	for range 3 {
		c := await(t, reply)
		got[c.ID] = c
	}
	check(t, got[writeID], KindWrite, writeID, ErrCanceled)
	check(t, got[closeID], KindClose, closeID, ErrCanceled)
	check(t, got[cancelID], KindCancel, cancelID, nil)
	afterID, _ := s.WriteText([]byte("open again"), reply)
	check(t, await(t, reply), KindWrite, afterID, nil)
	if f := p.mustRead(t); string(f.payload) != "open again" {
		t.Fatalf("got %v, want the write after Cancel", f)
	}
}

// Beast: cancellation_type::terminal during a write. Every command
// completes with ErrCanceled, the in-flight one too, the socket is closed,
// and the session ends with ErrCanceled.
func TestCancelTerminal(t *testing.T) {
	s, p := openRaw(t, codec.Server, testOptions(), smallBuffer)
	reply := make(chan Completion, 16)
	bigID, _ := blockWriter(t, s, p, reply)
	writeIDs := []uint64{
		idOf(s.WriteText([]byte("queued 1"), reply)),
		idOf(s.WriteBinary([]byte("queued 2"), reply)),
	}
	pingID, _ := s.Ping([]byte("queued ping"), reply)
	closeID, _ := s.Close(CloseReason{Code: codec.CloseNormalClosure}, reply)
	cancelID, _ := s.Cancel(Terminal, reply)

	// Nothing waits for the peer to read: the in-flight write is
	// interrupted.
	want := map[uint64]Kind{bigID: KindWrite, writeIDs[0]: KindWrite, writeIDs[1]: KindWrite, pingID: KindPing, closeID: KindClose}
	for range len(want) {
		c := await(t, reply)
		kind, ok := want[c.ID]
		if !ok {
			t.Fatalf("unexpected completion %+v", c)
		}
		delete(want, c.ID)
		check(t, c, kind, c.ID, ErrCanceled)
	}
	check(t, await(t, reply), KindCancel, cancelID, nil)
	if err := awaitDone(t, s); !errors.Is(err, ErrCanceled) {
		t.Fatalf("Err() = %v, want ErrCanceled", err)
	}

	// The socket is closed: the peer gets the rest of what the kernel had
	// taken, then the end of the stream.
	p.conn.SetReadDeadline(time.Now().Add(testTimeout))
	var buf [64 << 10]byte
	var err error
	for err == nil {
		_, err = p.src.Read(buf[:])
	}
	if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
		t.Fatalf("socket still open after Cancel(Terminal): %v", err)
	}

	// Later commands complete at once with an error.
	later := []struct {
		kind Kind
		do   func() uint64
	}{
		{
			kind: KindWrite,
			do:   func() uint64 { return idOf(s.WriteText([]byte("late"), reply)) },
		},
		{
			kind: KindPing,
			do:   func() uint64 { return idOf(s.Ping(nil, reply)) },
		},
		{
			kind: KindClose,
			do:   func() uint64 { return idOf(s.Close(CloseReason{}, reply)) },
		},
		{
			kind: KindCancel,
			do:   func() uint64 { return idOf(s.Cancel(Total, reply)) },
		},
	}
	for _, call := range later {
		id := call.do()
		check(t, await(t, reply), call.kind, id, ErrCanceled)
	}
}

// Cancel(Terminal) on an idle session ends it with ErrCanceled, whichever
// of the reader (which sees its socket closed) and the actor acts first.
func TestCancelTerminalIdle(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			for range 20 {
				s, p := openRaw(t, r.role, testOptions(), rawConfig{})
				reply := make(chan Completion, 1)
				id, _ := s.Cancel(Terminal, reply)
				check(t, await(t, reply), KindCancel, id, nil)
				if err := awaitDone(t, s); !errors.Is(err, ErrCanceled) {
					t.Fatalf("Err() = %v, want ErrCanceled", err)
				}
				if err := p.expectEOF(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// The mailbox is full: the command is refused at the call with
// ErrMailboxFull, its completion says the same, and nothing is sent. A
// write in flight holds its place until it completes. Close is never
// refused for a full mailbox.
func TestMailboxFull(t *testing.T) {
	const mailbox = 4
	opts := testOptions()
	opts.MailboxSize = mailbox
	s, p := openRaw(t, codec.Server, opts, smallBuffer)
	reply := make(chan Completion, mailbox+4)
	bigID, big := blockWriter(t, s, p, reply)
	var ids []uint64
	for i := range mailbox - 1 {
		id, err := s.WriteText(fmt.Appendf(nil, "queued %d", i), reply)
		if err != nil {
			t.Fatalf("write %d refused: %v", i, err)
		}
		ids = append(ids, id)
	}
	fullIDs := map[uint64]Kind{}
	for _, call := range []struct {
		name string
		kind Kind
		do   func() (uint64, error)
	}{
		{
			name: "write",
			kind: KindWrite,
			do:   func() (uint64, error) { return s.WriteText([]byte("refused"), reply) },
		},
		{
			name: "ping",
			kind: KindPing,
			do:   func() (uint64, error) { return s.Ping([]byte("refused"), reply) },
		},
	} {
		id, err := call.do()
		if !errors.Is(err, ErrMailboxFull) {
			t.Errorf("%s with a full mailbox returned %v, want ErrMailboxFull", call.name, err)
		}
		fullIDs[id] = call.kind
	}
	closeID, err := s.Close(CloseReason{Code: 1000}, reply)
	if err != nil {
		t.Fatalf("Close with a full mailbox returned %v, want it taken", err)
	}
	finishBigWrite(t, p, big)
	got := map[uint64]Completion{}
	for range 1 + len(ids) + len(fullIDs) {
		c := await(t, reply)
		got[c.ID] = c
	}
	check(t, got[bigID], KindWrite, bigID, nil)
	for _, id := range ids {
		check(t, got[id], KindWrite, id, nil)
	}
	for id, kind := range fullIDs {
		check(t, got[id], kind, id, ErrMailboxFull)
	}
	for i := range mailbox - 1 {
		if f := p.mustRead(t); string(f.payload) != fmt.Sprintf("queued %d", i) {
			t.Fatalf("frame %d: %v", i, f)
		}
	}
	if f := p.mustRead(t); f.op != ws.OpClose {
		t.Fatalf("got %v, want the close frame after the queued writes", f)
	}
	p.mustWrite(t, closeFrame(codec.CloseNormalClosure, ""))
	check(t, await(t, reply), KindClose, closeID, nil)
}

// WriteContext whose context is done before the write began: the write is
// canceled (Total's meaning, for it alone) and the error matches
// ErrCanceled and the context's error.
func TestWriteContextCanceled(t *testing.T) {
	s, p := openRaw(t, codec.Server, testOptions(), smallBuffer)
	reply := make(chan Completion, 2)
	bigID, big := blockWriter(t, s, p, reply)
	behindID, _ := s.WriteText([]byte("behind"), reply)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.WriteContext(ctx, Text, []byte("canceled")) }()
	// WriteContext has queued its write and, seeing ctx done, its
	// cancellation: it now waits for the completion.
	waitBlocked(t, "(*Session).WriteContext", "chan receive")
	finishBigWrite(t, p, big)
	check(t, await(t, reply), KindWrite, bigID, nil)
	check(t, await(t, reply), KindWrite, behindID, nil)
	select {
	case err := <-errc:
		if !errors.Is(err, ErrCanceled) || !errors.Is(err, context.Canceled) {
			t.Fatalf("WriteContext = %v, want ErrCanceled and context.Canceled", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("WriteContext did not return")
	}
	if f := p.mustRead(t); string(f.payload) != "behind" {
		t.Fatalf("got %v, want the write queued before WriteContext's", f)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), testTimeout)
	defer cancel2()
	if err := s.WriteContext(ctx2, Binary, []byte("written")); err != nil {
		t.Fatalf("WriteContext = %v", err)
	}
	if f := p.mustRead(t); string(f.payload) != "written" {
		t.Fatalf("got %v, want the canceled write to have left no trace", f)
	}
}

// waitBlocked waits until a goroutine running fn is parked in state (as
// runtime.Stack names it). It is how a test knows that a blocking call has
// done everything it does before it waits.
func waitBlocked(t *testing.T, fn, state string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	buf := make([]byte, 1<<20)
	for time.Now().Before(deadline) {
		n := runtime.Stack(buf, true)
		for g := range bytes.SplitSeq(buf[:n], []byte("\n\n")) {
			header, _, _ := strings.Cut(string(g), "\n")
			if strings.Contains(header, "["+state) && bytes.Contains(g, []byte(fn+"(")) {
				return
			}
		}
		runtime.Gosched()
	}
	t.Fatalf("no goroutine in %s parked in %s", fn, state)
}

// WriteContext whose context is done once its write has begun: the write
// finishes and WriteContext reports success. The cancellation that reached
// the actor too late leaves nothing behind.
func TestWriteContextDoneAfterWriteBegan(t *testing.T) {
	s, p := openRaw(t, codec.Server, testOptions(), smallBuffer)
	payload := make([]byte, bigWrite)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.WriteContext(ctx, Binary, payload) }()
	p.conn.SetReadDeadline(time.Now().Add(testTimeout))
	if h, err := p.readHeader(); err != nil || h.Length != bigWrite {
		t.Fatalf("raw peer: header %+v, %v", h, err)
	}
	cancel()
	waitBlocked(t, "(*Session).WriteContext", "chan receive")
	finishBigWrite(t, p, payload)
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("WriteContext = %v, want nil: the write had begun", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("WriteContext did not return")
	}
	reply := make(chan Completion, 1)
	for range 2 { // the second round trip orders this test after all the first one sent
		id, _ := s.Ping(nil, reply)
		check(t, await(t, reply), KindPing, id, nil)
		if f := p.mustRead(t); f.op != ws.OpPing {
			t.Fatalf("got %v, want the ping", f)
		}
	}
	// White box: the actor is idle, and its completions ordered its state
	// before this read.
	if n := len(s.canceled); n != 0 {
		t.Fatalf("%d canceled ids left behind; they are never taken again", n)
	}
}

// Cancel(Total) once our close frame is on the wire: the Close has begun
// and is not canceled; it completes when the handshake is done.
func TestCancelTotalAfterCloseFrameSent(t *testing.T) {
	s, p := openRaw(t, codec.Server, testOptions(), rawConfig{})
	reply := make(chan Completion, 2)
	closeID, _ := s.Close(CloseReason{Code: codec.CloseNormalClosure}, reply)
	if f := p.mustRead(t); f.op != ws.OpClose {
		t.Fatalf("got %v, want the close frame", f)
	}
	cancelID, _ := s.Cancel(Total, reply)
	check(t, await(t, reply), KindCancel, cancelID, nil)
	noCompletion(t, reply, "after Cancel(Total), before the peer's close frame")
	if err := p.finishClose(codec.CloseNormalClosure); err != nil {
		t.Fatal(err)
	}
	check(t, await(t, reply), KindClose, closeID, nil)
	endedBy(t, s, ErrClosed)
}
