package codec

import (
	"math"

	"github.com/gobwas/ws"
)

// Role is the side of the connection an encoder or decoder works for.
type Role uint8

const (
	// Server is the accepting side: it receives masked frames and sends
	// unmasked ones.
	Server Role = iota + 1
	// Client is the dialing side: it receives unmasked frames and sends
	// frames masked with a fresh random key each.
	Client
)

func (r Role) String() string {
	switch r {
	case Server:
		return "server"
	case Client:
		return "client"
	}
	return "unknown role"
}

// DefaultMaxMessage is the message size limit when none is configured:
// 16 MiB, as in Boost.Beast.
const DefaultMaxMessage = 16 << 20

// Decoder checks a stream of received frame headers and payloads against RFC
// 6455 for one role: reserved bits, reserved opcodes, masking, control frame
// rules, continuation order, size limits, and UTF-8 of text messages, fail
// fast across fragments. It holds no buffer; feed it what was read. Set the
// exported fields before the first frame.
type Decoder struct {
	// Role is the receiving side. Required.
	Role Role
	// MaxMessage limits a message's total payload; 0 means
	// DefaultMaxMessage, a negative value means no limit.
	MaxMessage int64
	// MaxFrame limits one frame's payload; 0 means no limit beyond
	// MaxMessage.
	MaxFrame int64
	// Rsv holds the reserved bits (in ws.Header.Rsv's layout, RSV1 = 4)
	// that a negotiated extension defines; others are protocol errors.
	Rsv byte
	// Deflate is set when permessage-deflate (RFC 7692) was negotiated:
	// RSV1 on the first frame of a data message marks it compressed, and
	// is a protocol error on any other frame. The UTF-8 of a compressed
	// text message is not checked here: it is checked once inflated.
	Deflate bool

	inMessage bool      // a data message has started and not ended
	final     bool      // the current data frame ends its message
	op        ws.OpCode // opcode of the message in progress
	size      int64     // declared payload of the message so far
	text      UTF8
	deflated  bool // the message in progress is compressed
}

// Begin checks the header of the next frame against the rules and the
// frames before it, and accounts a data frame to its message. It returns a
// *ProtocolError for a violation; the connection must then be failed with
// its code.
func (d *Decoder) Begin(h ws.Header) error { return d.begin(&h) }

// begin is Begin on a header it reads in place (see parseHeader).
func (d *Decoder) begin(h *ws.Header) error {
	rsv := h.Rsv
	if d.Deflate {
		rsv &^= RSV1
	}
	if rsv&^d.Rsv != 0 {
		return ErrReservedBits
	}
	compressed := d.Deflate && h.Rsv&RSV1 != 0
	switch h.OpCode {
	case ws.OpClose, ws.OpPing, ws.OpPong:
		if compressed {
			return ErrCompressedControl
		}
		if !h.Fin {
			return ErrControlFragmented
		}
		if h.Length > ws.MaxControlFramePayloadSize {
			return ErrControlTooLong
		}
		return d.checkMask(h.Masked)
	case ws.OpText, ws.OpBinary, ws.OpContinuation:
	default:
		return ErrReservedOpcode
	}
	if err := d.checkMask(h.Masked); err != nil {
		return err
	}
	if h.OpCode == ws.OpContinuation {
		if !d.inMessage {
			return ErrContinuationUnexpected
		}
		if compressed {
			return ErrCompressedContinuation
		}
	} else {
		if d.inMessage {
			return ErrContinuationExpected
		}
		d.inMessage = true
		d.op = h.OpCode
		d.size = 0
		d.text.Reset()
		d.deflated = compressed
	}
	if d.MaxFrame > 0 && h.Length > d.MaxFrame {
		return ErrFrameTooBig
	}
	// Compare what is left rather than the sum: a declared length near 2^63
	// would overflow d.size and slip under the limit.
	limit := d.maxMessage()
	if limit < 0 {
		limit = math.MaxInt64
	}
	if h.Length > limit-d.size {
		return ErrMessageTooBig
	}
	d.size += h.Length
	d.final = h.Fin
	return nil
}

func (d *Decoder) maxMessage() int64 {
	if d.MaxMessage == 0 {
		return DefaultMaxMessage
	}
	return d.MaxMessage
}

func (d *Decoder) checkMask(masked bool) error {
	switch {
	case d.Role == Server && !masked:
		return ErrMaskRequired
	case d.Role == Client && masked:
		return ErrMaskUnexpected
	}
	return nil
}

// Data checks a piece of the current data frame's unmasked payload: for a
// text message, that it can still be valid UTF-8 (fail fast).
func (d *Decoder) Data(p []byte) error {
	if d.op == ws.OpText && !d.deflated && !d.text.Write(p) {
		return ErrInvalidUTF8
	}
	return nil
}

// End ends the current data frame. It reports whether the frame ended its
// message, and for a text message whether the message ended on a whole code
// point.
func (d *Decoder) End() (messageDone bool, err error) {
	if !d.final {
		return false, nil
	}
	d.inMessage = false
	if d.op == ws.OpText && !d.deflated && !d.text.Done() {
		return true, ErrInvalidUTF8
	}
	return true, nil
}

// Opcode returns the opcode of the message in progress (OpText or
// OpBinary).
func (d *Decoder) Opcode() ws.OpCode { return d.op }

// Compressed reports whether the message in progress (or the one just
// ended) is compressed with permessage-deflate.
func (d *Decoder) Compressed() bool { return d.deflated }

// InMessage reports whether a fragmented message has started and not ended.
func (d *Decoder) InMessage() bool { return d.inMessage }

// MessageSize returns the payload length declared so far by the frames of
// the message in progress.
func (d *Decoder) MessageSize() int64 { return d.size }
