package session

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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

	value atomic.Pointer[any]    // SetValue's
	extra atomic.Pointer[extras] // groups and pings; nil until the first use

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
	burst    *heldBurst  // owned by the reader: the group members its handlers hold (burst.go)
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
	flagLeft                           // the session left its groups: it joins no more
)

func (s *Session) is(f uint32) bool { return s.flags.Load()&f != 0 }

func (s *Session) set(f uint32) { s.flags.Or(f) }

func (s *Session) clear(f uint32) { s.flags.And(^f) }

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
	if role == codec.Server && len(initial) == 0 && s.startParked() {
		return s
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
func (s *Session) Err() error { return s.endErr() }

// endErr is the session's end, matching ErrClosed: the actor stops itself
// with a bare *actor.PanicError when the behavior panics, before the
// session can say more.
func (s *Session) endErr() error { return ended(s.mb.Err()) }

// Messages returns the channel of inbound data messages, closed when the
// reading side ends (then Err says why). Each message must be released.
// It is nil when Options.OnMessage is set.
func (s *Session) Messages() <-chan Message { return s.inbound }
