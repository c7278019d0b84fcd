// Command rooms is a room server: every message sent on
// ws://127.0.0.1:8080/room/NAME reaches every session of that room, the
// sender included, encoded once, with a bound on what a member that does
// not read may hold.
package main

import (
	"context"
	"log"
	"net/http"

	"github.com/wsactor/wsactor/session"
)

func main() {
	log.Println("rooms on ws://127.0.0.1:8080/room/NAME")
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", rooms(session.NewRooms(nil))))
}

// rooms serves /room/NAME on rs. A member that falls 1 MiB behind
// (GroupOptions.MaxBacklog) misses broadcasts until it catches up, and
// Session.Dropped counts them; rs.Close(reason) closes every member.
func rooms(rs *session.Rooms) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/room/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		session.Accept(w, r, &session.Options{
			// Joined before the session reads a byte; it leaves by
			// itself when it ends.
			OnOpen: func(_ context.Context, s *session.Session) { rs.Join(name, s) },
			// Broadcasts from a handler go out in a batch per read.
			OnMessage: func(s *session.Session, m session.Message) {
				defer m.Release()
				rs.Publish(name, m.Type, m.Payload)
			},
		})
	})
	return mux
}
