package session

import (
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/bufpool"
)

// PreparedMessage is a message encoded once to be written to many sessions
// (a broadcast): every session writes the same bytes, with no encoding and
// no copy of its own. Its frame is made once per wire form: plain, and
// compressed for the sessions that negotiated permessage-deflate (made by
// the first of them that writes it, once, when the message is at least the
// compression threshold and shrinks).
//
// The creator holds one reference and calls Release once when done with
// it; WritePrepared takes a reference of its own for each write and drops
// it after the completion, so the creator may release at once after its
// writes. A second Release panics, whether or not writes still hold the
// message (it never takes their references).
type PreparedMessage struct {
	typ      MessageType
	plain    *codec.Prepared
	refs     atomic.Int32
	released atomic.Bool // the creator's Release came

	zOnce sync.Once
	z     *codec.Prepared // compressed; nil when it does not pay
}

// Prepare copies p once into a prepared message of type typ (Text or
// Binary).
func Prepare(typ MessageType, p []byte) *PreparedMessage {
	pm := &PreparedMessage{typ: typ, plain: codec.Prepare(ws.OpCode(typ), p)}
	pm.refs.Store(1)
	return pm
}

// Type returns the message's type.
func (pm *PreparedMessage) Type() MessageType { return pm.typ }

// Len returns the length of the message's payload.
func (pm *PreparedMessage) Len() int { return len(pm.plain.Payload()) }

// Release drops the creator's reference. The buffers go back to the pool
// once every write of the message has completed. A second Release panics:
// it cannot take a reference that a write holds.
func (pm *PreparedMessage) Release() {
	if !pm.released.CompareAndSwap(false, true) {
		panic("session: PreparedMessage released twice")
	}
	pm.release()
}

func (pm *PreparedMessage) retain() *PreparedMessage {
	if pm.refs.Add(1) <= 1 {
		panic("session: WritePrepared of a released PreparedMessage")
	}
	return pm
}

func (pm *PreparedMessage) release() {
	switch n := pm.refs.Add(-1); {
	case n == 0:
		pm.plain.Release()
		pm.zOnce.Do(func() {}) // no compression can start any more
		if pm.z != nil {
			pm.z.Release()
		}
	case n < 0:
		panic("session: PreparedMessage released more often than prepared and written")
	}
}

// compress makes the compressed frame, once: a caller that comes while
// another compresses waits for it.
func (pm *PreparedMessage) compress(level int) {
	pm.zOnce.Do(func() {
		p := pm.plain.Payload()
		z := codec.Compress(p, level)
		if len(z) < len(p) {
			pm.z = codec.PrepareCompressed(ws.OpCode(pm.typ), z)
		}
		bufpool.Put(z)
	})
}

// frame returns the frame for a session: compressed when the session
// negotiated permessage-deflate and compression pays.
func (pm *PreparedMessage) frame(s *Session) *codec.Prepared {
	if !s.deflate || len(pm.plain.Payload()) < s.opts.Compression.threshold() {
		return pm.plain
	}
	pm.compress(s.opts.Compression.level())
	if pm.z != nil {
		return pm.z
	}
	return pm.plain
}
