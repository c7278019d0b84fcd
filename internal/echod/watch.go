package echod

import (
	"reflect"
	"sync"
)

// The Server must learn when each session ends (for its metrics, its log
// line, MaxConns and Shutdown), and a session tells only through its Done
// channel. A goroutine parked on each Done would cost an idle connection a
// goroutine's stack and descriptor, about 2.4 KiB measured, where the whole
// session costs about 5 KiB. So one goroutine watches up to watchGroupSize
// sessions with a select over their Done channels, which costs each session
// a select case and a parked waiter instead.
const watchGroupSize = 32

// watcher places sessions in watch groups.
type watcher struct {
	srv   *Server
	mu    sync.Mutex
	roomy []*watchGroup // groups with room for another session
}

// watchGroup is a goroutine watching the Done channels of its sessions.
type watchGroup struct {
	w    *watcher
	wake chan struct{} // capacity 1: sessions wait in incoming

	// Guarded by w.mu.
	incoming []*conn
	size     int // sessions watched and incoming
	slot     int // index in w.roomy, -1 when not there
}

// add has c's session watched until it ends; then the Server's ended runs
// for it, on the group's goroutine.
func (w *watcher) add(c *conn) {
	w.mu.Lock()
	if len(w.roomy) == 0 {
		g := &watchGroup{w: w, wake: make(chan struct{}, 1), slot: -1}
		w.push(g)
		w.srv.watchers.Go(g.run)
	}
	g := w.roomy[len(w.roomy)-1]
	g.incoming = append(g.incoming, c)
	g.size++
	if g.size == watchGroupSize {
		w.remove(g)
	}
	w.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// left records that one of g's sessions ended and reports whether g has no
// session left: then it is gone from the watcher and its goroutine ends.
func (w *watcher) left(g *watchGroup) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	g.size--
	switch {
	case g.size == 0:
		if g.slot >= 0 {
			w.remove(g)
		}
		return true
	case g.slot < 0:
		w.push(g) // it was full
	}
	return false
}

func (w *watcher) push(g *watchGroup) {
	g.slot = len(w.roomy)
	w.roomy = append(w.roomy, g)
}

func (w *watcher) remove(g *watchGroup) {
	i, last := g.slot, len(w.roomy)-1
	w.roomy[i] = w.roomy[last]
	w.roomy[i].slot = i
	w.roomy[last] = nil
	w.roomy = w.roomy[:last]
	g.slot = -1
}

func (g *watchGroup) run() {
	cases := make([]reflect.SelectCase, 1, 1+watchGroupSize)
	cases[0] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(g.wake)}
	conns := make([]*conn, 0, watchGroupSize)
	var in []*conn
	for {
		i, _, _ := reflect.Select(cases)
		if i == 0 {
			g.w.mu.Lock()
			in, g.incoming = g.incoming, in[:0]
			g.w.mu.Unlock()
			for j, c := range in {
				cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.s.Done())})
				conns = append(conns, c)
				in[j] = nil
			}
			continue
		}
		c := conns[i-1]
		last := len(conns) - 1
		conns[i-1], conns[last] = conns[last], nil
		conns = conns[:last]
		cases[i], cases[last+1] = cases[last+1], reflect.SelectCase{}
		cases = cases[:last+1]
		g.w.srv.ended(c)
		if g.w.left(g) {
			return
		}
	}
}
