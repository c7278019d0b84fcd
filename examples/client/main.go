// Command client talks to an echo server (ws://127.0.0.1:8080/ unless
// -url says otherwise) both ways wsactor offers: commands whose
// completions come on a channel, many in flight, and the blocking forms.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/wsactor/wsactor/session"
)

func main() {
	url := flag.String("url", "ws://127.0.0.1:8080/", "the echo server")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := run(ctx, *url); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, url string) error {
	s, err := session.Dial(ctx, url, nil)
	if err != nil {
		return err // a *session.HandshakeError carries the server's response
	}
	defer s.CloseNow()

	// The core: each command returns at once and is answered by exactly
	// one completion on the channel given, which may serve many commands.
	// A buffer is the session's until its completion.
	done := make(chan session.Completion, 3)
	for _, text := range []string{"one", "two", "three"} {
		if _, err := s.WriteText([]byte(text), done); err != nil {
			return err // refused at the call: the mailbox is full, or the session ended
		}
	}
	for range 3 {
		if c := <-done; c.Err != nil {
			return c.Err
		}
	}

	// The blocking forms, for code that needs no concurrency.
	if err := s.WriteContext(ctx, session.Text, []byte("four")); err != nil {
		return err
	}
	for range 4 {
		m, err := s.Read(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stdout, "%s\n", m.Payload)
		m.Release()
	}
	// The closing handshake, then the TCP teardown.
	return s.CloseContext(ctx, session.CloseReason{Code: session.CloseNormalClosure, Reason: "bye"})
}
