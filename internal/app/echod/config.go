package echod

import (
	"github.com/wsactor/wsactor/session"
	"log/slog"
	"strings"
	"time"
)

// Config configures a Server. The zero value gives the defaults written
// beside each field.
type Config struct {
	// Addr is the listen address, for the caller that listens (Serve takes
	// a listener). Default 127.0.0.1:8080.
	Addr string

	// Path is the echo endpoint. A plain browser GET of it (no Upgrade
	// header, Accept naming text/html) gets the page instead. A missing
	// leading slash is added. Default "/".
	Path string

	// CertFile and KeyFile, both set, make Serve speak TLS (wss://), with
	// HTTP/2 offered by ALPN beside HTTP/1.1.
	CertFile, KeyFile string

	// H2C makes Serve speak cleartext HTTP/2 with prior knowledge beside
	// HTTP/1.1 on a plain listener (for tests, and behind a proxy that
	// speaks it). Default off.
	H2C bool

	// MaxMessage limits an inbound message; a bigger one closes the
	// session with 1009 (message too big). Negative means no limit.
	// Default 16 MiB.
	MaxMessage int64

	// IdleTimeout closes a session from which nothing came for that long
	// (after a keep-alive ping at half of it), and an idle keep-alive HTTP
	// connection. Default 60 s.
	IdleTimeout time.Duration

	// WriteTimeout bounds each write to a session's socket: a write that
	// has not finished after this long (the peer stopped reading and the
	// socket's buffers are full) ends the session with
	// session.ErrWriteTimeout and its connection closed; on /broadcast the
	// session leaves the hub. Negative disables it. Default 5 s.
	WriteTimeout time.Duration

	// MessageTimeout and MessageMinRate bound how long a message may take
	// to arrive once its first byte came (session.Options'): it must be
	// whole within MessageTimeout, plus one second for every
	// MessageMinRate bytes received, or the session is closed with 1008
	// (policy violation). A peer that trickles a message byte by byte is
	// cut; an honest slow sender finishes. Negative MessageTimeout
	// disables it. Defaults: 20 s and, for a MessageMinRate of 0 or less,
	// 500 bytes per second (the session's own, Apache mod_reqtimeout's).
	MessageTimeout time.Duration
	MessageMinRate int

	// MaxPendingBytes bounds the payload bytes of the writes a session
	// holds for a peer that has not read them yet: an echo or broadcast
	// delivery beyond it is refused (a broadcast delivery is dropped and
	// counted in broadcast_dropped). One message larger than the bound is
	// taken when nothing else waits. Default (0 or less) 1 MiB.
	MaxPendingBytes int64

	// HandshakeTimeout bounds reading a request's headers (counted from
	// the connection's start, so a silent connection is cut too), the
	// opening handshake and the closing handshake. Default 10 s.
	HandshakeTimeout time.Duration

	// ShutdownTimeout is the deadline the daemon gives Shutdown. Default
	// 10 s.
	ShutdownTimeout time.Duration

	// MaxConns limits the WebSocket sessions open and being opened; the
	// request over the limit gets 503 before the upgrade. Default 0:
	// unlimited.
	MaxConns int

	// Origins lists the browser origins allowed besides the server's own
	// host, as session.Options.OriginPatterns ("*.example.com",
	// "localhost:*", "*"). Default: same host only.
	Origins []string

	// Broker, when set, makes the rooms (/room/NAME, /broadcast) span
	// every daemon that shares it (the NATS broker: wsechod -nats). Nil:
	// this daemon's rooms are its own.
	Broker session.Broker

	// Broadcast serves /broadcast, where every data message from any
	// session on it is sent to all of them, the sender included. Default
	// off.
	Broadcast bool

	// Compression negotiates permessage-deflate with clients that offer
	// it (session.Options.Compression, at its defaults). Default off.
	Compression bool

	// Logger receives a line per session end and the server's own events.
	// Default slog.Default().
	Logger *slog.Logger
}

// Defaults of the Config fields.
const (
	DefaultAddr             = "127.0.0.1:8080"
	DefaultPath             = "/"
	DefaultMaxMessage       = 16 << 20
	DefaultIdleTimeout      = 60 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultShutdownTimeout  = 10 * time.Second
	DefaultWriteTimeout     = 5 * time.Second
	DefaultMessageTimeout   = 20 * time.Second
	DefaultMessageMinRate   = 500
	DefaultMaxPendingBytes  = 1 << 20
)

// MaxHeaderBytes limits a request's header block; a bigger one gets 431
// from net/http, which stops reading at the limit.
const MaxHeaderBytes = 64 << 10

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if !strings.HasPrefix(c.Path, "/") {
		c.Path = "/" + c.Path
	}
	if c.MaxMessage == 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MessageTimeout == 0 {
		c.MessageTimeout = DefaultMessageTimeout
	}
	if c.MessageMinRate <= 0 {
		c.MessageMinRate = DefaultMessageMinRate
	}
	if c.MaxPendingBytes <= 0 {
		c.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
