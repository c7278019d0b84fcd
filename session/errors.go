package session

import (
	"errors"
	"fmt"

	"github.com/wsactor/wsactor/codec"
)

// Errors a completion or a session can end with. Compare with errors.Is.
var (
	// ErrClosed: the session has ended. Every error of an ended session
	// matches it (Err, and the completions of the commands it could not
	// run), with the cause wrapped: a closing handshake ends it with a
	// *CloseError (who started it, the code and reason); otherwise the
	// cause is ErrCanceled (Cancel(Terminal)), ErrCloseTimeout,
	// ErrWriteTimeout, or the error that lost the connection.
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
	// ErrEmptyMessage: WriteMessage was given an empty Message, one that
	// an earlier WriteMessage took or that was released.
	ErrEmptyMessage = errors.New("session: WriteMessage of an empty Message (already written or released)")
	// ErrHandlerWait: a blocking call that needs the session's reader was
	// made from that reader, inside Options.OnMessage or OnControl, and
	// would wait for itself. Issue the command without waiting and return.
	ErrHandlerWait = errors.New("session: called from the session's own handler, would wait for itself; issue the command and return from the handler")
	// ErrReadWithHandler: Read was called on a session whose messages go
	// to Options.OnMessage.
	ErrReadWithHandler = errors.New("session: Read of a session with Options.OnMessage: its messages go to the handler")
	// ErrIdleTimeout: nothing was received for the idle timeout, keep-alive
	// pings included; the session was closed with 1001 (going away).
	ErrIdleTimeout = errors.New("session: idle timeout: nothing received from the peer")
	// ErrMessageTimeout: a message took longer to arrive than
	// Options.MessageTimeout allows at Options.MessageMinRate; the session
	// was closed with 1008 (policy violation).
	ErrMessageTimeout = errors.New("session: message timeout: the peer sent a message too slowly")
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

// The two ways the mailbox is full.
var (
	errMailboxCount = &mailboxError{"session: mailbox full: Options.MailboxSize commands wait for the actor or for their completions to be received; wait for completions, drain the reply channel, or raise MailboxSize"}
	errMailboxBytes = &mailboxError{"session: mailbox full: Options.MaxPendingBytes of payload wait for the peer to read; wait for completions or raise MaxPendingBytes"}
)

type mailboxError struct{ msg string }

func (e *mailboxError) Error() string        { return e.msg }
func (e *mailboxError) Is(target error) bool { return target == ErrMailboxFull }

// CloseError is the close frame that ended a session's closing handshake:
// its code and reason, and which side started it. It matches ErrClosed
// with errors.Is; get it with errors.As or CloseCode.
type CloseError struct {
	Code   codec.CloseCode
	Reason string
	// Local reports that this side started the handshake: Close, or a
	// failure for which the session sent Code (a protocol violation, the
	// idle timeout, a handler's panic: Unwrap gives that cause).
	// Otherwise the peer started it, and Code and Reason are its close
	// frame's.
	Local bool

	err error // the failure that made this side close, or nil
}

func (e *CloseError) Error() string {
	if e.err != nil {
		var pe *codec.ProtocolError
		if errors.As(e.err, &pe) && pe.Code == e.Code {
			return e.err.Error() // it names the code already
		}
		return fmt.Sprintf("%v (sent close %d, %s)", e.err, uint16(e.Code), e.Code)
	}
	by := "by peer"
	if e.Local {
		by = "by this side"
	}
	if e.Reason == "" {
		return fmt.Sprintf("session: closed %s with %d (%s)", by, uint16(e.Code), e.Code)
	}
	return fmt.Sprintf("session: closed %s with %d (%s): %q", by, uint16(e.Code), e.Code, e.Reason)
}

// Is makes a *CloseError match ErrClosed.
func (e *CloseError) Is(target error) bool { return target == ErrClosed }

// Unwrap returns the failure that made this side close, or nil.
func (e *CloseError) Unwrap() error { return e.err }

// endError is how a session that ended without a closing handshake says
// why: it matches ErrClosed, and its cause (ErrCanceled, ErrCloseTimeout,
// ErrWriteTimeout, a lost connection) stays reachable.
type endError struct{ err error }

func (e *endError) Error() string        { return e.err.Error() }
func (e *endError) Unwrap() error        { return e.err }
func (e *endError) Is(target error) bool { return target == ErrClosed }

// ended returns err as a session's end: matching ErrClosed.
func ended(err error) error {
	if err == nil || errors.Is(err, ErrClosed) {
		return err
	}
	return &endError{err}
}

// CloseCode returns the code of the close frame that ended a session's
// handshake (sent or received: a *CloseError's Code, or a
// *codec.ProtocolError's), 1006 (abnormal closure) for a session that
// ended without one (the connection lost, Cancel(Terminal), a write or
// close timeout), and 0 for nil and for errors that are not a session's
// end (ErrMailboxFull, ErrClosing, ErrHandshake, ...).
func CloseCode(err error) codec.CloseCode {
	if err == nil {
		return 0
	}
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	var pe *codec.ProtocolError
	if errors.As(err, &pe) {
		return pe.Code
	}
	if errors.Is(err, ErrClosed) {
		return codec.CloseAbnormalClosure
	}
	return 0
}
