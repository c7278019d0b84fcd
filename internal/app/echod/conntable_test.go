package echod

import (
	"sync"
	"testing"

	"github.com/wsactor/wsactor/session"
)

// newKeys returns n distinct sessions, used only as keys.
func newKeys(n int) []*session.Session {
	keys := make([]*session.Session, n)
	for i := range keys {
		keys[i] = new(session.Session)
	}
	return keys
}

// checkTable compares t with want: get, len and all agree with it.
func checkTable(tb testing.TB, t *connTable, want map[*session.Session]*conn, gone []*session.Session) {
	tb.Helper()
	if t.len() != len(want) {
		tb.Fatalf("len %d, want %d", t.len(), len(want))
	}
	for ss, c := range want {
		if got := t.get(ss); got != c {
			tb.Fatalf("get: %p, want %p", got, c)
		}
	}
	for _, ss := range gone {
		if got := t.get(ss); got != nil {
			tb.Fatalf("get of a deleted session: %p", got)
		}
	}
	n := 0
	for ss, c := range t.all() {
		if want[ss] != c {
			tb.Fatalf("all yields %p for a session whose record is %p", c, want[ss])
		}
		n++
	}
	if n != len(want) {
		tb.Fatalf("all yields %d sessions, want %d", n, len(want))
	}
}

func TestConnTable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		add    int // sessions added
		delete int // of them, deleted (the first ones)
		again  int // added after the deletions
	}{
		{
			name: "empty",
		},
		{
			name: "one",
			add:  1,
		},
		{
			name:   "one deleted",
			add:    1,
			delete: 1,
		},
		{
			name: "grown",
			add:  10 * minSlots,
		},
		{
			name:   "shrunk",
			add:    10 * minSlots,
			delete: 10*minSlots - 3,
		},
		{
			name:   "deleted slots reused",
			add:    minSlots / 4,
			delete: minSlots / 4,
			again:  minSlots / 4,
		},
		{
			name:   "churn",
			add:    5000,
			delete: 4000,
			again:  3000,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tab connTable
			want := make(map[*session.Session]*conn)
			keys := newKeys(tc.add + tc.again)
			for _, ss := range keys[:tc.add] {
				c := new(conn)
				tab.add(ss, c)
				want[ss] = c
			}
			checkTable(t, &tab, want, nil)
			gone := keys[:tc.delete]
			for _, ss := range gone {
				tab.delete(ss)
				delete(want, ss)
			}
			tab.delete(new(session.Session)) // not in the table: no effect
			checkTable(t, &tab, want, gone)
			for _, ss := range keys[tc.add:] {
				c := new(conn)
				tab.add(ss, c)
				want[ss] = c
			}
			checkTable(t, &tab, want, gone)
			if sl := tab.slots.Load(); sl != nil && 4*len(want) > 3*len(sl.slots) {
				t.Errorf("%d sessions in %d slots", len(want), len(sl.slots))
			}
		})
	}
}

// TestConnTableConcurrent: lookups without a lock find the sessions that
// stay, with their records, while others come and go and the table is
// rebuilt under them.
func TestConnTableConcurrent(t *testing.T) {
	var (
		mu  sync.Mutex // Server.mu's role
		tab connTable
	)
	stay := newKeys(100)
	recs := make([]*conn, len(stay))
	for i, ss := range stay {
		recs[i] = new(conn)
		tab.add(ss, recs[i])
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i, ss := range stay {
					if got := tab.get(ss); got != recs[i] {
						t.Errorf("get: %p, want %p", got, recs[i])
						return
					}
				}
			}
		})
	}
	churn := newKeys(2000)
	for round := range 20 {
		for _, ss := range churn {
			mu.Lock()
			tab.add(ss, new(conn))
			mu.Unlock()
		}
		for _, ss := range churn[:len(churn)-round] {
			mu.Lock()
			tab.delete(ss)
			mu.Unlock()
		}
		for _, ss := range churn[len(churn)-round:] {
			mu.Lock()
			tab.delete(ss)
			mu.Unlock()
		}
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if tab.len() != len(stay) {
		t.Errorf("len %d, want %d", tab.len(), len(stay))
	}
}

func BenchmarkConnTableGet(b *testing.B) {
	var tab connTable
	keys := newKeys(5000)
	for _, ss := range keys {
		tab.add(ss, new(conn))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if tab.get(keys[i%len(keys)]) == nil {
			b.Fatal("missing")
		}
	}
}
