package chat

import (
	"log/slog"
	"time"

	"github.com/wsactor/wsactor/session"
)

// Config configures a Server. The zero value gives the defaults written
// beside each field.
type Config struct {
	// Addr is the listen address, for the caller that listens (Serve takes
	// a listener). Default 127.0.0.1:8081.
	Addr string

	// MaxMessage limits an inbound message; a bigger one closes the
	// session with 1009 (message too big). Default 64 KiB: a say of 2000
	// runes, each escaped in JSON, fits with room to spare.
	MaxMessage int64

	// Origins lists the browser origins allowed besides the server's own
	// host, as session.Options.OriginPatterns ("*.example.com",
	// "localhost:*", "*"). Default: same host only.
	Origins []string

	// HandshakeTimeout bounds reading a request's headers, the opening
	// handshake and the closing one. Default 10 s.
	HandshakeTimeout time.Duration

	// ShutdownTimeout is the deadline the daemon gives Shutdown. Default
	// 10 s.
	ShutdownTimeout time.Duration

	// Broker, when set, makes the rooms span the chat servers that share
	// it (a NATS broker: github.com/wsactor/wsactor/broker/nats): a say
	// reaches the room's members on every server, at most once, in order
	// per sender. Presence stays each server's own (see the package doc).
	// Default none: the rooms are this server's.
	Broker session.Broker

	// Vars adds values to /debug/vars under their names, each read when
	// the document is served (wschat adds "nats", its broker's counts).
	Vars map[string]func() any

	// Logger receives a line per join and leave, per session closed for
	// what it sent, and the server's own events. Default slog.Default().
	Logger *slog.Logger
}

// Defaults of the Config fields.
const (
	DefaultAddr             = "127.0.0.1:8081"
	DefaultMaxMessage       = 64 << 10
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultShutdownTimeout  = 10 * time.Second
)

// MaxHeaderBytes limits a request's header block; a bigger one gets 431
// from net/http.
const MaxHeaderBytes = 64 << 10

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
