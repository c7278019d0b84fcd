package browser

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/wsactor/wsactor/internal/app/chat"
)

// TestChat runs wschat's page in three tabs of headless chromium: alice and
// bob in room A, carol in room B. Each says something through the page's
// form, and the test reads every tab's DOM: the messages, their authors
// and times, the member lists, the connection state. Every message reaches
// exactly the tabs of its room.
//
// That nothing reaches a tab it is not for follows from the order of the
// events, as in internal/app/chat's TestRooms: a message queued to a wrong
// member would be queued in the same broadcast as to the right ones, so
// before whatever that member is sent afterwards. Each say waits until it
// is shown in its own tab, and each tab is sent something after the last
// message it must not get: carol's second message comes after alice's and
// bob's, and bob's leave after carol's second message (the server writes
// what it queued for bob before its answer to bob's close).
//
// With WSACTOR_SCREENSHOT_DIR set, the test saves alice's tab there as
// chat.png while both are in the room, and bob's as chat-left.png after he
// left.
func TestChat(t *testing.T) {
	requireChromium(t)

	srv := chat.New(chat.Config{Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	base := "http://" + ln.Addr().String()

	browserCtx, cdpErrs := startChromium(t)
	alice := openTab(t, browserCtx, cdpErrs, "alice")
	bob := openTab(t, browserCtx, cdpErrs, "bob")
	carol := openTab(t, browserCtx, cdpErrs, "carol")

	alice.join(base, "A", "alice")
	bob.join(base, "A", "bob")
	carol.join(base, "B", "carol")
	alice.waitMembers("alice", "bob")
	bob.waitMembers("alice", "bob")
	carol.waitMembers("carol")

	carol.say("hello from carol")
	carol.waitSaid(1)
	alice.say("hello from alice")
	alice.waitSaid(1)
	bob.waitSaid(1)
	bob.say("hi alice, <b>bob</b> here")
	bob.waitSaid(2)
	alice.waitSaid(2)
	carol.say("carol again")
	carol.waitSaid(2)
	alice.screenshot("chat.png")

	bob.leave()
	bob.waitState("ended")
	alice.waitMembers("alice")
	bob.screenshot("chat-left.png")

	roomA := []line{
		{Name: "alice", Text: "hello from alice"},
		{Name: "bob", Text: "hi alice, <b>bob</b> here"},
	}
	alice.checkSaid(roomA...)
	bob.checkSaid(roomA...)
	carol.checkSaid(
		line{Name: "carol", Text: "hello from carol"},
		line{Name: "carol", Text: "carol again"},
	)
	alice.checkNotices("You joined A as alice.", "bob joined.", "bob left.")
	bob.checkNotices("You joined A as bob.", "You left the room.")
	carol.checkNotices("You joined B as carol.")

	// A close the user asked for is no error: bob's tab shows no error box.
	if shown := run(bob, chromedp.Evaluate[bool](`document.getElementById("closed").classList.contains("show")`)); shown {
		t.Errorf("bob's tab shows an error after he left: %s", run(bob, chromedp.Text(chromedp.ID("closed"))))
	}
	for _, tab := range []*tab{alice, bob, carol} {
		tab.checkNoExceptions()
	}
}

// requireChromium fails the test when chromium is missing, unless
// WSACTOR_SKIP_BROWSER=1 says to skip it.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("WSACTOR_SKIP_BROWSER") == "1" {
			t.Skipf("WSACTOR_SKIP_BROWSER=1 and %s is missing (%v): the browser test does not run", chromium, err)
		}
		t.Fatalf("%s is missing (%v): install it with scripts/install-test-deps.sh chromium (as root), "+
			"or set WSACTOR_SKIP_BROWSER=1 to skip this test", chromium, err)
	}
}

// startChromium starts headless chromium for the test and returns its
// context; it is stopped, and its process waited for, when the test ends.
func startChromium(t *testing.T) (context.Context, *errorLog) {
	t.Helper()
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
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 760),
	)
	// Cleanups run last first: the tabs and the browser close, then the
	// allocator waits for the process.
	t.Cleanup(cancelAlloc)
	cdpErrs := new(errorLog)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(cdpErrs.printf))
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start %s: %v (chromedp errors: %s)", chromium, err, cdpErrs.String())
	}
	return browserCtx, cdpErrs
}

// tab is one page of the browser, a chat member.
type tab struct {
	t       *testing.T
	ctx     context.Context
	who     string
	cdpErrs *errorLog

	mu         sync.Mutex
	exceptions []string // uncaught JavaScript exceptions
}

// line is a message as a tab shows it.
type line struct {
	Name string `json:"name"`
	Text string `json:"text"`
	Time string `json:"time"`
}

// openTab opens a new tab of the browser, closed when the test ends.
func openTab(t *testing.T, browserCtx context.Context, cdpErrs *errorLog, who string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx)
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx, who: who, cdpErrs: cdpErrs}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			tb.mu.Lock()
			tb.exceptions = append(tb.exceptions, exceptionText(e.ExceptionDetails))
			tb.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("open a tab for %s: %v (chromedp errors: %s)", who, err, cdpErrs.String())
	}
	return tb
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "?"
	}
	if d.Exception != nil && d.Exception.Description != "" {
		return d.Exception.Description
	}
	return d.Text
}

// do runs steps in the tab, within 10 s.
func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("%s's tab: %s: %v\n%s(chromedp errors: %s)", tb.who, what, err, tb.describe(), tb.cdpErrs.String())
	}
}

// run runs one action that returns a value in tab tb.
func run[T any](tb *tab, a chromedp.Action[T]) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.t.Fatalf("%s's tab: %v (chromedp errors: %s)", tb.who, err, tb.cdpErrs.String())
	}
	return v
}

// describe tells what the tab shows, for a failure's message.
func (tb *tab) describe() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`"state: " + document.getElementById("state").textContent +
		"\nmembers: " + document.getElementById("members").innerText.replace(/\n/g, ", ") +
		"\nmessages:\n" + document.getElementById("messages").innerText + "\n"`))
	if err != nil {
		return "(the page could not be read: " + err.Error() + ")\n"
	}
	return s
}

// waitFor polls a JavaScript condition in the tab.
func (tb *tab) waitFor(what, cond string) {
	tb.t.Helper()
	tb.do("waiting for "+what, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(20*time.Millisecond)))
}

// join loads the page, fills in the form, joins and waits for the
// welcome.
func (tb *tab) join(base, room, name string) {
	tb.t.Helper()
	tb.do("join "+room+" as "+name,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("connect")),
		chromedp.SetValue(chromedp.ID("room"), room),
		chromedp.SetValue(chromedp.ID("name"), name),
		chromedp.Click(chromedp.ID("connect")),
	)
	tb.waitState("open")
	// The socket opens with the server's 101; the welcome, which comes
	// once the server has put the member in its room, marks the tab "me"
	// in its member list.
	tb.waitFor("the welcome", `document.querySelector("#members li.me") !== null`)
}

func (tb *tab) waitState(state string) {
	tb.t.Helper()
	tb.waitFor("state "+state, `document.getElementById("state").textContent === `+jsValue(state))
}

// waitMembers waits until the member list is exactly names.
func (tb *tab) waitMembers(names ...string) {
	tb.t.Helper()
	tb.waitFor("members "+strings.Join(names, ", "),
		`JSON.stringify(Array.from(document.querySelectorAll("#members li:not(.nobody)"), (li) => li.textContent)) === `+jsValue(jsValue(names)))
}

// say types text into the message box and sends it.
func (tb *tab) say(text string) {
	tb.t.Helper()
	tb.do("say "+text,
		chromedp.SetValue(chromedp.ID("text"), text),
		chromedp.Click(chromedp.ID("send")),
	)
}

// waitSaid waits until the tab shows n messages.
func (tb *tab) waitSaid(n int) {
	tb.t.Helper()
	tb.waitFor(strconv.Itoa(n)+" messages", `document.querySelectorAll("#messages li.said").length >= `+strconv.Itoa(n))
}

func (tb *tab) leave() {
	tb.t.Helper()
	tb.do("leave", chromedp.Click(chromedp.ID("leave")))
}

// checkSaid checks the messages the tab shows: each with its author, its
// text and a time of day.
func (tb *tab) checkSaid(want ...line) {
	tb.t.Helper()
	got := run(tb, chromedp.Evaluate[[]line](`Array.from(document.querySelectorAll("#messages li.said"), (li) => ({
		name: li.querySelector(".name").textContent,
		text: li.querySelector(".text").textContent,
		time: li.querySelector(".t").textContent,
	}))`))
	for i := range got {
		if len(got[i].Time) != len("15:04:05") || got[i].Time[2] != ':' || got[i].Time[5] != ':' {
			tb.t.Errorf("%s's tab: message %d shows the time %q, want hh:mm:ss", tb.who, i, got[i].Time)
		}
		got[i].Time = ""
	}
	if !slices.Equal(got, want) {
		tb.t.Errorf("%s's tab shows the messages %+v, want %+v", tb.who, got, want)
	}
}

// checkNotices checks the tab's lines about joins and leaves.
func (tb *tab) checkNotices(want ...string) {
	tb.t.Helper()
	got := run(tb, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#messages li.sys .text"), (s) => s.textContent)`))
	if !slices.Equal(got, want) {
		tb.t.Errorf("%s's tab shows the notices %q, want %q", tb.who, got, want)
	}
}

func (tb *tab) checkNoExceptions() {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, e := range tb.exceptions {
		tb.t.Errorf("%s's tab: uncaught exception: %s", tb.who, e)
	}
}

// screenshot saves the tab as name in WSACTOR_SCREENSHOT_DIR, when set.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	dir := os.Getenv("WSACTOR_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	png := run(tb, chromedp.FullScreenshot(100)) // 100: PNG
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot of %s's tab: %s", tb.who, path)
}

// jsValue returns v as a JavaScript literal (JSON is one).
func jsValue(v any) string {
	p, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(p)
}
