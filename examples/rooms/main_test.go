package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsactor/wsactor/session"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Two sessions in room "a" and one in room "b": a message sent in "a"
// reaches both of "a" (the sender too) and not "b".
func TestRooms(t *testing.T) {
	rs := session.NewRooms(nil)
	srv := httptest.NewServer(rooms(rs))
	defer srv.Close()
	defer rs.Close(session.CloseReason{Code: session.CloseGoingAway})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/room/"
	dial := func(room string) *session.Session {
		c, err := session.Dial(ctx, url+room, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	a1, a2, b := dial("a"), dial("a"), dial("b")
	// until reads c's messages up to want, and returns those it read.
	until := func(c *session.Session, want string) []string {
		var got []string
		for {
			m, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("waiting for %q: %v (read %q)", want, err, got)
			}
			got = append(got, string(m.Payload))
			m.Release()
			if got[len(got)-1] == want {
				return got
			}
		}
	}
	say := func(c *session.Session, text string) {
		if err := c.WriteContext(ctx, session.Text, []byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	// Each hears its own hello once it is a member.
	for i, c := range []*session.Session{a1, a2, b} {
		hi := "hi " + string(rune('0'+i))
		say(c, hi)
		until(c, hi)
	}
	say(a1, "hello a")
	until(a1, "hello a")
	until(a2, "hello a")
	say(b, "hello b")
	for _, m := range until(b, "hello b") {
		if m == "hello a" || m == "hi 0" || m == "hi 1" {
			t.Errorf("the member of b got %q from room a", m)
		}
	}
}
