package echod

import (
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

	// CertFile and KeyFile, both set, make Serve speak TLS (wss://).
	CertFile, KeyFile string

	// MaxMessage limits an inbound message; a bigger one closes the
	// session with 1009 (message too big). Negative means no limit.
	// Default 16 MiB.
	MaxMessage int64

	// IdleTimeout closes a session from which nothing came for that long
	// (after a keep-alive ping at half of it), and an idle keep-alive HTTP
	// connection. Default 60 s.
	IdleTimeout time.Duration

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
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
