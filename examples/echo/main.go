// Command echo is the smallest wsactor server: it echoes every message on
// ws://127.0.0.1:8080/.
package main

import (
	"log"
	"net/http"

	"github.com/wsactor/wsactor/session"
)

func main() {
	log.Println("echoing on ws://127.0.0.1:8080/")
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", echo()))
}

// echo upgrades every request to a session that sends each message back.
func echo() http.Handler {
	opts := &session.Options{
		// OnMessage runs on the session's reader goroutine. WriteMessage
		// takes m (the deferred Release then does nothing) and sends it
		// back without a copy; nil: no completion wanted.
		OnMessage: func(s *session.Session, m session.Message) {
			defer m.Release()
			s.WriteMessage(&m, nil)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session.Accept(w, r, opts) // a bad handshake gets its HTTP status (400, 403, 426)
	})
}
