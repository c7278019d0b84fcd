package codec

import (
	"io"
	"net"

	"github.com/gobwas/ws"
)

// headerArena is the size of the pooled buffers that frame headers (and
// small payloads) are encoded into: room for a burst of 16 frames of 1 KiB,
// or 1170 headers of the longest kind.
const headerArena = 16 << 10

// maxArenaPayload is the largest client payload masked into the header arena
// rather than into a pooled buffer of its own: for small frames the pool's
// get and put cost more than masking the bytes, and consecutive small frames
// become one segment of the vectored write.
const maxArenaPayload = 1024

// Batch gathers encoded frames for one vectored write (writev on a TCP
// connection). For the server role a frame is its header, encoded into a
// pooled arena, followed by the caller's payload itself: no payload is
// copied. For the client role the header and the payload masked with a fresh
// key go into the arena (payloads up to 1 KiB) or into a pooled buffer of
// their own; the caller's bytes are never changed.
//
// A payload added to a Batch must not be modified until the Batch has been
// written and Reset. The zero Batch needs its Role set before use. A Batch
// is not safe for concurrent use.
type Batch struct {
	Role Role

	// CopyBelow, for the server role, is the payload size up to which a
	// payload is copied into the arena beside its header instead of being
	// referenced: a run of small frames then goes out as one segment, and
	// for small payloads the kernel's cost per segment of a vectored write
	// is more than the copy. 0 copies nothing.
	CopyBelow int

	bufs  net.Buffers // the write, in order
	vec   net.Buffers // WriteTo's copy of bufs, kept whole for reuse
	cur   net.Buffers // the part of vec not yet written: WriteTo consumes its receiver
	arena []byte      // current header arena: arena[:len] is used
	owned [][]byte    // pooled buffers to return on Reset
	size  int64
}

// Len returns the number of bytes the batch would write.
func (b *Batch) Len() int64 { return b.size }

// Segments returns the number of buffers in the batch (a vectored write's
// segment count).
func (b *Batch) Segments() int { return len(b.bufs) }

// Add encodes one frame with payload p. rsv carries the reserved bits of a
// negotiated extension (0 otherwise).
func (b *Batch) Add(fin bool, op ws.OpCode, rsv byte, p []byte) {
	client := b.Role == Client
	if client && len(p) > maxArenaPayload {
		buf := EncodeFrame(Client, fin, op, rsv, p)
		b.owned = append(b.owned, buf)
		b.bufs = append(b.bufs, buf)
		b.size += int64(len(buf))
		return
	}
	h := ws.Header{Fin: fin, Rsv: rsv, OpCode: op, Length: int64(len(p)), Masked: client}
	need := MaxHeaderLen
	inline := client || (len(p) <= b.CopyBelow && len(p) <= headerArena-MaxHeaderLen)
	if inline {
		need += len(p)
	}
	if client {
		h.Mask = NewMask()
	}
	if cap(b.arena)-len(b.arena) < need {
		if b.arena != nil {
			b.owned = append(b.owned, b.arena)
		}
		b.arena = getBuf(headerArena)[:0]
	}
	start := len(b.arena)
	n := PutHeader(b.arena[start:start+MaxHeaderLen], h)
	switch {
	case client:
		n += MaskInto(b.arena[start+n:start+n+len(p)], p, h.Mask)
	case inline:
		n += copy(b.arena[start+n:start+n+len(p)], p)
	}
	b.arena = b.arena[:start+n]
	b.appendSegment(b.arena[start : start+n : start+n])
	if !inline && len(p) > 0 {
		b.bufs = append(b.bufs, p)
	}
	b.size += int64(n)
	if !inline {
		b.size += int64(len(p))
	}
}

// appendSegment appends a segment of the arena, merging it with the previous
// segment when that one ends where it begins (frames with empty payloads,
// small client frames).
func (b *Batch) appendSegment(hdr []byte) {
	if k := len(b.bufs) - 1; k >= 0 {
		last := b.bufs[k]
		if len(last) > 0 && cap(last) == len(last) && len(b.arena) >= len(hdr)+len(last) &&
			&b.arena[len(b.arena)-len(hdr)-len(last)] == &last[0] {
			b.bufs[k] = b.arena[len(b.arena)-len(hdr)-len(last) : len(b.arena) : len(b.arena)]
			return
		}
	}
	b.bufs = append(b.bufs, hdr)
}

// AddMessage encodes p as a message of type op split into frames of at most
// fragment bytes each (one frame when fragment <= 0 or p fits).
func (b *Batch) AddMessage(op ws.OpCode, p []byte, fragment int) {
	if fragment <= 0 || len(p) <= fragment {
		b.Add(true, op, 0, p)
		return
	}
	for h, part := range Fragments(op, p, fragment) {
		b.Add(h.Fin, h.OpCode, 0, part)
	}
}

// AddEncoded appends bytes that are already a whole encoded frame (a
// Prepared frame's, or a worker's result). They must not change until Reset.
func (b *Batch) AddEncoded(frame []byte) {
	if len(frame) == 0 {
		return
	}
	b.bufs = append(b.bufs, frame)
	b.size += int64(len(frame))
}

// WriteTo writes the batch to w with one vectored write where w supports it
// (*net.TCPConn, *net.UnixConn) and returns the number of bytes written. The
// batch keeps its frames until Reset.
func (b *Batch) WriteTo(w io.Writer) (int64, error) {
	switch len(b.bufs) {
	case 0:
		return 0, nil
	case 1:
		n, err := w.Write(b.bufs[0])
		return int64(n), err
	}
	// net.Buffers.WriteTo advances its receiver past what it wrote. Handing
	// it vec would shrink vec's capacity on every call until the append
	// allocates, so it consumes cur, a second slice over the same array.
	b.vec = append(b.vec[:0], b.bufs...)
	b.cur = b.vec
	n, err := b.cur.WriteTo(w)
	b.cur = nil
	clear(b.vec)
	return n, err
}

// WriteFrom writes the batch to w from byte off on (what an earlier write
// of it left unwritten), with one vectored write, and returns the bytes it
// wrote in this call.
func (b *Batch) WriteFrom(w io.Writer, off int64) (int64, error) {
	if off == 0 {
		return b.WriteTo(w)
	}
	b.vec = b.vec[:0]
	for _, buf := range b.bufs {
		if off >= int64(len(buf)) {
			off -= int64(len(buf))
			continue
		}
		b.vec = append(b.vec, buf[off:])
		off = 0
	}
	b.cur = b.vec
	n, err := b.cur.WriteTo(w)
	b.cur = nil
	clear(b.vec)
	return n, err
}

// Reset empties the batch and returns its pooled buffers.
func (b *Batch) Reset() {
	for i, buf := range b.owned {
		putBuf(buf)
		b.owned[i] = nil
	}
	b.owned = b.owned[:0]
	if b.arena != nil {
		b.arena = b.arena[:0]
	}
	clear(b.bufs)
	b.bufs = b.bufs[:0]
	b.size = 0
}

// Release resets the batch and returns its last header arena to the pool,
// so that an idle owner holds no pooled buffer.
func (b *Batch) Release() {
	b.Reset()
	if b.arena != nil {
		putBuf(b.arena)
		b.arena = nil
	}
	b.bufs = nil
	b.vec = nil
	b.cur = nil
	b.owned = nil
}
