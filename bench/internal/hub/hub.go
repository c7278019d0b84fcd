// Package hub is the set of connections of a broadcast endpoint, shared by
// the bench servers: each member is the queue its writer goroutine drains.
package hub

import "sync"

// Hub holds the queues of a broadcast endpoint's connections. The zero Hub
// is ready.
type Hub[M any] struct {
	mu     sync.RWMutex
	queues []chan M
}

// Add makes q a member.
func (h *Hub[M]) Add(q chan M) {
	h.mu.Lock()
	h.queues = append(h.queues, q)
	h.mu.Unlock()
}

// Remove takes q out of the hub.
func (h *Hub[M]) Remove(q chan M) {
	h.mu.Lock()
	for i, x := range h.queues {
		if x == q {
			last := len(h.queues) - 1
			h.queues[i] = h.queues[last]
			h.queues[last] = nil
			h.queues = h.queues[:last]
			break
		}
	}
	h.mu.Unlock()
}

// Publish queues m on every member. It blocks while a queue is full:
// backpressure, not loss. A member's writer drains its queue until the
// member has left the hub, so Publish always completes.
func (h *Hub[M]) Publish(m M) {
	h.mu.RLock()
	for _, q := range h.queues {
		q <- m
	}
	h.mu.RUnlock()
}
