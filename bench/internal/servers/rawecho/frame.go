package rawecho

import (
	"bufio"
	"encoding/binary"
	"errors"

	"github.com/gobwas/ws"
)

// errProtocol is a frame that breaks RFC 6455; the server answers 1002.
var errProtocol = errors.New("rawecho: protocol error")

// errTooBig is a frame longer than the server's frame limit; it answers 1009.
var errTooBig = errors.New("rawecho: frame too big")

// appendHeader appends the unmasked server header of a frame to b.
func appendHeader(b []byte, fin bool, op ws.OpCode, length int) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	switch {
	case length < 126:
		return append(b, b0, byte(length))
	case length <= 0xffff:
		return append(b, b0, 126, byte(length>>8), byte(length))
	default:
		b = append(b, b0, 127)
		return binary.BigEndian.AppendUint64(b, uint64(length))
	}
}

// writeHeader writes a server frame header into bw without allocating.
func writeHeader(bw *bufio.Writer, fin bool, op ws.OpCode, length int) error {
	if bw.Available() < ws.MaxHeaderSize {
		err := bw.Flush()
		if err != nil {
			return err
		}
	}
	_, err := bw.Write(appendHeader(bw.AvailableBuffer(), fin, op, length))
	return err
}

// closeBody returns the payload of the close frame that answers a peer's
// close payload p: the peer's code echoed, or nothing if it sent none.
func closeBody(p []byte) []byte {
	if len(p) < 2 {
		return nil
	}
	return p[:2]
}
