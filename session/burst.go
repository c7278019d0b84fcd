package session

import (
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/internal/bufpool"
)

// A broadcast made from a handler (Options.OnMessage) is batched with the
// other broadcasts of the same read, the way a TCP fan-out queues each read
// of its publisher whole to every member:
//
//   - The read's broadcasts to a group go into one cast, a list of the
//     prepared messages shared by the members. A member gets one command
//     for them (a broadcast that finds the member's previous command for
//     the same cast still waiting in its mailbox is folded into it,
//     actor.SendMerge): one mailbox entry, one reference and one
//     completion per member and read, not per member and broadcast.
//   - The first broadcast of a read to a group holds every member's actor
//     (actor.Hold), so that what the read's broadcasts queue waits without
//     starting the member's goroutine; once the handler has handled the
//     read, the reader starts every held member once (kickPeers), and the
//     member writes the read's broadcasts in one vectored write.
//
// The delay this adds is the handler's: a broadcast goes out once the
// handler returns from the read's last message (at most heldMessages
// messages), as the handler's own answers do; when a read filled the
// reader's buffer, the burst goes on over the next reads until one would
// wait, or it holds spanBytes (process, rawRead). Whatever may wait for a held
// member ends the hold at once: a command with a reply channel, a Close
// (send uses actor.SendNow), and the urgent lane (timers, the reader's
// events).

// handlerReaders maps the goroutine id of a reader that runs OnMessage to
// its session, so that a Group can tell that it is called from a handler
// and which reader will start the members it holds.
var handlerReaders sync.Map // int64 → *Session

// burstMin is the smallest group whose broadcasts are batched: the lookup
// costs about a microsecond, a goroutine start per member less below it.
const burstMin = 4

// heldBurst is what a reader's handlers hold during one read.
type heldBurst struct {
	casts []groupCast // a cast per group broadcast to in this read
	peers []*Session  // the held members, to start at the end of the read
	bytes int64       // the payload bytes broadcast
	n     int         // the broadcasts
}

// spanBytes bounds what a burst holds for its members when it goes on
// over the next read (process): well below any member's backlog bound, so
// that holding never makes a member look slow.
const spanBytes = 64 << 10

// roomForMore reports whether the burst may go on over another read; b
// may be nil (nothing held).
func (b *heldBurst) roomForMore() bool {
	return b != nil && b.bytes < spanBytes && b.n < heldMessages
}

type groupCast struct {
	g *Group
	c *cast
}

var bursts = sync.Pool{New: func() any { return new(heldBurst) }}

// publisher returns the session whose handler is calling, or nil when the
// caller is not a handler.
func publisher() *Session {
	if v, ok := handlerReaders.Load(goid()); ok {
		return v.(*Session)
	}
	return nil
}

// castFor returns the cast that takes the read's next broadcast to g, and
// whether it is the read's first to g (its members are to be held). Call
// it only on s's reader.
func (s *Session) castFor(g *Group) (c *cast, first bool) {
	b := s.burst
	if b == nil {
		b = bursts.Get().(*heldBurst)
		s.burst = b
	}
	for i := range b.casts {
		if gc := &b.casts[i]; gc.g == g {
			if gc.c.n == len(gc.c.pms) {
				gc.c.release() // full: the members hold it while they need it
				gc.c = newCast()
			}
			return gc.c, false
		}
	}
	c = newCast()
	b.casts = append(b.casts, groupCast{g, c})
	return c, true
}

// kickPeers starts the members its handlers held, on s's reader, at the
// end of a read (and wherever the reader runs its own actor), and lets go
// of the read's casts.
func (s *Session) kickPeers() {
	b := s.burst
	if b == nil {
		return
	}
	s.burst = nil
	for i, p := range b.peers {
		p.mb.Kick()
		b.peers[i] = nil
	}
	for i := range b.casts {
		b.casts[i].c.release()
		b.casts[i] = groupCast{}
	}
	b.casts, b.peers = b.casts[:0], b.peers[:0]
	b.bytes, b.n = 0, 0
	if cap(b.peers) > 1<<14 {
		return // a very large room's list goes to the collector
	}
	bursts.Put(b)
}

// castSize is how many broadcasts a cast holds; a read that broadcasts
// more to one group goes on in a new cast.
const castSize = heldMessages

// cast is a read's broadcasts to one group, in order: the publisher's
// reader appends (pms[:n] are set, each holding a reference to its
// message), and a member's command names a range of it. A member reads
// pms[i] only after taking a command whose range covers i from its
// mailbox, under the lock that the publisher held when it made the range
// cover i: no other synchronization is needed.
//
// The plain frames of small broadcasts are also copied back to back into
// the cast's slab, once: a member without compression writes a run of
// them as one buffer (one iovec, as the TCP fan-out writes a read), not a
// record and a buffer per broadcast. The slab's slice never changes once
// made (a member may be reading it); the publisher writes only past what
// any command covers.
type cast struct {
	refs atomic.Int32 // the publisher's, and one per member command
	n    int
	used int // bytes of slab filled
	slab []byte
	// broadcast i's plain frame is slab[start[i]:end[i]];
	// start[i] < 0 when it is not in the slab.
	start, end [castSize]int32
	pms        [castSize]*PreparedMessage
}

// castSlab is a cast's slab: what a burst holds (spanBytes and a read)
// with room for the frames' headers.
const castSlab = 128 << 10

// slabFrameMax is the largest frame copied into the slab: a larger one is
// written from its own buffer, where the copy would cost more than the
// iovec it saves.
const slabFrameMax = 8 << 10

var casts = sync.Pool{New: func() any { return new(cast) }}

func newCast() *cast {
	c := casts.Get().(*cast)
	c.refs.Store(1)
	c.slab = bufpool.Get(castSlab)
	return c
}

// add appends pm, taking a reference to it, and returns its index.
func (c *cast) add(pm *PreparedMessage) int {
	i := c.n
	c.pms[i] = pm.retain()
	c.start[i] = -1
	if f := pm.plain.Frame(); len(f) <= slabFrameMax && c.used+len(f) <= len(c.slab) {
		c.start[i] = int32(c.used)
		c.used += copy(c.slab[c.used:], f)
		c.end[i] = int32(c.used)
	}
	c.n++
	return i
}

// retain takes a reference for a member's command: the publisher holds its
// own while it adds commands, so a count that was not positive means a
// cast freed and in use again.
func (c *cast) retain() {
	if c.refs.Add(1) <= 1 {
		panic("session: cast retained after its release")
	}
}

func (c *cast) release() {
	switch n := c.refs.Add(-1); {
	case n == 0:
		for i := range c.n {
			c.pms[i].release()
			c.pms[i] = nil
		}
		c.n, c.used = 0, 0
		bufpool.Put(c.slab)
		c.slab = nil
		casts.Put(c)
	case n < 0:
		panic("session: cast released too often")
	}
}

// mergeCast folds m, the broadcast at index m.from of a cast, into tail
// when tail is the member's command for the broadcasts just before it in
// the same cast.
func mergeCast(tail *cmd, m cmd) bool {
	if tail.kind != cmdCast || tail.cast != m.cast || tail.to != m.from {
		return false
	}
	tail.to = m.to
	tail.bytes += m.bytes
	return true
}

// retainCast counts the reference of a member's new command to its cast,
// under the member's mailbox lock: before the member's actor can take the
// command and release it (counted after, a fast actor's release could
// free the cast under the publisher).
func retainCast(m cmd) { m.cast.retain() }

// writeCast queues the broadcast at index i of c (size payload bytes) to
// s: folded into s's waiting command for the cast when there is one, or as
// a new command, admitted as WritePrepared's would be.
func (s *Session) writeCast(c *cast, i int, size int64) error {
	if s.mb.Stopped() {
		return s.endErr()
	}
	if err := s.admitBytes(size); err != nil {
		return err
	}
	m := cmd{kind: cmdCast, user: KindWrite, cast: c, from: uint16(i), to: uint16(i + 1), bytes: size, admitted: true}
	if s.mb.Merge(m, mergeCast) {
		return nil // the usual case in a burst: no command more to count
	}
	if err := s.admitCount(); err != nil {
		s.pendingBytes.Add(-size)
		return err
	}
	merged, ok := s.mb.SendMerge(m, mergeCast, retainCast)
	switch {
	case merged:
		s.outstanding.Add(-1) // counted once, by the command it joined
	case ok:
	default:
		s.outstanding.Add(-1)
		s.pendingBytes.Add(-size)
		return errMailboxCount
	}
	return nil
}

// onCast queues the frames of a cast command: one record per broadcast;
// the last carries the command's accounting and its reference to the
// cast, so that whichever way the records end (written, canceled, the
// session's end) the command is settled once.
func (s *Session) onCast(c *cmd) {
	k := c.cast
	for i := int(c.from); i < int(c.to); {
		pm := k.pms[i]
		r := record{kind: KindWrite, op: ws.OpCode(pm.typ), id: c.id, cast: k}
		j := i + 1
		if k.start[i] >= 0 && !s.deflate {
			// A run of plain frames back to back in the slab: one buffer.
			for j < int(c.to) && k.start[j] == k.end[j-1] {
				j++
			}
			r.p, r.encoded = k.slab[k.start[i]:k.end[j-1]], true
		} else {
			r.pm = pm
		}
		if j == int(c.to) {
			r.admitted, r.bytes = c.admitted, c.bytes
		}
		s.queue(r)
		i = j
	}
}
