package session

import (
	"time"

	"github.com/wsactor/wsactor/internal/netpoll"
)

// Parking: a session whose peer has been quiet for Options.ParkAfter gives
// up its reader goroutine. The tick asks for it by setting a read deadline
// in the past, which wakes the reader from its wait; the reader hands its
// state to the session, arms the process's poller on the socket and exits.
// When bytes (or the end of the stream) arrive, the poller starts a new
// reader goroutine that carries on with that state. An idle session then
// costs its heap state and no stack: the stack of a parked goroutine is
// most of what an idle connection costs in every Go WebSocket library.
const (
	parkRunning   uint32 = iota // a reader goroutine runs
	parkRequested               // the tick asked the reader to park
	parkParked                  // no reader goroutine; the poller waits
	parkDone                    // reading is over
	parkLinger                  // the session failed: the reader tears down
)

// aLongTimeAgo is a read deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

func (s *Session) parkAfter() time.Duration {
	if s.raw == nil || !netpoll.Supported() {
		return 0
	}
	return s.opts.parkAfter()
}

// requestPark asks the reader to park (from the tick's goroutine).
func (s *Session) requestPark() {
	if s.park.CompareAndSwap(parkRunning, parkRequested) {
		s.conn.SetReadDeadline(aLongTimeAgo)
	}
}

// parkReader parks r, on the reader's goroutine, which must exit when it
// reports true.
func (s *Session) parkReader(r *reader) bool {
	s.conn.SetReadDeadline(time.Time{})
	s.parkMu.Lock()
	defer s.parkMu.Unlock()
	if !s.park.CompareAndSwap(parkRequested, parkParked) {
		return false
	}
	s.parked = r
	tok, err := netpoll.Shared().Arm(s.raw, &s.parkReg, s.wake)
	if err != nil {
		s.parked = nil
		s.park.Store(parkRunning)
		return false
	}
	s.parkTok = tok
	return true
}

// startParked starts an accepted session with its reader parked, when it
// can park and nothing has come yet: in a storm of connections, a session
// costs no goroutine and no stack until its peer sends. It reports false
// when the reader must run instead.
func (s *Session) startParked() bool {
	if s.parkAfter() <= 0 {
		return false
	}
	r := s.newReader()
	s.parkMu.Lock()
	if !s.park.CompareAndSwap(parkRunning, parkParked) {
		// OnOpen ended the session: the reader tears down.
		s.parkMu.Unlock()
		return false
	}
	s.parked = r
	tok, err := netpoll.Shared().Arm(s.raw, &s.parkReg, s.wake)
	if err != nil {
		s.parked = nil
		s.park.Store(parkRunning)
		s.parkMu.Unlock()
		return false
	}
	s.parkTok = tok
	s.parkMu.Unlock()
	if s.mb.Stopped() {
		// The session ended before it parked (its actor's unpark found
		// nothing to end): end the reading side here.
		s.unpark()
	}
	return true
}

// wake runs on the poller's goroutine when a parked session's socket is
// readable.
func (s *Session) wake() {
	if s.park.CompareAndSwap(parkParked, parkRunning) {
		go s.resume()
	}
}

func (s *Session) resume() {
	s.parkMu.Lock()
	r := s.parked
	s.parked = nil
	s.active.Store(1)
	// Under parkMu, as the tick's own reset: a tick that saw the reader
	// parked cannot put its long sleep over this one.
	if p := s.tickPeriod(); p > 0 && s.tickEvery.Load() != int64(p) {
		s.tickEvery.Store(int64(p))
		s.idleTimer.Reset(p)
	}
	s.parkMu.Unlock()
	s.runReader(r)
}

// unpark ends the reading side of a session whose reader is parked, on the
// actor's goroutine, once the session has ended: nobody else will.
func (s *Session) unpark() {
	s.parkMu.Lock()
	if !s.park.CompareAndSwap(parkParked, parkDone) {
		s.parkMu.Unlock()
		return
	}
	netpoll.Shared().Disarm(s.parkTok)
	r := s.parked
	s.parked = nil
	s.parkMu.Unlock()
	r.release()
	if s.inbound != nil {
		close(s.inbound)
	}
}
