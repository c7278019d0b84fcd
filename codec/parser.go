package codec

import "github.com/gobwas/ws"

// Parser decodes a stream of frames pushed to it in whatever pieces the
// connection's reads cut it into: it is the one frame parser of wsactor,
// behind the session's reader, Reader and the load generator. Each call to
// Next parses the front of the bytes it is given and yields a Chunk: a
// frame's header once it is complete, and the frame's payload, unmasked in
// place in the caller's buffer, as its bytes arrive. Every header is checked
// with the embedded Decoder (Begin), every data payload as it arrives (Data,
// fail fast) and at the end of its frame (End).
//
// A Parser copies no payload and never allocates: it holds a header split
// across reads (at most MaxHeaderLen bytes) and the position in the current
// frame, nothing that grows with the length a peer declares. Gathering a
// message or a control frame's payload is the caller's, as the bytes arrive.
//
// The zero Parser needs its Decoder's fields set (Role at least) before the
// first call to Next; it is then between frames. A Parser is not safe for
// concurrent use.
type Parser struct {
	Decoder

	h    ws.Header          // the frame in progress
	off  int64              // payload bytes of h already yielded
	hdr  [MaxHeaderLen]byte // a header split across calls
	nhdr uint8              // bytes of hdr in use
	in   bool               // h's header is parsed and its payload not all yielded
}

// Chunk is what one call to Parser.Next yields: a piece of one frame's
// payload, with what a caller needs of the frame's header to act on it
// (Parser.Header has all of it). It is small enough to be returned in
// registers: on the hot path, a chunk that carried the whole header would
// be copied through memory twice per frame.
type Chunk struct {
	// Payload is the piece, unmasked in place: it aliases the slice given to
	// Next, so it is valid as long as the caller keeps those bytes, and the
	// Parser keeps no reference to it. Its capacity ends at its length:
	// appending to it cannot overwrite the bytes that follow it.
	Payload []byte
	// Op is the frame's opcode.
	Op ws.OpCode
	// Fin is the frame's FIN bit: set on the last frame of a message and on
	// every control frame.
	Fin bool
	// First reports that the call completed the frame's header. Each frame
	// yields exactly one chunk with First set; its Payload holds as much of
	// the frame's payload as followed the header in the same slice, which
	// may be nothing.
	First bool
	// Last reports that Payload ends the frame. For a data frame the
	// Parser has then called Decoder.End, so the frame ended its message
	// when Fin is set.
	Last bool
}

// Whole reports whether c holds its frame entirely: header and every byte of
// the payload came in the slice given to one call to Next.
func (c *Chunk) Whole() bool { return c.First && c.Last }

// Next parses the front of b and returns the number of bytes it consumed.
// Between frames it parses a header, which it keeps when b ends inside it
// and completes from the next call's bytes; inside a frame it takes as much
// of the payload as b holds, and no more. ok reports whether a chunk was
// yielded: it is when a header was completed (c.First) or payload bytes were
// taken. When nothing is yielded, all of b was consumed; otherwise Next stops
// at the end of the chunk, and the caller calls again with the rest of b.
//
// Next unmasks the payload it yields in place: the bytes of b that it
// consumes are changed, and c.Payload is a slice of b (ownership stays with
// the caller). It never allocates.
//
// An error is a *ProtocolError (a header that is malformed or breaks a rule,
// invalid UTF-8, a message over the limit) that names the close code with
// which to fail the connection; the stream cannot be parsed further, and the
// Parser must not be used again until Reset.
func (p *Parser) Next(b []byte) (c Chunk, n int, ok bool, err error) {
	if !p.in {
		if p.nhdr == 0 {
			n, err = parseHeader(&p.h, b)
			if err != nil {
				return c, 0, false, err
			}
			if n == 0 {
				// parseHeader completes any header of MaxHeaderLen bytes,
				// so all of b fits.
				p.nhdr = uint8(copy(p.hdr[:], b))
				return c, len(b), false, nil
			}
		} else {
			k := copy(p.hdr[p.nhdr:], b)
			n, err = parseHeader(&p.h, p.hdr[:int(p.nhdr)+k])
			if err != nil {
				return c, 0, false, err
			}
			if n == 0 {
				p.nhdr += uint8(k)
				return c, k, false, nil
			}
			n -= int(p.nhdr) // the bytes of b that ended the header
			p.nhdr = 0
		}
		if err := p.begin(&p.h); err != nil {
			return c, n, false, err
		}
		p.off, p.in = 0, true
		c.First = true
	}
	take := len(b) - n
	if rem := p.h.Length - p.off; int64(take) > rem {
		take = int(rem)
	}
	if take == 0 && !c.First {
		return c, n, false, nil
	}
	c.Op, c.Fin = p.h.OpCode, p.h.Fin
	c.Payload = b[n : n+take : n+take]
	if p.h.Masked {
		ws.Cipher(c.Payload, p.h.Mask, int(p.off&3))
	}
	n += take
	p.off += int64(take)
	data := !p.h.OpCode.IsControl()
	if data {
		if err := p.Data(c.Payload); err != nil {
			return c, n, false, err
		}
	}
	if p.off == p.h.Length {
		p.in = false
		c.Last = true
		if data {
			if _, err := p.End(); err != nil {
				return c, n, false, err
			}
		}
	}
	return c, n, true, nil
}

// Header returns the header of the frame of the chunk that the last call to
// Next yielded, as Decoder.Begin checked it (its mask is the one the payload
// was unmasked with). After a call that yielded nothing or failed, it is
// undefined.
func (p *Parser) Header() ws.Header { return p.h }

// InFrame reports whether the bytes parsed so far end inside a frame: in its
// header or its payload. A fragmented message between its frames is not in a
// frame; Decoder.InMessage tells that.
func (p *Parser) InFrame() bool { return p.in || p.nhdr > 0 }

// Remaining returns how many payload bytes of the frame in progress are still
// to come: 0 between frames or inside a header. It is what the peer
// declared, so it may size a read but must not size an allocation.
func (p *Parser) Remaining() int64 {
	if !p.in {
		return 0
	}
	return p.h.Length - p.off
}

// Reset makes p forget any partial header, frame and message, as at the
// start of a stream; its Decoder's settings are kept.
func (p *Parser) Reset() {
	d := p.Decoder
	*p = Parser{Decoder: Decoder{
		Role:       d.Role,
		MaxMessage: d.MaxMessage,
		MaxFrame:   d.MaxFrame,
		Rsv:        d.Rsv,
		Deflate:    d.Deflate,
	}}
}
