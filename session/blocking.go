package session

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// The blocking forms of the commands, for programs that need no
// concurrency: each issues the command and waits for its outcome or for
// its context, with no reply channel to manage. The commands with reply
// channels (write.go's callers: Write, Ping, Close, Cancel) stay the core;
// these are built on them.

// WriteContext writes p as a message of type typ and waits for its
// completion. When ctx is done before the write began, the write is
// canceled (Total's meaning, for this write only) and WriteContext returns
// ErrCanceled wrapped with ctx's error. p must not be modified until it
// returns.
func (s *Session) WriteContext(ctx context.Context, typ MessageType, p []byte) error {
	reply := make(chan Completion, 1)
	id, err := s.Write(typ, p, reply)
	if err != nil {
		return err // refused: its completion is not waited for
	}
	select {
	case c := <-reply:
		return c.Err
	case <-ctx.Done():
	}
	s.mb.SendUrgent(cmd{kind: cmdCancelID, id: id})
	c := <-reply
	// The write may have been done with before the cancellation reached the
	// actor, which then keeps the id for a write that never comes.
	s.mb.SendUrgent(cmd{kind: cmdForgetID, id: id})
	if c.Err == ErrCanceled {
		return &canceledError{ctx.Err()}
	}
	return c.Err
}

// CloseContext starts the closing handshake and waits for it to finish, or
// for ctx; when ctx is done first the connection is closed by force
// (Cancel(Terminal)) and ctx's error returned. Called from the session's
// own Options.OnMessage or OnControl, it returns ErrHandlerWait at once:
// the handshake needs the peer's close frame, which only that handler's
// goroutine can read (call Close and return instead).
func (s *Session) CloseContext(ctx context.Context, reason CloseReason) error {
	if s.onReader() {
		return fmt.Errorf("session: CloseContext: %w", ErrHandlerWait)
	}
	reply := make(chan Completion, 1)
	if _, err := s.Close(reason, reply); err != nil {
		return err // refused: its completion is not waited for
	}
	select {
	case c := <-reply:
		return c.Err
	case <-ctx.Done():
	}
	s.Cancel(Terminal, nil)
	<-reply
	return ctx.Err()
}

type canceledError struct{ cause error }

func (e *canceledError) Error() string { return "session: write canceled: " + e.cause.Error() }
func (e *canceledError) Is(target error) bool {
	return target == ErrCanceled
}
func (e *canceledError) Unwrap() error { return e.cause }

// Read returns the next inbound message, waiting for it or for ctx. The
// message is the caller's until Release (or WriteMessage). Once the
// reading side has ended it returns the session's error, which matches
// ErrClosed. It is for sessions without Options.OnMessage (whose messages
// go to the handler): with a handler it returns ErrReadWithHandler.
func (s *Session) Read(ctx context.Context) (Message, error) {
	if s.inbound == nil {
		return Message{}, ErrReadWithHandler
	}
	select {
	case m, ok := <-s.inbound:
		if !ok {
			<-s.Done()
			return Message{}, s.Err()
		}
		return m, nil
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

// CloseNow closes the connection at once, without the closing handshake
// (Cancel(Terminal)), and returns when the session has ended: every
// command has completed and Done is closed. It returns nil, or the error
// that had already ended the session.
func (s *Session) CloseNow() error {
	s.Cancel(Terminal, nil)
	<-s.Done()
	if err := s.Err(); !errors.Is(err, ErrCanceled) {
		return err
	}
	return nil
}

// PingContext sends a ping and waits for the peer's pong to it, or for
// ctx: the round trip that shows the peer alive. It returns nil once the
// pong came, the ping's error if it could not be written, ctx's error, or
// the session's once it ended. Called from the session's own handler it
// returns ErrHandlerWait at once: the pong is read by that handler's
// goroutine.
func (s *Session) PingContext(ctx context.Context) error {
	if s.onReader() {
		return fmt.Errorf("session: PingContext: %w", ErrHandlerWait)
	}
	pw := &s.extras().pings
	pw.mu.Lock()
	pw.next++
	token := pw.next
	got := make(chan struct{})
	pw.waiting[token] = got
	pw.mu.Unlock()
	defer func() {
		pw.mu.Lock()
		delete(pw.waiting, token)
		pw.mu.Unlock()
	}()
	p := binary.BigEndian.AppendUint64(append(make([]byte, 0, 16), pingTag...), token)
	reply := make(chan Completion, 1)
	if _, err := s.Ping(p, reply); err != nil {
		return err
	}
	select {
	case c := <-reply:
		if c.Err != nil {
			return c.Err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-got:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.Done():
		return s.Err()
	}
}

// pingTag begins the payload of PingContext's pings, so that a pong to
// another ping is not taken for one of them.
const pingTag = "wsactor:"

// pongWaiters are the PingContext calls waiting for their pongs, by the
// token their ping carried.
type pongWaiters struct {
	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan struct{}
}

// gotPong wakes the PingContext that sent the ping p answers, if any (on
// the reader's goroutine).
func (s *Session) gotPong(p []byte) {
	x := s.extra.Load()
	if x == nil || len(p) != len(pingTag)+8 || string(p[:len(pingTag)]) != pingTag {
		return
	}
	pw := &x.pings
	token := binary.BigEndian.Uint64(p[len(pingTag):])
	pw.mu.Lock()
	if ch, ok := pw.waiting[token]; ok {
		close(ch)
		delete(pw.waiting, token)
	}
	pw.mu.Unlock()
}
