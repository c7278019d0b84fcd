package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsactor/wsactor/session"
)

// testTimeout bounds every wait of a test: a handshake, an echo, a close.
// Nothing waits for it to pass; it only turns a hang into a failure.
const testTimeout = 20 * time.Second

// echoSizes are the message sizes every echo test sends: the empty
// message, the edges of the 7-bit, 16-bit and 64-bit length encodings, and
// 1 MiB.
var echoSizes = []int{0, 1, 125, 126, 65535, 65536, 1 << 20}

// echoCase is one message an echo test sends and expects back.
type echoCase struct {
	name string
	typ  session.MessageType
	size int
}

// echoCases is every size in echoSizes, as text and as binary.
func echoCases() []echoCase {
	var cases []echoCase
	for _, typ := range []session.MessageType{session.Text, session.Binary} {
		for _, size := range echoSizes {
			cases = append(cases, echoCase{
				name: fmt.Sprintf("%s/%dB", typ, size),
				typ:  typ,
				size: size,
			})
		}
	}
	return cases
}

// payload returns n bytes that differ from one offset to the next and from
// one seed to another, so that a lost, repeated or misplaced chunk shows:
// printable ASCII (valid UTF-8) for text, every byte value for binary.
func payload(typ session.MessageType, n int, seed int) []byte {
	p := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range p {
		x = x*1664525 + 1013904223
		if typ == session.Text {
			p[i] = ' ' + byte((x>>24)%95)
		} else {
			p[i] = byte(x >> 24)
		}
	}
	return p
}

// checkPayload reports where got differs from want.
func checkPayload(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	if len(got) != len(want) {
		t.Errorf("%s: got %d bytes, want %d", what, len(got), len(want))
		return
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s: %d bytes, first difference at offset %d: got %#x, want %#x", what, len(got), i, got[i], want[i])
			return
		}
	}
}

// wsURL turns an httptest server's http:// URL into a ws:// one.
func wsURL(httpURL string) string { return "ws" + strings.TrimPrefix(httpURL, "http") }

// wsactorServer is a wsactor echo server on loopback: every message comes
// back with its own type, through OnMessage and WriteMessage (no copy).
// Sessions carries each accepted session to the test.
type wsactorServer struct {
	URL      string
	Sessions chan *session.Session

	mu  sync.Mutex
	all []*session.Session
}

// startWsactorServer starts a wsactor echo server for the test. At the
// test's end every session it accepted must have ended (the test waits for
// them); one still open is canceled and reported.
func startWsactorServer(t *testing.T) *wsactorServer {
	t.Helper()
	return startWsactorServerWith(t, session.Options{})
}

// startWsactorServerWith is startWsactorServer with opts, to which it adds
// the echo handler and a 5 s handshake timeout.
func startWsactorServerWith(t *testing.T, o session.Options) *wsactorServer {
	t.Helper()
	e := &wsactorServer{Sessions: make(chan *session.Session, 64)}
	opts := &o
	opts.HandshakeTimeout = 5 * time.Second
	opts.OnMessage = func(s *session.Session, m session.Message) {
		s.WriteMessage(&m, nil)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := session.Accept(w, r, opts)
		if err != nil {
			t.Errorf("wsactor server: %v", err)
			return
		}
		e.mu.Lock()
		e.all = append(e.all, s)
		e.mu.Unlock()
		select {
		case e.Sessions <- s:
		default:
			t.Errorf("wsactor server: more sessions than the test takes")
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, s := range e.all {
			awaitEnd(t, s, "server session")
		}
	})
	e.URL = wsURL(srv.URL)
	return e
}

// next returns the next session the server accepted.
func (e *wsactorServer) next(t *testing.T) *session.Session {
	t.Helper()
	select {
	case s := <-e.Sessions:
		return s
	case <-time.After(testTimeout):
		t.Fatalf("wsactor server accepted no session within %v", testTimeout)
		return nil
	}
}

// awaitEnd waits for s to end; if it does not within testTimeout, it is
// canceled (so that no goroutine outlives the test) and the test fails.
// In a test that has already failed it cancels s at once.
func awaitEnd(t *testing.T, s *session.Session, what string) {
	t.Helper()
	if t.Failed() {
		// A failed test may have left the session half way: end it now.
		s.Cancel(session.Terminal, nil)
	}
	select {
	case <-s.Done():
		return
	case <-time.After(testTimeout):
	}
	t.Errorf("%s still open after %v; canceling it", what, testTimeout)
	s.Cancel(session.Terminal, nil)
	<-s.Done()
}

// drainMessages releases whatever is left on a session's Messages channel
// until it is closed.
func drainMessages(s *session.Session) {
	for m := range s.Messages() {
		m.Release()
	}
}

// checkCloseErr checks that err is a *session.CloseError with code and
// reason.
func checkCloseErr(t *testing.T, what string, err error, code int, reason string) {
	t.Helper()
	var ce *session.CloseError
	if !errors.As(err, &ce) {
		t.Errorf("%s: got %v (%T), want a *session.CloseError with %d %q", what, err, err, code, reason)
		return
	}
	if int(ce.Code) != code || ce.Reason != reason {
		t.Errorf("%s: got close %d %q, want %d %q", what, uint16(ce.Code), ce.Reason, code, reason)
	}
	if !errors.Is(err, session.ErrClosed) {
		t.Errorf("%s: %v does not match session.ErrClosed", what, err)
	}
}

// awaitCompletion receives one completion from reply and checks that it
// answers the command kind/id.
func awaitCompletion(t *testing.T, reply <-chan session.Completion, kind session.Kind, id uint64) session.Completion {
	t.Helper()
	select {
	case c := <-reply:
		if c.Kind != kind || c.ID != id {
			t.Errorf("completion for %s #%d, want %s #%d", c.Kind, c.ID, kind, id)
		}
		return c
	case <-time.After(testTimeout):
		t.Fatalf("no completion for %s #%d within %v", kind, id, testTimeout)
		return session.Completion{}
	}
}

// receive takes the next inbound message of a session that reads through
// its Messages channel.
func receive(t *testing.T, s *session.Session) session.Message {
	t.Helper()
	select {
	case m, ok := <-s.Messages():
		if !ok {
			t.Fatalf("Messages closed: %v", s.Err())
		}
		return m
	case <-time.After(testTimeout):
		t.Fatalf("no message within %v", testTimeout)
		return session.Message{}
	}
}

// testContext returns a context bounded by testTimeout and the test.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// idOf is the id of a command call, whatever its error.
func idOf(id uint64, _ error) uint64 { return id }
