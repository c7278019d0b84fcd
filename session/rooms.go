package session

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// Rooms is a registry of named groups: a room is made when its first
// session joins and dropped when its last member leaves, so that a registry
// of many short-lived rooms holds only the live ones. The names are spread
// over shards, each with its own lock. Rooms is safe for concurrent use.
//
// With a Broker, a room spans nodes (daemons): Publish delivers to the
// local members and hands the message to the broker for the other nodes,
// and the node is subscribed to a room while the room has local members.
type Rooms struct {
	opts   GroupOptions
	broker Broker
	seed   maphash.Seed
	shards [roomShards]roomShard

	published atomic.Uint64 // messages handed to the broker
	lost      atomic.Uint64 // messages the broker refused
	remote    atomic.Uint64 // messages that came from other nodes

	mu   sync.Mutex
	gone GroupStats // the counts of the rooms dropped
}

// Broker carries the messages of rooms between nodes: an existing
// messaging system (a NATS broker lives in the module
// github.com/wsactor/wsactor/broker/nats), so that a room's members may be
// spread over several daemons. Delivery is at most once: a message the
// broker cannot take is lost and counted (RoomsStats.Lost), never retried.
// The runtime depends on no broker; without one, Rooms is one node's.
type Broker interface {
	// Publish hands a message of room to the other nodes subscribed to
	// it; this node's own subscription must not receive it back. It must
	// keep the order of the messages of one publisher, and not block for
	// long: an error means the message is lost.
	Publish(room string, typ MessageType, p []byte) error
	// Subscribe makes the node receive the messages that other nodes
	// publish to room: deliver is called with each, in order, until
	// Unsubscribe. p is valid only during the call. Subscribe and
	// Unsubscribe are called under the lock of the room's name, so they
	// must not wait for the network (queue the request and return).
	Subscribe(room string, deliver func(typ MessageType, p []byte)) error
	// Unsubscribe stops what Subscribe started.
	Unsubscribe(room string) error
}

// RoomsOptions configures Rooms.
type RoomsOptions struct {
	// Group configures every room.
	Group GroupOptions
	// Broker, when set, makes the rooms span the nodes that share it.
	Broker Broker
}

// RoomsStats are the counts of a registry: its rooms' together, those
// already dropped included, and the broker's.
type RoomsStats struct {
	GroupStats
	Rooms     int    // rooms with local members now
	Published uint64 // messages handed to the broker
	Lost      uint64 // messages the broker refused (at most once: never retried)
	Remote    uint64 // messages from other nodes delivered here
}

const roomShards = 64

type roomShard struct {
	mu    sync.Mutex
	rooms map[string]*Group
}

// NewRooms returns an empty registry.
func NewRooms(opts *RoomsOptions) *Rooms {
	r := &Rooms{seed: maphash.MakeSeed()}
	if opts != nil {
		r.opts, r.broker = opts.Group, opts.Broker
	}
	return r
}

func (r *Rooms) shard(name string) *roomShard {
	return &r.shards[maphash.String(r.seed, name)%roomShards]
}

// Join adds s to the room called name, made if it does not exist, and
// returns the room; ok is false when s had ended (or was in the room
// already). s leaves by itself when it ends.
func (r *Rooms) Join(name string, s *Session) (room *Group, ok bool) {
	sh := r.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	g := sh.rooms[name]
	made := g == nil
	if made {
		g = NewGroup(&r.opts)
		g.onEmpty = func() { r.drop(name, g) }
	}
	// Added under the shard's lock, so that the room cannot be dropped
	// between its lookup and the join.
	ok = g.Add(s)
	if made && ok {
		if sh.rooms == nil {
			sh.rooms = make(map[string]*Group)
		}
		sh.rooms[name] = g
		if r.broker != nil {
			r.broker.Subscribe(name, func(typ MessageType, p []byte) {
				r.remote.Add(1)
				g.Broadcast(typ, p)
			})
		}
	}
	return g, ok
}

// drop forgets room g, called name, if it is still empty.
func (r *Rooms) drop(name string, g *Group) {
	sh := r.shard(name)
	sh.mu.Lock()
	if sh.rooms[name] == g && g.Len() == 0 {
		delete(sh.rooms, name)
		if r.broker != nil {
			r.broker.Unsubscribe(name)
		}
		st := g.Stats()
		r.mu.Lock()
		r.gone.Delivered += st.Delivered
		r.gone.Dropped += st.Dropped
		r.gone.SlowClosed += st.SlowClosed
		r.mu.Unlock()
		if len(sh.rooms) == 0 {
			sh.rooms = nil
		}
	}
	sh.mu.Unlock()
}

// Get returns the room called name, or nil when it has no members.
func (r *Rooms) Get(name string) *Group {
	sh := r.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.rooms[name]
}

// Len returns the number of rooms.
func (r *Rooms) Len() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		n += len(sh.rooms)
		sh.mu.Unlock()
	}
	return n
}

// Names returns the names of the rooms, in no order.
func (r *Rooms) Names() []string {
	var names []string
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for name := range sh.rooms {
			names = append(names, name)
		}
		sh.mu.Unlock()
	}
	return names
}

// Publish sends a message to the room called name: to its local members,
// and through the broker, if any, to its members on other nodes. It
// returns how many local members it was queued for, and the broker's
// error (the message is then lost for the other nodes, and counted).
func (r *Rooms) Publish(name string, typ MessageType, p []byte) (int, error) {
	var err error
	if r.broker != nil {
		if err = r.broker.Publish(name, typ, p); err != nil {
			r.lost.Add(1)
		} else {
			r.published.Add(1)
		}
	}
	g := r.Get(name)
	if g == nil {
		return 0, err
	}
	return g.Broadcast(typ, p), err
}

// Close closes every member of every room with reason (a graceful
// shutdown), and returns how many closing handshakes it started.
func (r *Rooms) Close(reason CloseReason) int {
	n := 0
	for _, name := range r.Names() {
		if g := r.Get(name); g != nil {
			n += g.Close(reason)
		}
	}
	return n
}

// Stats returns the registry's counts.
func (r *Rooms) Stats() RoomsStats {
	r.mu.Lock()
	t := RoomsStats{GroupStats: r.gone}
	r.mu.Unlock()
	t.Published, t.Lost, t.Remote = r.published.Load(), r.lost.Load(), r.remote.Load()
	for _, name := range r.Names() {
		if g := r.Get(name); g != nil {
			s := g.Stats()
			t.Rooms++
			t.Members += s.Members
			t.Delivered += s.Delivered
			t.Dropped += s.Dropped
			t.SlowClosed += s.SlowClosed
		}
	}
	return t
}
