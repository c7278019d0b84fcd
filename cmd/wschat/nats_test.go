package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	natsbroker "github.com/wsactor/wsactor/broker/nats"
	"github.com/wsactor/wsactor/session"
)

// TestRoomsAcrossServers runs two wschat processes on one in-process NATS
// server, with members of "lobby" on both and a member of "other": the
// says of a sender on each server reach every member of lobby on both
// servers exactly once, in the sender's order, and nothing of lobby
// reaches "other". Presence stays on each server: no member hears of a
// join on the other one.
func TestRoomsAcrossServers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wschat and runs two of them")
	}
	bin := buildChat(t)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(testTimeout) {
		t.Fatal("NATS server not ready")
	}
	natsURL := "nats://" + ns.Addr().String()
	a := startChat(t, bin, "-nats", natsURL, "-nats-name", "chat-a")
	b := startChat(t, bin, "-nats", natsURL, "-nats-name", "chat-b")

	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	alice := dial(t, ctx, a+"/ws?room=lobby&name=alice")
	expect(t, ctx, alice, `{"type":"welcome","room":"lobby","name":"alice","members":["alice"]}`)
	carol := dial(t, ctx, a+"/ws?room=lobby&name=carol")
	expect(t, ctx, carol, `{"type":"welcome","room":"lobby","name":"carol","members":["alice","carol"]}`)
	expect(t, ctx, alice, `{"type":"joined","name":"carol"}`)
	// bob's welcome lists the members on b only.
	bob := dial(t, ctx, b+"/ws?room=lobby&name=bob")
	expect(t, ctx, bob, `{"type":"welcome","room":"lobby","name":"bob","members":["bob"]}`)
	dave := dial(t, ctx, b+"/ws?room=lobby&name=dave")
	expect(t, ctx, dave, `{"type":"welcome","room":"lobby","name":"dave","members":["bob","dave"]}`)
	expect(t, ctx, bob, `{"type":"joined","name":"dave"}`)
	eve := dial(t, ctx, b+"/ws?room=other&name=eve")
	expect(t, ctx, eve, `{"type":"welcome","room":"other","name":"eve","members":["eve"]}`)

	// Both servers' subscriptions to lobby are in place before anyone
	// speaks: the first member of a room on a server subscribes it.
	subject := natsbroker.DefaultPrefix + "." + natsbroker.Token("lobby") + ".t"
	deadline := time.Now().Add(testTimeout)
	for ns.GlobalAccount().Interest(subject) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("NATS knows of %d subscriptions to %s, want 2", ns.GlobalAccount().Interest(subject), subject)
		}
		time.Sleep(5 * time.Millisecond)
	}

	const n = 200
	senders := map[string]*session.Session{"alice": alice, "bob": bob}
	var wg sync.WaitGroup
	for name, s := range senders {
		wg.Go(func() {
			for k := range n {
				p := fmt.Sprintf(`{"type":"say","text":"%s-%d"}`, name, k)
				if err := s.WriteContext(ctx, session.Text, []byte(p)); err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for name, s := range map[string]*session.Session{"alice": alice, "carol": carol, "bob": bob, "dave": dave} {
		if err := saidInOrder(ctx, s, []string{"alice", "bob"}, n); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A join on a is told on a only: bob's next event is alice's say,
	// which a published after the join.
	frank := dial(t, ctx, a+"/ws?room=lobby&name=frank")
	expect(t, ctx, frank, `{"type":"welcome","room":"lobby","name":"frank","members":["alice","carol","frank"]}`)
	expect(t, ctx, alice, `{"type":"joined","name":"frank"}`)
	if err := alice.WriteContext(ctx, session.Text, []byte(`{"type":"say","text":"after"}`)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*session.Session{alice, frank, bob, dave} {
		expect(t, ctx, s, `{"type":"said","name":"alice","text":"after"`)
	}
	// Nothing of lobby reached other: eve's next message is her own say.
	if err := eve.WriteContext(ctx, session.Text, []byte(`{"type":"say","text":"mine"}`)); err != nil {
		t.Fatal(err)
	}
	expect(t, ctx, eve, `{"type":"said","name":"eve","text":"mine"`)
}

// saidInOrder reads len(senders)*n events from s: every one a said event of
// a sender, its text "SENDER-k", k from 0 to n-1 in order, each once.
func saidInOrder(ctx context.Context, s *session.Session, senders []string, n int) error {
	next := map[string]int{}
	for _, name := range senders {
		next[name] = 0
	}
	for range len(senders) * n {
		msg, err := s.Read(ctx)
		if err != nil {
			return fmt.Errorf("read: %v (got %v)", err, next)
		}
		var e struct{ Type, Name, Text string }
		err = json.Unmarshal(msg.Payload, &e)
		raw := string(msg.Payload)
		msg.Release()
		if err != nil || e.Type != "said" {
			return fmt.Errorf("got %s, want only said events", raw)
		}
		want, ok := next[e.Name]
		if !ok || e.Text != fmt.Sprintf("%s-%d", e.Name, want) {
			return fmt.Errorf("got %s, want %s-%d: lost, repeated or out of order", raw, e.Name, want)
		}
		next[e.Name]++
	}
	return nil
}

// buildChat builds wschat from this module into a temporary directory.
func buildChat(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is not on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "wschat")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startChat starts a wschat process on a free port and returns its
// WebSocket base URL (ws://HOST:PORT); the process is killed when the test
// ends.
func startChat(t *testing.T, bin string, args ...string) string {
	t.Helper()
	var stderr lockedBuffer
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-log-level", "warn"}, args...)...)
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("wschat %v:\n%s", args, stderr.String())
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("no start line: %v; stderr:\n%s", err, stderr.String())
	}
	m := startLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		t.Fatalf("start line %q", line)
	}
	return "ws://" + m[1]
}
