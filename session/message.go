package session

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/wsactor/wsactor/internal/bufpool"
)

// Message is one whole inbound data message. Its payload lives in a pooled
// buffer that belongs to whoever holds the Message: it is valid until
// Release gives the buffer back, or until WriteMessage takes the Message
// (and empties the caller's value). The idiomatic handler is therefore
// safe:
//
//	func(s *session.Session, m session.Message) {
//		defer m.Release()        // does nothing once WriteMessage took m
//		s.WriteMessage(&m, nil) // the echo, without a copy
//	}
//
// A buffer never has two owners. Release of an empty Message does nothing;
// releasing the same buffer twice through two copies of one Message value
// panics with ErrReleasedTwice (the second copy would otherwise hand a
// buffer that another message now uses back to the pool).
//
// With Options.OnMessage, a message that arrived whole in one read is not
// copied: its payload is the read's own buffer, shared with the other
// messages of that read, and the buffer goes back to the pool once all of
// them are released. Such a payload's capacity is its length. A handler
// that keeps a small message for long should copy it and release it, so
// that it does not hold the whole read buffer.
type Message struct {
	Type MessageType

	gen     uint32  // buf's generation when the message took its reference
	buf     *msgBuf // the pooled buffer Payload lies in, or nil
	Payload []byte
}

// ErrReleasedTwice is the value of the panic of a Message released twice:
// two copies of one Message value were both released (or both given to
// WriteMessage).
var ErrReleasedTwice = fmt.Errorf("session: a Message's buffer was released twice " +
	"(two copies of one Message value were released or written; pass &m to WriteMessage, which empties m)")

// Release returns the payload's buffer to the pool and empties m. The
// payload must not be used afterwards. Release of an empty Message (the
// zero Message, or one that WriteMessage took) does nothing.
func (m *Message) Release() {
	if m.buf != nil {
		m.buf.release(m.gen)
	}
	*m = Message{}
}

// msgBuf is a pooled buffer that messages share, with a count of its
// holders and a generation that changes each time it goes back to the
// pool, so that a stale holder (a copy of a released Message) is caught
// instead of taking a reference that is no longer its own. Both live in
// one word, changed with compare-and-swap.
type msgBuf struct {
	b     []byte
	state atomic.Uint64 // generation<<32 | references
}

var msgBufs = sync.Pool{New: func() any { return new(msgBuf) }}

// newMsgBuf wraps b, a pooled buffer, with one reference, and returns the
// generation that its holders must name.
func newMsgBuf(b []byte) (*msgBuf, uint32) {
	mb := msgBufs.Get().(*msgBuf)
	mb.b = b
	gen := uint32(mb.state.Load() >> 32)
	mb.state.Store(uint64(gen)<<32 | 1)
	return mb, gen
}

// retain adds a reference for a new holder; the caller holds one of gen.
func (mb *msgBuf) retain() { mb.state.Add(1) }

// release drops a reference of generation gen; the last one gives the
// buffer back and starts a new generation. A reference that is not there
// any more panics: that is a buffer released twice.
func (mb *msgBuf) release(gen uint32) {
	for {
		old := mb.state.Load()
		refs := uint32(old)
		if uint32(old>>32) != gen || refs == 0 {
			panic(ErrReleasedTwice)
		}
		next := old - 1
		if refs == 1 {
			next = uint64(gen+1) << 32
		}
		if !mb.state.CompareAndSwap(old, next) {
			continue
		}
		if refs == 1 {
			bufpool.Put(mb.b)
			mb.b = nil
			msgBufs.Put(mb)
		}
		return
	}
}

// ownedMessage returns a message of type typ whose payload p lies in the
// pooled buffer b (p is b or a part of it), with a buffer of its own.
func ownedMessage(typ MessageType, p, b []byte) Message {
	mb, gen := newMsgBuf(b)
	return Message{Type: typ, Payload: p, buf: mb, gen: gen}
}
