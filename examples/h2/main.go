// Command h2 serves WebSockets over HTTP/1.1 and over HTTP/2 (RFC 8441)
// with one handler, on 127.0.0.1:8443: over TLS with -cert and -key
// (browsers speak HTTP/2 only over TLS), else over cleartext HTTP/2 (h2c)
// beside HTTP/1.1.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/wsactor/wsactor/session"
	_ "github.com/wsactor/wsactor/xconnect" // RFC 8441 in net/http's HTTP/2 server
)

func main() {
	cert := flag.String("cert", "", "TLS certificate `file` (PEM)")
	key := flag.String("key", "", "TLS key `file` (PEM)")
	flag.Parse()
	srv := &http.Server{Addr: "127.0.0.1:8443", Handler: echo(), Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(true)
	log.Printf("WebSockets over HTTP/2: %v", session.ExtendedConnect())
	if *cert != "" {
		log.Fatal(srv.ListenAndServeTLS(*cert, *key))
	}
	srv.Protocols.SetUnencryptedHTTP2(true)
	log.Fatal(srv.ListenAndServe())
}

// echo sends every message of every session back. It returns right after
// Accept, as handlers do over HTTP/1.1: session.Handler keeps an HTTP/2
// stream for its session until the session ends.
func echo() http.Handler {
	opts := &session.Options{
		OnMessage: func(s *session.Session, m session.Message) { s.WriteMessage(&m, nil) },
	}
	return session.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := session.Accept(w, r, opts); err != nil {
			return // Accept has answered with the fitting HTTP status
		}
		log.Printf("a session over %s", r.Proto)
	}))
}
