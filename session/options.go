package session

import (
	"compress/flate"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
)

// Options configures a session. The zero value (or a nil *Options) gives
// the defaults written beside each field. A session keeps the pointer: do
// not change an Options value while sessions use it.
//
// One Options serves Accept and Dial alike: all but three fields mean the
// same for both roles (OriginPatterns is for servers; TLSConfig and
// NetDial are for Dial), and the defaults that differ by role say so
// (IdleTimeout, WriteTimeout, MessageTimeout). The fields come in groups:
//   - the handshake: Subprotocols, OriginPatterns, Header, Compression,
//     HandshakeTimeout;
//   - what the application does with a session: OnOpen, OnMessage,
//     OnControl, OnClose;
//   - bounds against the peer: MaxMessageSize, MaxFrameSize, IdleTimeout,
//     MessageTimeout and MessageMinRate, WriteTimeout, CloseTimeout;
//   - bounds against the session's callers: MailboxSize, MaxPendingBytes,
//     InboundSize;
//   - tuning: FragmentSize, ReadBufferSize, WriteCoalesce, ParkAfter;
//   - Dial only: TLSConfig, NetDial, HTTP2.
type Options struct {
	// Handshake.

	// Subprotocols lists the application protocols in order of preference.
	// A server picks the first one the client offered; a client offers
	// them all. Default: none.
	Subprotocols []string

	// OriginPatterns lists the origins a server accepts besides its own
	// host, as path.Match patterns over the origin's host[:port]
	// ("*.example.com", "localhost:*"); "*" accepts every origin. A request
	// without an Origin header (not from a browser) is always accepted.
	// Default: same host only.
	OriginPatterns []string

	// Header adds headers to the handshake: the server's response or the
	// client's request.
	Header http.Header

	// Compression, when set, negotiates permessage-deflate (RFC 7692)
	// without context takeover in either direction: each message is
	// compressed on its own, so a session keeps no compression state
	// between messages. A server accepts a client's offer (and declines
	// one it cannot honour, such as server_max_window_bits); a client
	// offers it. Nil: no compression, offers declined.
	Compression *Compression

	// HandshakeTimeout bounds the opening handshake and, unless
	// CloseTimeout is set, the closing one. Default 30 s.
	HandshakeTimeout time.Duration

	// What the application does with a session, each optional.

	// OnOpen, when set, is called once the opening handshake is done, on
	// the goroutine that called Accept, AcceptConn or Dial, before the
	// session reads a byte: the place to give the session its state
	// (SetValue) before the first OnMessage or OnControl can ask for it.
	// ctx is the request's context for Accept (where authentication
	// middleware leaves the user's identity), the dial context for Dial,
	// and context.Background() for AcceptConn; it is not the session's
	// lifetime. Commands may be issued from it. A panic in it ends the
	// session as Cancel(Terminal) does and goes on up to the caller.
	OnOpen func(ctx context.Context, s *Session)

	// OnMessage, when set, receives every inbound data message on the
	// session's reader goroutine: no further goroutine, no queue. The
	// reader waits while it runs, so a slow handler slows the peer down
	// (TCP backpressure). The handler owns m and must call m.Release (or
	// hand m to WriteMessage). When nil, messages go to the Messages
	// channel.
	//
	// Commands the handler issues on its own session run once it returns,
	// on the reader's goroutine, all the answers to one read in one write:
	// so the handler must not wait for their completions (WriteContext may
	// be used: it takes care of it). To close from a handler, call Close
	// and return: CloseContext would wait for the peer's close frame, which
	// the reader, busy in the handler, cannot read. A handler that must
	// wait should hand the message to another goroutine.
	OnMessage func(s *Session, m Message)

	// OnControl, when set, observes every ping, pong and close frame
	// received, on the reader goroutine, before the session acts on it.
	// The payload is valid only during the call.
	OnControl func(s *Session, op ControlOp, payload []byte)

	// OnClose, when set, is called once when the session has ended, with
	// the error Err returns, after Done is closed and every command has
	// completed: the place for a server's bookkeeping, without a goroutine
	// per session waiting on Done. It runs on the session's actor and must
	// not block.
	OnClose func(s *Session, err error)

	// Bounds against the peer: what it may send, and for how long it may
	// hold a session.

	// MaxMessageSize limits an inbound message; a bigger one closes the
	// session with 1009. Negative means no limit. Default 16 MiB.
	MaxMessageSize int64

	// MaxFrameSize limits an inbound frame. Default: no limit beyond
	// MaxMessageSize.
	MaxFrameSize int64

	// IdleTimeout closes the session with 1001 (going away) when nothing is
	// received for that long; after half of it without a byte a ping is
	// sent. Negative disables it. Default: 60 s for servers, off for
	// clients.
	IdleTimeout time.Duration

	// MessageTimeout and MessageMinRate bound how long a message may take
	// to arrive once its first byte came, as Apache's mod_reqtimeout
	// bounds a request body: the message must be whole within
	// MessageTimeout, extended by one second for every MessageMinRate
	// bytes received. An honest slow sender finishes; a peer that trickles
	// (one byte every few seconds, which resets IdleTimeout each time) is
	// closed with 1008 (policy violation) and ErrMessageTimeout. Negative
	// MessageTimeout disables it. Default: 20 s and 500 bytes per second
	// (mod_reqtimeout's) for servers, off for clients.
	MessageTimeout time.Duration
	MessageMinRate int

	// WriteTimeout bounds how long a write to the socket may make no
	// progress: when the peer has taken no byte for this long (it stopped
	// reading and the socket's buffers are full), the session ends with
	// ErrWriteTimeout and the connection closed, since part of a frame
	// may be out. A peer that reads slowly is not cut in the middle of a
	// large message. Negative disables it. Default: 10 s for servers, off
	// for clients.
	WriteTimeout time.Duration

	// CloseTimeout bounds the closing handshake: from sending our close
	// frame (or receiving the peer's) to the TCP teardown. It also bounds
	// the teardown after the session fails on what the peer sent: the
	// socket is half-closed at once and closed when the peer closes too
	// or this timeout passes. Default: the handshake timeout.
	CloseTimeout time.Duration

	// Bounds against the session's callers: what it holds for them.

	// MailboxSize is how many commands a session holds for its callers:
	// accepted and not yet answered, counting the completions that wait
	// for a reply channel its owner does not drain. A command beyond it is
	// refused at the call with ErrMailboxFull. Cancel has a lane of the
	// same size of its own, and one Close is always taken. Default 1024.
	MailboxSize int

	// MaxPendingBytes bounds the payload bytes of the writes a session
	// holds for the wire (accepted, not yet written): a write beyond it is
	// refused at the call with ErrMailboxFull. One message larger than the
	// bound is taken when nothing else waits. Default 16 MiB, as MaxMessageSize.
	MaxPendingBytes int64

	// InboundSize is the capacity of the Messages channel when OnMessage is
	// nil. Default 16.
	InboundSize int

	// Tuning.

	// FragmentSize splits outgoing messages into frames of at most this
	// many payload bytes. Default 0: one frame per message.
	FragmentSize int

	// ReadBufferSize is the size of the pooled buffer a read borrows while
	// bytes arrive (only then: a waiting reader holds none). Default 32 KiB.
	ReadBufferSize int

	// WriteCoalesce is how many bytes of ready frames the session gathers
	// into one vectored write at most. Default 256 KiB.
	WriteCoalesce int

	// ParkAfter is how long a session waits without receiving a byte
	// before its reader parks: it gives up its goroutine and its stack
	// until bytes arrive, and one goroutine of the process waits for every
	// parked session (Linux, plain TCP connections; elsewhere the reader
	// stays). Negative disables parking. Default 1 s.
	ParkAfter time.Duration

	// Dial only.

	// TLSConfig is used by Dial for wss:// URLs. Default: a zero
	// tls.Config with the URL's host as ServerName.
	TLSConfig *tls.Config

	// NetDial dials the TCP connection for Dial. Default: a net.Dialer.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)

	// HTTP2, when set, makes Dial open the session as a stream of an
	// HTTP/2 connection (RFC 8441) from this pool, which sessions share;
	// TLSConfig and NetDial are then the pool's, not these. Default: nil,
	// a TCP connection of the session's own with an HTTP/1.1 Upgrade.
	HTTP2 *HTTP2
}

// Compression configures permessage-deflate.
type Compression struct {
	// Level is the compress/flate level of outgoing messages: 1
	// (flate.BestSpeed) to 9, or -2 (Huffman only). 0 means BestSpeed.
	Level int
	// Threshold is the payload size below which messages go out
	// uncompressed (RFC 7692 lets every message choose). Default 128
	// bytes; negative compresses every message. A message that does not
	// shrink goes out uncompressed too.
	Threshold int
}

func (c *Compression) level() int {
	if c.Level == 0 {
		return flate.BestSpeed
	}
	return c.Level
}

func (c *Compression) threshold() int {
	switch {
	case c.Threshold < 0:
		return 0
	case c.Threshold == 0:
		return 128
	}
	return c.Threshold
}

// inflateLimit is the largest inflated message: MaxMessageSize's.
func (o *Options) inflateLimit() int64 {
	switch {
	case o.MaxMessageSize < 0:
		return -1
	case o.MaxMessageSize == 0:
		return codec.DefaultMaxMessage
	}
	return o.MaxMessageSize
}

// ControlOp names a control frame for OnControl.
type ControlOp uint8

// Control frame kinds.
const (
	ControlPing  = ControlOp(ws.OpPing)
	ControlPong  = ControlOp(ws.OpPong)
	ControlClose = ControlOp(ws.OpClose)
)

var defaultOptions Options

func (o *Options) handshakeTimeout() time.Duration {
	if o.HandshakeTimeout > 0 {
		return o.HandshakeTimeout
	}
	return 30 * time.Second
}

func (o *Options) closeTimeout() time.Duration {
	if o.CloseTimeout > 0 {
		return o.CloseTimeout
	}
	return o.handshakeTimeout()
}

func (o *Options) idleTimeout(role codec.Role) time.Duration {
	switch {
	case o.IdleTimeout < 0:
		return 0
	case o.IdleTimeout > 0:
		return o.IdleTimeout
	case role == codec.Server:
		return 60 * time.Second
	}
	return 0
}

func (o *Options) parkAfter() time.Duration {
	switch {
	case o.ParkAfter < 0:
		return 0
	case o.ParkAfter > 0:
		return o.ParkAfter
	}
	return time.Second
}

func (o *Options) mailboxSize() int {
	if o.MailboxSize > 0 {
		return o.MailboxSize
	}
	return 1024
}

func (o *Options) inboundSize() int {
	if o.InboundSize > 0 {
		return o.InboundSize
	}
	return 16
}

func (o *Options) readBufferSize() int {
	if o.ReadBufferSize > 0 {
		return o.ReadBufferSize
	}
	return 32 << 10
}

func (o *Options) writeCoalesce() int64 {
	if o.WriteCoalesce > 0 {
		return int64(o.WriteCoalesce)
	}
	return 256 << 10
}

func (o *Options) maxPendingBytes() int64 {
	if o.MaxPendingBytes > 0 {
		return o.MaxPendingBytes
	}
	return 16 << 20
}

func (o *Options) writeTimeout(role codec.Role) time.Duration {
	switch {
	case o.WriteTimeout < 0:
		return 0
	case o.WriteTimeout > 0:
		return o.WriteTimeout
	case role == codec.Server:
		return 10 * time.Second
	}
	return 0
}

func (o *Options) messageTimeout(role codec.Role) time.Duration {
	switch {
	case o.MessageTimeout < 0:
		return 0
	case o.MessageTimeout > 0:
		return o.MessageTimeout
	case role == codec.Server:
		return 20 * time.Second
	}
	return 0
}

func (o *Options) messageMinRate() int64 {
	if o.MessageMinRate > 0 {
		return int64(o.MessageMinRate)
	}
	return 500
}
