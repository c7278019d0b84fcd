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

	gen     uint32  // the generation of ref that this value holds
	ref     *msgRef // its hold on a pooled buffer, or nil
	Payload []byte
}

// ErrReleasedTwice is the value of the panic of a Message released twice:
// two copies of one Message value were both released, or one was released
// (or written again) after WriteMessage took the other.
var ErrReleasedTwice = fmt.Errorf("session: a Message's buffer was released twice " +
	"(a copy of a Message value was released or written after the original; pass &m to WriteMessage, which empties m)")

// Release returns the payload's buffer to the pool and empties m. The
// payload must not be used afterwards. Release of an empty Message (the
// zero Message, or one that WriteMessage took) does nothing.
func (m *Message) Release() {
	if m.ref != nil {
		m.ref.release(m.gen)
	}
	*m = Message{}
}

// msgRef is one message's hold on its pooled buffer, named by a
// generation: taking the message (WriteMessage) or releasing it moves the
// generation on, so a copy of the Message value made before no longer
// names it, and its release or write panics with ErrReleasedTwice instead
// of giving the buffer a second owner. The holds are pooled; a generation
// runs on across reuses, so a copy of a message long gone cannot name the
// hold of a new one either.
type msgRef struct {
	gen    atomic.Uint32
	shared *readBuf // the read buffer the message aliases, or nil
	own    []byte   // the message's own pooled buffer, when shared is nil
}

var msgRefs = sync.Pool{New: func() any { return new(msgRef) }}

// newRef returns a hold on shared (with a reference the caller took for
// it) or on own, and its generation.
func newRef(shared *readBuf, own []byte) (*msgRef, uint32) {
	r := msgRefs.Get().(*msgRef)
	r.shared, r.own = shared, own
	return r, r.gen.Load()
}

// take moves the hold from gen on and returns its new generation: the
// holder named by gen gives it up to whoever gets the new one. A gen that
// is not the hold's is a stale copy's: it panics.
func (r *msgRef) take(gen uint32) uint32 {
	if !r.gen.CompareAndSwap(gen, gen+1) {
		panic(ErrReleasedTwice)
	}
	return gen + 1
}

// release ends the hold named by gen and gives the buffer back.
func (r *msgRef) release(gen uint32) {
	r.take(gen)
	shared, own := r.shared, r.own
	r.shared, r.own = nil, nil
	msgRefs.Put(r)
	switch {
	case shared != nil:
		shared.release()
	case own != nil:
		bufpool.Put(own)
	}
}

// readBuf is a read's pooled buffer, shared by the messages that alias it
// and the reader, counted so that the messages can outlive the read. Its
// references are the session's own (one per msgRef and the reader's):
// users reach it only through a msgRef, which cannot release twice.
type readBuf struct {
	b    []byte
	refs atomic.Int32
}

var readBufs = sync.Pool{New: func() any { return new(readBuf) }}

// newReadBuf wraps b with one reference: the reader's.
func newReadBuf(b []byte) *readBuf {
	rb := readBufs.Get().(*readBuf)
	rb.b = b
	rb.refs.Store(1)
	return rb
}

func (rb *readBuf) retain() { rb.refs.Add(1) }

// release drops a reference; the last one gives the buffer back.
func (rb *readBuf) release() {
	switch n := rb.refs.Add(-1); {
	case n == 0:
		bufpool.Put(rb.b)
		rb.b = nil
		readBufs.Put(rb)
	case n < 0:
		panic("session: internal error: a read buffer released more often than held")
	}
}

// ownedMessage returns a message of type typ whose payload p lies in the
// pooled buffer b (p is b or a part of it), with a buffer of its own.
func ownedMessage(typ MessageType, p, b []byte) Message {
	r, gen := newRef(nil, b)
	return Message{Type: typ, Payload: p, ref: r, gen: gen}
}

// aliasMessage returns a message of type typ whose payload p lies in rb,
// taking a reference to rb for it.
func aliasMessage(typ MessageType, p []byte, rb *readBuf) Message {
	rb.retain()
	r, gen := newRef(rb, nil)
	return Message{Type: typ, Payload: p, ref: r, gen: gen}
}
