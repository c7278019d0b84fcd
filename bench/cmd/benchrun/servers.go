package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// broadcastKind is how a server serves the broadcast scenario.
type broadcastKind int

const (
	noBroadcast   broadcastKind = iota
	broadcastPath               // at /broadcast
	broadcastFlag               // started with -broadcast; every connection is in the group
	broadcastBoth               // started with -broadcast, at /broadcast (wsechod)
)

// server is one benchmark server.
type server struct {
	name          string
	pkg           string // package to build, relative to its module
	inRepo        bool   // built in the main module, not in bench/
	proto         string // wsload -proto
	separateStats bool   // takes -stats-addr
	broadcast     broadcastKind
	// fanout: the fan-out scenarios run at its broadcast endpoint;
	// fanoutOnly: it runs in nothing else; fanoutOptIn: only when -servers
	// names it.
	fanout, fanoutOnly, fanoutOptIn bool
	noFanout                        string // why it is not in the fan-out scenarios
	writeTimeout                    bool   // takes -write-timeout for its broadcast writes
	tls                             bool   // takes -tls-cert and -tls-key
	// cross: it runs the cross-daemon scenarios, and nothing else:
	// daemons wsechod processes at /room/bench, on a NATS server of
	// their own (bench/cmd/natsd) when there are more than one.
	cross    bool
	daemons  int
	args     func(cfg config, sc *scenario) []string
	loadArgs []string // more wsload flags for it
	only     []string // the scenarios it runs in, when set
	note     string   // how it is configured, for the report

	bin string // set by build
}

// h2Scenarios are where WebSockets over HTTP/2 run beside HTTP/1.1: echo of
// 64 B and 1 KiB on 64 sessions, and idle memory.
var h2Scenarios = []string{"echo-64c-64B", "echo-64c-1KiB", "idle-5000c", "idle-1000c"}

// servers is every server, in the order of the tables.
var servers = []*server{
	{
		name:      "wsactor",
		tls:       true,
		pkg:       "./cmd/wsechod",
		inRepo:    true,
		proto:     "ws",
		broadcast: broadcastBoth,
		noFanout:  "the fan-out scenarios run wsactor-group, on the library's session.Group",
		args:      func(cfg config, _ *scenario) []string { return cfg.wsactorArgs },
		note:      "wsactor's echo daemon, cmd/wsechod",
	},
	{
		name:     "wsactor-h2",
		pkg:      "./cmd/wsechod",
		inRepo:   true,
		proto:    "ws",
		args:     func(cfg config, _ *scenario) []string { return append([]string{"-h2c"}, cfg.wsactorArgs...) },
		loadArgs: []string{"-h2", "-h2-conns", "1"},
		only:     h2Scenarios,
		note:     "wsechod -h2c, wsload -h2 -h2-conns 1: every session an RFC 8441 stream of one cleartext HTTP/2 connection (idle: 100 streams per connection)",
	},
	{
		name:     "wsactor-h2x8",
		pkg:      "./cmd/wsechod",
		inRepo:   true,
		proto:    "ws",
		args:     func(cfg config, _ *scenario) []string { return append([]string{"-h2c"}, cfg.wsactorArgs...) },
		loadArgs: []string{"-h2", "-h2-conns", "8"},
		only:     []string{"echo-64c-64B", "echo-64c-1KiB"},
		note:     "as wsactor-h2, the streams spread over 8 HTTP/2 connections",
	},
	{
		name:         "wsactor-group",
		pkg:          "./servers/wsactor-group",
		proto:        "ws",
		broadcast:    broadcastPath,
		fanout:       true,
		fanoutOnly:   true,
		writeTimeout: true,
		note:         "wsactor's fan-out on session.Group (Group.Broadcast: encoded once, queued to every member), DropSlow over a 256 KiB backlog, Options.WriteTimeout; fan-out scenarios only",
	},
	{
		name:          "tcp",
		pkg:           "./servers/tcp",
		proto:         "tcp",
		separateStats: true,
		broadcast:     broadcastFlag,
		fanout:        true,
		writeTimeout:  true,
		note:          "plain TCP, 4-byte length-prefixed frames, one write per read: the ceiling; broadcast: each read's frames copied once, a writer goroutine per connection writes all it has queued with one writev",
	},
	{
		name:          "gobwas-raw",
		pkg:           "./servers/gobwas-raw",
		proto:         "ws",
		separateStats: true,
		broadcast:     broadcastPath,
		fanout:        true,
		writeTimeout:  true,
		note:          "gobwas/ws low level, hand-written loop, pooled buffers, one flush per drained burst; broadcast: frames encoded once, a writer goroutine per connection, one flush per drained queue",
	},
	{
		name:         "gorilla",
		tls:          true,
		pkg:          "./servers/gorilla",
		proto:        "ws",
		broadcast:    broadcastPath,
		fanout:       true,
		writeTimeout: true,
		note:         "gorilla/websocket v1.5.3, NextReader/NextWriter, 4 KiB buffers + WriteBufferPool; broadcast: PreparedMessage, a writer goroutine per connection, a write deadline per message",
	},
	{
		name:         "coder",
		tls:          true,
		pkg:          "./servers/coder",
		proto:        "ws",
		broadcast:    broadcastPath,
		fanout:       true,
		fanoutOptIn:  true,
		noFanout:     "in the fan-out scenarios only when -servers names it, to keep make bench within its time: its broadcast is the chat example's writer per connection, as gorilla's",
		writeTimeout: true,
		note:         "coder/websocket v1.8.15, Reader into a pooled buffer + Write, compression disabled; broadcast: the chat example's writer goroutine per connection, a timeout per write",
	},
	{
		name:         "wsechod-1",
		pkg:          "./cmd/wsechod",
		inRepo:       true,
		proto:        "ws",
		cross:        true,
		daemons:      1,
		writeTimeout: true,
		note:         "cross-daemon scenarios: one wsechod without NATS, every member in /room/bench on it (session.Rooms: DropSlow over a 1 MiB backlog per member, -write-timeout)",
	},
	{
		name:         "wsechod-3-nats",
		pkg:          "./cmd/wsechod",
		inRepo:       true,
		proto:        "ws",
		cross:        true,
		daemons:      3,
		writeTimeout: true,
		note:         "cross-daemon scenarios: three wsechod -nats on one NATS server (bench/cmd/natsd: nats-server/v2 in a process of its own), the members of /room/bench spread over them in turn, the publisher on the first; its cores are the four processes' together",
	},
	{
		name:  "gobwas-wsutil",
		tls:   true,
		pkg:   "./servers/gobwas-wsutil",
		proto: "ws",
		note:  "gobwas/ws v1.5.0 wsutil.ReadClientData/WriteServerMessage, as its README (no broadcast helper)",
	},
	{
		name:      "gws",
		tls:       true,
		pkg:       "./servers/gws",
		proto:     "ws",
		broadcast: broadcastPath,
		fanout:    true,
		args: func(cfg config, sc *scenario) []string {
			// A broadcast handled in parallel goes out of order: the
			// fan-out members check the order, so it runs serially there.
			parallel := cfg.gwsParallel && sc.mode != modeFanout
			return []string{"-parallel=" + strconv.FormatBool(parallel)}
		},
		note: "lxzan/gws v1.8.9, event handler, WriteMessage, README's best-practice options; broadcast: Broadcaster (an unbounded write queue per connection, no write timeout)",
	},
}

func serverNames() []string {
	var names []string
	for _, s := range servers {
		names = append(names, s.name)
	}
	return names
}

func serverByName(name string) *server {
	for _, s := range servers {
		if s.name == name {
			return s
		}
	}
	return nil
}

func selectedServers(cfg config) []*server {
	if len(cfg.servers) == 0 {
		return servers
	}
	var out []*server
	for _, s := range servers {
		for _, n := range cfg.servers {
			if s.name == n {
				out = append(out, s)
			}
		}
	}
	return out
}

// instance is a running server.
type instance struct {
	srv      *server
	cmd      *exec.Cmd
	url      string // the endpoint for wsload (cross: the daemons', comma-separated)
	statsURL string
	exited   chan struct{}
	err      error // set before exited is closed
	log      *os.File
	started  time.Time

	// A cross server's other processes: the other daemons and the NATS
	// server; and the stats endpoints of every daemon and of NATS.
	peers       []*instance
	daemonStats []string
	natsStats   string
}

// start starts s for scenario sc and waits until its stats endpoint
// answers.
func (s *server) start(ctx context.Context, cfg config, t tools, sc *scenario, logDir string) (*instance, error) {
	if s.cross {
		return s.startCross(ctx, cfg, t, sc, logDir)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{"-addr", addr}
	statsAddr := addr
	if s.separateStats {
		sp, err := freePort()
		if err != nil {
			return nil, err
		}
		statsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(sp))
		args = append(args, "-stats-addr", statsAddr)
	}
	path := "/"
	if strings.HasPrefix(s.name, "wsactor") && s.pkg == "./cmd/wsechod" {
		path = cfg.wsactorPath
	}
	if sc.mode == modeBroadcast || sc.mode == modeFanout {
		switch s.broadcast {
		case broadcastPath:
			path = "/broadcast"
		case broadcastFlag:
			args = append(args, "-broadcast")
		case broadcastBoth:
			args = append(args, "-broadcast")
			path = "/broadcast"
		default:
			return nil, errors.New("no broadcast endpoint")
		}
	}
	if sc.mode == modeFanout && s.writeTimeout {
		args = append(args, "-write-timeout", cfg.fanoutWriteTimeout.String())
	}
	if s.args != nil {
		args = append(args, s.args(cfg, sc)...)
	}
	scheme, statsScheme := "ws://", "http://"
	if sc.tls {
		args = append(args, "-tls-cert", cfg.tlsCert, "-tls-key", cfg.tlsKey)
		scheme = "wss://"
		if !s.separateStats {
			statsScheme = "https://"
		}
	}

	in, err := launch(ctx, s, s.bin, args, statsScheme+statsAddr+"/debug/vars", logDir, sc.id)
	if err != nil {
		return nil, err
	}
	in.url = scheme + addr + path
	return in, nil
}

// launch starts bin with args as a process of s, logging to s's log, and
// waits until statsURL answers.
func launch(ctx context.Context, s *server, bin string, args []string, statsURL, logDir, scID string) (*instance, error) {
	logf, err := os.OpenFile(filepath.Join(logDir, s.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "\n=== %s %s %s\n", time.Now().Format(time.RFC3339), scID, strings.Join(append([]string{bin}, args...), " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// The server dies with benchrun, whatever happens to benchrun.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	in := &instance{
		srv:      s,
		cmd:      cmd,
		statsURL: statsURL,
		exited:   make(chan struct{}),
		log:      logf,
		started:  time.Now(),
	}
	go func() {
		in.err = cmd.Wait()
		close(in.exited)
	}()
	if err := in.waitReady(ctx, 10*time.Second); err != nil {
		in.stop()
		return nil, err
	}
	return in, nil
}

// waitReady polls the stats endpoint until it answers 200.
func (in *instance) waitReady(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // the certificate benchrun made
	}}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(in.statsURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: status %s", in.statsURL, resp.Status)
		}
		select {
		case <-in.exited:
			return fmt.Errorf("exited at start (%v); see results/logs/%s.log", in.err, in.srv.name)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %v", timeout, err)
		}
	}
}

// stop ends the server: SIGTERM, then SIGKILL if it has not exited within
// 3 seconds; a cross server's daemons first, then its NATS server.
func (in *instance) stop() {
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.exited:
	case <-time.After(3 * time.Second):
		_ = in.cmd.Process.Kill()
		<-in.exited
	}
	in.log.Close()
	for _, p := range in.peers {
		p.stop()
	}
}

// cores is the CPU time over wall time of the server's processes
// together, once they stopped.
func (in *instance) cores() float64 {
	wall := time.Since(in.started)
	c := cpuCores(in.cmd.ProcessState, wall)
	for _, p := range in.peers {
		c += cpuCores(p.cmd.ProcessState, wall)
	}
	return c
}

// exitedEarly returns the first of the server's processes that has exited
// already, or nil.
func (in *instance) exitedEarly() *instance {
	for _, p := range append([]*instance{in}, in.peers...) {
		select {
		case <-p.exited:
			return p
		default:
		}
	}
	return nil
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// serves reports whether s runs in sc, and if not why, for the table ("" to
// leave s out of the table altogether).
func (s *server) serves(cfg config, sc *scenario) (ok bool, why string) {
	switch {
	case sc.cross != s.cross:
		return false, ""
	case s.cross:
		return true, ""
	case len(s.only) > 0 && !slices.Contains(s.only, sc.id):
		return false, ""
	case sc.mode == modeFanout && s.fanoutOptIn && !named(cfg, s):
		return false, s.noFanout
	case sc.mode == modeFanout && !s.fanout:
		if s.noFanout != "" {
			return false, s.noFanout
		}
		return false, "no broadcast endpoint"
	case sc.mode != modeFanout && s.fanoutOnly:
		return false, ""
	case sc.mode == modeBroadcast && s.broadcast == noBroadcast:
		return false, "no broadcast endpoint"
	case sc.tls && !s.tls:
		return false, "no TLS listener (its reader waits on the raw socket)"
	}
	return true, ""
}
