// Package browser tests the echo daemon from a real browser: Debian's
// chromium, headless, driven through the DevTools protocol by chromedp. It
// is a module of its own so that the runtime's module never depends on
// chromedp.
package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/wsactor/wsactor/internal/app/echod"
	_ "github.com/wsactor/wsactor/xconnect" // RFC 8441 in net/http's server
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// chromium is where Debian's chromium package puts the browser.
const chromium = "/usr/bin/chromium"

// selftest is the JSON that /selftest writes into #result.
type selftest struct {
	URL        string  `json:"url"`
	Extensions *string `json:"extensions"`
	Checks     []struct {
		Name   string `json:"name"`
		Pass   bool   `json:"pass"`
		Detail string `json:"detail"`
	} `json:"checks"`
	Close *struct {
		Code     int    `json:"code"`
		Reason   string `json:"reason"`
		WasClean bool   `json:"wasClean"`
	} `json:"close"`
	Error *string `json:"error"`
	Pass  bool    `json:"pass"`
}

// TestSelfTest loads the daemon's /selftest page in headless chromium: the
// page sends text, binary and a 1 MiB message, checks the echoes, and closes
// with 4000 "selftest"; the test reads the page's verdict and checks what
// the daemon saw. It runs against the daemon without and with compression:
// chromium offers permessage-deflate, which must be declined, then accepted.
func TestSelfTest(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("WSACTOR_SKIP_BROWSER") == "1" {
			t.Skipf("WSACTOR_SKIP_BROWSER=1 and %s is missing (%v): the browser test does not run", chromium, err)
		}
		t.Fatalf("%s is missing (%v): install it with scripts/install-test-deps.sh chromium (as root), "+
			"or set WSACTOR_SKIP_BROWSER=1 to skip this test", chromium, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// The HTTP/2 run's daemon has a test certificate: trusted here.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	// Cleanups run last first: the browser closes, then the allocator
	// waits for its process to exit, so that no goroutine of chromedp's
	// outlives the test.
	t.Cleanup(cancelAlloc)
	var cdpErrs errorLog
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(cdpErrs.printf))
	t.Cleanup(cancelBrowser)

	// The first action starts the browser.
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start %s: %v (chromedp errors: %s)", chromium, err, cdpErrs.String())
	}
	version, err := cdp.Call(browserCtx, chromedp.FromContext(browserCtx).Browser, browser.GetVersion, cdp.Empty{})
	if err != nil {
		t.Fatalf("read the browser's version: %v", err)
	}
	product := version.Product
	t.Logf("browser: %s", product)
	for _, compression := range []bool{false, true} {
		t.Run(fmt.Sprintf("compression=%v", compression), func(t *testing.T) {
			selfTest(t, browserCtx, product, &cdpErrs, compression, false)
		})
	}
	// The page over TLS HTTP/2: chromium opens the wss:// WebSocket inside
	// the page's HTTP/2 connection (RFC 8441), and the daemon counts it
	// as an HTTP/2 session.
	t.Run("http2", func(t *testing.T) {
		selfTest(t, browserCtx, product, &cdpErrs, true, true)
	})
}

// selfTest runs /selftest in the browser against a daemon with or without
// compression, over plain HTTP/1.1 or over TLS with HTTP/2.
func selfTest(t *testing.T, browserCtx context.Context, product string, cdpErrs *errorLog, compression, h2 bool) {
	logs := new(logRecorder)
	srv := echod.New(echod.Config{Logger: slog.New(logs), Compression: compression})
	ts := httptest.NewUnstartedServer(srv.Handler())
	if h2 {
		ts.EnableHTTP2 = true
		ts.StartTLS()
	} else {
		ts.Start()
	}
	defer ts.Close()
	err := chromedp.Do(browserCtx,
		chromedp.Navigate(ts.URL+"/selftest"),
		chromedp.Poll[chromedp.Void](`document.title === "DONE"`, chromedp.WithPollingInterval(50*time.Millisecond)),
	)
	var result string
	if err == nil {
		result, err = chromedp.Run(browserCtx, chromedp.Text(chromedp.ID("result")))
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the self-test page did not finish within 30 s: %v (chromedp errors: %s)", err, cdpErrs.String())
		}
		t.Fatalf("%s: %v (chromedp errors: %s)", product, err, cdpErrs.String())
	}
	t.Logf("page result:\n%s", result)

	var res selftest
	if err := json.Unmarshal([]byte(result), &res); err != nil {
		t.Fatalf("#result is not the page's JSON: %v\n%s", err, result)
	}
	if res.Error != nil {
		t.Errorf("the page failed: %s", *res.Error)
	}
	want := []string{"text", "binary 0..255", "binary 1 MiB", "close 4000"}
	if len(res.Checks) != len(want) {
		t.Errorf("%d checks, want %d: %q", len(res.Checks), len(want), want)
	}
	for i, c := range res.Checks {
		if i < len(want) && c.Name != want[i] {
			t.Errorf("check %d is %q, want %q", i, c.Name, want[i])
		}
		if !c.Pass {
			t.Errorf("check %q failed: %s", c.Name, c.Detail)
		}
	}
	if res.Close == nil || res.Close.Code != 4000 || !res.Close.WasClean {
		t.Errorf("onclose saw %+v, want code 4000 after a clean close", res.Close)
	}
	if !res.Pass {
		t.Errorf("the page's verdict is fail")
	}
	switch {
	case res.Extensions == nil:
		t.Errorf("the page did not report the negotiated extensions")
	case compression && !strings.HasPrefix(*res.Extensions, "permessage-deflate"):
		t.Errorf("extensions %q with compression on, want permessage-deflate", *res.Extensions)
	case !compression && *res.Extensions != "":
		t.Errorf("extensions %q with compression off, want none", *res.Extensions)
	}

	proto := "http1"
	if h2 {
		proto = "http2"
	}
	if n := sessionsOver(t, srv, proto); n != 1 {
		t.Errorf("the daemon counted %d sessions over %s, want 1 (sessions_by_protocol)", n, proto)
	}

	// Shutdown returns once every session has ended: then the daemon's
	// side is all logged.
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	ends := logs.sessionEnds()
	if len(ends) != 1 {
		t.Fatalf("the daemon logged %d session ends, want 1: %v", len(ends), ends)
	}
	e := ends[0]
	const textLen = len("héllo wörld")
	if e["code"] != "4000" || e["reason"] != "selftest" {
		t.Errorf("the daemon saw the session end with %s %q, want 4000 \"selftest\"", e["code"], e["reason"])
	}
	if e["messages_in"] != "3" || e["bytes_in"] != fmt.Sprint(textLen+256+1<<20) {
		t.Errorf("the daemon counted %s messages, %s bytes; want 3, %d", e["messages_in"], e["bytes_in"], textLen+256+1<<20)
	}
}

// sessionsOver reads the daemon's sessions_by_protocol count for proto.
func sessionsOver(t *testing.T, srv *echod.Server, proto string) int {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/vars", nil))
	var vars struct {
		ByProtocol map[string]int `json:"sessions_by_protocol"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &vars); err != nil {
		t.Fatalf("/debug/vars: %v", err)
	}
	return vars.ByProtocol[proto]
}

// logRecorder is a slog.Handler that keeps the "session end" lines.
type logRecorder struct {
	mu   sync.Mutex
	ends []map[string]string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "session end" {
		return nil
	}
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	l.ends = append(l.ends, m)
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) sessionEnds() []map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]map[string]string(nil), l.ends...)
}

// errorLog gathers chromedp's error messages, which it may print from its
// own goroutines at any time (t.Logf may not be called after the test).
type errorLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (e *errorLog) printf(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fmt.Fprintf(&e.buf, format+"; ", args...)
}

func (e *errorLog) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.buf.String()
}
