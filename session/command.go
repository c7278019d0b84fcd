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
	cmdCast // a group's broadcasts from one read (burst.go)
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
	ref      *msgRef // with release: the hold of the message whose payload this is
	gen      uint32  // ref's generation, ours
	stream   uint64  // cmdFrame, cmdCutStream: the MessageWriter's message
	id       uint64
	p        []byte
	pm       *PreparedMessage
	cast     *cast  // cmdCast: its broadcasts are cast.pms[from:to]
	from, to uint16 // cmdCast
	bytes    int64  // cmdCast: the payload bytes of its broadcasts
	reason   string
	err      error
	reply    chan<- Completion
}

func newReply(ch chan<- Completion) actor.Reply[Completion] { return actor.NewReply(ch) }

// cost is the number of payload bytes c holds for the wire, as admit
// counts them.
func (c *cmd) cost() int64 {
	if c.cast != nil {
		return c.bytes
	}
	if c.pm != nil {
		return int64(len(c.pm.plain.Payload()))
	}
	return int64(len(c.p))
}

// record is c as a frame of the batch, or as the record of its answer.
func (c *cmd) record() record {
	return record{kind: c.user, op: c.op, id: c.id, p: c.p, pm: c.pm, release: c.release, admitted: c.admitted, ref: c.ref, gen: c.gen, reply: c.reply, stream: c.stream, fin: c.fin, rsv1: c.rsv1, cast: c.cast, bytes: c.bytes}
}

// send admits c (refusing it at once when the session cannot take it) and
// queues it for the actor.
func (s *Session) send(c cmd) (uint64, error) {
	c.id = s.nextID.Add(1)
	if err := s.admit(&c); err != nil {
		if err != errMailboxCount && err != errMailboxBytes || s.opts.OnMessage == nil || !s.onReader() {
			return c.id, s.refuse(&c, err)
		}
		// The session's own handler: what fills the mailbox is its
		// answers, which the reader writes once the read is done. Write
		// them now (the reader waits meanwhile: backpressure on the peer,
		// as ever), then take the command.
		s.kickPeers()
		s.mb.RunHeld(inlineSets)
		s.mb.Hold()
		if err := s.admit(&c); err != nil {
			return c.id, s.refuse(&c, err)
		}
	}
	// A caller that asks for a completion may wait for it, and one that
	// closes may wait for Done: the actor, held while a handler runs
	// (its own session's, or a publisher's whose broadcasts it batches:
	// burst.go), must not wait for that handler to return.
	var ok bool
	if c.reply != nil || c.kind == cmdClose {
		ok = s.mb.SendNow(c)
	} else {
		ok = s.mb.Send(c)
	}
	if !ok {
		// The lane has room for every admitted command and one Close, so
		// this cannot happen; if it ever does, the command is still
		// answered, never lost.
		s.unadmit(&c)
		return c.id, s.refuse(&c, errMailboxCount)
	}
	return c.id, nil
}

// admit decides whether c may be queued: the session lives, and the
// commands and payload bytes it holds for its callers stay within
// Options.MailboxSize and Options.MaxPendingBytes. A Close is exempt from
// both (one at a time: a second waits for the first to reach the actor).
func (s *Session) admit(c *cmd) error {
	if s.mb.Stopped() {
		return s.endErr()
	}
	if c.kind == cmdClose {
		if !s.setOnce(flagCloseQueued) {
			return ErrClosing
		}
		return nil
	}
	if err := s.admitCount(); err != nil {
		return err
	}
	if err := s.admitBytes(c.cost()); err != nil {
		s.outstanding.Add(-1)
		return err
	}
	c.admitted = true
	return nil
}

// admitCount counts one more command against Options.MailboxSize, or
// refuses it. Completions waiting in the outbox for a caller who does not
// drain his channel count too: otherwise such a caller grows them without
// bound.
func (s *Session) admitCount() error {
	limit := int64(s.opts.mailboxSize())
	if int64(s.outstanding.Add(1))+int64(s.out.Pending()) > limit {
		s.outstanding.Add(-1)
		return errMailboxCount
	}
	return nil
}

// admitBytes counts n more payload bytes against Options.MaxPendingBytes,
// or refuses them. One message larger than the bound is taken when nothing
// else waits: the bound is on the backlog, not on a message's size.
func (s *Session) admitBytes(n int64) error {
	if n <= 0 {
		return nil
	}
	if q := s.pendingBytes.Add(n); q > n && q > s.opts.maxPendingBytes() {
		s.pendingBytes.Add(-n)
		return errMailboxBytes
	}
	return nil
}

// unadmit gives back what admit counted for c, once c is answered.
func (s *Session) unadmit(c *cmd) {
	if c.admitted {
		c.admitted = false
		s.outstanding.Add(-1)
		if n := c.cost(); n > 0 {
			s.pendingBytes.Add(-n)
		}
	}
}

// refuse answers a command refused at the call: its payload is handed back
// (or released, for WriteMessage), its completion is delivered as usual,
// so that a caller who ignores the returned error and waits still gets
// his answer, and err is returned. A caller that leaves more completions
// undrained than refusalBacklog loses the refusals beyond (counted by
// DroppedCompletions): the call told him, and memory stays bounded.
func (s *Session) refuse(c *cmd, err error) error {
	r := c.record()
	n, p := r.settle(err)
	if c.pm != nil {
		c.pm.release()
	}
	if c.reply == nil {
		return err
	}
	if s.out.Pending() >= s.refusalBacklog() {
		s.out.Drop()
		return err
	}
	s.out.Deliver(c.reply, Completion{Session: s, Kind: c.user, ID: c.id, N: n, Err: err, Payload: p})
	return err
}

// refusalBacklog is how many completions may wait for undrained reply
// channels before a refusal's completion is dropped: four mailboxes, so
// that callers who issue bursts and then drain never lose one.
func (s *Session) refusalBacklog() int { return max(4*s.opts.mailboxSize(), 256) }

// DroppedCompletions returns how many completions of this session were
// dropped: delivered to a reply channel that its owner had closed, or
// refusals beyond what an undrained channel may hold.
func (s *Session) DroppedCompletions() uint64 { return s.out.Dropped() }

// Write queues p as one whole data message of type typ and returns the
// command's id. p belongs to the session until the completion arrives on
// reply: it must not be modified before. Writes go on the wire in the order
// they were accepted and complete in that order. A nil reply discards the
// completion.
//
// A command the session cannot take is refused at the call: the error
// (ErrMailboxFull, or the session's end, which matches ErrClosed) is
// returned, nothing is queued, and the completion, with the same error,
// still comes on reply. A nil error means the command was accepted.
func (s *Session) Write(typ MessageType, p []byte, reply chan<- Completion) (uint64, error) {
	return s.send(cmd{kind: cmdWrite, user: KindWrite, op: ws.OpCode(typ), p: p, reply: reply})
}

// WriteText is Write(Text, p, reply).
func (s *Session) WriteText(p []byte, reply chan<- Completion) (uint64, error) {
	return s.Write(Text, p, reply)
}

// WriteBinary is Write(Binary, p, reply).
func (s *Session) WriteBinary(p []byte, reply chan<- Completion) (uint64, error) {
	return s.Write(Binary, p, reply)
}

// WriteMessage takes m (an inbound message from this or another session)
// and queues it as a message of its own type, without a copy: m is emptied
// at once, so that a deferred m.Release does nothing, and the buffer is
// released once written (or refused). The completion's Payload is nil. An
// empty m (already taken or released) is refused with ErrEmptyMessage.
func (s *Session) WriteMessage(m *Message, reply chan<- Completion) (uint64, error) {
	if m == nil || m.Type == 0 {
		id := s.nextID.Add(1)
		c := cmd{user: KindWrite, id: id, reply: reply}
		return id, s.refuse(&c, ErrEmptyMessage)
	}
	c := cmd{kind: cmdWrite, user: KindWrite, op: ws.OpCode(m.Type), p: m.Payload, release: true, reply: reply}
	if m.ref != nil {
		// The hold passes to the session: a copy of m made before can no
		// longer release the buffer while it is being written.
		c.ref, c.gen = m.ref, m.ref.take(m.gen)
	}
	*m = Message{}
	return s.send(c)
}

// WritePrepared queues a prepared message, encoded once for many sessions
// (Prepare). The session takes a reference of its own and drops it after
// the completion: the caller releases his once, whenever he is done
// writing it.
func (s *Session) WritePrepared(pm *PreparedMessage, reply chan<- Completion) (uint64, error) {
	return s.send(cmd{kind: cmdPrepared, user: KindWrite, pm: pm.retain(), reply: reply})
}

// Ping queues a ping with payload p (at most 125 bytes). p belongs to the
// session until the completion, which comes once the ping is written (the
// pong is reported to Options.OnControl).
func (s *Session) Ping(p []byte, reply chan<- Completion) (uint64, error) {
	return s.send(cmd{kind: cmdPing, user: KindPing, op: ws.OpPing, p: p, reply: reply})
}

// Close starts the closing handshake with reason. Writes accepted before go
// first; writes and pings after complete with ErrClosing. The completion
// arrives when the handshake is done and the connection closed (nil), or
// with ErrCloseTimeout after the close timeout, the connection then closed
// by force. A reason that must not be sent completes with ErrBadCloseCode
// (or ErrControlTooLong) and sends nothing.
//
// Close is never refused because writes fill the mailbox; it is refused at
// the call once the session has ended, or with ErrClosing while another
// Close is on its way to the actor.
func (s *Session) Close(reason CloseReason, reply chan<- Completion) (uint64, error) {
	return s.send(cmd{kind: cmdClose, user: KindClose, code: reason.Code, reason: reason.Reason, reply: reply})
}

// Cancel cancels with kind's meaning (Total or Terminal). It does not wait
// behind queued writes. Its own completion comes after every command it
// canceled has completed, with a nil error; a Cancel(Terminal) of a session
// that Cancel(Terminal) ended gets nil too, so that concurrent ones agree.
//
// Cancels have a lane of their own, never filled by writes: a
// Cancel(Total) is refused (ErrMailboxFull) only when MailboxSize Cancels
// already wait for the actor. Cancel(Terminal) is never refused: it closes
// the connection at the call, which frees the actor from any write at
// once.
func (s *Session) Cancel(kind CancelKind, reply chan<- Completion) (uint64, error) {
	c := cmd{kind: cmdCancel, user: KindCancel, cancel: kind, reply: reply}
	c.id = s.nextID.Add(1)
	if s.cancels.Add(1) > int32(s.opts.mailboxSize()) && kind != Terminal {
		s.cancels.Add(-1)
		return c.id, s.refuse(&c, errMailboxCount)
	}
	if kind == Terminal {
		s.set(flagTerminal)
		s.conn.Close() // interrupts a write in flight
	}
	s.mb.SendUrgent(c)
	return c.id, nil
}
