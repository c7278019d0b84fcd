package session

import (
	"errors"
	"fmt"

	"github.com/wsactor/wsactor/codec"
)

// Errors a completion or a session can end with. Compare with errors.Is.
var (
	// ErrClosed: the session is closed. A clean close handshake ends a
	// session with a *CloseError that matches ErrClosed and carries the
	// peer's code and reason.
	ErrClosed = errors.New("session: closed")
	// ErrClosing: Close was called; no more writes or pings are accepted.
	ErrClosing = errors.New("session: closing: no writes after Close")
	// ErrCanceled: the command was canceled by Cancel (or its context)
	// before it wrote a byte, or, for Cancel(Terminal), interrupted.
	ErrCanceled = errors.New("session: canceled")
	// ErrCloseTimeout: the peer did not finish the close handshake within
	// the close timeout; the connection was closed by force.
	ErrCloseTimeout = errors.New("session: close handshake timed out; connection closed by force")
	// ErrMailboxFull: the session's mailbox was full and the command was not
	// queued. Wait for completions before sending more, or raise
	// Options.MailboxSize.
	ErrMailboxFull = errors.New("session: mailbox full; wait for completions or raise Options.MailboxSize")
	// ErrIdleTimeout: nothing was received for the idle timeout, keep-alive
	// pings included; the session was closed with 1001 (going away).
	ErrIdleTimeout = errors.New("session: idle timeout: nothing received from the peer")
	// ErrWriteTimeout: a write did not finish within Options.WriteTimeout
	// (the peer does not read); the connection was closed.
	ErrWriteTimeout = errors.New("session: write timed out: the peer does not read; connection closed")
	// ErrControlTooLong: a ping payload or close reason longer than a
	// control frame may carry (125 bytes, 123 for a close reason).
	ErrControlTooLong = errors.New("session: control frame payload over 125 bytes")
	// ErrBadCloseCode: Close was given a code that must not be sent
	// (1004-1006, 1015, unassigned codes below 3000, 5000 and over), or a
	// reason that is not valid UTF-8.
	ErrBadCloseCode = errors.New("session: close code or reason not allowed on the wire")
	// ErrHandshake: the opening handshake failed.
	ErrHandshake = errors.New("session: handshake failed")
)

// CloseError is a close frame's code and reason. It matches ErrClosed with
// errors.Is; get it with errors.As or CloseCode.
type CloseError struct {
	Code   codec.CloseCode
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("session: closed by peer with %d (%s)", uint16(e.Code), e.Code)
	}
	return fmt.Sprintf("session: closed by peer with %d (%s): %q", uint16(e.Code), e.Code, e.Reason)
}

// Is makes a *CloseError match ErrClosed.
func (e *CloseError) Is(target error) bool { return target == ErrClosed }

// failError is an error the session failed the connection with, and the
// close code it sent for it (1011 for a contained panic).
type failError struct {
	err  error
	code codec.CloseCode
}

func (e *failError) Error() string { return e.err.Error() }
func (e *failError) Unwrap() error { return e.err }

// CloseCode returns the close code an error carries: the code the session
// sent when it failed the connection, the peer's code for a
// *CloseError, the code sent for a *codec.ProtocolError, 1001 for an idle
// timeout, and 1006 (abnormal closure) for anything else but nil, which
// gives 0.
func CloseCode(err error) codec.CloseCode {
	if err == nil {
		return 0
	}
	var fe *failError
	if errors.As(err, &fe) {
		return fe.code
	}
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	var pe *codec.ProtocolError
	if errors.As(err, &pe) {
		return pe.Code
	}
	if errors.Is(err, ErrIdleTimeout) {
		return codec.CloseGoingAway
	}
	return codec.CloseAbnormalClosure
}
