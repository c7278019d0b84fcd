package chat

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/wsactor/wsactor/session"
)

const testTimeout = 10 * time.Second

// event is any message the server sends, decoded.
type event struct {
	Type    string   `json:"type"`
	Room    string   `json:"room"`
	Name    string   `json:"name"`
	Text    string   `json:"text"`
	At      string   `json:"at"`
	Members []string `json:"members"`
}

// startServer serves a Server for cfg on a loopback port until the test
// ends, and returns it with its base URL (http://127.0.0.1:PORT).
func startServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = discard()
	}
	return startServerWith(t, New(cfg))
}

// startServerWith serves srv like startServer. The test may call Shutdown
// itself: the second one, at the cleanup, returns nil at once.
func startServerWith(t *testing.T, srv *Server) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	// Registered before the clients', so it runs after them.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, "http://" + ln.Addr().String()
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// jsonText returns the text of a say, as the server decodes it.
func jsonText(p string) (string, error) {
	var v struct{ Text string }
	err := json.Unmarshal([]byte(p), &v)
	return v.Text, err
}

// wsURL is the endpoint of room and name on the server at base.
func wsURL(base, room, name string) string {
	return "ws" + base[len("http"):] + "/ws?room=" + url.QueryEscape(room) + "&name=" + url.QueryEscape(name)
}

// client is a chat member on a real WebSocket session over loopback.
type client struct {
	t *testing.T
	s *session.Session
}

// dial opens a session to room as name; it is closed when the test ends.
func dial(t *testing.T, base, room, name string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := session.Dial(ctx, wsURL(base, room, name), nil)
	if err != nil {
		t.Fatalf("dial %s as %s: %v", room, name, err)
	}
	t.Cleanup(func() { s.CloseNow() })
	return &client{t: t, s: s}
}

// join dials and checks the welcome: the name given and the members.
func join(t *testing.T, base, room, name, want string, members ...string) *client {
	t.Helper()
	c := dial(t, base, room, name)
	c.expect(event{Type: "welcome", Room: room, Name: want, Members: members})
	return c
}

// next returns the next message the client gets.
func (c *client) next() event {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	m, err := c.s.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	defer m.Release()
	if m.Type != session.Text {
		c.t.Fatalf("a %v message from the server", m.Type)
	}
	var e event
	if err := json.Unmarshal(m.Payload, &e); err != nil {
		c.t.Fatalf("not JSON: %v: %s", err, m.Payload)
	}
	return e
}

// expect checks that the next message is want. A said event's time is
// checked apart (checkAt) and not compared.
func (c *client) expect(want event) event {
	c.t.Helper()
	got := c.next()
	at := got.At
	if want.Type == "said" {
		got.At = ""
	}
	if !equalEvents(got, want) {
		c.t.Fatalf("got %+v, want %+v", got, want)
	}
	got.At = at
	return got
}

func equalEvents(a, b event) bool {
	if a.Type != b.Type || a.Room != b.Room || a.Name != b.Name || a.Text != b.Text || a.At != b.At || len(a.Members) != len(b.Members) {
		return false
	}
	for i := range a.Members {
		if a.Members[i] != b.Members[i] {
			return false
		}
	}
	return true
}

// say sends a say with text.
func (c *client) say(text string) {
	c.t.Helper()
	p, _ := json.Marshal(map[string]string{"type": "say", "text": text})
	c.send(session.Text, p)
}

// send writes a raw message and waits until it is written.
func (c *client) send(typ session.MessageType, p []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.s.WriteContext(ctx, typ, p); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// ended waits for the session's end, dropping what still arrives, and
// returns its error.
func (c *client) ended() error {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		m, err := c.s.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				c.t.Fatalf("the session did not end: %v", err)
			}
			<-c.s.Done()
			return c.s.Err()
		}
		m.Release()
	}
}

// leave runs the closing handshake from the client's side.
func (c *client) leave() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.s.CloseContext(ctx, session.CloseReason{Code: session.CloseNormalClosure}); err != nil {
		c.t.Fatalf("close: %v", err)
	}
}
