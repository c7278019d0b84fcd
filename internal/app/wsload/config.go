package wsload

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"
)

// Mode is what the connections do once they are open.
type Mode string

// The modes.
const (
	// ModeEcho keeps Inflight messages outstanding on every connection and
	// measures the echoes.
	ModeEcho Mode = "echo"
	// ModeIdle opens the connections, sends nothing, holds them and measures
	// the server's memory per connection.
	ModeIdle Mode = "idle"
	// ModeBroadcast has one connection send while every connection counts
	// what the server's broadcast delivers to it.
	ModeBroadcast Mode = "broadcast"
	// ModeFanout has one connection publish as fast as the server delivers
	// to every member (at most Inflight messages ahead of the slowest
	// member that reads), Silent members that never read, and measures the
	// deliveries, the losses and the server's memory over time.
	ModeFanout Mode = "fanout"
	// ModeStorm dials every connection as fast as DialConcurrency allows
	// (a reconnection storm), sends nothing, and measures the handshakes
	// per second and the server's memory: at its peak, Hold after the
	// storm without a garbage collection, and after one.
	ModeStorm Mode = "storm"
)

// holds reports whether m holds its connections without sending.
func (m Mode) holds() bool { return m == ModeIdle || m == ModeStorm }

// Proto is the wire protocol.
type Proto string

// The protocols.
const (
	// ProtoWS speaks WebSocket to a ws:// or wss:// URL.
	ProtoWS Proto = "ws"
	// ProtoTCP speaks 4-byte big-endian length-prefixed frames over plain
	// TCP to the host and port of the URL: the ceiling a WebSocket server is
	// compared with.
	ProtoTCP Proto = "tcp"
)

// Limits of what one run may ask for.
const (
	// MaxSize is the largest payload, in bytes.
	MaxSize = 64 << 20
	// maxPrebuilt bounds the pre-encoded frames of all connections together.
	maxPrebuilt = 1 << 30
)

// Config describes a run. The command-line flags of cmd/wsload map one to one
// onto its fields; there are no implicit defaults here, see
// cmd/wsload for those.
type Config struct {
	URL string // ws://, wss://, or for ProtoTCP any URL with a host and port
	// URLs, when it has more than one, spreads the members of a ModeFanout
	// run over several servers that share one broadcast (daemons whose
	// rooms span them): member i dials URLs[i % len(URLs)], so the
	// publisher, the first member, dials URLs[0]. URL must be URLs[0].
	URLs            []string
	Proto           Proto         // ProtoWS or ProtoTCP
	Mode            Mode          // ModeEcho, ModeIdle, ModeBroadcast, ModeFanout or ModeStorm
	Conns           int           // connections to open
	Inflight        int           // messages outstanding per sending connection
	Size            int           // payload bytes per message
	Binary          bool          // binary messages; text (ASCII) otherwise
	Verify          bool          // compare echoed payload bytes too, not only length and opcode
	Duration        time.Duration // measured time, after Warmup
	Count           int64         // measured messages to send in all; 0 is no limit
	Warmup          time.Duration // load before the measurement starts
	Ramp            time.Duration // spread the dials over this time; 0 dials at once
	DialConcurrency int           // dials and handshakes at once
	DialTimeout     time.Duration // bound on one dial and handshake
	Hold            time.Duration // ModeIdle, ModeStorm: how long to hold the connections before the stats
	Ping            bool          // ModeStorm: after the stats, ping every connection once and time its pong
	PingDelay       time.Duration // ModeStorm: wait this long after the stats before the pings
	Sources         []string      // local IP addresses to dial from, one connection after another; none: the system's choice
	Silent          int           // ModeFanout: members that never read
	Rate            float64       // ModeFanout: messages the publisher sends per second, within the window; 0 is as fast as the window allows
	Sample          time.Duration // ModeFanout: interval of the server stats samples; 0 takes none
	StatsURL        string        // the server's stats endpoint, or ""
	Insecure        bool          // wss: skip certificate verification
	HTTP2           bool          // ws mode: each connection is an RFC 8441 stream of a shared HTTP/2 connection (h2.go)
	HTTP2Conns      int           // with HTTP2: the HTTP/2 connections the streams share (more when 100 streams each do not hold them)
	Label           string        // copied into the result

	// Progress, when not nil, receives a progress line every second,
	// rewritten in place with a carriage return.
	Progress io.Writer
	// Log, when not nil, receives warnings (a failed stats request, the
	// first dial error).
	Log io.Writer

	// Bounds on the end of a run, shortened by tests: 0 is the default.
	drainTimeout time.Duration // each wait for the last echoes (3 s)
	closeWait    time.Duration // one closing handshake (2 s)
}

// Validate reports the first thing wrong with c.
func (c *Config) Validate() error {
	if c.URL == "" {
		return errors.New("-url is required")
	}
	if _, err := c.target(); err != nil {
		return err
	}
	if len(c.URLs) > 1 {
		if c.Mode != ModeFanout {
			return fmt.Errorf("-url: several URLs only with -mode fanout")
		}
		if c.URLs[0] != c.URL {
			return fmt.Errorf("-url: the first of URLs (%q) is not URL (%q)", c.URLs[0], c.URL)
		}
		for _, u := range c.URLs[1:] {
			if _, err := targetOf(u, c.Proto); err != nil {
				return err
			}
		}
	}
	switch c.Mode {
	case ModeEcho, ModeIdle, ModeBroadcast, ModeFanout, ModeStorm:
	default:
		return fmt.Errorf("-mode %q: want echo, idle, broadcast, fanout or storm", c.Mode)
	}
	switch {
	case c.Conns < 1:
		return fmt.Errorf("-c %d: want at least 1", c.Conns)
	case c.Inflight < 1:
		return fmt.Errorf("-inflight %d: want at least 1", c.Inflight)
	case c.Size < 0 || c.Size > MaxSize:
		return fmt.Errorf("-size %d: want 0 to %d", c.Size, MaxSize)
	case c.Duration <= 0:
		return fmt.Errorf("-duration %v: want more than 0", c.Duration)
	case c.Count < 0:
		return fmt.Errorf("-count %d: want 0 (no limit) or more", c.Count)
	case c.Warmup < 0:
		return fmt.Errorf("-warmup %v: want 0 or more", c.Warmup)
	case c.Ramp < 0:
		return fmt.Errorf("-ramp %v: want 0 or more", c.Ramp)
	case c.DialConcurrency < 1:
		return fmt.Errorf("-dial-concurrency %d: want at least 1", c.DialConcurrency)
	case c.DialTimeout <= 0:
		return fmt.Errorf("-dial-timeout %v: want more than 0", c.DialTimeout)
	case c.Hold < 0:
		return fmt.Errorf("-hold %v: want 0 or more", c.Hold)
	case c.Sample < 0:
		return fmt.Errorf("-sample %v: want 0 or more", c.Sample)
	case c.Silent < 0 || c.Silent > 0 && c.Silent >= c.Conns:
		return fmt.Errorf("-silent %d: want 0 to -c minus 1 (%d)", c.Silent, c.Conns-1)
	case c.Ping && c.Mode != ModeStorm:
		return errors.New("-ping: only with -mode storm")
	case c.Ping && c.Proto != ProtoWS:
		return errors.New("-ping: only with -proto ws")
	case c.PingDelay < 0 || c.PingDelay > 0 && !c.Ping:
		return fmt.Errorf("-ping-delay %v: 0 or more, with -ping", c.PingDelay)
	case c.Silent > 0 && c.Mode != ModeFanout:
		return fmt.Errorf("-silent %d: only with -mode fanout", c.Silent)
	case c.Rate < 0 || c.Rate > 0 && c.Mode != ModeFanout:
		return fmt.Errorf("-rate %v: want 0 or more, and only with -mode fanout", c.Rate)
	case c.HTTP2 && c.Proto != ProtoWS:
		return fmt.Errorf("-h2: only with -proto ws")
	case c.HTTP2 && (c.Mode == ModeFanout || c.Mode == ModeBroadcast):
		return fmt.Errorf("-h2: only with -mode echo or idle")
	case c.HTTP2Conns < 0:
		return fmt.Errorf("-h2-conns %d: want 0 or more", c.HTTP2Conns)
	case c.Mode == ModeFanout && c.Size < fanoutStamp:
		return fmt.Errorf("-size %d: -mode fanout needs at least %d bytes (sequence number and send time)", c.Size, fanoutStamp)
	}
	senders := int64(c.Conns)
	if c.Mode == ModeBroadcast || c.Mode == ModeFanout {
		senders = 1
	}
	if !c.Mode.holds() {
		per := 2 * int64(c.Inflight) * int64(c.Size+maxHeaderLen)
		if senders*per > maxPrebuilt {
			return fmt.Errorf("-c %d × -inflight %d × -size %d needs more than %d MiB of pre-encoded frames",
				c.Conns, c.Inflight, c.Size, maxPrebuilt>>20)
		}
	}
	for _, a := range c.Sources {
		if net.ParseIP(a) == nil {
			return fmt.Errorf("-source %q: want IP addresses", a)
		}
	}
	if c.StatsURL != "" {
		u, err := url.Parse(c.StatsURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("-stats-url %q: want an http:// URL", c.StatsURL)
		}
	}
	return nil
}

// target returns the host:port to dial in tcp mode and checks the URL's
// scheme in ws mode.
func (c *Config) target() (string, error) { return targetOf(c.URL, c.Proto) }

// endpoints are the URLs the members dial, in turn.
func (c *Config) endpoints() []string {
	if len(c.URLs) > 1 {
		return c.URLs
	}
	return []string{c.URL}
}

// targetOf is target for one URL.
func targetOf(raw string, proto Proto) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("-url: %w", err)
	}
	if u.Host == "" {
		return "", fmt.Errorf("-url %q: no host", raw)
	}
	port := u.Port()
	switch proto {
	case ProtoWS:
		if u.Scheme != "ws" && u.Scheme != "wss" {
			return "", fmt.Errorf("-url %q: want a ws:// or wss:// URL with -proto ws", raw)
		}
	case ProtoTCP:
	default:
		return "", fmt.Errorf("-proto %q: want ws or tcp", proto)
	}
	if port == "" {
		switch u.Scheme {
		case "ws", "http":
			port = "80"
		case "wss", "https":
			port = "443"
		default:
			return "", fmt.Errorf("-url %q: no port", raw)
		}
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}
