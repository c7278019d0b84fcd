// Package connset keeps the listeners and open connections of a benchmark
// server, so that the stats endpoint can count the connections and Close
// can end them all and wait for their goroutines (the in-process smoke
// tests check for leaks).
package connset

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Set is a set of open connections and the goroutines that serve them. The
// zero value is ready to use.
type Set struct {
	mu     sync.Mutex
	m      map[io.Closer]struct{}
	lns    []net.Listener
	closed bool
	n      atomic.Int64
	wg     sync.WaitGroup
}

// Add records c and one goroutine serving it. It returns false, having
// closed c, once the set is closed; the caller then must not serve c.
// Every Add that returns true is matched by one Done.
func (s *Set) Add(c io.Closer) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.Close()
		return false
	}
	if s.m == nil {
		s.m = make(map[io.Closer]struct{})
	}
	s.m[c] = struct{}{}
	s.n.Add(1)
	s.wg.Add(1)
	s.mu.Unlock()
	return true
}

// Serve accepts connections on ln until Close and serves each with serve on
// a goroutine of its own, recorded as by Add: serve must call Done. Accept
// errors that pass (timeouts, too many open files) are retried after a
// growing pause. It returns nil after Close.
func (s *Set) Serve(ln net.Listener, serve func(net.Conn)) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if s.Add(c) {
			go serve(c)
		}
	}
}

// Done forgets c and marks its goroutine finished. The caller closes c.
func (s *Set) Done(c io.Closer) {
	s.mu.Lock()
	if _, ok := s.m[c]; ok {
		delete(s.m, c)
		s.n.Add(-1)
	}
	s.mu.Unlock()
	s.wg.Done()
}

// Go runs f on a new goroutine that Close waits for. It must be called from
// a goroutine the set already counts (one recorded by Add, before its Done),
// so that the count cannot reach zero while Close waits.
func (s *Set) Go(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Len returns the number of open connections.
func (s *Set) Len() int64 {
	return s.n.Load()
}

// Close closes the listeners of Serve and every connection, refuses new
// ones, and waits until every goroutine recorded by Add or Go has finished.
func (s *Set) Close() {
	s.mu.Lock()
	s.closed = true
	lns := s.lns
	s.lns = nil
	cs := make([]io.Closer, 0, len(s.m))
	for c := range s.m {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, ln := range lns {
		_ = ln.Close()
	}
	for _, c := range cs {
		_ = c.Close()
	}
	s.wg.Wait()
}
