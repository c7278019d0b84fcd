// Package session runs WebSocket connections as actors.
//
// A Session owns its connection. Its write side belongs to an actor: callers
// never touch the socket, they send commands — Write, WriteMessage,
// WritePrepared, Ping, Close, Cancel — and each command returns its id at
// once and is answered by exactly one Completion on a channel the caller
// gives. One channel may serve many commands
// and many sessions. Under load the actor drains every ready command and
// writes all their frames with one vectored write.
//
// The read side belongs to the session's reader, which checks every frame
// against RFC 6455 and hands whole messages, in pooled buffers, to
// Options.OnMessage (on the reader's goroutine: the lean way) or to the
// Messages channel. A peer that sends faster than the application reads is
// slowed down by TCP, never queued without bound.
//
// The semantics are Boost.Beast's websocket::stream: Close runs the closing
// handshake and completes when it is done and the connection torn down (or
// after the close timeout, with ErrCloseTimeout). When the peer starts the
// handshake, the commands accepted before its close frame was read are
// written first, then a close frame echoing its code; later ones complete
// with the peer's *CloseError. Cancel(Total) cancels every
// command that has not begun to write, Cancel(Terminal) everything, the
// connection with it. When the peer breaks the protocol, the session
// sends the close frame that names the violation, ends at once, and tears
// the connection down as Beast does: half-closed, with what the peer still
// sends read and dropped until it closes or the close timeout passes, so
// that no reset destroys the close frame on its way.
//
// A message too large to hold in memory at once is written in pieces with
// NewWriter: a MessageWriter (an io.Writer and io.ReaderFrom) that sends
// frames as its buffer fills, while the session's other data writes wait
// behind the message.
//
// Ownership of buffers: a payload given to a command belongs to the session
// until that command's completion; a received Message's payload belongs to
// the application until it calls Release or hands the message to
// WriteMessage, which empties it. The idiomatic echo handler is safe:
//
//	OnMessage: func(s *session.Session, m session.Message) {
//		defer m.Release()        // does nothing once WriteMessage took m
//		s.WriteMessage(&m, nil) // nil: no completion wanted
//	}
//
// A command the session cannot take (ErrMailboxFull, or the session has
// ended) is refused at the call with an error, and its completion, with the
// same error, still comes. What a session holds for its callers is bounded
// by Options.MailboxSize and MaxPendingBytes.
//
// Completions go straight into the reply channel when it has room. When it
// has none the session does not block: the completion waits, with those
// queued behind it for the same channel, until the channel is drained. A
// reply channel closed while completions are due to it loses them
// (DroppedCompletions counts them); nothing panics.
//
// Every error of an ended session matches ErrClosed, with its cause wrapped
// (a *CloseError for a closing handshake, ErrCanceled, a timeout, a lost
// connection).
//
// The examples are the best way in.
package session
