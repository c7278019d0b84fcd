// Command wsechod is wsactor's echo daemon. It echoes every WebSocket
// message with its own type, serves a page at / that a person can use from
// a browser, a health check at /healthz and its metrics at /debug/vars.
//
//	wsechod                                   ws://127.0.0.1:8080/
//	wsechod -addr :8443 -tls-cert c.pem -tls-key k.pem
//	wsechod -addr 127.0.0.1:0                 a free port, printed at start
//	wsechod -nats nats://127.0.0.1:4222       rooms shared with every daemon on that NATS
//	wsechod -h2c                              cleartext HTTP/2 beside HTTP/1.1 (tests, proxies)
//
// WebSockets over HTTP/2 (RFC 8441) are on: over TLS, a browser that has
// the page open over HTTP/2 opens its WebSockets inside that connection.
// The start line says whether they are (rfc8441=true); GODEBUG=http2xconnect=0
// turns them off.
//
// With -nats, the rooms (/room/NAME, and /broadcast) span every daemon
// connected to the same NATS server or cluster: a message sent to a room on
// any daemon reaches its members on all of them, at most once, in order per
// sender. While NATS is down, each daemon serves its own members, counts
// what it could not pass on (broker_lost in /debug/vars) and reconnects by
// itself.
//
// SIGINT or SIGTERM starts a graceful shutdown: stop accepting, send close
// 1001 (going away) to every session, wait for their closing handshakes up
// to -shutdown-timeout, exit 0. A second signal exits at once with status 1.
//
// Exit status: 0 after a graceful shutdown or -h; 1 when the daemon cannot
// start or a second signal cut the shutdown short; 2 for bad flags.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"expvar"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	natsbroker "github.com/wsactor/wsactor/broker/nats"
	"github.com/wsactor/wsactor/internal/app/echod"
	"github.com/wsactor/wsactor/session"
	_ "github.com/wsactor/wsactor/xconnect" // RFC 8441 in net/http's HTTP/2 server
)

func main() {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, sig))
}

// options are the flags that are not Config fields.
type options struct {
	level    slog.Level
	logJSON  bool
	natsURL  string
	natsName string
}

// run runs the daemon until a signal arrives on sig and returns the exit
// status.
func run(args []string, stdout, stderr io.Writer, sig <-chan os.Signal) int {
	cfg, opt, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	logOpts := &slog.HandlerOptions{Level: opt.level}
	var h slog.Handler = slog.NewTextHandler(stderr, logOpts)
	if opt.logJSON {
		h = slog.NewJSONHandler(stderr, logOpts)
	}
	log := slog.New(h)
	cfg.Logger = log

	tlsOn := cfg.CertFile != "" || cfg.KeyFile != ""
	if tlsOn {
		// Checked here so that a bad pair fails before the start line.
		if _, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile); err != nil {
			fmt.Fprintf(stderr, "wsechod: -tls-cert/-tls-key: %v\n", err)
			return 1
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		fmt.Fprintf(stderr, "wsechod: %v\n", err)
		return 1
	}
	if opt.natsURL != "" {
		name := opt.natsName
		if name == "" {
			name = "wsechod " + ln.Addr().String()
		}
		b, err := natsbroker.Connect(opt.natsURL, &natsbroker.Options{Name: name, Logger: log})
		if err != nil {
			ln.Close()
			fmt.Fprintf(stderr, "wsechod: -nats: %v\n", err)
			return 1
		}
		defer b.Close()
		cfg.Broker = b
		natsStats.Store(b)
		defer natsStats.Store(nil)
	}
	srv := echod.New(cfg)
	publishOnce.Do(func() {
		srv.Publish()
		expvar.Publish("nats", expvar.Func(func() any {
			if b := natsStats.Load(); b != nil {
				return b.Stats()
			}
			return nil
		}))
	})

	addr := ln.Addr().String()
	ws, web := "ws", "http"
	if tlsOn {
		ws, web = "wss", "https"
	}
	path := cfg.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	fmt.Fprintf(stdout, "wsechod listening on %s://%s%s (open %s://%s/ in a browser)\n", ws, addr, path, web, addr)
	log.Info("listening", "addr", addr, "path", path, "tls", tlsOn,
		"max_message", cfg.MaxMessage, "idle_timeout", cfg.IdleTimeout,
		"handshake_timeout", cfg.HandshakeTimeout, "write_timeout", cfg.WriteTimeout,
		"message_timeout", cfg.MessageTimeout, "message_min_rate", cfg.MessageMinRate,
		"max_pending_bytes", cfg.MaxPendingBytes, "max_conns", cfg.MaxConns,
		"broadcast", cfg.Broadcast, "nats", redacted(opt.natsURL),
		"compression", cfg.Compression, "h2c", cfg.H2C, "rfc8441", session.ExtendedConnect())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var s os.Signal
	select {
	case err := <-served:
		fmt.Fprintf(stderr, "wsechod: %v\n", err)
		return 1
	case s = <-sig:
	}

	log.Info("shutting down", "signal", s.String(), "timeout", cfg.ShutdownTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	down := make(chan error, 1)
	go func() { down <- srv.Shutdown(ctx) }()
	select {
	case err := <-down:
		if err != nil {
			log.Warn("shutdown deadline passed; sessions left were closed by force", "err", err)
		}
		<-served
		log.Info("stopped")
		return 0
	case s = <-sig:
		fmt.Fprintf(stderr, "wsechod: second signal (%v): exiting now\n", s)
		return 1
	}
}

// publishOnce publishes the first Server's metrics in expvar's registry:
// expvar.Publish panics on a second registration of a name.
var publishOnce sync.Once

// natsStats is the broker whose counts /debug/vars shows as "nats" (null
// without -nats).
var natsStats atomic.Pointer[natsbroker.Broker]

// parseFlags turns the command line into a Config.
func parseFlags(args []string, stderr io.Writer) (echod.Config, options, error) {
	cfg := echod.Config{
		MaxMessage:       echod.DefaultMaxMessage,
		IdleTimeout:      echod.DefaultIdleTimeout,
		HandshakeTimeout: echod.DefaultHandshakeTimeout,
		ShutdownTimeout:  echod.DefaultShutdownTimeout,
		WriteTimeout:     echod.DefaultWriteTimeout,
		MessageTimeout:   echod.DefaultMessageTimeout,
		MessageMinRate:   echod.DefaultMessageMinRate,
		MaxPendingBytes:  echod.DefaultMaxPendingBytes,
	}
	opt := options{level: slog.LevelInfo}
	fs := flag.NewFlagSet("wsechod", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", echod.DefaultAddr, "listen `host:port`; port 0 picks a free one (the start line prints it)")
	fs.StringVar(&cfg.Path, "path", echod.DefaultPath, "`path` of the echo endpoint")
	fs.StringVar(&cfg.CertFile, "tls-cert", "", "TLS certificate `file` (PEM); with -tls-key, serve wss:// and https://")
	fs.StringVar(&cfg.KeyFile, "tls-key", "", "TLS private key `file` (PEM)")
	fs.BoolVar(&cfg.H2C, "h2c", false, "without TLS, also speak cleartext HTTP/2 (prior knowledge), WebSockets over it included (RFC 8441); TLS always offers HTTP/2")
	fs.Var((*byteSize)(&cfg.MaxMessage), "max-message", "largest inbound message, in `bytes` (suffixes KiB, MiB, GiB); a bigger one is closed with 1009")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "close a session that sent nothing for this `duration` (a ping goes out at half of it)")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", cfg.HandshakeTimeout, "bound on receiving a request's headers from the accept, and on the opening and closing handshakes")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout, "close a session whose write to the socket has not finished after this `duration` (the peer stopped reading)")
	fs.DurationVar(&cfg.MessageTimeout, "message-timeout", cfg.MessageTimeout, "a message must arrive whole within this `duration` of its first byte, plus 1s per -message-min-rate bytes received; a slower one is closed with 1008")
	fs.IntVar(&cfg.MessageMinRate, "message-min-rate", cfg.MessageMinRate, "the `bytes` per second a message in progress must keep to earn more time than -message-timeout")
	fs.Var((*byteSize)(&cfg.MaxPendingBytes), "max-pending-bytes", "most `bytes` of writes a session holds for a peer that has not read them (suffixes KiB, MiB, GiB); a broadcast delivery beyond is dropped and counted")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "on SIGINT/SIGTERM, wait this long for the sessions to close before closing them by force")
	fs.IntVar(&cfg.MaxConns, "max-conns", 0, "most sessions open at once; over it a handshake gets 503 (0: unlimited)")
	fs.Var((*originList)(&cfg.Origins), "origin", "browser `origins` allowed besides the daemon's own host, as host patterns (\"*.example.com\", \"localhost:*\", \"*\"); repeat the flag or separate with commas (default: same host only)")
	fs.BoolVar(&cfg.Broadcast, "broadcast", false, "serve /broadcast: every message from a session there goes to all of them")
	fs.StringVar(&opt.natsURL, "nats", "", "share the rooms (/room/NAME, /broadcast) with every daemon connected to the NATS server or cluster at this `url` (nats://host:4222; several, comma-separated); empty: this daemon's rooms are its own")
	fs.StringVar(&opt.natsName, "nats-name", "", "`name` of the daemon's NATS connection, shown by the server's monitoring (default \"wsechod\" and the listen address)")
	fs.BoolVar(&cfg.Compression, "compression", false, "negotiate permessage-deflate (no context takeover) with clients that offer it")
	fs.Var((*levelFlag)(&opt.level), "log-level", "log `level`: debug, info, warn or error")
	fs.BoolVar(&opt.logJSON, "log-json", false, "log JSON lines instead of text")
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		return cfg, opt, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wsechod: unexpected arguments %q\n", fs.Args())
		fs.Usage()
		return cfg, opt, errors.New("unexpected arguments")
	}
	if cfg.MaxConns < 0 {
		fmt.Fprintln(stderr, "wsechod: -max-conns must be 0 (unlimited) or more")
		return cfg, opt, errors.New("bad -max-conns")
	}
	for _, d := range []struct {
		name string
		v    int64
	}{
		{"-idle-timeout", int64(cfg.IdleTimeout)},
		{"-handshake-timeout", int64(cfg.HandshakeTimeout)},
		{"-shutdown-timeout", int64(cfg.ShutdownTimeout)},
		{"-max-message", cfg.MaxMessage},
		{"-write-timeout", int64(cfg.WriteTimeout)},
		{"-message-timeout", int64(cfg.MessageTimeout)},
		{"-message-min-rate", int64(cfg.MessageMinRate)},
		{"-max-pending-bytes", cfg.MaxPendingBytes},
	} {
		if d.v <= 0 {
			fmt.Fprintf(stderr, "wsechod: %s must be more than 0\n", d.name)
			return cfg, opt, errors.New("bad " + d.name)
		}
	}
	return cfg, opt, nil
}

// usage prints every flag with its default, the zero ones too (the flag
// package leaves those out).
func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, "Usage: wsechod [flags]\n\nwsactor's echo daemon: echoes every WebSocket message with its own type,\nserves a page at / for browsers, /selftest (a page that checks the daemon\nfrom a browser: text, binary, a 1 MiB message, a close), /healthz and\n/debug/vars (metrics).\n\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		name, text := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  -%s", f.Name)
		if name != "" {
			fmt.Fprintf(w, " %s", name)
		}
		def := f.DefValue
		if def == "" {
			def = `""`
		}
		if strings.Contains(text, "(default") {
			fmt.Fprintf(w, "\n    \t%s\n", text)
			return
		}
		fmt.Fprintf(w, "\n    \t%s (default %s)\n", text, def)
	})
}

// redacted returns a list of URLs with their passwords hidden, for the log.
func redacted(urls string) string {
	var out []string
	for u := range strings.SplitSeq(urls, ",") {
		if p, err := url.Parse(strings.TrimSpace(u)); err == nil {
			u = p.Redacted()
		}
		out = append(out, u)
	}
	return strings.Join(out, ",")
}

// byteSize is a flag for a size in bytes, with an optional binary suffix.
type byteSize int64

var sizeUnits = []struct {
	suffix string
	n      int64
}{
	{"GiB", 1 << 30},
	{"MiB", 1 << 20},
	{"KiB", 1 << 10},
}

func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range sizeUnits {
		if n != 0 && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func (b *byteSize) Set(s string) error {
	mul := int64(1)
	num := s
	for _, u := range sizeUnits {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mul = v, u.n
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mul {
		return fmt.Errorf("want bytes, as 1048576 or 1MiB (suffixes KiB, MiB, GiB)")
	}
	*b = byteSize(n * mul)
	return nil
}

// originList is a repeatable flag whose values may also be comma lists.
type originList []string

func (o *originList) String() string { return strings.Join(*o, ",") }

func (o *originList) Set(s string) error {
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*o = append(*o, p)
		}
	}
	return nil
}

// levelFlag is a slog.Level written in lower case.
type levelFlag slog.Level

func (l *levelFlag) String() string { return strings.ToLower(slog.Level(*l).String()) }

func (l *levelFlag) Set(s string) error {
	var v slog.Level
	if err := v.UnmarshalText([]byte(s)); err != nil {
		return errors.New("want debug, info, warn or error")
	}
	*l = levelFlag(v)
	return nil
}
