package interop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wsactor/wsactor/session"
)

// pythonCheck is one line that testdata/py_client.py prints.
type pythonCheck struct {
	Check      string `json:"check"`
	OK         bool   `json:"ok"`
	Error      string `json:"error"`
	Code       int    `json:"code"`
	Reason     string `json:"reason"`
	Size       int    `json:"size"` // of an echo-* check's message, in bytes
	Websockets string `json:"websockets"`
	Python     string `json:"python"`
}

// findPython returns a python3 that can import websockets. Debian's
// /usr/bin/python3 comes first: python3-websockets is installed for it, and
// a python3 earlier on PATH (pyenv, a venv) may not see it. When none is
// found the test fails, telling how to install them, unless
// WSACTOR_SKIP_PYTHON=1 asks to skip it.
func findPython(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil && p != candidates[0] {
		candidates = append(candidates, p)
	}
	var tried []string
	for _, py := range candidates {
		out, err := exec.Command(py, "-c", "import websockets").CombinedOutput()
		if err == nil {
			return py
		}
		tried = append(tried, fmt.Sprintf("%s: %v %s", py, err, bytes.TrimSpace(lastLine(out))))
	}
	msg := fmt.Sprintf("no python3 with the websockets module (tried %s); "+
		"install Debian's python3 and python3-websockets with scripts/install-test-deps.sh (as root), "+
		"or set WSACTOR_SKIP_PYTHON=1 to skip this test", strings.Join(tried, "; "))
	if os.Getenv("WSACTOR_SKIP_PYTHON") == "1" {
		t.Skip("WSACTOR_SKIP_PYTHON=1: " + msg)
	}
	t.Fatal(msg)
	return ""
}

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

// TestPythonClient runs testdata/py_client.py, a client on Python's
// websockets library, against a wsactor echo server: every check it prints
// must pass (see runPyClient), and the server session must end with the
// client's close, 4001 "py-done".
func TestPythonClient(t *testing.T) {
	py := findPython(t)
	srv := startWsactorServer(t)
	runPyClient(t, py, srv.URL, false)
	s := srv.next(t)
	awaitEnd(t, s, "server session")
	checkCloseErr(t, "server session Err", s.Err(), 4001, "py-done")
}

// TestPythonClientCompressed is TestPythonClient against a server with
// compression: websockets' permessage-deflate offer is accepted (without
// context takeover) and every echo goes compressed both ways.
func TestPythonClientCompressed(t *testing.T) {
	py := findPython(t)
	srv := startWsactorServerWith(t, session.Options{Compression: &session.Compression{}})
	runPyClient(t, py, srv.URL, true)
	s := srv.next(t)
	if !s.Compressed() {
		t.Error("the server session did not negotiate permessage-deflate")
	}
	awaitEnd(t, s, "server session")
	checkCloseErr(t, "server session Err", s.Err(), 4001, "py-done")
}

// runPyClient runs testdata/py_client.py with py against the echo server at
// url and checks what it printed: its permessage-deflate offer accepted
// when deflate is set and declined otherwise, echoes of text and binary of 0 B to 1 MiB,
// UTF-8 text, a ping answered, and the close answered with the client's
// code, 4001. It returns the checks by name.
func runPyClient(t *testing.T, py, url string, deflate bool) map[string]pythonCheck {
	t.Helper()
	args := []string{"testdata/py_client.py", url}
	if deflate {
		args = append(args, "--deflate")
	}
	cmd := exec.CommandContext(testContext(t), py, args...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if stderr.Len() > 0 {
		t.Logf("py_client.py stderr:\n%s", stderr.Bytes())
	}

	want := []string{"version", "handshake"}
	for _, kind := range []string{"text", "binary"} {
		for _, size := range []int{0, 1, 125, 126, 65536, 1 << 20} {
			want = append(want, fmt.Sprintf("echo-%s-%dB", kind, size))
		}
	}
	want = append(want, "echo-text-utf8", "ping", "close")

	got := map[string]pythonCheck{}
	for line := range strings.Lines(stdout.String()) {
		var c pythonCheck
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Errorf("py_client.py printed a line that is not JSON: %q", line)
			continue
		}
		got[c.Check] = c
		if !c.OK {
			t.Errorf("py_client.py check %s failed: %s", c.Check, strings.TrimSpace(line))
		}
	}
	if v, ok := got["version"]; ok {
		t.Logf("python %s, websockets %s", v.Python, v.Websockets)
	}
	for _, name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("py_client.py did not report check %s", name)
		}
	}
	if c := got["close"]; c.Code != 4001 {
		t.Errorf("the client saw the server's close frame with %d %q, want the echo of 4001", c.Code, c.Reason)
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("py_client.py printed:\n%s", stdout.Bytes())
	}
	var exitErr *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exitErr) {
		t.Fatalf("run %s: %v", py, runErr)
	}
	if runErr != nil {
		t.Errorf("py_client.py: %v", runErr)
	}
	return got
}
