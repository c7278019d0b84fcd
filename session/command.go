package session

import (
	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/actor"
	"github.com/wsactor/wsactor/codec"
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
	cmdPong     // the reader got a ping
	cmdPeerClose
	cmdProtocolError
	cmdReadError
	cmdReaderPanic
	cmdKeepalive
	cmdIdleTimeout
	cmdMessageTimeout
	cmdCloseTimeout
	cmdFrame     // a frame of a MessageWriter's message
	cmdCutStream // a MessageWriter gave up on its message half-way
)

// cmd is a mailbox message, held by value.
type cmd struct {
	kind     cmdKind
	user     Kind // the Kind of a user command (for a rejected one too)
	op       ws.OpCode
	cancel   CancelKind
	release  bool // the payload is a pooled buffer the session gives back
	admitted bool // counted by admit: unadmit when answered
	fin      bool // cmdFrame: the message's last frame
	rsv1     bool // cmdFrame: the first frame of a compressed message
	code     codec.CloseCode
	rb       *msgBuf // with release: the message buffer the payload lies in
	gen      uint32  // rb's generation
	stream   uint64  // cmdFrame, cmdCutStream: the MessageWriter's message
	id       uint64
	p        []byte
	pm       *PreparedMessage
	reason   string
	err      error
	reply    chan<- Completion
}

func newReply(ch chan<- Completion) actor.Reply[Completion] { return actor.NewReply(ch) }

// cost is the number of payload bytes c holds for the wire, as admit
// counts them.
func (c *cmd) cost() int64 {
	if c.pm != nil {
		return int64(len(c.pm.plain.Payload()))
	}
	return int64(len(c.p))
}

// record is c as a frame of the batch, or as the record of its answer.
func (c *cmd) record() record {
	return record{kind: c.user, op: c.op, id: c.id, p: c.p, pm: c.pm, release: c.release, admitted: c.admitted, rb: c.rb, gen: c.gen, reply: c.reply, stream: c.stream, fin: c.fin, rsv1: c.rsv1}
}
