package codec

import "fmt"

// ProtocolError is a violation of RFC 6455 found while decoding. Code is the
// close code the endpoint that found it must send: 1002 (protocol error), 1007
// (invalid payload data) or 1009 (message too big).
type ProtocolError struct {
	Code   CloseCode
	Reason string
}

// Error implements error.
func (e *ProtocolError) Error() string {
	return fmt.Sprintf("websocket protocol error (close %d %s): %s", uint16(e.Code), e.Code, e.Reason)
}

func protocolError(code CloseCode, reason string) *ProtocolError {
	return &ProtocolError{Code: code, Reason: reason}
}

// Violations of RFC 6455 reported by the decoder. Each is a *ProtocolError
// that carries the close code to send; compare with errors.Is.
var (
	ErrReservedBits           = protocolError(CloseProtocolError, "reserved bits set without a negotiated extension (RFC 6455 5.2)")
	ErrReservedOpcode         = protocolError(CloseProtocolError, "reserved opcode (RFC 6455 5.2)")
	ErrMaskRequired           = protocolError(CloseProtocolError, "unmasked frame from a client (RFC 6455 5.1)")
	ErrMaskUnexpected         = protocolError(CloseProtocolError, "masked frame from a server (RFC 6455 5.1)")
	ErrControlTooLong         = protocolError(CloseProtocolError, "control frame payload over 125 bytes (RFC 6455 5.5)")
	ErrControlFragmented      = protocolError(CloseProtocolError, "fragmented control frame (RFC 6455 5.5)")
	ErrContinuationUnexpected = protocolError(CloseProtocolError, "continuation frame without a started message (RFC 6455 5.4)")
	ErrContinuationExpected   = protocolError(CloseProtocolError, "new data frame inside a fragmented message (RFC 6455 5.4)")
	ErrLengthMSB              = protocolError(CloseProtocolError, "64-bit payload length with its most significant bit set (RFC 6455 5.2)")
	ErrLengthNotMinimal       = protocolError(CloseProtocolError, "payload length not in its minimal encoding (RFC 6455 5.2)")
	ErrFrameTooBig            = protocolError(CloseMessageTooBig, "frame exceeds the frame size limit")
	ErrMessageTooBig          = protocolError(CloseMessageTooBig, "message exceeds the message size limit")
	ErrInvalidUTF8            = protocolError(CloseInvalidFramePayloadData, "text message is not valid UTF-8 (RFC 6455 8.1)")
	ErrCloseInvalidUTF8       = protocolError(CloseInvalidFramePayloadData, "close reason is not valid UTF-8 (RFC 6455 5.5.1)")
	ErrClosePayload1Byte      = protocolError(CloseProtocolError, "close payload of 1 byte (RFC 6455 5.5.1)")
	ErrCloseCodeInvalid       = protocolError(CloseProtocolError, "close code not allowed on the wire (RFC 6455 7.4)")
	ErrCompressedControl      = protocolError(CloseProtocolError, "RSV1 set on a control frame (RFC 7692 6.1)")
	ErrCompressedContinuation = protocolError(CloseProtocolError, "RSV1 set on a continuation frame (RFC 7692 6.1)")
	ErrInvalidCompressed      = protocolError(CloseInvalidFramePayloadData, "compressed message is not valid DEFLATE data (RFC 7692 7.2.2)")
)
