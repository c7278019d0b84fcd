package session

// The session's tick: keep-alive pings, the idle timeout, the deadline of
// a message in progress, and the request to park an idle reader.

import (
	"time"
)

// tickPeriod is how often the session looks at its reader's activity: half
// the idle timeout, or the park delay when that is shorter; 0 when there is
// nothing to look for.
func (s *Session) tickPeriod() time.Duration {
	p := s.opts.idleTimeout(s.role) / 2
	if park := s.parkAfter(); park > 0 && (p == 0 || park < p) {
		p = park
	}
	if m := s.opts.messageTimeout(s.role) / 2; m > 0 && (p == 0 || m < p) {
		p = m
	}
	return p
}

// tick runs on a timer goroutine. It needs the actor only when there is
// something to do: a keep-alive ping to send, a session to close; and the
// reader only to park it.
func (s *Session) tick() {
	if s.mb.Stopped() {
		return
	}
	if s.opts.OnMessage != nil {
		// A handler that blocks on something other than a completion of
		// its own (which ends the hold at once) holds the actor: its
		// commands go out at the next tick at the latest.
		s.mb.Kick()
	}
	var quiet time.Duration
	if s.active.Swap(0) != 0 {
		s.quiet.Store(0)
		s.clear(flagPinged)
	} else {
		quiet = time.Duration(s.quiet.Add(s.tickEvery.Load()))
	}
	idle := s.opts.idleTimeout(s.role)
	if park := s.parkAfter(); quiet > 0 && park > 0 && quiet >= park {
		s.requestPark()
	}
	switch {
	case idle > 0 && quiet >= idle+idle/2:
		// The actor could not close in time (a write blocked on a peer
		// that does not read): close by force.
		s.conn.Close()
		return
	case idle > 0 && quiet >= idle:
		s.mb.SendUrgent(cmd{kind: cmdIdleTimeout})
	case idle > 0 && quiet >= idle/2 && !s.is(flagPinged):
		s.set(flagPinged)
		s.mb.SendUrgent(cmd{kind: cmdKeepalive})
	}
	due := s.msgDue.Load()
	if due != 0 && time.Now().UnixNano() >= due {
		s.mb.SendUrgent(cmd{kind: cmdMessageTimeout})
	}
	next := s.tickPeriod()
	if s.park.Load() == parkParked {
		// Nothing comes from a parked reader until it wakes (and restarts
		// the ticks): sleep until the next keep-alive event, if any.
		switch {
		case idle == 0 && due == 0:
			s.tickEvery.Store(0)
			return
		case idle == 0:
			next = time.Hour // the message's deadline, below
		case !s.is(flagPinged) && quiet < idle/2:
			next = idle/2 - quiet
		case quiet < idle:
			next = idle - quiet
		default:
			next = idle / 2
		}
		if due != 0 {
			// A message in progress: its deadline comes first, if sooner.
			next = max(min(next, time.Duration(due-time.Now().UnixNano())), time.Millisecond)
		}
	}
	s.parkMu.Lock()
	if next != s.tickPeriod() && s.park.Load() != parkParked {
		// The reader woke (resume) since the state was read above: the
		// long sleep of a parked session would leave it without ticks.
		next = s.tickPeriod()
	}
	s.tickEvery.Store(int64(next))
	s.idleTimer.Reset(next)
	s.parkMu.Unlock()
}
