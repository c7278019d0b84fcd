package chat

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/wsactor/wsactor/session"
)

// memBroker is a session.Broker between servers of one test process: a
// message published on one is delivered at once to the others subscribed
// to its room.
type memBroker struct {
	mu   *sync.Mutex
	subs map[string]map[*memBroker]func(session.MessageType, []byte)
	down bool // Publish refuses
}

func newMemBrokers(n int) []*memBroker {
	mu := new(sync.Mutex)
	subs := map[string]map[*memBroker]func(session.MessageType, []byte){}
	var bs []*memBroker
	for range n {
		bs = append(bs, &memBroker{mu: mu, subs: subs})
	}
	return bs
}

func (b *memBroker) Publish(room string, typ session.MessageType, p []byte) error {
	b.mu.Lock()
	if b.down {
		b.mu.Unlock()
		return errors.New("broker down")
	}
	var deliver []func(session.MessageType, []byte)
	for node, f := range b.subs[room] {
		if node != b {
			deliver = append(deliver, f)
		}
	}
	b.mu.Unlock()
	for _, f := range deliver {
		f(typ, p)
	}
	return nil
}

func (b *memBroker) Subscribe(room string, deliver func(session.MessageType, []byte)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs[room] == nil {
		b.subs[room] = map[*memBroker]func(session.MessageType, []byte){}
	}
	b.subs[room][b] = deliver
	return nil
}

func (b *memBroker) Unsubscribe(room string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs[room], b)
	return nil
}

// TestBrokerSaysSpanPresenceStays: two servers on one broker. A say reaches
// the room's members on both; joined and left stay on their server, whose
// welcome lists only its own members; another room hears nothing.
func TestBrokerSaysSpanPresenceStays(t *testing.T) {
	bs := newMemBrokers(2)
	_, a := startServer(t, Config{Broker: bs[0]})
	_, b := startServer(t, Config{Broker: bs[1]})

	alice := join(t, a, "lobby", "alice", "alice", "alice")
	bob := join(t, b, "lobby", "bob", "bob", "bob")
	other := join(t, b, "other", "eve", "eve", "eve")

	alice.say("hi")
	for _, c := range []*client{alice, bob} {
		c.expect(event{Type: "said", Name: "alice", Text: "hi"})
	}
	carol := join(t, b, "lobby", "carol", "carol", "bob", "carol")
	bob.expect(event{Type: "joined", Name: "carol"})
	bob.say("yo")
	// alice hears bob's say, and nothing of carol's join.
	for _, c := range []*client{alice, bob, carol} {
		c.expect(event{Type: "said", Name: "bob", Text: "yo"})
	}
	carol.leave()
	bob.expect(event{Type: "left", Name: "carol"})
	// A second "alice" on b is "alice": names are unique per server.
	alice2 := join(t, b, "lobby", "alice", "alice", "alice", "bob")
	bob.expect(event{Type: "joined", Name: "alice"})
	alice.say("end")
	for _, c := range []*client{alice, bob, alice2} {
		c.expect(event{Type: "said", Name: "alice", Text: "end"})
	}
	other.say("mine")
	other.expect(event{Type: "said", Name: "eve", Text: "mine"})
}

// TestVars: /debug/vars counts the rooms, their members and what went
// through the broker: says handed to it, refused by it (lost for the other
// server, delivered here), and received from the other server; and the
// values Config.Vars adds.
func TestVars(t *testing.T) {
	bs := newMemBrokers(2)
	_, a := startServer(t, Config{Broker: bs[0], Vars: map[string]func() any{"extra": func() any { return "here" }}})
	_, b := startServer(t, Config{Broker: bs[1]})
	alice := join(t, a, "lobby", "alice", "alice", "alice")
	bob := join(t, b, "lobby", "bob", "bob", "bob")
	alice.say("one")
	for _, c := range []*client{alice, bob} {
		c.expect(event{Type: "said", Name: "alice", Text: "one"})
	}
	bs[0].mu.Lock()
	bs[0].down = true
	bs[0].mu.Unlock()
	alice.say("lost")
	alice.expect(event{Type: "said", Name: "alice", Text: "lost"})
	bob.say("two")
	for _, c := range []*client{alice, bob} {
		c.expect(event{Type: "said", Name: "bob", Text: "two"})
	}
	va, vb := getVars(t, a), getVars(t, b)
	for _, c := range []struct {
		name string
		vars map[string]any
		key  string
		want any
	}{
		{"a", va, "rooms", 1.0},
		{"a", va, "room_members", 1.0},
		{"a", va, "broker_published", 1.0},
		{"a", va, "broker_lost", 1.0},
		{"a", va, "broker_remote", 1.0},
		{"a", va, "extra", "here"},
		{"b", vb, "broker_published", 1.0},
		{"b", vb, "broker_lost", 0.0},
		{"b", vb, "broker_remote", 1.0},
		{"b", vb, "delivered", 2.0},
	} {
		if got := c.vars[c.key]; got != c.want {
			t.Errorf("%s: %s = %v, want %v", c.name, c.key, got, c.want)
		}
	}
}

// getVars returns the server's /debug/vars.
func getVars(t *testing.T, base string) map[string]any {
	t.Helper()
	resp, err := http.Get(base + "/debug/vars")
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
