package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsactor/wsactor/session"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRooms: two members in room A and one in room B. Each message reaches
// exactly the members of its room, the sender included.
//
// That nothing reaches a member it is not for follows from the order of
// the events: every member reads every event it gets, and a message
// queued to a wrong member would be queued in the same broadcast as to
// the right ones, so before whatever that member is sent afterwards. Each
// step waits until the sender has its own message back, and every member
// is sent something after the last message it must not get.
func TestRooms(t *testing.T) {
	_, base := startServer(t, Config{})
	start := time.Now().Add(-time.Second).Truncate(time.Second)

	alice := join(t, base, "A", "alice", "alice", "alice")
	bob := join(t, base, "A", "bob", "bob", "alice", "bob")
	alice.expect(event{Type: "joined", Name: "bob"})
	carol := join(t, base, "B", "carol", "carol", "carol")

	carol.say("c1")
	checkAt(t, carol.expect(event{Type: "said", Name: "carol", Text: "c1"}), start)

	alice.say("a1")
	checkAt(t, alice.expect(event{Type: "said", Name: "alice", Text: "a1"}), start)
	bob.expect(event{Type: "said", Name: "alice", Text: "a1"})

	bob.say("b1 with \"quotes\", <tags> & ünïcödé")
	bob.expect(event{Type: "said", Name: "bob", Text: "b1 with \"quotes\", <tags> & ünïcödé"})
	alice.expect(event{Type: "said", Name: "bob", Text: "b1 with \"quotes\", <tags> & ünïcödé"})

	carol.say("c2")
	carol.expect(event{Type: "said", Name: "carol", Text: "c2"})

	// A last event for alice and bob: neither got c1 or c2 before it.
	dave := join(t, base, "A", "dave", "dave", "alice", "bob", "dave")
	alice.expect(event{Type: "joined", Name: "dave"})
	bob.expect(event{Type: "joined", Name: "dave"})
	_ = dave
}

// checkAt checks a said event's time: RFC 3339 in UTC, between start and
// now.
func checkAt(t *testing.T, e event, start time.Time) {
	t.Helper()
	at, err := time.Parse(time.RFC3339, e.At)
	if err != nil || !strings.HasSuffix(e.At, "Z") {
		t.Fatalf("at %q: not RFC 3339 in UTC (%v)", e.At, err)
	}
	if at.Before(start) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("at %v, want between %v and now", at, start)
	}
}

// TestPresence: leaving is announced to the room, the name is free again
// afterwards, and a newcomer's list shows who is there.
func TestPresence(t *testing.T) {
	srv, base := startServer(t, Config{})
	alice := join(t, base, "A", "alice", "alice", "alice")
	bob := join(t, base, "A", "bob", "bob", "alice", "bob")
	alice.expect(event{Type: "joined", Name: "bob"})

	bob.leave()
	alice.expect(event{Type: "left", Name: "bob"})

	bob2 := join(t, base, "A", "bob", "bob", "alice", "bob")
	alice.expect(event{Type: "joined", Name: "bob"})

	// A connection lost without a closing handshake is a leave too.
	bob2.s.Cancel(session.Terminal, nil)
	alice.expect(event{Type: "left", Name: "bob"})

	alice.leave()
	waitFor(t, "the room to be dropped", func() bool { return srv.rooms.Len() == 0 && srv.presentRooms() == 0 })
}

// presentRooms returns how many rooms have names taken.
func (s *Server) presentRooms() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.present)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDuplicateNames: a name taken in a room gets the first free suffix,
// cut to stay within 32 runes; the same name in another room is free.
func TestDuplicateNames(t *testing.T) {
	_, base := startServer(t, Config{})
	a1 := join(t, base, "A", "alice", "alice", "alice")
	a2 := join(t, base, "A", "alice", "alice-2", "alice", "alice-2")
	a1.expect(event{Type: "joined", Name: "alice-2"})
	a3 := join(t, base, "A", " alice ", "alice-3", "alice", "alice-2", "alice-3")
	a1.expect(event{Type: "joined", Name: "alice-3"})
	a2.expect(event{Type: "joined", Name: "alice-3"})
	join(t, base, "B", "alice", "alice", "alice")

	// The suffix takes the next free number once one is free again.
	a2.leave()
	a1.expect(event{Type: "left", Name: "alice-2"})
	a3.expect(event{Type: "left", Name: "alice-2"})
	join(t, base, "A", "alice", "alice-2", "alice", "alice-2", "alice-3")

	long := strings.Repeat("é", 32)
	join(t, base, "C", long, long, long)
	cut := strings.Repeat("é", 30) + "-2"
	join(t, base, "C", long, cut, cut, long)
}

// TestBadQuery: a bad room or name gets 400 before the upgrade; spaces
// around them are trimmed.
func TestBadQuery(t *testing.T) {
	_, base := startServer(t, Config{})
	for _, tc := range []struct {
		name  string
		room  string
		nick  string
		ok    bool
		given string // the name in the welcome, when ok
	}{
		{
			name:  "plain",
			room:  "lobby",
			nick:  "alice",
			ok:    true,
			given: "alice",
		},
		{
			name:  "trimmed",
			room:  "  lobby ",
			nick:  "\tbob ",
			ok:    true,
			given: "bob",
		},
		{
			name:  "letters and digits of any script",
			room:  "salle.à-manger_2",
			nick:  "Зоя١٢٣",
			ok:    true,
			given: "Зоя١٢٣",
		},
		{
			name:  "32 runes",
			room:  strings.Repeat("r", 32),
			nick:  strings.Repeat("ß", 32),
			ok:    true,
			given: strings.Repeat("ß", 32),
		},
		{
			name: "33 runes",
			room: "lobby",
			nick: strings.Repeat("ß", 33),
		},
		{
			name: "no room",
			nick: "alice",
		},
		{
			name: "no name",
			room: "lobby",
		},
		{
			name: "only spaces",
			room: "lobby",
			nick: "   ",
		},
		{
			name: "inner space",
			room: "the lobby",
			nick: "alice",
		},
		{
			name: "slash",
			room: "a/b",
			nick: "alice",
		},
		{
			name: "markup",
			room: "lobby",
			nick: "<b>",
		},
		{
			name: "invalid UTF-8",
			room: "lobby",
			nick: "al\xffice",
		},
		{
			name: "emoji",
			room: "lobby",
			nick: "al🙂",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			s, err := session.Dial(ctx, wsURL(base, tc.room, tc.nick), nil)
			if !tc.ok {
				var he *session.HandshakeError
				if !errors.As(err, &he) || he.Response == nil || he.Response.StatusCode != http.StatusBadRequest {
					t.Fatalf("dial: %v, want a 400 response", err)
				}
				body, _ := io.ReadAll(he.Response.Body)
				if !strings.Contains(string(body), "1 to 32 letters") {
					t.Errorf("the 400's body does not say why: %q", body)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			t.Cleanup(func() { s.CloseNow() })
			c := &client{t: t, s: s}
			e := c.next()
			if e.Type != "welcome" || e.Name != tc.given || e.Room != strings.TrimSpace(tc.room) {
				t.Errorf("welcome %+v, want room %q, name %q", e, strings.TrimSpace(tc.room), tc.given)
			}
		})
	}
}

// TestBadInput: a message that breaks the protocol closes its sender's
// session with the documented code, and nothing of it reaches the room: the
// witness's next event is the sender's leave. A valid message that follows
// a bad one in the same read is dropped too.
func TestBadInput(t *testing.T) {
	_, base := startServer(t, Config{MaxMessage: 16 << 10})
	longText := strings.Repeat("é", MaxTextLen+1)
	for i, tc := range []struct {
		name string
		typ  session.MessageType
		p    string
		code session.CloseReason // zero: accepted
	}{
		{
			name: "binary",
			typ:  session.Binary,
			p:    `{"type":"say","text":"hi"}`,
			code: notText,
		},
		{
			name: "not JSON",
			typ:  session.Text,
			p:    `hello`,
			code: badSay,
		},
		{
			name: "truncated JSON",
			typ:  session.Text,
			p:    `{"type":"say","text":"hi"`,
			code: badSay,
		},
		{
			name: "trailing data",
			typ:  session.Text,
			p:    `{"type":"say","text":"hi"} {}`,
			code: badSay,
		},
		{
			name: "array",
			typ:  session.Text,
			p:    `["say","hi"]`,
			code: badSay,
		},
		{
			name: "null",
			typ:  session.Text,
			p:    `null`,
			code: badSay,
		},
		{
			name: "no text",
			typ:  session.Text,
			p:    `{"type":"say"}`,
			code: badSay,
		},
		{
			name: "empty text",
			typ:  session.Text,
			p:    `{"type":"say","text":""}`,
			code: badSay,
		},
		{
			name: "null text",
			typ:  session.Text,
			p:    `{"type":"say","text":null}`,
			code: badSay,
		},
		{
			name: "number text",
			typ:  session.Text,
			p:    `{"type":"say","text":2}`,
			code: badSay,
		},
		{
			name: "unknown type",
			typ:  session.Text,
			p:    `{"type":"shout","text":"hi"}`,
			code: badSay,
		},
		{
			name: "a type of the server's",
			typ:  session.Text,
			p:    `{"type":"said","text":"hi"}`,
			code: badSay,
		},
		{
			name: "extra member",
			typ:  session.Text,
			p:    `{"type":"say","text":"hi","name":"bob"}`,
			code: badSay,
		},
		{
			name: "member names in another case",
			typ:  session.Text,
			p:    `{"TYPE":"say","Text":"hi"}`,
			code: badSay,
		},
		{
			name: "text over 2000 runes",
			typ:  session.Text,
			p:    `{"type":"say","text":"` + longText + `"}`,
			code: badSay,
		},
		{
			name: "over the message limit",
			typ:  session.Text,
			p:    `{"type":"say","text":"` + strings.Repeat("x", 16<<10) + `"}`,
			code: session.CloseReason{Code: session.CloseMessageTooBig},
		},
		{
			name: "2000 runes",
			typ:  session.Text,
			p:    `{"type":"say","text":"` + longText[len("é"):] + `"}`,
		},
		{
			name: "escapes",
			typ:  session.Text,
			p:    `{"text":"tab\there \u00e9","type":"say"}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			room := fmt.Sprint("bad", i)
			witness := join(t, base, room, "witness", "witness", "witness")
			sender := join(t, base, room, "sender", "sender", "sender", "witness")
			witness.expect(event{Type: "joined", Name: "sender"})
			sender.send(tc.typ, []byte(tc.p))
			if tc.code == (session.CloseReason{}) {
				text, err := jsonText(tc.p)
				if err != nil {
					t.Fatal(err)
				}
				witness.expect(event{Type: "said", Name: "sender", Text: text})
				return
			}
			// Sent behind the bad one, before the close can arrive.
			sender.s.WriteText([]byte(`{"type":"say","text":"after"}`), nil)
			err := sender.ended()
			var ce *session.CloseError
			if !errors.As(err, &ce) || ce.Local || ce.Code != tc.code.Code {
				t.Fatalf("the sender's session ended with %v, want the server's close %d", err, tc.code.Code)
			}
			if tc.code.Reason != "" && ce.Reason != tc.code.Reason {
				t.Errorf("reason %q, want %q", ce.Reason, tc.code.Reason)
			}
			witness.expect(event{Type: "left", Name: "sender"})
		})
	}
}

// TestShutdown: every member gets 1001 and Shutdown returns once all have
// ended; new handshakes are refused.
func TestShutdown(t *testing.T) {
	srv := New(Config{Logger: discard()})
	_, base := startServerWith(t, srv)
	a := join(t, base, "A", "alice", "alice", "alice")
	b := join(t, base, "A", "bob", "bob", "alice", "bob")
	c := join(t, base, "B", "carol", "carol", "carol")

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, m := range []*client{a, b, c} {
		if code := session.CloseCode(m.ended()); code != session.CloseGoingAway {
			t.Errorf("a member ended with %v, want 1001", m.s.Err())
		}
	}
	if srv.rooms.Len() != 0 || srv.presentRooms() != 0 {
		t.Errorf("%d rooms, %d with names after Shutdown", srv.rooms.Len(), srv.presentRooms())
	}
	if _, err := session.Dial(ctx, wsURL(base, "A", "late"), nil); err == nil {
		t.Errorf("a handshake after Shutdown succeeded")
	}
}

// TestShutdownDeadline: a member that never answers the close is closed by
// force at the deadline, and Shutdown still returns once every session has
// ended.
func TestShutdownDeadline(t *testing.T) {
	srv := New(Config{Logger: discard()})
	_, base := startServerWith(t, srv)
	polite := join(t, base, "A", "polite", "polite", "polite")
	// A client whose session is stuck: its handler never returns, so it
	// never reads the server's close frame.
	stuck := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var once sync.Once
	rude, err := session.Dial(ctx, wsURL(base, "A", "rude"), &session.Options{
		OnMessage: func(s *session.Session, m session.Message) {
			m.Release()
			once.Do(func() { <-stuck })
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { rude.CloseNow() }()
	polite.expect(event{Type: "joined", Name: "rude"})

	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	began := time.Now()
	err = srv.Shutdown(short)
	close(stuck)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the deadline's error", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Shutdown took %v after a 300ms deadline", took)
	}
	if code := session.CloseCode(polite.ended()); code != session.CloseGoingAway {
		t.Errorf("the polite member ended with %v, want 1001", polite.s.Err())
	}
}

// TestConcurrentJoins: members join one room at once under one name, say
// something, and leave at once. Every name given is unique, and every
// member's list, built from its welcome and the events after it, ends with
// everyone.
func TestConcurrentJoins(t *testing.T) {
	_, base := startServer(t, Config{})
	const n = 16
	clients := make([]*client, n)
	views := make([]map[string]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c := dial(t, base, "crowd", "x")
			e := c.next()
			if e.Type != "welcome" {
				t.Errorf("first event %+v, want a welcome", e)
				return
			}
			view := map[string]bool{}
			for _, m := range e.Members {
				view[m] = true
			}
			if !view[e.Name] {
				t.Errorf("welcome %+v does not list the newcomer", e)
			}
			clients[i], views[i] = c, view
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, c := range clients {
		for len(views[i]) < n {
			e := c.next()
			if e.Type != "joined" || views[i][e.Name] {
				t.Fatalf("member %d: %+v with %d in its list", i, e, len(views[i]))
			}
			views[i][e.Name] = true
		}
	}
	names := make([]string, 0, n)
	for name := range views[0] {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(names) != n || names[0] != "x" {
		t.Errorf("names %q", names)
	}
	for _, c := range clients {
		wg.Go(func() { c.s.CloseNow() })
	}
	wg.Wait()
}

// TestPage: / is the page, self-contained; other paths are not found; a
// plain GET of the endpoint is told to upgrade.
func TestPage(t *testing.T) {
	_, base := startServer(t, Config{})
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	page := string(body)
	for _, want := range []string{`id="room"`, `id="name"`, `id="messages"`, `id="members"`, `id="state"`, `"/ws?room="`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	// Nothing from elsewhere: no external script, style, font or image.
	for _, bad := range []string{"src=", "href=", "@import", "url(", "http://", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page has %q: it must load nothing", bad)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}

	for _, tc := range []struct {
		path string
		want int
	}{
		{"/nope", http.StatusNotFound},
		{"/ws?room=A&name=alice", http.StatusUpgradeRequired},
		{"/ws?room=A", http.StatusBadRequest},
	} {
		resp, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s: %s, want %d", tc.path, resp.Status, tc.want)
		}
	}
}
