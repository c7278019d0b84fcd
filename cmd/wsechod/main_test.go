package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"go.uber.org/goleak"

	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/app/echod"
	"github.com/wsactor/wsactor/session"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTimeout = 10 * time.Second

var allFlags = []string{
	"addr", "path", "tls-cert", "tls-key", "h2c", "max-message", "idle-timeout", "handshake-timeout",
	"shutdown-timeout", "max-conns", "origin", "broadcast", "compression", "log-level", "log-json",
	"write-timeout", "message-timeout", "message-min-rate", "max-pending-bytes",
	"nats", "nats-name",
}

// boundDefaults are the defaults -h must show for the bounds against peers.
var boundDefaults = map[string]string{
	"write-timeout":     "(default 5s)",
	"message-timeout":   "(default 20s)",
	"message-min-rate":  "(default 500)",
	"max-pending-bytes": "(default 1MiB)",
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-h"}, &stdout, &stderr, nil); code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
	out := stderr.String()
	for _, f := range allFlags {
		i := strings.Index(out, "  -"+f+" ")
		if i < 0 {
			i = strings.Index(out, "  -"+f+"\n")
		}
		if i < 0 {
			t.Errorf("-h does not list -%s:\n%s", f, out)
			continue
		}
		entry, _, _ := strings.Cut(out[i+3:], "\n  -")
		if !strings.Contains(entry, "(default") {
			t.Errorf("-%s has no default in -h: %q", f, entry)
		}
		if want, ok := boundDefaults[f]; ok && !strings.Contains(entry, want) {
			t.Errorf("-%s in -h: %q, want %s", f, entry, want)
		}
	}
	for _, want := range []string{"(default 127.0.0.1:8080)", "(default /)", "(default 16MiB)", "(default 1m0s)", "(default 10s)", "(default 0)", "(default info)"} {
		if !strings.Contains(out, want) {
			t.Errorf("-h lacks %q", want)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
		min  int64 // expected MaxMessage when ok
		orig []string
	}{
		{
			name: "defaults",
			ok:   true,
			min:  16 << 20,
		},
		{
			name: "sizes and origins",
			args: []string{"-max-message", "64KiB", "-origin", "a.example,b.example", "-origin", "*.c.example"},
			ok:   true,
			min:  64 << 10,
			orig: []string{"a.example", "b.example", "*.c.example"},
		},
		{
			name: "plain bytes",
			args: []string{"-max-message", "1000"},
			ok:   true,
			min:  1000,
		},
		{
			name: "bad size",
			args: []string{"-max-message", "12XB"},
		},
		{
			name: "zero size",
			args: []string{"-max-message", "0"},
		},
		{
			name: "negative max-conns",
			args: []string{"-max-conns", "-1"},
		},
		{
			name: "bad log level",
			args: []string{"-log-level", "loud"},
		},
		{
			name: "zero timeout",
			args: []string{"-idle-timeout", "0s"},
		},
		{
			name: "unknown flag",
			args: []string{"-nope"},
		},
		{
			name: "stray argument",
			args: []string{"extra"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cfg, _, err := parseFlags(tc.args, &stderr)
			if tc.ok != (err == nil) {
				t.Fatalf("parseFlags(%q): %v, want ok %v; stderr:\n%s", tc.args, err, tc.ok, &stderr)
			}
			if !tc.ok {
				if code := run(tc.args, io.Discard, io.Discard, nil); code != 2 {
					t.Errorf("run(%q): exit %d, want 2", tc.args, code)
				}
				return
			}
			if cfg.MaxMessage != tc.min {
				t.Errorf("MaxMessage %d, want %d", cfg.MaxMessage, tc.min)
			}
			if strings.Join(cfg.Origins, " ") != strings.Join(tc.orig, " ") {
				t.Errorf("Origins %q, want %q", cfg.Origins, tc.orig)
			}
		})
	}
}

// TestBoundFlags: the bounds against peers reach the Config, with the
// daemon's defaults when not given; zero or negative values are refused.
func TestBoundFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
		want echod.Config // the bound fields, when ok
	}{
		{
			name: "defaults",
			ok:   true,
			want: echod.Config{
				WriteTimeout:    5 * time.Second,
				MessageTimeout:  20 * time.Second,
				MessageMinRate:  500,
				MaxPendingBytes: 1 << 20,
			},
		},
		{
			name: "all set",
			args: []string{"-write-timeout", "2s", "-message-timeout", "1m", "-message-min-rate", "100", "-max-pending-bytes", "64KiB"},
			ok:   true,
			want: echod.Config{
				WriteTimeout:    2 * time.Second,
				MessageTimeout:  time.Minute,
				MessageMinRate:  100,
				MaxPendingBytes: 64 << 10,
			},
		},
		{
			name: "zero write timeout",
			args: []string{"-write-timeout", "0s"},
		},
		{
			name: "negative message timeout",
			args: []string{"-message-timeout", "-1s"},
		},
		{
			name: "zero message rate",
			args: []string{"-message-min-rate", "0"},
		},
		{
			name: "zero pending bytes",
			args: []string{"-max-pending-bytes", "0"},
		},
		{
			name: "bad pending bytes",
			args: []string{"-max-pending-bytes", "1MB"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cfg, _, err := parseFlags(tc.args, &stderr)
			if tc.ok != (err == nil) {
				t.Fatalf("parseFlags(%q): %v, want ok %v; stderr:\n%s", tc.args, err, tc.ok, &stderr)
			}
			if !tc.ok {
				if !strings.Contains(stderr.String(), strings.TrimPrefix(tc.args[0], "-")) {
					t.Errorf("stderr does not name %s:\n%s", tc.args[0], &stderr)
				}
				return
			}
			got := echod.Config{
				WriteTimeout:    cfg.WriteTimeout,
				MessageTimeout:  cfg.MessageTimeout,
				MessageMinRate:  cfg.MessageMinRate,
				MaxPendingBytes: cfg.MaxPendingBytes,
			}
			if got.WriteTimeout != tc.want.WriteTimeout || got.MessageTimeout != tc.want.MessageTimeout ||
				got.MessageMinRate != tc.want.MessageMinRate || got.MaxPendingBytes != tc.want.MaxPendingBytes {
				t.Errorf("bounds %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBadTLSFiles(t *testing.T) {
	var stderr bytes.Buffer
	code := run([]string{"-addr", "127.0.0.1:0", "-tls-cert", "/nonexistent.pem", "-tls-key", "/nonexistent.key"}, io.Discard, &stderr, nil)
	if code != 1 || !strings.Contains(stderr.String(), "-tls-cert") {
		t.Errorf("exit %d, stderr %q; want 1 and a word about -tls-cert", code, &stderr)
	}
}

var startLine = regexp.MustCompile(`^wsechod listening on (ws://([0-9.:]+)/\S*) \(open http://([0-9.:]+)/ in a browser\)$`)

// TestRun runs the daemon in-process: a signal starts the graceful
// shutdown, the client sees 1001 and run returns 0.
func TestRun(t *testing.T) {
	outR, outW := io.Pipe()
	var stderr lockedBuffer
	sig := make(chan os.Signal, 2)
	exited := make(chan int, 1)
	go func() {
		exited <- run([]string{"-addr", "127.0.0.1:0", "-path", "/echo", "-shutdown-timeout", "5s"}, outW, &stderr, sig)
		outW.Close()
	}()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("no start line: %v; stderr:\n%s", err, stderr.String())
	}
	m := startLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil || !strings.HasSuffix(m[1], "/echo") {
		t.Fatalf("start line %q", line)
	}
	go io.Copy(io.Discard, outR)

	c := dialEcho(t, m[1])
	sig <- syscall.SIGTERM
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit %d, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(testTimeout):
		t.Fatal("run did not return after the signal")
	}
	<-c.Done()
	if code := session.CloseCode(c.Err()); code != codec.CloseGoingAway {
		t.Errorf("client ended with %v, want 1001", c.Err())
	}
	for _, want := range []string{"msg=\"session end\"", "code=1001", "msg=stopped"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, stderr.String())
		}
	}
}

// TestBinary builds wsechod and runs it as a process, stopped by signals.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is not on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "wsechod")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("SIGTERM", func(t *testing.T) {
		d := startBinary(t, bin, "-shutdown-timeout", "5s", "-log-json")
		c := dialEcho(t, d.url)

		// The metrics: the standard expvar document, published once.
		resp, err := http.Get("http://" + d.addr + "/debug/vars")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, key := range []string{`"cmdline"`, `"memstats"`, `"sessions_open": 1`, `"messages_in"`, `"rss_bytes"`, `"goroutines"`} {
			if n := strings.Count(string(body), key); n != 1 {
				t.Errorf("/debug/vars has %s %d times, want once", key, n)
			}
		}

		d.cmd.Process.Signal(syscall.SIGTERM)
		if code := d.wait(t); code != 0 {
			t.Errorf("exit %d after SIGTERM, want 0; stderr:\n%s", code, d.stderr.String())
		}
		<-c.Done()
		if code := session.CloseCode(c.Err()); code != codec.CloseGoingAway {
			t.Errorf("client ended with %v, want 1001", c.Err())
		}
		if !strings.Contains(d.stderr.String(), `"msg":"session end"`) {
			t.Errorf("no JSON session end line:\n%s", d.stderr.String())
		}
	})

	t.Run("HTTP/2", func(t *testing.T) {
		// RFC 8441 is on without GODEBUG in the environment: the binary
		// imports xconnect, which sets it before net/http reads it.
		d := startBinary(t, bin, "-h2c")
		pool := new(session.HTTP2)
		defer pool.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		c, err := session.Dial(ctx, d.url, &session.Options{HTTP2: pool})
		if err != nil {
			t.Fatalf("dial over h2c: %v; stderr:\n%s", err, d.stderr.String())
		}
		defer c.CloseNow()
		if err := c.WriteContext(ctx, session.Text, []byte("over HTTP/2")); err != nil {
			t.Fatal(err)
		}
		if m := <-c.Messages(); string(m.Payload) != "over HTTP/2" {
			t.Errorf("echo %q", m.Payload)
		}
		if !strings.Contains(d.stderr.String(), "h2c=true rfc8441=true") {
			t.Errorf("the start log does not say that RFC 8441 is on:\n%s", d.stderr.String())
		}
		resp, err := http.Get("http://" + d.addr + "/debug/vars")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `"sessions_by_protocol": {"http2": 1}`) {
			t.Errorf("/debug/vars does not count the HTTP/2 session:\n%s", body)
		}
	})

	t.Run("second signal", func(t *testing.T) {
		d := startBinary(t, bin, "-shutdown-timeout", "60s")
		// A client that never answers the close keeps the shutdown waiting.
		closed := silentClient(t, d.addr)
		d.cmd.Process.Signal(syscall.SIGTERM)
		<-closed
		began := time.Now()
		d.cmd.Process.Signal(syscall.SIGINT)
		if code := d.wait(t); code != 1 {
			t.Errorf("exit %d after a second signal, want 1", code)
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Errorf("exited %v after the second signal", took)
		}
		if !strings.Contains(d.stderr.String(), "second signal") {
			t.Errorf("stderr does not tell about the second signal:\n%s", d.stderr.String())
		}
	})
}

// daemon is a wsechod process.
type daemon struct {
	cmd    *exec.Cmd
	url    string
	addr   string
	stderr *lockedBuffer
	exited chan int
}

func startBinary(t *testing.T, bin string, args ...string) *daemon {
	t.Helper()
	d := &daemon{stderr: new(lockedBuffer), exited: make(chan int, 1)}
	d.cmd = exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-handshake-timeout", "5s"}, args...)...)
	d.cmd.Stderr = d.stderr
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		d.wait(t)
	})
	go func() {
		d.cmd.Wait()
		d.exited <- d.cmd.ProcessState.ExitCode()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("no start line: %v; stderr:\n%s", err, d.stderr.String())
	}
	m := startLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		t.Fatalf("start line %q", line)
	}
	d.url, d.addr = m[1], m[2]
	return d
}

// wait returns the exit status, once.
func (d *daemon) wait(t *testing.T) int {
	t.Helper()
	select {
	case code, ok := <-d.exited:
		if ok {
			close(d.exited)
		}
		return code
	case <-time.After(testTimeout):
		t.Fatalf("wsechod did not exit within %v", testTimeout)
		return -1
	}
}

// dialEcho opens a session to url and checks one echo.
func dialEcho(t *testing.T, url string) *session.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := session.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() {
		c.Cancel(session.Terminal, nil)
		<-c.Done()
		for m := range c.Messages() {
			m.Release()
		}
	})
	if err := c.WriteContext(ctx, session.Text, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-c.Messages():
		if string(m.Payload) != "hello" {
			t.Errorf("echo %q", m.Payload)
		}
		m.Release()
	case <-ctx.Done():
		t.Fatal("no echo")
	}
	return c
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// silentClient opens a WebSocket connection that never answers; the
// channel is closed when the server's close frame has arrived.
func silentClient(t *testing.T, addr string) <-chan struct{} {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(testTimeout))
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for {
			h, err := ws.ReadHeader(br)
			if err != nil {
				t.Errorf("no close frame: %v", err)
				return
			}
			if _, err := io.CopyN(io.Discard, br, h.Length); err != nil {
				t.Errorf("no close frame: %v", err)
				return
			}
			if h.OpCode == ws.OpClose {
				return
			}
		}
	}()
	return closed
}
