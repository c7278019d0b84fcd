package wsload

import (
	"encoding/binary"
	"errors"

	"github.com/gobwas/ws"
)

// Op is a WebSocket frame opcode (RFC 6455, section 5.2).
type Op byte

// The opcodes that RFC 6455 defines.
const (
	OpContinuation Op = 0x0
	OpText         Op = 0x1
	OpBinary       Op = 0x2
	OpClose        Op = 0x8
	OpPing         Op = 0x9
	OpPong         Op = 0xa
)

// IsControl reports whether op is a control opcode (close, ping, pong or a
// reserved control opcode).
func (op Op) IsControl() bool { return op&0x8 != 0 }

// isKnown reports whether op is one that RFC 6455 defines; the others are
// reserved and a peer must not send them.
func (op Op) isKnown() bool {
	switch op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
		return true
	}
	return false
}

const (
	// maxHeaderLen is the longest WebSocket frame header: 2 bytes, an 8-byte
	// extended length and a 4-byte mask key.
	maxHeaderLen = 14
	// tcpHeaderLen is the 4-byte big-endian length prefix of a frame in tcp
	// mode.
	tcpHeaderLen = 4
	// maxControlPayload is the largest payload a control frame may carry.
	maxControlPayload = 125
)

// Errors that Parser returns for frames no conforming peer sends.
var (
	ErrFrameLength  = errors.New("wsload: frame length has its most significant bit set")
	ErrControlFrame = errors.New("wsload: control frame is fragmented or longer than 125 bytes")
)

// Header is a parsed frame header.
type Header struct {
	Fin    bool
	Rsv    byte // the three reserved bits, RSV1 as 0x4
	Op     Op
	Masked bool
	Mask   [4]byte
	Length int64 // payload length as the peer declared it
}

// Chunk is a piece of one frame's payload together with the frame's header.
// A frame arrives as one or more chunks; a frame with an empty payload
// arrives as one chunk with an empty Payload.
type Chunk struct {
	Header
	// Payload aliases the slice given to Parser.Next: it is valid until the
	// caller reuses that slice. Masked payloads are not unmasked.
	Payload []byte
	// Offset is the position of Payload within the frame's payload.
	Offset int64
	// Last reports whether Payload ends the frame.
	Last bool
}

// Parser splits a byte stream into frame chunks without copying payloads and
// without allocating. A header split across calls is gathered in the Parser
// (at most 14 bytes); payloads never are. The zero Parser parses WebSocket
// frames; a Parser with TCP set parses 4-byte length-prefixed frames, which it
// reports as final binary frames.
type Parser struct {
	TCP bool

	hdr [maxHeaderLen]byte
	hn  int // bytes of a split header gathered in hdr

	in  bool // inside the payload of h
	h   Header
	off int64 // payload bytes of h already returned
}

// Reset makes the Parser forget any partial frame.
func (ps *Parser) Reset() {
	ps.hn = 0
	ps.in = false
	ps.off = 0
}

// Next parses the start of p. It returns the number of bytes it consumed, and
// a chunk when ok is true. While len(p) > 0, n is positive unless err is not
// nil, so a caller loops until p is empty. After an error the Parser must be
// Reset before it is used again.
func (ps *Parser) Next(p []byte) (c Chunk, n int, ok bool, err error) {
	if !ps.in {
		var hb []byte
		if ps.hn == 0 {
			if need := ps.headerLen(p); len(p) >= need {
				hb, n = p[:need], need
			}
		}
		if hb == nil {
			// The header is split across calls: gather it.
			for {
				need := ps.headerLen(ps.hdr[:ps.hn])
				if ps.hn >= need {
					break
				}
				if n == len(p) {
					return c, n, false, nil
				}
				k := copy(ps.hdr[ps.hn:need], p[n:])
				ps.hn += k
				n += k
			}
			hb = ps.hdr[:ps.hn]
			ps.hn = 0
		}
		if err := ps.decode(hb); err != nil {
			return c, n, false, err
		}
		ps.in = true
		ps.off = 0
	}

	rem := ps.h.Length - ps.off
	take := int64(len(p) - n)
	if take > rem {
		take = rem
	}
	if take == 0 && rem > 0 {
		return c, n, false, nil
	}
	c.Header = ps.h
	c.Offset = ps.off
	c.Payload = p[n : n+int(take)]
	n += int(take)
	ps.off += take
	c.Last = ps.off == ps.h.Length
	if c.Last {
		ps.in = false
	}
	return c, n, true, nil
}

// headerLen returns how many bytes the header that starts with b takes, as
// far as b tells: 2 until the second byte is known.
func (ps *Parser) headerLen(b []byte) int {
	if ps.TCP {
		return tcpHeaderLen
	}
	if len(b) < 2 {
		return 2
	}
	n := 2
	switch b[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// decode parses a complete header.
func (ps *Parser) decode(b []byte) error {
	if ps.TCP {
		ps.h = Header{
			Fin:    true,
			Op:     OpBinary,
			Length: int64(binary.BigEndian.Uint32(b)),
		}
		return nil
	}
	h := Header{
		Fin:    b[0]&0x80 != 0,
		Rsv:    (b[0] >> 4) & 0x7,
		Op:     Op(b[0] & 0x0f),
		Masked: b[1]&0x80 != 0,
	}
	length := int64(b[1] & 0x7f)
	i := 2
	switch length {
	case 126:
		length = int64(binary.BigEndian.Uint16(b[2:]))
		i = 4
	case 127:
		u := binary.BigEndian.Uint64(b[2:])
		if u>>63 != 0 {
			return ErrFrameLength
		}
		length = int64(u)
		i = 10
	}
	if h.Masked {
		copy(h.Mask[:], b[i:i+4])
	}
	h.Length = length
	if h.Op.IsControl() && (length > maxControlPayload || !h.Fin) {
		return ErrControlFrame
	}
	ps.h = h
	return nil
}

// appendClientFrame appends a final client frame: its header with mask, then
// payload masked with mask. payload is not modified.
func appendClientFrame(dst []byte, op Op, payload []byte, mask [4]byte) []byte {
	n := len(payload)
	dst = append(dst, 0x80|byte(op))
	switch {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x80|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, mask[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[start:], mask, 0)
	return dst
}

// appendTCPFrame appends a tcp-mode frame: the 4-byte big-endian length and
// payload.
func appendTCPFrame(dst []byte, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// Close codes that wsload reports but that never travel in a close frame.
const (
	closeNoStatus = 1005 // the close frame had no code
	closeAbnormal = 1006 // the connection ended without a close frame
)

// closeCode returns the code carried by a close frame's payload, or 1005
// when it carries none.
func closeCode(payload []byte) int {
	if len(payload) < 2 {
		return closeNoStatus
	}
	return int(binary.BigEndian.Uint16(payload))
}

// sendable reports whether code may be sent in a close frame (RFC 6455,
// section 7.4).
func sendable(code int) bool {
	switch {
	case code < 1000 || code >= 5000:
		return false
	case code == 1004 || code == 1005 || code == 1006 || code == 1015:
		return false
	case code >= 1016 && code < 3000:
		return false
	}
	return true
}

// appendClientClose appends a masked close frame with code, or with an empty
// payload when code cannot be sent.
func appendClientClose(dst []byte, code int, mask [4]byte) []byte {
	if !sendable(code) {
		return appendClientFrame(dst, OpClose, nil, mask)
	}
	var body [2]byte
	binary.BigEndian.PutUint16(body[:], uint16(code))
	return appendClientFrame(dst, OpClose, body[:], mask)
}
