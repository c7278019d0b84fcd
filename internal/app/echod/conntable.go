package echod

import (
	"hash/maphash"
	"iter"
	"sync/atomic"

	"github.com/wsactor/wsactor/session"
)

// connTable maps each session to the Server's record of it, for the
// metrics, register and Shutdown (message handlers find the record as the
// session's value). A lookup takes no lock and writes no shared memory.
// Changes are made under Server.mu.
//
// It is a table of 16-byte slots with open addressing: far less per session
// than a copy of session.Options per session (which would let OnMessage
// reach the record through a closure), a map behind a lock, or a sync.Map.
// A session's slot, once filled, keeps its place until the session is
// deleted, and a slot once used never becomes empty again, so a lookup that
// loaded the table finds what the table held when it loaded it. The table is
// rebuilt into a new one when it fills up or empties out; a lookup still on
// the old one may then miss a session added since, or find a deleted one.
type connTable struct {
	slots atomic.Pointer[connSlots]
	live  int // sessions in the table
	used  int // slots ever filled in the current slots, deleted ones included
}

type connSlots struct {
	seed  maphash.Seed
	slots []connSlot // a power of two of them
}

// connSlot holds a session and its record. Its session is nil while the slot
// was never used, and deleted once its session was deleted.
type connSlot struct {
	s atomic.Pointer[session.Session]
	c atomic.Pointer[conn]
}

// deleted marks a slot whose session was deleted.
var deleted = new(session.Session)

// minSlots is the smallest table.
const minSlots = 64

// get returns the record of ss, or nil.
func (t *connTable) get(ss *session.Session) *conn {
	tab := t.slots.Load()
	if tab == nil {
		return nil
	}
	mask := len(tab.slots) - 1
	for i := tab.home(ss); ; i = (i + 1) & mask {
		sl := &tab.slots[i]
		switch sl.s.Load() {
		case ss:
			// Nil when ss is being deleted.
			return sl.c.Load()
		case nil:
			return nil
		}
	}
}

// len returns the number of sessions in the table. Call it under
// Server.mu.
func (t *connTable) len() int { return t.live }

// add adds ss, which must not be in the table, with its record c. Call it
// under Server.mu.
func (t *connTable) add(ss *session.Session, c *conn) {
	tab := t.slots.Load()
	if tab == nil || 4*(t.used+1) > 3*len(tab.slots) {
		tab = t.rebuild(t.live + 1)
	}
	mask := len(tab.slots) - 1
	for i := tab.home(ss); ; i = (i + 1) & mask {
		sl := &tab.slots[i]
		if p := sl.s.Load(); p == nil || p == deleted {
			if p == nil {
				t.used++
			}
			sl.c.Store(c) // first: a lookup that sees ss sees c
			sl.s.Store(ss)
			t.live++
			return
		}
	}
}

// delete removes ss from the table. Call it under Server.mu.
func (t *connTable) delete(ss *session.Session) {
	tab := t.slots.Load()
	if tab == nil {
		return
	}
	mask := len(tab.slots) - 1
	for i := tab.home(ss); ; i = (i + 1) & mask {
		sl := &tab.slots[i]
		switch sl.s.Load() {
		case ss:
			sl.s.Store(deleted)
			sl.c.Store(nil)
			t.live--
			if 8*t.live < len(tab.slots) && len(tab.slots) > minSlots {
				t.rebuild(t.live)
			}
			return
		case nil:
			return
		}
	}
}

// all yields every session in the table and its record. Call it under
// Server.mu.
func (t *connTable) all() iter.Seq2[*session.Session, *conn] {
	return func(yield func(*session.Session, *conn) bool) {
		tab := t.slots.Load()
		if tab == nil {
			return
		}
		for i := range tab.slots {
			sl := &tab.slots[i]
			if ss := sl.s.Load(); ss != nil && ss != deleted {
				if !yield(ss, sl.c.Load()) {
					return
				}
			}
		}
	}
}

// rebuild moves the live sessions to a new table, with room for n sessions
// at half load at most, and returns it.
func (t *connTable) rebuild(n int) *connSlots {
	size := minSlots
	for size < 2*n {
		size *= 2
	}
	tab := &connSlots{seed: maphash.MakeSeed(), slots: make([]connSlot, size)}
	mask := size - 1
	for ss, c := range t.all() {
		i := tab.home(ss)
		for tab.slots[i].s.Load() != nil {
			i = (i + 1) & mask
		}
		tab.slots[i].c.Store(c)
		tab.slots[i].s.Store(ss)
	}
	t.used = t.live
	t.slots.Store(tab)
	return tab
}

// home returns the slot where the probe for ss starts.
func (tab *connSlots) home(ss *session.Session) int {
	return int(maphash.Comparable(tab.seed, ss) & uint64(len(tab.slots)-1))
}
