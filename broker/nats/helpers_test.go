package natsbroker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	natsbroker "github.com/wsactor/wsactor/broker/nats"
	"github.com/wsactor/wsactor/session"
)

const testTimeout = 20 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startNATS runs a NATS server in the test's process on port (-1: a free
// one); the test's cleanup shuts it down if the test has not.
func startNATS(t *testing.T, port int) *server.Server {
	t.Helper()
	return startServer(t, &server.Options{Host: "127.0.0.1", Port: port})
}

func startServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	s := runServer(t, opts)
	t.Cleanup(func() { stopNATS(s) })
	return s
}

// runServer runs a NATS server that the caller stops.
func runServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		stopNATS(s)
		t.Fatal("nats server not ready after 10s")
	}
	return s
}

// restartable is a NATS server that tests stop and start again on its
// port; the test's cleanup stops the one running then.
type restartable struct {
	mu sync.Mutex
	s  *server.Server
}

func startRestartable(t *testing.T) *restartable {
	t.Helper()
	r := &restartable{s: runServer(t, &server.Options{Host: "127.0.0.1", Port: -1})}
	t.Cleanup(func() { stopNATS(r.server()) })
	return r
}

func (r *restartable) server() *server.Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.s
}

// stop stops the server and returns a func that starts it again on its
// port.
func (r *restartable) stop() (start func(t *testing.T)) {
	s := r.server()
	port := s.Addr().(*net.TCPAddr).Port
	stopNATS(s)
	return func(t *testing.T) {
		t.Helper()
		s := runServer(t, &server.Options{Host: "127.0.0.1", Port: port})
		r.mu.Lock()
		r.s = s
		r.mu.Unlock()
	}
}

func stopNATS(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// startCluster runs three NATS servers with routes between them.
func startCluster(t *testing.T) []*server.Server {
	t.Helper()
	var srvs []*server.Server
	var routes []*url.URL
	for range 3 {
		s := startServer(t, &server.Options{
			Host:    "127.0.0.1",
			Port:    -1,
			Cluster: server.ClusterOpts{Name: "wsactor", Host: "127.0.0.1", Port: -1},
			Routes:  routes,
		})
		srvs = append(srvs, s)
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: s.ClusterAddr().String()})
	}
	return srvs
}

func natsURL(s *server.Server) string { return "nats://" + s.Addr().String() }

// node is one "daemon": Rooms over a NATS broker, and an HTTP server whose
// handler accepts a WebSocket, joins it to the room named by the query
// parameter "room", and publishes to that room every message it sends.
type node struct {
	name   string
	rooms  *session.Rooms
	broker *natsbroker.Broker
	http   *httptest.Server
	joined chan string
}

func newNode(t *testing.T, name, natsURL string) *node {
	t.Helper()
	b, err := natsbroker.Connect(natsURL, &natsbroker.Options{Name: name, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{
		name:   name,
		broker: b,
		rooms:  session.NewRooms(&session.RoomsOptions{Broker: b}),
		joined: make(chan string, 64),
	}
	n.http = httptest.NewServer(http.HandlerFunc(n.serve))
	t.Cleanup(func() {
		n.http.Close()
		n.rooms.Close(session.CloseReason{Code: session.CloseGoingAway})
		b.Close()
	})
	return n
}

func (n *node) serve(w http.ResponseWriter, r *http.Request) {
	room := r.URL.Query().Get("room")
	s, err := session.Accept(w, r, &session.Options{
		OnMessage: func(s *session.Session, m session.Message) {
			defer m.Release()
			n.rooms.Publish(room, m.Type, m.Payload)
		},
	})
	if err != nil {
		return
	}
	n.rooms.Join(room, s)
	n.joined <- room
}

// member is a WebSocket client joined to a room of a node; what it
// receives goes to got, in order.
type member struct {
	s    *session.Session
	got  chan received
	done chan struct{}
}

type received struct {
	typ session.MessageType
	p   string
}

// join dials n, joins room and returns when the node has added the member.
func join(t *testing.T, n *node, room string) *member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	u := "ws" + strings.TrimPrefix(n.http.URL, "http") + "/?room=" + url.QueryEscape(room)
	s, err := session.Dial(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.joined:
	case <-ctx.Done():
		t.Fatalf("%s: no join of room %.40q", n.name, room)
	}
	m := &member{s: s, got: make(chan received, 1<<14), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		defer close(m.got)
		for {
			msg, err := s.Read(context.Background())
			if err != nil {
				return
			}
			m.got <- received{msg.Type, string(msg.Payload)}
			msg.Release()
		}
	}()
	t.Cleanup(func() {
		s.CloseNow()
		<-m.done
	})
	return m
}

// send writes p to the member's node, which publishes it to the room.
func (m *member) send(t *testing.T, p string) {
	t.Helper()
	if err := m.write(p); err != nil {
		t.Fatal(err)
	}
}

// write is send for goroutines other than the test's.
func (m *member) write(p string) error {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	return m.s.WriteContext(ctx, session.Text, []byte(p))
}

// next returns the payload of the next message the member received.
func (m *member) next(t *testing.T, timeout time.Duration) string {
	t.Helper()
	return m.nextMessage(t, timeout).p
}

func (m *member) nextMessage(t *testing.T, timeout time.Duration) received {
	t.Helper()
	select {
	case r, ok := <-m.got:
		if !ok {
			t.Fatalf("member's session ended: %v", m.s.Err())
		}
		return r
	case <-time.After(timeout):
		t.Fatalf("no message within %v", timeout)
	}
	return received{}
}

// flush waits until every node's subscriptions are at its NATS server.
func flush(t *testing.T, nodes ...*node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, n := range nodes {
		if err := n.broker.Flush(ctx); err != nil {
			t.Fatalf("%s: %v", n.name, err)
		}
	}
}

// waitInterest waits until every server of a cluster knows of want
// subscriptions to the room's subject (one per node): interest crosses
// routes after Flush returns.
func waitInterest(t *testing.T, srvs []*server.Server, room string, want int) {
	t.Helper()
	subject := natsbroker.DefaultPrefix + "." + natsbroker.Token(room) + ".t"
	deadline := time.Now().Add(testTimeout)
	for _, s := range srvs {
		for s.GlobalAccount().Interest(subject) < want {
			if time.Now().After(deadline) {
				t.Fatalf("server %s: interest in %s is %d, want %d", s.Name(), subject, s.GlobalAccount().Interest(subject), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// inOrder checks that got holds, for each sender, the messages
// "SENDER-0" ... "SENDER-(n-1)" exactly once each and in that order.
func inOrder(got []string, senders []string, n int) error {
	next := make(map[string]int)
	for _, s := range senders {
		next[s] = 0
	}
	for _, p := range got {
		sender, seq, ok := strings.Cut(p, "-")
		want, known := next[sender]
		if !ok || !known {
			return fmt.Errorf("unexpected message %q", p)
		}
		if seq != fmt.Sprint(want) {
			return fmt.Errorf("from %s: got %q, want %s-%d (lost, repeated or out of order)", sender, p, sender, want)
		}
		next[sender]++
	}
	for _, s := range senders {
		if next[s] != n {
			return fmt.Errorf("from %s: %d messages, want %d", s, next[s], n)
		}
	}
	return nil
}
