// Command wschat is a room-based chat server built on wsactor's rooms
// (session.Rooms), with a page at / to chat from a browser.
//
//	wschat                          http://127.0.0.1:8081/
//	wschat -addr 127.0.0.1:0        a free port, printed at start
//	wschat -nats nats://127.0.0.1:4222   rooms shared with every wschat on that NATS
//
// With -nats, the rooms span every wschat connected to the same NATS
// server or cluster: a say reaches the room's members on all of them, at
// most once, in order per sender. Presence (the welcome's member list,
// joined and left) stays each server's own; the package doc of
// internal/app/chat says why. While NATS is down, each server serves its
// own members and reconnects by itself.
//
// Clients join a room at ws://HOST/ws?room=ROOM&name=NAME and speak JSON
// text messages; the protocol is in the doc of internal/app/chat.
//
// SIGINT or SIGTERM starts a graceful shutdown: stop accepting, send close
// 1001 (going away) to every member, wait for their closing handshakes up
// to -shutdown-timeout, exit 0. A second signal exits at once with status 1.
//
// Exit status: 0 after a graceful shutdown or -h; 1 when the server cannot
// start or a second signal cut the shutdown short; 2 for bad flags.
package main

import (
	"context"
	"errors"
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
	"syscall"

	natsbroker "github.com/wsactor/wsactor/broker/nats"
	"github.com/wsactor/wsactor/internal/app/chat"
)

func main() {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, sig))
}

// run runs the server until a signal arrives on sig and returns the exit
// status.
func run(args []string, stdout, stderr io.Writer, sig <-chan os.Signal) int {
	cfg, opt, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: opt.level}))
	cfg.Logger = log

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		fmt.Fprintf(stderr, "wschat: %v\n", err)
		return 1
	}
	if opt.natsURL != "" {
		name := opt.natsName
		if name == "" {
			name = "wschat " + ln.Addr().String()
		}
		// Connect returns at once when no server answers yet: it keeps
		// trying, and the rooms are local meanwhile.
		b, err := natsbroker.Connect(opt.natsURL, &natsbroker.Options{Name: name, Logger: log})
		if err != nil {
			ln.Close()
			fmt.Fprintf(stderr, "wschat: -nats: %v\n", err)
			return 1
		}
		defer b.Close()
		cfg.Broker = b
		cfg.Vars = map[string]func() any{"nats": func() any { return b.Stats() }}
	}
	srv := chat.New(cfg)
	addr := ln.Addr().String()
	fmt.Fprintf(stdout, "wschat listening on http://%s/ (WebSocket: ws://%s/ws?room=ROOM&name=NAME)\n", addr, addr)
	log.Info("listening", "addr", addr, "max_message", cfg.MaxMessage, "origins", cfg.Origins,
		"shutdown_timeout", cfg.ShutdownTimeout, "nats", redacted(opt.natsURL))

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var s os.Signal
	select {
	case err := <-served:
		fmt.Fprintf(stderr, "wschat: %v\n", err)
		return 1
	case s = <-sig:
	}

	log.Info("signal", "signal", s.String(), "timeout", cfg.ShutdownTimeout)
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
		fmt.Fprintf(stderr, "wschat: second signal (%v): exiting now\n", s)
		return 1
	}
}

// options are the flags that are not Config fields.
type options struct {
	level    slog.Level
	natsURL  string
	natsName string
}

// parseFlags turns the command line into a Config and the other options.
func parseFlags(args []string, stderr io.Writer) (chat.Config, options, error) {
	cfg := chat.Config{
		MaxMessage:      chat.DefaultMaxMessage,
		ShutdownTimeout: chat.DefaultShutdownTimeout,
	}
	opt := options{level: slog.LevelInfo}
	fs := flag.NewFlagSet("wschat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", chat.DefaultAddr, "listen `host:port`; port 0 picks a free one (the start line prints it)")
	fs.Var((*byteSize)(&cfg.MaxMessage), "max-message", "largest inbound message, in `bytes` (suffixes KiB, MiB); a bigger one is closed with 1009")
	fs.Var((*originList)(&cfg.Origins), "origin", "browser `origins` allowed besides the server's own host, as host patterns (\"*.example.com\", \"localhost:*\", \"*\"); repeat the flag or separate with commas (default: same host only)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "on SIGINT/SIGTERM, wait this long for the members to close before closing them by force")
	fs.Var((*levelFlag)(&opt.level), "log-level", "log `level`: debug (also every message said), info, warn or error")
	fs.StringVar(&opt.natsURL, "nats", "", "share the rooms with every wschat connected to the NATS server or cluster at this `url` (nats://host:4222; several, comma-separated); empty: this server's rooms are its own")
	fs.StringVar(&opt.natsName, "nats-name", "", "`name` of the server's NATS connection, shown by the NATS server's monitoring (default \"wschat\" and the listen address)")
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		return cfg, opt, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wschat: unexpected arguments %q\n", fs.Args())
		fs.Usage()
		return cfg, opt, errors.New("unexpected arguments")
	}
	if cfg.MaxMessage <= 0 {
		fmt.Fprintln(stderr, "wschat: -max-message must be more than 0")
		return cfg, opt, errors.New("bad -max-message")
	}
	if cfg.ShutdownTimeout <= 0 {
		fmt.Fprintln(stderr, "wschat: -shutdown-timeout must be more than 0")
		return cfg, opt, errors.New("bad -shutdown-timeout")
	}
	return cfg, opt, nil
}

// redacted is a list of URLs without their passwords, for the log.
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

// usage prints every flag with its default, the empty ones too (the flag
// package leaves those out).
func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, "Usage: wschat [flags]\n\nA room-based chat server on wsactor's rooms: a page at / to chat from a browser,\nand the WebSocket endpoint /ws?room=ROOM&name=NAME (JSON messages).\n\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		name, text := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  -%s", f.Name)
		if name != "" {
			fmt.Fprintf(w, " %s", name)
		}
		if strings.Contains(text, "(default") {
			fmt.Fprintf(w, "\n    \t%s\n", text)
			return
		}
		def := f.DefValue
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "\n    \t%s (default %s)\n", text, def)
	})
}

// byteSize is a flag for a size in bytes, with an optional binary suffix.
type byteSize int64

var sizeUnits = []struct {
	suffix string
	n      int64
}{
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
	if err != nil || n < 0 || n > (1<<40)/mul {
		return errors.New("want bytes, as 65536 or 64KiB (suffixes KiB, MiB)")
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
