package session

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/actor"
	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/netpoll"
)

// Session is one WebSocket connection, run by an actor that owns every
// write to the socket and all session state, and a reader goroutine that
// owns the read side. Its methods are safe for concurrent use and never
// block: each command returns its id at once, and its outcome arrives later
// as exactly one Completion on the reply channel the caller gave, never from
// inside the call.
//
// An idle session has one goroutine, its reader, parked without a buffer;
// the actor goroutine runs only while there is something to do.
type Session struct {
	conn     net.Conn
	raw      syscall.RawConn // nil when conn is not a plain TCP or Unix socket
	role     codec.Role
	deflate  bool // permessage-deflate was negotiated
	opts     *Options
	protocol string

	mb     *actor.Actor[cmd]
	out    actor.Outbox[Completion]
	nextID atomic.Uint64

	// What the session holds for its callers (admit): commands accepted
	// and not yet answered, their payload bytes, and Cancels on their way.
	outstanding  atomic.Int32
	cancels      atomic.Int32
	pendingBytes atomic.Int64
	readerG      atomic.Int64 // the reader's goroutine when handlers run on it; 0 otherwise

	value atomic.Pointer[any] // SetValue's

	inbound chan Message  // nil with Options.OnMessage
	closing chan struct{} // with inbound: closed once our close frame is queued
	initial []byte        // bytes read with the handshake, not yet decoded

	// Shared with the reader and the timers. (The fields are ordered to
	// leave no padding: an idle session's size is the point.)
	active    atomic.Uint32 // the reader got bytes since the last tick
	flags     atomic.Uint32 // flag bits, below
	quiet     atomic.Int64  // how long nothing was received, as ticks count it
	tickEvery atomic.Int64  // the interval the tick timer was set for; 0: stopped
	msgDue    atomic.Int64  // when the message in progress must be whole (unix ns); 0 when none is
	idleTimer *time.Timer   // ticks for keep-alive, idle timeout and parking

	// Pongs waiting for the actor, and the latest ping beyond them.
	pongs      atomic.Int32
	pongMu     sync.Mutex
	latestPing []byte

	// Parking (park.go): the reader's state while it has no goroutine.
	park    atomic.Uint32
	parkMu  sync.Mutex
	parkTok uint64
	parkReg netpoll.Reg
	parked  *reader

	// Owned by the actor goroutine.
	scratch  *scratch
	hs       *closeState // the closing handshake's; nil until it begins
	canceled []uint64    // ids whose WriteContext gave up before they began
	stream   uint64      // the MessageWriter's message under way (stream.go); 0 when none is
	held     *[]cmd      // data writes waiting for that message to end; nil when none wait
	state    state
	abrupt   bool // a write failed: close at once, with no teardown (closeConn)
	// streamWritten: a frame of the message under way is on the wire; cut:
	// a message was cut short on the wire, so the close must go.
	streamWritten, cut bool
}

// Session flags, shared with the reader and the timers.
const (
	flagPinged      uint32 = 1 << iota // a keep-alive ping went out in this quiet spell
	flagCloseSent                      // our close frame is on its way: drop data
	flagTerminal                       // Cancel(Terminal) was called
	flagTimedOut                       // the close timer fired
	flagCloseQueued                    // a Close is on its way to the actor
)

func (s *Session) is(f uint32) bool { return s.flags.Load()&f != 0 }
func (s *Session) set(f uint32)     { s.flags.Or(f) }
func (s *Session) clear(f uint32)   { s.flags.And(^f) }

// setOnce sets f and reports whether this call did.
func (s *Session) setOnce(f uint32) bool { return s.flags.Or(f)&f == 0 }

type state uint8

const (
	stateOpen      state = iota
	stateClosing         // we sent (or queued) our close frame; the peer's is awaited
	statePeerClose       // the peer's close frame came; teardown is under way
	stateDone            // the connection is closed
)

func newSession(ctx context.Context, conn net.Conn, role codec.Role, opts *Options, protocol string, deflate bool, initial []byte) *Session {
	if opts == nil {
		opts = &defaultOptions
	}
	s := &Session{conn: conn, role: role, opts: opts, protocol: protocol, deflate: deflate}
	if len(initial) > 0 {
		s.initial = append([]byte(nil), initial...)
	}
	if sc, ok := conn.(syscall.Conn); ok {
		if _, isTCP := conn.(*net.TCPConn); isTCP {
			s.raw, _ = sc.SyscallConn()
		} else if _, isUnix := conn.(*net.UnixConn); isUnix {
			s.raw, _ = sc.SyscallConn()
		}
	}
	s.mb = actor.New[cmd](opts.mailboxSize()+1, (*behavior)(s)) // +1: a Close
	if opts.OnMessage == nil {
		s.inbound = make(chan Message, opts.inboundSize())
		s.closing = make(chan struct{})
	}
	if p := s.tickPeriod(); p > 0 {
		// Armed only once the field is set: tick reads it, and Reset is
		// what orders the write before the timer's goroutine.
		s.idleTimer = time.AfterFunc(time.Hour, s.tick)
		s.tickEvery.Store(int64(p))
		s.idleTimer.Reset(p)
	}
	if f := opts.OnOpen; f != nil {
		s.open(ctx, f)
	}
	go s.readLoop()
	return s
}

// open runs Options.OnOpen; a panic in it ends the session, as
// Cancel(Terminal) does, on its way up.
func (s *Session) open(ctx context.Context, f func(context.Context, *Session)) {
	ok := false
	defer func() {
		if !ok {
			s.Cancel(Terminal, nil)
		}
	}()
	f(ctx, s)
	ok = true
}

// SetValue stores v with the session: the state of one connection, for
// handlers that many sessions share (Options.OnMessage, OnControl,
// OnClose) to find without a map of their own. Set it from Options.OnOpen
// to have it before the first message. It is safe for concurrent use.
func (s *Session) SetValue(v any) { s.value.Store(&v) }

// Value returns what SetValue stored last, or nil.
func (s *Session) Value() any {
	if p := s.value.Load(); p != nil {
		return *p
	}
	return nil
}

// Role returns codec.Server for an accepted session and codec.Client for a
// dialed one.
func (s *Session) Role() codec.Role { return s.role }

// Compressed reports whether permessage-deflate was negotiated.
func (s *Session) Compressed() bool { return s.deflate }

// Subprotocol returns the negotiated subprotocol, or "".
func (s *Session) Subprotocol() string { return s.protocol }

// LocalAddr returns the local network address.
func (s *Session) LocalAddr() net.Addr { return s.conn.LocalAddr() }

// RemoteAddr returns the peer's network address.
func (s *Session) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// Done is closed when the session has ended: the connection is closed and
// Err says why.
func (s *Session) Done() <-chan struct{} { return s.mb.Done() }

// Err returns why the session ended, or nil while it lives. It always
// matches ErrClosed. After a closing handshake it is a *CloseError that
// says who started it, with the code and reason of the close frame that
// started it; otherwise its cause is wrapped: ErrCanceled after
// Cancel(Terminal), ErrCloseTimeout, ErrWriteTimeout, or the error that
// lost the connection (CloseCode gives 1006 for those).
func (s *Session) Err() error { return s.mb.Err() }

// Messages returns the channel of inbound data messages, closed when the
// reading side ends (then Err says why). Each message must be released.
// It is nil when Options.OnMessage is set.
func (s *Session) Messages() <-chan Message { return s.inbound }

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
		s.mb.RunHeld(inlineSets)
		s.mb.Hold()
		if err := s.admit(&c); err != nil {
			return c.id, s.refuse(&c, err)
		}
	}
	if !s.mb.Send(c) {
		// The lane has room for every admitted command and one Close, so
		// this cannot happen; if it ever does, the command is still
		// answered, never lost.
		s.unadmit(&c)
		return c.id, s.refuse(&c, errMailboxCount)
	}
	if c.reply != nil && s.opts.OnMessage != nil {
		// A handler that asks for a completion may wait for it: the
		// actor, held while the handler runs (actor.Hold), must not wait
		// for the handler to return.
		s.mb.Kick()
	}
	return c.id, nil
}

// admit decides whether c may be queued: the session lives, and the
// commands and payload bytes it holds for its callers stay within
// Options.MailboxSize and Options.MaxPendingBytes. A Close is exempt from
// both (one at a time: a second waits for the first to reach the actor).
func (s *Session) admit(c *cmd) error {
	if s.mb.Stopped() {
		return s.mb.Err()
	}
	if c.kind == cmdClose {
		if !s.setOnce(flagCloseQueued) {
			return ErrClosing
		}
		return nil
	}
	// Completions waiting in the outbox for a caller who does not drain
	// his channel count too: otherwise such a caller grows them without
	// bound.
	limit := int64(s.opts.mailboxSize())
	if int64(s.outstanding.Add(1))+int64(s.out.Pending()) > limit {
		s.outstanding.Add(-1)
		return errMailboxCount
	}
	if n := c.cost(); n > 0 {
		// One message larger than the bound is taken when nothing else
		// waits: the bound is on the backlog, not on a message's size.
		if q := s.pendingBytes.Add(n); q > n && q > s.opts.maxPendingBytes() {
			s.pendingBytes.Add(-n)
			s.outstanding.Add(-1)
			return errMailboxBytes
		}
	}
	c.admitted = true
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
	c := cmd{kind: cmdWrite, user: KindWrite, op: ws.OpCode(m.Type), p: m.Payload, rb: m.buf, gen: m.gen, release: true, reply: reply}
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

// tickPeriod is how often the session looks at its reader's activity: half
// the idle timeout, or the park delay when that is shorter; 0 when there is
// nothing to look for.
func (s *Session) tickPeriod() time.Duration {
	p := s.opts.idleTimeout(s.role) / 2
	if park := s.parkAfter(); park > 0 && (p == 0 || park < p) {
		p = park
	}
	if m := s.opts.messageTimeout(s.role) / 2; m > 0 && (p == 0 || m < p) {
		p = m
	}
	return p
}

// tick runs on a timer goroutine. It needs the actor only when there is
// something to do: a keep-alive ping to send, a session to close; and the
// reader only to park it.
func (s *Session) tick() {
	if s.mb.Stopped() {
		return
	}
	if s.opts.OnMessage != nil {
		// A handler that blocks on something other than a completion of
		// its own (which ends the hold at once) holds the actor: its
		// commands go out at the next tick at the latest.
		s.mb.Kick()
	}
	var quiet time.Duration
	if s.active.Swap(0) != 0 {
		s.quiet.Store(0)
		s.clear(flagPinged)
	} else {
		quiet = time.Duration(s.quiet.Add(s.tickEvery.Load()))
	}
	idle := s.opts.idleTimeout(s.role)
	if park := s.parkAfter(); quiet > 0 && park > 0 && quiet >= park {
		s.requestPark()
	}
	switch {
	case idle > 0 && quiet >= idle+idle/2:
		// The actor could not close in time (a write blocked on a peer
		// that does not read): close by force.
		s.conn.Close()
		return
	case idle > 0 && quiet >= idle:
		s.mb.SendUrgent(cmd{kind: cmdIdleTimeout})
	case idle > 0 && quiet >= idle/2 && !s.is(flagPinged):
		s.set(flagPinged)
		s.mb.SendUrgent(cmd{kind: cmdKeepalive})
	}
	due := s.msgDue.Load()
	if due != 0 && time.Now().UnixNano() >= due {
		s.mb.SendUrgent(cmd{kind: cmdMessageTimeout})
	}
	next := s.tickPeriod()
	if s.park.Load() == parkParked {
		// Nothing comes from a parked reader until it wakes (and restarts
		// the ticks): sleep until the next keep-alive event, if any.
		switch {
		case idle == 0 && due == 0:
			s.tickEvery.Store(0)
			return
		case idle == 0:
			next = time.Hour // the message's deadline, below
		case !s.is(flagPinged) && quiet < idle/2:
			next = idle/2 - quiet
		case quiet < idle:
			next = idle - quiet
		default:
			next = idle / 2
		}
		if due != 0 {
			// A message in progress: its deadline comes first, if sooner.
			next = max(min(next, time.Duration(due-time.Now().UnixNano())), time.Millisecond)
		}
	}
	s.tickEvery.Store(int64(next))
	s.idleTimer.Reset(next)
}

func (s *Session) closeTimeout() {
	s.set(flagTimedOut)
	s.conn.Close()
	s.mb.SendUrgent(cmd{kind: cmdCloseTimeout})
}
