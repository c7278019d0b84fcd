package session

import (
	"hash/maphash"
	"sync"
)

// Rooms is a registry of named groups: a room is made when its first
// session joins and dropped when its last member leaves, so that a registry
// of many short-lived rooms holds only the live ones. The names are spread
// over shards, each with its own lock. Rooms is safe for concurrent use.
type Rooms struct {
	opts   GroupOptions
	seed   maphash.Seed
	shards [roomShards]roomShard

	mu   sync.Mutex
	gone GroupStats // the counts of the rooms dropped
}

const roomShards = 64

type roomShard struct {
	mu    sync.Mutex
	rooms map[string]*Group
}

// NewRooms returns an empty registry whose rooms are made with opts.
func NewRooms(opts *GroupOptions) *Rooms {
	r := &Rooms{seed: maphash.MakeSeed()}
	if opts != nil {
		r.opts = *opts
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
	}
	return g, ok
}

// drop forgets room g, called name, if it is still empty.
func (r *Rooms) drop(name string, g *Group) {
	sh := r.shard(name)
	sh.mu.Lock()
	if sh.rooms[name] == g && g.Len() == 0 {
		delete(sh.rooms, name)
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

// Broadcast sends a message to the room called name, and returns how many
// members it was queued for (0 when the room has none).
func (r *Rooms) Broadcast(name string, typ MessageType, p []byte) int {
	g := r.Get(name)
	if g == nil {
		return 0
	}
	return g.Broadcast(typ, p)
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

// Stats returns the counts of every room together, those already dropped
// included.
func (r *Rooms) Stats() GroupStats {
	r.mu.Lock()
	t := r.gone
	r.mu.Unlock()
	for _, name := range r.Names() {
		if g := r.Get(name); g != nil {
			s := g.Stats()
			t.Members += s.Members
			t.Delivered += s.Delivered
			t.Dropped += s.Dropped
			t.SlowClosed += s.SlowClosed
		}
	}
	return t
}
