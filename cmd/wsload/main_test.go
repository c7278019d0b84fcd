package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startTCPEcho starts a length-prefixed echo server on loopback and returns
// its address as a URL.
func startTCPEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				var hdr [4]byte
				for {
					if _, err := io.ReadFull(c, hdr[:]); err != nil {
						return
					}
					p := make([]byte, 4+binary.BigEndian.Uint32(hdr[:]))
					copy(p, hdr[:])
					if _, err := io.ReadFull(c, p[4:]); err != nil {
						return
					}
					if _, err := c.Write(p); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "tcp://" + ln.Addr().String()
}

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb, false)
	return code, out.String(), errb.String()
}

func TestBadFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want int
	}{
		{
			name: "no url",
			args: nil,
			want: 2,
		},
		{
			name: "unknown flag",
			args: []string{"-url", "ws://127.0.0.1:1/", "-bogus"},
			want: 2,
		},
		{
			name: "bad mode",
			args: []string{"-url", "ws://127.0.0.1:1/", "-mode", "flood"},
			want: 2,
		},
		{
			name: "bad proto",
			args: []string{"-url", "ws://127.0.0.1:1/", "-proto", "udp"},
			want: 2,
		},
		{
			name: "negative size",
			args: []string{"-url", "ws://127.0.0.1:1/", "-size", "-1"},
			want: 2,
		},
		{
			name: "stray argument",
			args: []string{"-url", "ws://127.0.0.1:1/", "extra"},
			want: 2,
		},
		{
			name: "several URLs outside fanout",
			args: []string{"-url", "ws://127.0.0.1:1/,ws://127.0.0.1:2/"},
			want: 2,
		},
		{
			name: "a bad second URL",
			args: []string{"-mode", "fanout", "-size", "64", "-url", "ws://127.0.0.1:1/,http://127.0.0.1:2/"},
			want: 2,
		},
		{
			name: "help",
			args: []string{"-h"},
			want: 0,
		},
	}
	for _, tc := range cases {
		code, _, stderr := runCmd(t, tc.args...)
		if code != tc.want {
			t.Errorf(
				"%s: exit %d, want %d (stderr: %s)",
				tc.name, code, tc.want, stderr,
			)
		}
	}
}

func TestNothingMeasured(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	code, _, stderr := runCmd(t, "-url", "ws://"+addr+"/", "-c", "2", "-warmup", "0", "-duration", "1s")
	if code != 1 {
		t.Fatalf(
			"exit %d, want 1 (stderr: %s)",
			code, stderr,
		)
	}
}

// TestJSON checks the field names of the JSON result, which the bench
// orchestrator reads.
func TestJSON(t *testing.T) {
	url := startTCPEcho(t)
	code, stdout, stderr := runCmd(t,
		"-url", url, "-proto", "tcp", "-c", "2", "-inflight", "4", "-count", "400",
		"-warmup", "0", "-duration", "5s", "-label", "ceiling", "-json", "-", "-quiet")
	if code != 0 {
		t.Fatalf(
			"exit %d (stderr: %s)",
			code, stderr,
		)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf(
			"stdout is not JSON: %v\n%s",
			err, stdout,
		)
	}
	var keys []string
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"binary", "close_codes", "conns", "dial_errors", "duration_s", "errors", "inflight",
		"label", "latency_us", "mb_per_s", "messages", "mode", "msgs_per_s", "proto", "size", "url"}
	if !slices.Equal(keys, want) {
		t.Fatalf(
			"keys %v, want %v",
			keys, want,
		)
	}
	if doc["messages"] != 400.0 || doc["errors"] != 0.0 || doc["label"] != "ceiling" || doc["proto"] != "tcp" {
		t.Fatalf(
			"result %v",
			doc,
		)
	}
	lat, _ := doc["latency_us"].(map[string]any)
	for _, k := range []string{"p50", "p90", "p99", "p999", "max"} {
		if _, ok := lat[k]; !ok {
			t.Fatalf(
				"latency_us lacks %s: %v",
				k, lat,
			)
		}
	}
	if !strings.Contains(stderr, "msgs/s") {
		t.Errorf(
			"the summary should go to stderr with -json -: %q",
			stderr,
		)
	}

	// -json to a file: the summary goes to stdout.
	path := filepath.Join(t.TempDir(), "r.json")
	code, stdout, stderr = runCmd(t,
		"-url", url, "-proto", "tcp", "-c", "1", "-count", "50", "-warmup", "0", "-json", path)
	if code != 0 || !strings.Contains(stdout, "msgs/s") {
		t.Fatalf(
			"exit %d stdout %q stderr %q",
			code, stdout, stderr,
		)
	}
	b, err := os.ReadFile(path)
	if err != nil || !json.Valid(b) {
		t.Fatalf(
			"%s: %v, valid %v",
			path, err, json.Valid(b),
		)
	}
}

// TestProgress checks the progress line printed when stderr is a terminal.
func TestProgress(t *testing.T) {
	url := startTCPEcho(t)
	var out, errb bytes.Buffer
	code := run(context.Background(),
		[]string{"-url", url, "-proto", "tcp", "-c", "2", "-warmup", "0", "-duration", "1200ms"},
		&out, &errb, true)
	if code != 0 {
		t.Fatalf(
			"exit %d (stderr: %s)",
			code, errb.String(),
		)
	}
	line := errb.String()
	if !strings.HasPrefix(line, "\r") || !strings.Contains(line, "msgs/s") || !strings.Contains(line, "2 up") {
		t.Fatalf(
			"progress %q, want a \\r line with msgs/s and 2 up",
			line,
		)
	}
	// -quiet turns it off.
	errb.Reset()
	run(context.Background(),
		[]string{"-url", url, "-proto", "tcp", "-c", "1", "-warmup", "0", "-count", "10", "-quiet"},
		&out, &errb, true)
	if errb.Len() != 0 {
		t.Fatalf(
			"stderr with -quiet: %q",
			errb.String(),
		)
	}
}

// TestSeveralURLs: -url with commas in fanout mode gives the members'
// servers in order, the first as URL.
func TestSeveralURLs(t *testing.T) {
	cfg, _, err := parseFlags([]string{"-mode", "fanout", "-size", "64",
		"-url", "ws://127.0.0.1:1/room/a, ws://127.0.0.1:2/room/a,ws://127.0.0.1:3/room/a"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ws://127.0.0.1:1/room/a", "ws://127.0.0.1:2/room/a", "ws://127.0.0.1:3/room/a"}
	if cfg.URL != want[0] || !slices.Equal(cfg.URLs, want) {
		t.Fatalf(
			"URL %q URLs %q, want %q and %q",
			cfg.URL, cfg.URLs, want[0], want,
		)
	}
}
