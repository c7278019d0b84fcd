package interop

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wsactor/wsactor/session"
)

// concurrentMessage is message seq of writer w: a header that names it,
// then filler of one of sizes, text or binary by turns.
func concurrentMessage(w, seq int, sizes []int) (session.MessageType, []byte) {
	typ := session.Binary
	if (w+seq)%2 == 0 {
		typ = session.Text
	}
	header := fmt.Appendf(nil, "w%03d-s%06d|", w, seq)
	return typ, append(header, payload(typ, sizes[(w+seq)%len(sizes)], w*100000+seq)...)
}

// TestConcurrentWriters: many goroutines write on one wsactor client
// session at once, with no lock of their own (the session's actor owns the
// writes), to a gorilla echo server. Every write completes without error
// and in the order its writer issued it, and every message comes back
// whole, each writer's in its order: no frame of one message got inside
// another's, fragmented ones included.
func TestConcurrentWriters(t *testing.T) {
	cases := []struct {
		name         string
		writers      int
		perWriter    int
		sizes        []int
		fragmentSize int // session.Options.FragmentSize
		window       int // writes a writer has in flight at most
	}{
		{
			name:      "32-writers-small",
			writers:   32,
			perWriter: 100,
			sizes:     []int{0, 1, 100, 125, 126, 1000},
			window:    16,
		},
		{
			name:      "8-writers-mixed",
			writers:   8,
			perWriter: 40,
			sizes:     []int{0, 126, 4000, 65535, 65536, 100000},
			window:    8,
		},
		{
			name:      "4-writers-large",
			writers:   4,
			perWriter: 6,
			sizes:     []int{300000, 1 << 20},
			window:    2,
		},
		{
			name:         "8-writers-fragmented-by-wsactor",
			writers:      8,
			perWriter:    30,
			sizes:        []int{0, 100, 5000, 20000},
			fragmentSize: 1024,
			window:       8,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := startPeerServer(t, peerServerLibs[0]) // gorilla
			s := dialSession(t, ps.URL, &session.Options{FragmentSize: tc.fragmentSize})

			total := tc.writers * tc.perWriter
			received := make(chan error, 1)
			go func() { received <- receiveAll(s, tc.writers, tc.perWriter, tc.sizes) }()

			var wg sync.WaitGroup
			errs := make(chan error, tc.writers)
			for w := range tc.writers {
				wg.Go(func() { errs <- writeAll(s, w, tc.perWriter, tc.window, tc.sizes) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			select {
			case err := <-received:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(testTimeout):
				t.Fatalf("not all %d messages came back within %v", total, testTimeout)
			}
			closeSession(t, s, ps, 1000, "done")
		})
	}
}

// writeAll writes writer w's messages with at most window in flight and
// checks their completions.
func writeAll(s *session.Session, w, n, window int, sizes []int) error {
	reply := make(chan session.Completion, window)
	var ids, lens []int
	next := 0 // the next completion expected, as an index into ids
	await := func() error {
		select {
		case c := <-reply:
			want := ids[next]
			if c.Kind != session.KindWrite || c.ID != uint64(want) {
				return fmt.Errorf("writer %d: completion for %s #%d, want write #%d (completions out of order)", w, c.Kind, c.ID, want)
			}
			if c.Err != nil || c.N != lens[next] {
				return fmt.Errorf("writer %d: write #%d: N=%d err=%v, want N=%d", w, c.ID, c.N, c.Err, lens[next])
			}
			next++
			return nil
		case <-time.After(testTimeout):
			return fmt.Errorf("writer %d: no completion within %v", w, testTimeout)
		}
	}
	for seq := range n {
		if len(ids)-next == window {
			if err := await(); err != nil {
				return err
			}
		}
		typ, p := concurrentMessage(w, seq, sizes)
		ids = append(ids, int(idOf(s.Write(typ, p, reply))))
		lens = append(lens, len(p))
	}
	for next < len(ids) {
		if err := await(); err != nil {
			return err
		}
	}
	return nil
}

// receiveAll reads writers*perWriter messages and checks each against what
// its writer sent, and that each writer's come in order.
func receiveAll(s *session.Session, writers, perWriter int, sizes []int) error {
	nextSeq := make([]int, writers)
	for range writers * perWriter {
		m, ok := <-s.Messages()
		if !ok {
			return fmt.Errorf("Messages closed early: %v", s.Err())
		}
		var w, seq int
		if _, err := fmt.Sscanf(string(m.Payload[:min(len(m.Payload), 14)]), "w%03d-s%06d|", &w, &seq); err != nil || w < 0 || w >= writers {
			m.Release()
			return fmt.Errorf("a message with a bad header: %q", m.Payload[:min(len(m.Payload), 14)])
		}
		if seq != nextSeq[w] {
			m.Release()
			return fmt.Errorf("writer %d: message %d came when %d was next", w, seq, nextSeq[w])
		}
		nextSeq[w]++
		typ, want := concurrentMessage(w, seq, sizes)
		ok = m.Type == typ && string(m.Payload) == string(want)
		got, gotType := len(m.Payload), m.Type
		m.Release()
		if !ok {
			return fmt.Errorf("writer %d message %d: got %s of %d bytes, want %s of %d bytes with the content sent", w, seq, gotType, got, typ, len(want))
		}
	}
	return nil
}
