package codec

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// MaxHeaderLen is the longest frame header: 2 bytes, an 8-byte length and a
// 4-byte mask.
const MaxHeaderLen = ws.MaxHeaderSize

// HeaderLen returns the encoded size of a header for a payload of n bytes.
func HeaderLen(n int64, masked bool) int {
	h := 2
	switch {
	case n > 0xFFFF:
		h = 10
	case n > 125:
		h = 4
	}
	if masked {
		h += 4
	}
	return h
}

// PutHeader encodes h into b, which must have room for MaxHeaderLen bytes,
// and returns the number of bytes written. It is ws.WriteHeaderBuffer without
// the io.Writer: gobwas/ws encodes headers only into a writer, and handing it
// a slice through an interface costs an allocation per frame on the write
// path.
func PutHeader(b []byte, h ws.Header) int {
	_ = b[MaxHeaderLen-1]
	b[0] = h.Rsv<<4 | byte(h.OpCode)
	if h.Fin {
		b[0] |= 0x80
	}
	var n int
	switch {
	case h.Length <= 125:
		b[1] = byte(h.Length)
		n = 2
	case h.Length <= 0xFFFF:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(h.Length))
		n = 4
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(h.Length))
		n = 10
	}
	if h.Masked {
		b[1] |= 0x80
		n += copy(b[n:], h.Mask[:])
	}
	return n
}

// AppendHeader appends the encoding of h to dst.
func AppendHeader(dst []byte, h ws.Header) []byte {
	var b [MaxHeaderLen]byte
	n := PutHeader(b[:], h)
	return append(dst, b[:n]...)
}

// ParseHeader decodes the frame header at the front of b. When b holds only
// part of a header it returns n == 0 and a nil error: read more and call
// again. It checks what the header alone says (the length's top bit and its
// minimal encoding); the rules that depend on the role and on earlier frames
// are Decoder.Begin's.
//
// gobwas/ws reads headers only from an io.Reader, one or two reads per
// header, with a buffer that escapes to the heap; parsing from bytes already
// read is what a reader that drains a whole socket read needs.
func ParseHeader(b []byte) (h ws.Header, n int, err error) {
	n, err = parseHeader(&h, b)
	return h, n, err
}

// parseHeader is ParseHeader into *h, which it fills in place: the Parser's
// header is read field by field right after, and a header built in one
// place and copied whole to another stalls the copy on the bytes just
// stored (store forwarding), which showed in the parser's benchmark.
func parseHeader(h *ws.Header, b []byte) (n int, err error) {
	if len(b) < 2 {
		return 0, nil
	}
	b0, b1 := b[0], b[1]
	h.Fin = b0&0x80 != 0
	h.Rsv = (b0 >> 4) & 0x07
	h.OpCode = ws.OpCode(b0 & 0x0F)
	h.Masked = b1&0x80 != 0
	n = 2
	switch l := b1 & 0x7F; l {
	case 126:
		if len(b) < 4 {
			return 0, nil
		}
		h.Length = int64(binary.BigEndian.Uint16(b[2:]))
		if h.Length <= 125 {
			return 0, ErrLengthNotMinimal
		}
		n = 4
	case 127:
		if len(b) < 10 {
			return 0, nil
		}
		u := binary.BigEndian.Uint64(b[2:])
		if u>>63 != 0 {
			return 0, ErrLengthMSB
		}
		if u <= 0xFFFF {
			return 0, ErrLengthNotMinimal
		}
		h.Length = int64(u)
		n = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(b) < n+4 {
			return 0, nil
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	return n, nil
}
