package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRun: natsd serves NATS and its counts, and stops on a signal.
func TestRun(t *testing.T) {
	addr, statsAddr := freeAddr(t), freeAddr(t)
	sig := make(chan os.Signal, 1)
	// Read once run has returned: it writes to stderr until then.
	var stderr bytes.Buffer
	exited := make(chan int, 1)
	go func() { exited <- run([]string{"-addr", addr, "-stats-addr", statsAddr}, &stderr, sig) }()

	var v map[string]int64
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + statsAddr + "/debug/vars")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stats within 10s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, k := range []string{"in_msgs", "out_msgs", "slow_consumers", "connections"} {
		if _, ok := v[k]; !ok {
			t.Errorf("/debug/vars lacks %s: %v", k, v)
		}
	}
	// A NATS client's first line is the server's INFO.
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line := make([]byte, 4)
	_, err = io.ReadFull(c, line)
	c.Close()
	if err != nil || string(line) != "INFO" {
		t.Fatalf("the NATS port answered %q, %v; want INFO", line, err)
	}

	sig <- syscall.SIGTERM
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("natsd did not stop on SIGTERM")
	}
	if !strings.Contains(stderr.String(), "stats on http://"+statsAddr) {
		t.Errorf("stderr: %s", stderr.String())
	}
}

// TestBadFlags: a bad -addr is refused with status 2.
func TestBadFlags(t *testing.T) {
	if code := run([]string{"-addr", "nonsense"}, io.Discard, nil); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
