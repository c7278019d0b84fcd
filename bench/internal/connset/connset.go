// Package connset keeps the open connections of a benchmark server, so that
// the stats endpoint can count them and Close can end them and wait for their
// goroutines (the in-process smoke tests check for leaks).
package connset

import (
	"io"
	"sync"
	"sync/atomic"
)

// Set is a set of open connections and the goroutines that serve them. The
// zero value is ready to use.
type Set struct {
	mu     sync.Mutex
	m      map[io.Closer]struct{}
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

// Close closes every connection, refuses new ones, and waits until every
// goroutine recorded by Add or Go has finished.
func (s *Set) Close() {
	s.mu.Lock()
	s.closed = true
	cs := make([]io.Closer, 0, len(s.m))
	for c := range s.m {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
	s.wg.Wait()
}
