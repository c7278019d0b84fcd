package echod

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/wsactor/wsactor/session"
)

// hub is the set of sessions on /broadcast.
type hub struct {
	mu      sync.RWMutex
	members []*member
}

// member is one session's place in the hub.
type member struct {
	s       *session.Session // guarded by hub.mu
	slot    int              // index in hub.members; guarded by hub.mu
	state   atomic.Uint32    // memberNew, memberIn, memberGone; changed under hub.mu
	dropped atomic.Int64     // deliveries refused for a full backlog
}

const (
	memberNew uint32 = iota
	memberIn
	memberGone
)

// join adds m (session s) to the hub, once. A session joins at its first
// message or once its handshake is done, whichever comes first, so that it
// gets its own first message back; one that left does not come back.
func (h *hub) join(m *member, s *session.Session) {
	if m.state.Load() != memberNew {
		return // the path of every message after the first
	}
	h.mu.Lock()
	if m.state.Load() == memberNew {
		m.s = s
		m.slot = len(h.members)
		h.members = append(h.members, m)
		m.state.Store(memberIn)
	}
	h.mu.Unlock()
}

// leave takes m out of the hub for good.
func (h *hub) leave(m *member) {
	h.mu.Lock()
	if m.state.Load() == memberIn {
		i, last := m.slot, len(h.members)-1
		h.members[i] = h.members[last]
		h.members[i].slot = i
		h.members[last] = nil
		h.members = h.members[:last]
	}
	m.state.Store(memberGone)
	h.mu.Unlock()
}

// onBroadcast sends m to every session on the hub, the sender included. The
// message is encoded once (session.Prepare copies the payload once into a
// pooled frame) and every session writes the same bytes.
//
// A member that does not keep up loses messages instead of making every
// sender wait for the slowest receiver: once its backlog holds
// Config.MaxPendingBytes (or its mailbox is full), its deliveries are
// refused at the call with session.ErrMailboxFull, and each is counted, for
// the member (its session end line) and in broadcast_dropped. A member
// that does not read at all is ended by the write timeout and leaves the
// hub (Server.ended). A delivery refused because the member's session has
// just ended is not a drop: that member is leaving.
func (s *Server) onBroadcast(ss *session.Session, m session.Message) {
	size := int64(len(m.Payload))
	c := connOf(ss)
	c.n.msgsIn.Add(1)
	c.n.bytesIn.Add(size)
	s.hub.join(c.member, ss)
	pf := session.Prepare(m.Type, m.Payload)
	m.Release()
	var sent, dropped int64
	h := s.hub
	h.mu.RLock()
	for _, mb := range h.members {
		_, err := mb.s.WritePrepared(pf, nil)
		switch {
		case err == nil:
			sent++
		case errors.Is(err, session.ErrMailboxFull):
			mb.dropped.Add(1)
			dropped++
		}
	}
	h.mu.RUnlock()
	pf.Release()
	c.n.msgsOut.Add(sent)
	c.n.bytesOut.Add(sent * size)
	if dropped > 0 {
		s.m.broadcastDropped.Add(dropped)
	}
}
