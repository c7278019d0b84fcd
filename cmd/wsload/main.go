// Command wsload is the load generator that `make bench` points at WebSocket
// servers: wsactor's echo daemon and echo servers built on other Go
// libraries, plus a plain TCP echo as the ceiling.
//
// It keeps -inflight messages outstanding on each of -c connections and
// measures throughput and latency (-mode echo), measures the server's memory
// per idle connection (-mode idle), measures a broadcast endpoint
// (-mode broadcast), or has one connection publish to a broadcast endpoint
// as fast as the server delivers, with -silent members that never read, and
// samples the server's memory over time (-mode fanout), or dials every
// connection as fast as -dial-concurrency allows and measures the
// handshakes per second and what the storm left in the server's memory
// (-mode storm; -ping then pings every connection at once). It prints a
// summary for humans and, with -json, the result for machines.
//
//	wsload -url ws://127.0.0.1:8080/ -c 64 -inflight 16 -size 64 -duration 10s
//	wsload -url ws://127.0.0.1:9000/ -proto tcp -json -
//	wsload -url ws://127.0.0.1:8080/ -mode idle -c 5000 -stats-url http://127.0.0.1:8080/debug/vars
//	wsload -url ws://127.0.0.1:8080/ -mode storm -c 10000 -dial-concurrency 32 -hold 3s -stats-url http://127.0.0.1:8080/debug/vars
//	wsload -url ws://127.0.0.1:8080/broadcast -mode fanout -c 2000 -silent 200 -inflight 32 -size 1024 -stats-url http://127.0.0.1:8080/debug/vars
//	wsload -url ws://127.0.0.1:8080/room/r,ws://127.0.0.1:8081/room/r,ws://127.0.0.1:8082/room/r -mode fanout -c 999 -size 1024
//
// In fanout mode -url may name several servers that share one broadcast
// (wsechod daemons with -nats): the members are spread over them in turn,
// and the run also reports the latency from publishing a message to its
// receipt by the last member.
//
// Exit status: 0 when the run completed, even with errors counted; 1 when
// nothing could be measured (no connection opened, no message echoed, or in
// idle and storm modes the stats endpoint did not answer); 2 for bad flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wsactor/wsactor/internal/app/wsload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, isTerminal(os.Stderr))
	stop()
	os.Exit(code)
}

// isTerminal reports whether f is a character device: where a progress line
// rewritten with \r makes sense.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// options are the flags that are not Config fields.
type options struct {
	json  string
	quiet bool
}

// parseFlags turns the command line into a Config.
func parseFlags(args []string, stderr io.Writer) (wsload.Config, options, error) {
	var (
		cfg   wsload.Config
		opt   options
		proto string
		mode  string
	)
	fs := flag.NewFlagSet("wsload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", "", "`URL` of the server (required): ws://, wss://, or host:port in any URL for -proto tcp; fanout mode: several, comma-separated, for servers that share one broadcast (the members dial them in turn, the publisher the first)")
	fs.StringVar(&proto, "proto", "ws", "`protocol`: ws, or tcp for 4-byte length-prefixed frames over plain TCP")
	fs.StringVar(&mode, "mode", "echo", "`mode`: echo, idle, broadcast, fanout or storm")
	fs.IntVar(&cfg.Conns, "c", 64, "connections (fanout: members, the publisher included)")
	fs.IntVar(&cfg.Inflight, "inflight", 16, "messages in flight per connection (fanout: the publisher's lead over the slowest member that reads)")
	fs.IntVar(&cfg.Size, "size", 64, "payload `bytes` per message")
	fs.BoolVar(&cfg.Binary, "binary", true, "send binary messages; -binary=false sends ASCII text")
	fs.BoolVar(&cfg.Verify, "verify", false, "check the echoed payload bytes too, not only length and opcode")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time, after the warm-up")
	fs.Int64Var(&cfg.Count, "count", 0, "measured messages in all; the run stops at -duration or -count, whichever comes first (0: no limit)")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "load before the measurement starts")
	fs.DurationVar(&cfg.Ramp, "ramp", 0, "spread the dials over this time (0: as fast as -dial-concurrency allows)")
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", 64, "dials and handshakes at once")
	fs.DurationVar(&cfg.DialTimeout, "dial-timeout", 10*time.Second, "bound on one dial and handshake")
	fs.DurationVar(&cfg.Hold, "hold", 5*time.Second, "idle and storm modes: how long to hold the connections before reading the stats")
	fs.BoolVar(&cfg.Ping, "ping", false, "storm mode: after the stats, ping every connection once, all at once, and report the round trips")
	fs.DurationVar(&cfg.PingDelay, "ping-delay", 0, "storm mode with -ping: wait this long after the stats before the pings (several wsload processes against one server: their pings together, after every process read the stats)")
	fs.Func("source", "local IP `addresses` to dial from, comma-separated, taken in turn (127.0.0.2,127.0.0.3: more connections than one address has ports)", func(v string) error {
		cfg.Sources = append(cfg.Sources, strings.Split(v, ",")...)
		return nil
	})
	fs.IntVar(&cfg.Silent, "silent", 0, "fanout mode: members that never read")
	fs.Float64Var(&cfg.Rate, "rate", 0, "fanout mode: messages the publisher sends per `second`, within -inflight (0: as fast as the members take them); latency at a load below the server's limit")
	fs.DurationVar(&cfg.Sample, "sample", 500*time.Millisecond, "fanout mode: read the stats endpoint this often during the run (0: never)")
	fs.StringVar(&cfg.StatsURL, "stats-url", "", "server stats `URL` (e.g. http://127.0.0.1:8080/debug/vars), read with ?gc=1")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "wss: do not verify the server's certificate (nor that of an https -stats-url)")
	fs.BoolVar(&cfg.HTTP2, "h2", false, "open each connection as a WebSocket over HTTP/2 (RFC 8441): a stream of a shared HTTP/2 connection, cleartext (h2c) for ws://, TLS for wss://; -mode echo and idle")
	fs.IntVar(&cfg.HTTP2Conns, "h2-conns", 1, "with -h2: the HTTP/2 connections the streams share, round robin (more when 100 streams each do not hold them)")
	fs.StringVar(&cfg.Label, "label", "", "free text copied into the result")
	fs.StringVar(&opt.json, "json", "", "write the result as JSON to this `path` (- for stdout)")
	fs.BoolVar(&opt.quiet, "quiet", false, "no progress line")
	if err := fs.Parse(args); err != nil {
		return cfg, opt, err
	}
	if fs.NArg() > 0 {
		return cfg, opt, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if strings.Contains(cfg.URL, ",") {
		for u := range strings.SplitSeq(cfg.URL, ",") {
			if u = strings.TrimSpace(u); u != "" {
				cfg.URLs = append(cfg.URLs, u)
			}
		}
		cfg.URL = ""
		if len(cfg.URLs) > 0 {
			cfg.URL = cfg.URLs[0]
		}
	}
	cfg.Proto = wsload.Proto(proto)
	cfg.Mode = wsload.Mode(mode)
	return cfg, opt, cfg.Validate()
}

// run is the command without the process around it; it returns the exit
// status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, terminal bool) int {
	cfg, opt, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsload: %v\n", err)
		return 2
	}
	cfg.Log = stderr
	if terminal && !opt.quiet {
		cfg.Progress = stderr
	}

	res, err := wsload.Run(ctx, cfg)
	if res == nil {
		fmt.Fprintf(stderr, "wsload: %v\n", err)
		return 2
	}
	summary := stdout
	if opt.json == "-" {
		summary = stderr
	}
	res.WriteSummary(summary)
	if opt.json != "" {
		if werr := writeJSON(opt.json, stdout, res); werr != nil {
			fmt.Fprintf(stderr, "wsload: %v\n", werr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	return 0
}

// writeJSON writes res to path, or to stdout when path is "-".
func writeJSON(path string, stdout io.Writer, res *wsload.Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	return nil
}
