package wsload

import (
	"encoding/binary"

	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/codec"
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

const (
	// maxHeaderLen is the longest WebSocket frame header: 2 bytes, an 8-byte
	// extended length and a 4-byte mask key.
	maxHeaderLen = codec.MaxHeaderLen
	// tcpHeaderLen is the 4-byte big-endian length prefix of a frame in tcp
	// mode.
	tcpHeaderLen = 4
	// maxControlPayload is the largest payload a control frame may carry.
	maxControlPayload = ws.MaxControlFramePayloadSize
)

// tcpFramer splits a tcp-mode stream (each message a 4-byte big-endian
// length and its payload: not WebSocket, nothing to check) into payload
// chunks, with a length prefix split across reads gathered in it.
type tcpFramer struct {
	hdr [tcpHeaderLen]byte
	hn  int   // bytes of a split prefix gathered in hdr
	in  bool  // inside a payload
	rem int64 // payload bytes still to come
}

// next parses the front of p as the WebSocket path's codec.Parser.Next does:
// it returns the number of bytes consumed and, when ok, a piece of a
// message's payload (a slice of p), whether it begins the message and
// whether it ends it.
func (f *tcpFramer) next(p []byte) (payload []byte, n int, first, last, ok bool) {
	if !f.in {
		n = copy(f.hdr[f.hn:], p)
		if f.hn += n; f.hn < tcpHeaderLen {
			return nil, n, false, false, false
		}
		f.hn, f.in, first = 0, true, true
		f.rem = int64(binary.BigEndian.Uint32(f.hdr[:]))
	}
	take := int(min(int64(len(p)-n), f.rem))
	if take == 0 && !first {
		return nil, n, false, false, false
	}
	payload = p[n : n+take]
	f.rem -= int64(take)
	f.in = f.rem > 0
	return payload, n + take, first, !f.in, true
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
