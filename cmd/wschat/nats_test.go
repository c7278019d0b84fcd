package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
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
	ns := runNATS(t, -1)
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
	waitInterest(t, ns, "lobby", 2)

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

// TestNATSRestart: two wschat processes on a NATS server that stops and
// starts again on its port. While it is down each server serves its own
// members, and what they say is counted as lost in /debug/vars; once it is
// back the servers reconnect by themselves and says cross again, none of
// the lost ones late.
func TestNATSRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wschat and runs two of them")
	}
	bin := buildChat(t)
	ns := runNATS(t, -1)
	port := ns.Addr().(*net.TCPAddr).Port
	natsURL := "nats://" + ns.Addr().String()
	a := startChat(t, bin, "-nats", natsURL)
	b := startChat(t, bin, "-nats", natsURL)
	ctx, cancel := context.WithTimeout(context.Background(), 3*testTimeout)
	defer cancel()
	alice := dial(t, ctx, a+"/ws?room=lobby&name=alice")
	expect(t, ctx, alice, `{"type":"welcome"`)
	bob := dial(t, ctx, b+"/ws?room=lobby&name=bob")
	expect(t, ctx, bob, `{"type":"welcome"`)
	waitInterest(t, ns, "lobby", 2)
	say(t, ctx, alice, "before")
	for _, s := range []*session.Session{alice, bob} {
		expect(t, ctx, s, `{"type":"said","name":"alice","text":"before"`)
	}

	stopNATS(ns)
	waitVars(t, a, func(v map[string]any) bool {
		st, _ := v["nats"].(map[string]any)
		return st != nil && st["Connected"] == false
	})
	const down = 10
	for k := range down {
		say(t, ctx, alice, fmt.Sprintf("down-%d", k))
	}
	for k := range down {
		expect(t, ctx, alice, fmt.Sprintf(`{"type":"said","name":"alice","text":"down-%d"`, k))
	}
	if lost := getVars(t, a)["broker_lost"]; lost != float64(down) {
		t.Errorf("broker_lost %v while NATS was down, want %d", lost, down)
	}

	ns = runNATS(t, port)
	began := time.Now()
	// Probes until bob hears one: the first thing bob hears is a probe,
	// never a say from while NATS was down.
	probes := 0
	for heard := false; !heard; {
		if time.Since(began) > testTimeout {
			t.Fatalf("says did not cross again within %v of the NATS restart", testTimeout)
		}
		say(t, ctx, alice, fmt.Sprintf("probe-%d", probes))
		expect(t, ctx, alice, fmt.Sprintf(`{"type":"said","name":"alice","text":"probe-%d"`, probes))
		probes++
		rctx, rcancel := context.WithTimeout(ctx, 50*time.Millisecond)
		msg, err := bob.Read(rctx)
		rcancel()
		if err != nil {
			if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("bob: %v", err)
			}
			continue
		}
		got := string(msg.Payload)
		msg.Release()
		if !strings.Contains(got, `"text":"probe-`) {
			t.Fatalf("bob's first message after the restart: %s, want a probe", got)
		}
		heard = true
	}
	t.Logf("says crossed again %v after the NATS server was back", time.Since(began).Round(time.Millisecond))
	// The probes after the one bob heard may still be on their way.
	say(t, ctx, bob, "after")
	for {
		msg, err := alice.Read(ctx)
		if err != nil {
			t.Fatalf("alice: %v", err)
		}
		got := string(msg.Payload)
		msg.Release()
		if strings.Contains(got, `"text":"after"`) {
			break
		}
		if !strings.Contains(got, `"text":"probe-`) {
			t.Fatalf("alice got %s, want the probes' echoes, then bob's say", got)
		}
	}
	if v := getVars(t, b); v["broker_lost"] != 0.0 {
		t.Errorf("b: broker_lost %v, want 0", v["broker_lost"])
	}
}

// say sends a say from s.
func say(t *testing.T, ctx context.Context, s *session.Session, text string) {
	t.Helper()
	if err := s.WriteContext(ctx, session.Text, []byte(`{"type":"say","text":"`+text+`"}`)); err != nil {
		t.Fatal(err)
	}
}

// runNATS runs a NATS server in the test's process on port (-1: a free
// one); the test's cleanup stops it if the test has not.
func runNATS(t *testing.T, port int) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { stopNATS(ns) })
	if !ns.ReadyForConnections(testTimeout) {
		t.Fatal("NATS server not ready")
	}
	return ns
}

func stopNATS(ns *server.Server) {
	ns.Shutdown()
	ns.WaitForShutdown()
}

// waitInterest waits until the NATS server knows of n subscriptions to the
// room's text messages.
func waitInterest(t *testing.T, ns *server.Server, room string, n int) {
	t.Helper()
	subject := natsbroker.DefaultPrefix + "." + natsbroker.Token(room) + ".t"
	deadline := time.Now().Add(testTimeout)
	for ns.GlobalAccount().Interest(subject) < n {
		if time.Now().After(deadline) {
			t.Fatalf("NATS knows of %d subscriptions to %s, want %d", ns.GlobalAccount().Interest(subject), subject, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// getVars returns the /debug/vars of the wschat at base (ws://HOST:PORT).
func getVars(t *testing.T, base string) map[string]any {
	t.Helper()
	resp, err := http.Get("http" + strings.TrimPrefix(base, "ws") + "/debug/vars")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	v := map[string]any{}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// waitVars waits until the /debug/vars of the wschat at base satisfy cond.
func waitVars(t *testing.T, base string, cond func(map[string]any) bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond(getVars(t, base)) {
		if time.Now().After(deadline) {
			t.Fatalf("/debug/vars of %s did not reach the state awaited within %v", base, testTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
