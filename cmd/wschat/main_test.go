package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsactor/wsactor/session"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTimeout = 10 * time.Second

// TestHelp: -h lists every flag with its default and exits 0.
func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-h"}, &stdout, &stderr, nil); code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
	out := stderr.String()
	for flag, def := range map[string]string{
		"addr":             "(default 127.0.0.1:8081)",
		"max-message":      "(default 64KiB)",
		"origin":           "(default: same host only)",
		"log-level":        "(default info)",
		"shutdown-timeout": "(default 10s)",
		"nats":             `(default "")`,
		"nats-name":        `(default "wschat" and the listen address)`,
	} {
		i := strings.Index(out, "  -"+flag+" ")
		if i < 0 {
			t.Errorf("-h does not list -%s:\n%s", flag, out)
			continue
		}
		entry, _, _ := strings.Cut(out[i+3:], "\n  -")
		if !strings.Contains(entry, def) {
			t.Errorf("-%s in -h: %q, want %s", flag, entry, def)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		ok      bool
		max     int64    // MaxMessage, when ok
		origins []string // when ok
	}{
		{
			name: "defaults",
			ok:   true,
			max:  64 << 10,
		},
		{
			name:    "set",
			args:    []string{"-max-message", "1MiB", "-origin", "a.example,b.example", "-origin", "*.c.example", "-log-level", "debug"},
			ok:      true,
			max:     1 << 20,
			origins: []string{"a.example", "b.example", "*.c.example"},
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
			name: "zero shutdown timeout",
			args: []string{"-shutdown-timeout", "0s"},
		},
		{
			name: "bad log level",
			args: []string{"-log-level", "loud"},
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
			if cfg.MaxMessage != tc.max {
				t.Errorf("MaxMessage %d, want %d", cfg.MaxMessage, tc.max)
			}
			if strings.Join(cfg.Origins, " ") != strings.Join(tc.origins, " ") {
				t.Errorf("Origins %q, want %q", cfg.Origins, tc.origins)
			}
		})
	}
}

var startLine = regexp.MustCompile(`^wschat listening on http://([0-9.:]+)/ \(WebSocket: ws://([0-9.:]+)/ws\?room=ROOM&name=NAME\)$`)

// TestRun runs the server in-process: two members chat, a signal starts the
// graceful shutdown, both see 1001 and run returns 0.
func TestRun(t *testing.T) {
	outR, outW := io.Pipe()
	var stderr lockedBuffer
	sig := make(chan os.Signal, 2)
	exited := make(chan int, 1)
	go func() {
		exited <- run([]string{"-addr", "127.0.0.1:0", "-shutdown-timeout", "5s"}, outW, &stderr, sig)
		outW.Close()
	}()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("no start line: %v; stderr:\n%s", err, stderr.String())
	}
	m := startLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		t.Fatalf("start line %q", line)
	}
	go io.Copy(io.Discard, outR)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	// Dial returns with the server's 101, before the server has put the
	// member in its room: the welcome says it has.
	alice := dial(t, ctx, "ws://"+m[1]+"/ws?room=lobby&name=alice")
	expect(t, ctx, alice, `{"type":"welcome","room":"lobby","name":"alice","members":["alice"]}`)
	bob := dial(t, ctx, "ws://"+m[1]+"/ws?room=lobby&name=bob")
	expect(t, ctx, bob, `{"type":"welcome","room":"lobby","name":"bob","members":["alice","bob"]}`)
	expect(t, ctx, alice, `{"type":"joined","name":"bob"}`)
	if err := bob.WriteContext(ctx, session.Text, []byte(`{"type":"say","text":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*session.Session{alice, bob} {
		expect(t, ctx, s, `{"type":"said","name":"bob","text":"hi","at":"`)
	}

	sig <- syscall.SIGTERM
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit %d, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(testTimeout):
		t.Fatal("run did not return after the signal")
	}
	for _, s := range []*session.Session{alice, bob} {
		<-s.Done()
		if code := session.CloseCode(s.Err()); code != session.CloseGoingAway {
			t.Errorf("a member ended with %v, want 1001", s.Err())
		}
	}
	for _, want := range []string{"msg=joined", "msg=left", "code=1001", "msg=stopped"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, stderr.String())
		}
	}
}

// expect reads s's next message and checks that it begins with want.
func expect(t *testing.T, ctx context.Context, s *session.Session, want string) {
	t.Helper()
	msg, err := s.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	defer msg.Release()
	if !strings.HasPrefix(string(msg.Payload), want) {
		t.Errorf("got %s, want %s...", msg.Payload, want)
	}
}

// dial opens a session whose messages the test reads; it is closed when
// the test ends.
func dial(t *testing.T, ctx context.Context, url string) *session.Session {
	t.Helper()
	s, err := session.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() {
		s.CloseNow()
		for m := range s.Messages() {
			m.Release()
		}
	})
	return s
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
