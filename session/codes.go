package session

import "github.com/wsactor/wsactor/codec"

// Close codes (RFC 6455 section 7.4 and the IANA registry), codec's, here
// so that ordinary use needs this package alone. The ones that must never
// be sent in a close frame say so.
const (
	CloseNormalClosure           = codec.CloseNormalClosure           // the purpose of the connection is fulfilled
	CloseGoingAway               = codec.CloseGoingAway               // server going down, or browser leaving the page
	CloseProtocolError           = codec.CloseProtocolError           // the peer broke the protocol
	CloseUnsupportedData         = codec.CloseUnsupportedData         // a data type the endpoint cannot accept
	CloseNoStatusReceived        = codec.CloseNoStatusReceived        // no code in the close frame; cannot be sent
	CloseAbnormalClosure         = codec.CloseAbnormalClosure         // closed without a close frame; cannot be sent
	CloseInvalidFramePayloadData = codec.CloseInvalidFramePayloadData // payload inconsistent with its type (bad UTF-8)
	ClosePolicyViolation         = codec.ClosePolicyViolation         // a message violates the endpoint's policy
	CloseMessageTooBig           = codec.CloseMessageTooBig           // a message too big to process
	CloseMandatoryExtension      = codec.CloseMandatoryExtension      // the client expected an extension the server did not agree
	CloseInternalError           = codec.CloseInternalError           // the server met an unexpected condition
	CloseServiceRestart          = codec.CloseServiceRestart          // the service is restarting
	CloseTryAgainLater           = codec.CloseTryAgainLater           // temporary overload, try again later
	CloseBadGateway              = codec.CloseBadGateway              // a gateway got an invalid response
)
