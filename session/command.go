package session

import (
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/actor"
	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/bufpool"
)

// MessageType is the type of a data message.
type MessageType uint8

// Data message types, with their opcodes' values.
const (
	Text   = MessageType(ws.OpText)
	Binary = MessageType(ws.OpBinary)
)

func (t MessageType) String() string {
	switch t {
	case Text:
		return "text"
	case Binary:
		return "binary"
	}
	return "invalid message type"
}

// Message is one whole inbound data message. Its payload lives in a pooled
// buffer: it is valid until Release, which gives the buffer back.
//
// With Options.OnMessage, a message that arrived whole in one read is not
// copied: its payload is the read's own buffer, shared with the other
// messages of that read, and the buffer goes back to the pool once all of
// them are released. Such a payload's capacity is its length. A handler
// that keeps a small message for long should copy it and release it, so
// that it does not hold the whole read buffer.
type Message struct {
	Type    MessageType
	Payload []byte

	rb *readBuf // the read buffer that Payload aliases, or nil
}

// Release returns the payload's buffer to the pool. The payload must not be
// used afterwards. Release of an empty Message does nothing.
func (m *Message) Release() {
	switch {
	case m.rb != nil:
		m.rb.release()
		m.rb = nil
	case cap(m.Payload) > 0:
		bufpool.Put(m.Payload[:0])
	}
	m.Payload = nil
}

// readBuf is a read's pooled buffer, counted so that the messages that
// alias it can outlive the read.
type readBuf struct {
	b    []byte
	refs atomic.Int32
}

var readBufs = sync.Pool{New: func() any { return new(readBuf) }}

// newReadBuf wraps b, with one reference: the reader's.
func newReadBuf(b []byte) *readBuf {
	rb := readBufs.Get().(*readBuf)
	rb.b = b
	rb.refs.Store(1)
	return rb
}

func (rb *readBuf) retain() { rb.refs.Add(1) }

// release drops a reference; the last one gives the buffer back.
func (rb *readBuf) release() {
	if rb.refs.Add(-1) == 0 {
		bufpool.Put(rb.b)
		rb.b = nil
		readBufs.Put(rb)
	}
}

// Kind says which command a Completion answers.
type Kind uint8

// Command kinds.
const (
	KindWrite Kind = iota + 1
	KindPing
	KindClose
	KindCancel
)

func (k Kind) String() string {
	switch k {
	case KindWrite:
		return "write"
	case KindPing:
		return "ping"
	case KindClose:
		return "close"
	case KindCancel:
		return "cancel"
	}
	return "unknown"
}

// Completion is the one answer to one command. It is a value: delivering it
// allocates nothing.
type Completion struct {
	// Session is the session that ran the command, so that one channel can
	// serve many sessions.
	Session *Session
	// Kind and ID name the command; ID is what the command call returned.
	Kind Kind
	ID   uint64
	// N is the number of payload bytes written, for writes and pings.
	N int
	// Err is nil on success.
	Err error
	// Payload is the buffer the command was given, handed back: the
	// session no longer uses it. Nil for WriteMessage, whose buffer the
	// session released.
	Payload []byte
}

// CancelKind is the scope of a Cancel, with Boost.Beast's meanings.
type CancelKind uint8

const (
	// Total cancels every command that has not begun to write a byte: each
	// completes with ErrCanceled and leaves no trace on the wire. A frame
	// being written finishes. The session stays open.
	Total CancelKind = iota + 1
	// Terminal cancels everything, in-flight I/O included, closes the
	// connection and ends the session with ErrCanceled.
	Terminal
)

func (k CancelKind) String() string {
	switch k {
	case Total:
		return "total"
	case Terminal:
		return "terminal"
	}
	return "invalid cancel kind"
}

// CloseReason is what Close sends: a code and a reason of at most 123 bytes
// of valid UTF-8. The zero CloseReason sends an empty close frame (the peer
// sees 1005, no status).
type CloseReason struct {
	Code   codec.CloseCode
	Reason string
}

// cmdKind is what a mailbox message asks of the actor: the user's commands
// and the events of the reader and the timers.
type cmdKind uint8

const (
	cmdWrite cmdKind = iota + 1
	cmdPrepared
	cmdPing
	cmdClose
	cmdCancel
	cmdCancelID // a context given to WriteContext was done
	cmdForgetID // WriteContext has its completion: drop its id from the canceled ones
	cmdRejected // the mailbox was full
	cmdPong     // the reader got a ping
	cmdPeerClose
	cmdProtocolError
	cmdReadError
	cmdReaderPanic
	cmdKeepalive
	cmdIdleTimeout
	cmdCloseTimeout
	cmdFrame     // a frame of a MessageWriter's message
	cmdCutStream // a MessageWriter gave up on its message half-way
)

// cmd is a mailbox message, held by value.
type cmd struct {
	kind    cmdKind
	user    Kind // the Kind of a user command (for a rejected one too)
	op      ws.OpCode
	cancel  CancelKind
	release bool // the payload is a pooled buffer the session gives back
	fin     bool // cmdFrame: the message's last frame
	rsv1    bool // cmdFrame: the first frame of a compressed message
	code    codec.CloseCode
	rb      *readBuf // with release: the read buffer the payload aliases
	stream  uint64   // cmdFrame, cmdCutStream: the MessageWriter's message
	id      uint64
	p       []byte
	pf      *codec.Prepared
	reason  string
	err     error
	reply   chan<- Completion
}

func newReply(ch chan<- Completion) actor.Reply[Completion] { return actor.NewReply(ch) }
