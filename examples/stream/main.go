// Command stream sends a file as one WebSocket message without holding it
// in memory: a MessageWriter sends it in frames of Options.FragmentSize
// (DefaultStreamFrameSize, 64 KiB, when unset) as they fill.
//
//	stream -url ws://127.0.0.1:8080/ FILE
package main

import (
	"context"
	"flag"
	"io"
	"log"
	"os"
	"time"

	"github.com/wsactor/wsactor/session"
)

func main() {
	url := flag.String("url", "ws://127.0.0.1:8080/", "the server")
	flag.Parse()
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := session.Dial(ctx, *url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.CloseNow()
	if err := send(ctx, s, f); err != nil {
		log.Fatal(err)
	}
	s.CloseContext(ctx, session.CloseReason{Code: session.CloseNormalClosure})
}

// send writes what r holds as one binary message. The session's other
// data writes wait behind it; pings and pongs go between its frames.
func send(ctx context.Context, s *session.Session, r io.Reader) error {
	w := s.NewWriter(ctx, session.Binary)
	_, err := io.Copy(w, r) // reads straight into pooled frame buffers
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}
