package codec

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// CloseCode is a WebSocket close status code (RFC 6455 section 7.4 and the
// IANA "WebSocket Close Code Number Registry").
type CloseCode uint16

// Close codes. The ones that must never be sent on the wire say so.
const (
	CloseNormalClosure           CloseCode = 1000 // the purpose of the connection is fulfilled
	CloseGoingAway               CloseCode = 1001 // server going down, or browser leaving the page
	CloseProtocolError           CloseCode = 1002 // the peer broke the protocol
	CloseUnsupportedData         CloseCode = 1003 // a data type the endpoint cannot accept
	CloseReserved1004            CloseCode = 1004 // reserved; cannot be sent in a close message
	CloseNoStatusReceived        CloseCode = 1005 // no code in the close frame; cannot be sent in a close message
	CloseAbnormalClosure         CloseCode = 1006 // closed without a close frame; cannot be sent in a close message
	CloseInvalidFramePayloadData CloseCode = 1007 // payload inconsistent with its type (bad UTF-8)
	ClosePolicyViolation         CloseCode = 1008 // a message violates the endpoint's policy
	CloseMessageTooBig           CloseCode = 1009 // a message too big to process
	CloseMandatoryExtension      CloseCode = 1010 // the client expected an extension the server did not agree
	CloseInternalError           CloseCode = 1011 // the server met an unexpected condition
	CloseServiceRestart          CloseCode = 1012 // the service is restarting (IANA)
	CloseTryAgainLater           CloseCode = 1013 // temporary overload, try again later (IANA)
	CloseBadGateway              CloseCode = 1014 // a gateway got an invalid response (IANA)
	CloseTLSHandshake            CloseCode = 1015 // the TLS handshake failed; cannot be sent in a close message
)

// MaxCloseReason is the longest close reason in bytes: a control frame carries
// at most 125 bytes, two of which are the code.
const MaxCloseReason = 123

// Valid reports whether c may appear in a close frame on the wire, sent or
// received: 1000-1003, 1007-1014 and 3000-4999. 1004, 1005, 1006 and 1015 are
// reserved, the rest of 0-2999 is unassigned, and 5000 and over is undefined.
func (c CloseCode) Valid() bool {
	switch {
	case c >= 1000 && c <= 1003:
		return true
	case c >= 1007 && c <= 1014:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// String returns the registered name of c, or its range for codes without one.
func (c CloseCode) String() string {
	switch c {
	case CloseNormalClosure:
		return "normal closure"
	case CloseGoingAway:
		return "going away"
	case CloseProtocolError:
		return "protocol error"
	case CloseUnsupportedData:
		return "unsupported data"
	case CloseReserved1004:
		return "reserved"
	case CloseNoStatusReceived:
		return "no status received"
	case CloseAbnormalClosure:
		return "abnormal closure"
	case CloseInvalidFramePayloadData:
		return "invalid frame payload data"
	case ClosePolicyViolation:
		return "policy violation"
	case CloseMessageTooBig:
		return "message too big"
	case CloseMandatoryExtension:
		return "mandatory extension"
	case CloseInternalError:
		return "internal error"
	case CloseServiceRestart:
		return "service restart"
	case CloseTryAgainLater:
		return "try again later"
	case CloseBadGateway:
		return "bad gateway"
	case CloseTLSHandshake:
		return "TLS handshake"
	}
	switch {
	case c >= 3000 && c <= 3999:
		return "registered code " + strconv.Itoa(int(c))
	case c >= 4000 && c <= 4999:
		return "private code " + strconv.Itoa(int(c))
	}
	return "invalid code " + strconv.Itoa(int(c))
}

// CheckCloseReason reports whether code and reason may be sent in a close
// frame: a valid code and a reason of at most 123 bytes of valid UTF-8. The
// zero code with an empty reason is allowed: it is sent as an empty close
// payload.
func CheckCloseReason(code CloseCode, reason string) error {
	if code == 0 {
		if reason != "" {
			return &ProtocolError{Code: CloseProtocolError, Reason: "close reason without a close code"}
		}
		return nil
	}
	if !code.Valid() {
		return ErrCloseCodeInvalid
	}
	if len(reason) > MaxCloseReason {
		return ErrControlTooLong
	}
	if !utf8.ValidString(reason) {
		return ErrCloseInvalidUTF8
	}
	return nil
}

// AppendClosePayload appends the close frame body for code and reason to dst:
// nothing for code 0, otherwise the code in network order and the reason. It
// does not validate; call CheckCloseReason first.
func AppendClosePayload(dst []byte, code CloseCode, reason string) []byte {
	if code == 0 {
		return dst
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, reason...)
}

// ParseClosePayload parses and validates a received close frame body. An
// empty body gives CloseNoStatusReceived and no error. The reason aliases p.
// Errors: ErrClosePayload1Byte, ErrControlTooLong, ErrCloseCodeInvalid,
// ErrCloseInvalidUTF8.
func ParseClosePayload(p []byte) (code CloseCode, reason []byte, err error) {
	switch {
	case len(p) == 0:
		return CloseNoStatusReceived, nil, nil
	case len(p) == 1:
		return 0, nil, ErrClosePayload1Byte
	case len(p) > 125:
		return 0, nil, ErrControlTooLong
	}
	code = CloseCode(binary.BigEndian.Uint16(p))
	if !code.Valid() {
		return code, nil, ErrCloseCodeInvalid
	}
	reason = p[2:]
	if !ValidUTF8(reason) {
		return code, nil, ErrCloseInvalidUTF8
	}
	return code, reason, nil
}
