package interop

import (
	"bytes"
	"io"
	"testing"

	"github.com/wsactor/wsactor/session"
)

// TestStreamedMessage: a wsactor server streams a message with
// NewWriter (io.Copy from a reader, 64 KiB frames, so the message is a
// first frame and continuations); each client library reassembles it whole,
// and a write issued while it streams comes after it.
func TestStreamedMessage(t *testing.T) {
	const size = 3<<20 + 123
	for _, lib := range peerLibs {
		t.Run(lib.name, func(t *testing.T) {
			srv := startWsactorServer(t)
			c := dialPeer(t, lib, srv.URL)
			s := srv.next(t)
			want := payload(session.Binary, size, 9)
			ctx := testContext(t)
			errc := make(chan error, 1)
			go func() {
				w := s.NewWriter(ctx, session.Binary)
				_, err := io.Copy(w, bytes.NewReader(want))
				if cerr := w.Close(); err == nil {
					err = cerr
				}
				errc <- err
			}()
			typ, got, err := c.read(ctx)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if typ != session.Binary || !bytes.Equal(got, want) {
				t.Fatalf("got %v of %d bytes, want the %d bytes streamed", typ, len(got), size)
			}
			if err := <-errc; err != nil {
				t.Fatalf("streaming: %v", err)
			}
			if err := s.WriteContext(ctx, session.Text, []byte("after")); err != nil {
				t.Fatal(err)
			}
			if typ, got, err := c.read(ctx); err != nil || typ != session.Text || string(got) != "after" {
				t.Fatalf("after the streamed message: %v %q %v", typ, got, err)
			}
			if code, err := c.closeHandshake(1000, "done"); err != nil || code != 1000 {
				t.Fatalf("close: %d, %v", code, err)
			}
		})
	}
}
