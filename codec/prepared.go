package codec

import (
	"sync/atomic"

	"github.com/gobwas/ws"
)

// Prepared is a message encoded once for many writers: a broadcast sends the
// same bytes to every server-side session without encoding them again. It is
// reference counted; its pooled buffer goes back to the pool when the last
// reference is released.
//
// A server frame is sent exactly as prepared. A client frame must carry a
// fresh mask each time (RFC 6455 section 5.3), so for the client role the
// prepared payload is masked per send.
type Prepared struct {
	refs  atomic.Int32
	op    ws.OpCode
	rsv   byte   // RSV1 for a compressed message (PrepareCompressed)
	frame []byte // pooled: unmasked header followed by the payload
	hlen  int
}

// Prepare encodes a whole message of type op with payload p, copying p once
// into a pooled buffer. The result holds one reference, its creator's: call
// Release when done with it, and Retain for each further holder.
func Prepare(op ws.OpCode, p []byte) *Prepared { return prepare(op, 0, p) }

// PrepareCompressed is Prepare for a message compressed with
// permessage-deflate: z is its compressed payload (Compress's), sent with
// RSV1 set, to be written only to sessions that negotiated the extension.
func PrepareCompressed(op ws.OpCode, z []byte) *Prepared { return prepare(op, RSV1, z) }

func prepare(op ws.OpCode, rsv byte, p []byte) *Prepared {
	h := ws.Header{Fin: true, Rsv: rsv, OpCode: op, Length: int64(len(p))}
	hlen := HeaderLen(h.Length, false)
	buf := getBuf(hlen + len(p))
	var hb [MaxHeaderLen]byte
	copy(buf, hb[:PutHeader(hb[:], h)])
	copy(buf[hlen:], p)
	pf := &Prepared{op: op, rsv: rsv, frame: buf, hlen: hlen}
	pf.refs.Store(1)
	return pf
}

// Retain adds a reference and returns pf. It panics on a Prepared whose
// last reference was released.
func (pf *Prepared) Retain() *Prepared {
	if pf.refs.Add(1) <= 1 {
		panic("codec: Retain of a released Prepared")
	}
	return pf
}

// Release drops a reference; the last one returns the buffer to the pool.
func (pf *Prepared) Release() {
	switch n := pf.refs.Add(-1); {
	case n == 0:
		putBuf(pf.frame)
		pf.frame = nil
	case n < 0:
		panic("codec: Prepared released more often than retained")
	}
}

// Opcode returns the message type.
func (pf *Prepared) Opcode() ws.OpCode { return pf.op }

// Payload returns the message payload. It must not be modified.
func (pf *Prepared) Payload() []byte { return pf.frame[pf.hlen:] }

// Frame returns the encoded server frame (header and payload). It must not be
// modified.
func (pf *Prepared) Frame() []byte { return pf.frame }

// AddTo adds the prepared message to b: the encoded bytes as they are for a
// server batch, a freshly masked frame for a client batch. The caller holds a
// reference until b has been written and Reset.
func (pf *Prepared) AddTo(b *Batch) {
	if b.Role == Client {
		b.Add(true, pf.op, pf.rsv, pf.Payload())
		return
	}
	b.AddEncoded(pf.frame)
}
