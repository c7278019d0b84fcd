package session

import (
	"errors"

	"github.com/wsactor/wsactor/codec"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Group is a set of sessions that receive the same messages: a room, a
// feed, a channel. A broadcast is encoded once per wire form (plain, and
// compressed once for the members that negotiated permessage-deflate) and
// queued to every member without a copy. A member that does not keep up
// never makes memory grow: each member's backlog is bounded in bytes
// (GroupOptions.MaxBacklog), and a broadcast beyond it is dropped for that
// member and counted, or closes the member, as GroupOptions.SlowPolicy
// says.
//
// A session leaves every group by itself when it ends; adding it from
// Options.OnOpen is safe. The members are kept in shards, each with its
// own lock, so that joins, leaves and many publishers do not queue on one
// lock. A Group is safe for concurrent use.
type Group struct {
	maxBacklog int64
	policy     SlowPolicy
	workers    *codec.Workers
	workerMin  int
	onEmpty    func() // Rooms': the last member left

	n          atomic.Int64
	compressed atomic.Int64 // members with permessage-deflate
	delivered  atomic.Uint64
	dropped    atomic.Uint64
	slowClosed atomic.Uint64

	shards [groupShards]groupShard
}

// groupShards is how many locks a group's members are spread over.
const groupShards = 16

type groupShard struct {
	mu      sync.RWMutex
	members []*Session
	index   map[*Session]int
	_       [32]byte // keeps the shards' locks on lines of their own
}

// GroupOptions configures a Group. The zero value gives the defaults
// written beside each field.
type GroupOptions struct {
	// MaxBacklog bounds the payload bytes a member may have waiting for
	// its peer when a broadcast comes: beyond it, SlowPolicy applies to
	// that member. A member with nothing waiting always takes the
	// message. Broadcasts from a handler that wait for the end of the
	// publisher's read (batched: at most 64 KiB and a read, shared by
	// every member) do not count against it. Default 1 MiB.
	MaxBacklog int64

	// SlowPolicy is what happens to a member over MaxBacklog. Default
	// DropSlow.
	SlowPolicy SlowPolicy

	// Workers, when set, takes the compression of a broadcast of at least
	// WorkerThreshold bytes (for the members with permessage-deflate) off
	// the publisher's goroutine: it is queued to a codec worker, and done
	// there or by the first compressed member's writer that needs it,
	// whichever comes first (the others wait for it). The publisher reads
	// on, and the members without compression do not wait for it. When
	// the pool's queue is full, or the pool was stopped, the publisher
	// compresses as without one. The caller owns the pool
	// (codec.NewWorkers) and stops it when done.
	Workers *codec.Workers

	// WorkerThreshold is the payload size from which Workers compresses.
	// Default 64 KiB (docs/decisions.md: below it the hop costs more than
	// it frees).
	WorkerThreshold int
}

// SlowPolicy says what a Group does with a member that does not keep up.
type SlowPolicy uint8

const (
	// DropSlow drops the broadcast for that member (GroupStats.Dropped
	// counts it); the member stays and gets the broadcasts that come once
	// its backlog is below the bound again.
	DropSlow SlowPolicy = iota
	// CloseSlow starts the member's closing handshake with 1013 (try
	// again later) behind what it already has waiting; a member that reads
	// nothing at all is then ended by its WriteTimeout.
	CloseSlow
)

// GroupStats are a Group's counts since it was made.
type GroupStats struct {
	Members    int    // sessions in the group now
	Delivered  uint64 // broadcasts queued to a member
	Dropped    uint64 // broadcasts dropped for a member over its backlog (or with a full mailbox)
	SlowClosed uint64 // members closed by CloseSlow
}

// NewGroup returns an empty group.
func NewGroup(opts *GroupOptions) *Group {
	g := &Group{maxBacklog: 1 << 20}
	if opts != nil {
		if opts.MaxBacklog > 0 {
			g.maxBacklog = opts.MaxBacklog
		}
		g.policy = opts.SlowPolicy
		g.workers, g.workerMin = opts.Workers, opts.WorkerThreshold
	}
	if g.workerMin <= 0 {
		g.workerMin = 64 << 10
	}
	return g
}

// shard returns the shard that holds s.
func (g *Group) shard(s *Session) *groupShard {
	h := uint64(uintptr(unsafe.Pointer(s))) * 0x9e3779b97f4a7c15
	return &g.shards[h>>60]
}

// Add puts s in g, and reports whether it did: false when s was a member
// already or has ended. s leaves by itself when it ends.
func (g *Group) Add(s *Session) bool {
	m := s.extras()
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.is(flagLeft) || slices.Contains(m.groups, g) {
		return false
	}
	m.groups = append(m.groups, g)
	g.insert(s)
	return true
}

// Remove takes s out of g, and reports whether it was a member.
func (g *Group) Remove(s *Session) bool {
	m := s.extra.Load()
	if m == nil {
		return false
	}
	m.mu.Lock()
	i := slices.Index(m.groups, g)
	if i >= 0 {
		m.groups = slices.Delete(m.groups, i, i+1)
	}
	m.mu.Unlock()
	if i < 0 {
		return false
	}
	g.remove(s)
	return true
}

func (g *Group) insert(s *Session) {
	sh := g.shard(s)
	sh.mu.Lock()
	if sh.index == nil {
		sh.index = make(map[*Session]int)
	}
	sh.index[s] = len(sh.members)
	sh.members = append(sh.members, s)
	sh.mu.Unlock()
	g.n.Add(1)
	if s.deflate {
		g.compressed.Add(1)
	}
}

func (g *Group) remove(s *Session) {
	sh := g.shard(s)
	sh.mu.Lock()
	i, ok := sh.index[s]
	if ok {
		last := len(sh.members) - 1
		sh.members[i] = sh.members[last]
		sh.index[sh.members[i]] = i
		sh.members[last] = nil
		sh.members = sh.members[:last]
		delete(sh.index, s)
		if last == 0 {
			sh.members, sh.index = nil, nil // an empty shard holds nothing
		}
	}
	sh.mu.Unlock()
	if !ok {
		return
	}
	if s.deflate {
		g.compressed.Add(-1)
	}
	if g.n.Add(-1) == 0 && g.onEmpty != nil {
		g.onEmpty()
	}
}

// Len returns the number of members.
func (g *Group) Len() int { return int(g.n.Load()) }

// Members returns the members, shard by shard: each shard is read under
// its lock and yielded outside it, so the loop's body may call any method
// of the group or of the sessions.
func (g *Group) Members() iter.Seq[*Session] {
	return func(yield func(*Session) bool) {
		var buf []*Session
		for i := range g.shards {
			sh := &g.shards[i]
			sh.mu.RLock()
			buf = append(buf[:0], sh.members...)
			sh.mu.RUnlock()
			for _, s := range buf {
				if !yield(s) {
					return
				}
			}
		}
	}
}

// Broadcast sends a message of type typ with payload p (copied once) to
// every member, and returns how many members it was queued for.
func (g *Group) Broadcast(typ MessageType, p []byte) int {
	pm := Prepare(typ, p)
	n := g.BroadcastPrepared(pm)
	pm.Release()
	return n
}

// BroadcastPrepared sends pm to every member, and returns how many
// members it was queued for. The caller keeps its reference to pm.
func (g *Group) BroadcastPrepared(pm *PreparedMessage) int {
	size := int64(pm.Len())
	compressNow := g.compressed.Load() > 0
	// From a handler, the read's broadcasts are batched (burst.go).
	var pub *Session
	var c *cast
	var first bool
	idx := 0
	limit := g.maxBacklog
	if g.n.Load() >= burstMin {
		if pub = publisher(); pub != nil {
			c, first = pub.castFor(g)
			idx = c.add(pm)
			// What the burst holds for a member waits for the read to end,
			// not for the member: it does not make the member slow. (It is
			// shared by every member and bounded: spanBytes and a read.)
			limit += pub.burst.bytes
			pub.burst.bytes += size
			pub.burst.n++
		}
	}
	n := 0
	var buf []*Session
	for i := range g.shards {
		sh := &g.shards[i]
		sh.mu.RLock()
		buf = append(buf[:0], sh.members...)
		sh.mu.RUnlock()
		for _, s := range buf {
			if first && s != pub {
				s.mb.Hold()
				pub.burst.peers = append(pub.burst.peers, s)
			}
			if compressNow && s.deflate {
				// Compressed once, on a worker or here, on the
				// publisher's goroutine, rather than on the first
				// compressed member's writer while the others wait.
				compressNow = false
				if !g.compressOnWorker(pm, s) {
					pm.frame(s)
				}
			}
			if q := s.pendingBytes.Load(); q > 0 && q+size > limit {
				g.slow(s)
				continue
			}
			var err error
			if c != nil {
				err = s.writeCast(c, idx, size)
			} else {
				_, err = s.WritePrepared(pm, nil)
			}
			switch {
			case err == nil:
				n++
			case errors.Is(err, ErrMailboxFull):
				g.slow(s)
			}
			// Any other refusal: s has ended and is leaving.
		}
	}
	g.delivered.Add(uint64(n))
	return n
}

// compressOnWorker starts pm's compression for members like s on the
// group's workers, and reports whether it did.
func (g *Group) compressOnWorker(pm *PreparedMessage, s *Session) bool {
	if g.workers == nil || pm.Len() < max(g.workerMin, s.opts.Compression.threshold()) {
		return false
	}
	pm.retain()
	level := s.opts.Compression.level()
	if g.workers.Go(func() { pm.compress(level); pm.release() }) {
		return true
	}
	pm.release()
	return false
}

// slow applies the group's SlowPolicy to s, which could not take a
// broadcast.
func (g *Group) slow(s *Session) {
	g.dropped.Add(1)
	s.extras().dropped.Add(1)
	if g.policy == CloseSlow && !s.is(flagCloseSent|flagCloseQueued) {
		if _, err := s.Close(CloseReason{Code: CloseTryAgainLater, Reason: "too slow: the backlog is full"}, nil); err == nil {
			g.slowClosed.Add(1)
		}
	}
}

// Close starts the closing handshake of every member with reason (a
// graceful shutdown: CloseGoingAway), and returns how many it started.
// The members leave as their sessions end.
func (g *Group) Close(reason CloseReason) int {
	n := 0
	for s := range g.Members() {
		if _, err := s.Close(reason, nil); err == nil {
			n++
		}
	}
	return n
}

// Stats returns the group's counts.
func (g *Group) Stats() GroupStats {
	return GroupStats{
		Members:    g.Len(),
		Delivered:  g.delivered.Load(),
		Dropped:    g.dropped.Load(),
		SlowClosed: g.slowClosed.Load(),
	}
}

// extras are what a session needs only once it joins a group or pings
// and waits (PingContext): made on first use, so that a plain session
// carries one pointer for them.
type extras struct {
	mu      sync.Mutex
	groups  []*Group      // the groups it is in (under mu)
	dropped atomic.Uint64 // broadcasts its groups dropped for it
	pings   pongWaiters   // PingContext's
}

func (s *Session) extras() *extras {
	if x := s.extra.Load(); x != nil {
		return x
	}
	s.extra.CompareAndSwap(nil, &extras{pings: pongWaiters{waiting: map[uint64]chan struct{}{}}})
	return s.extra.Load()
}

// leaveGroups takes s out of every group as it ends, before Done is
// closed (so that a caller who waited for Done finds it gone); an Add that
// comes later is refused.
func (s *Session) leaveGroups() {
	s.set(flagLeft)
	x := s.extra.Load()
	if x == nil {
		return
	}
	x.mu.Lock()
	groups := x.groups
	x.groups = nil
	x.mu.Unlock()
	for _, g := range groups {
		g.remove(s)
	}
}

// Dropped returns how many broadcasts its groups dropped for s because it
// did not keep up (GroupOptions.MaxBacklog).
func (s *Session) Dropped() uint64 {
	if x := s.extra.Load(); x != nil {
		return x.dropped.Load()
	}
	return 0
}
