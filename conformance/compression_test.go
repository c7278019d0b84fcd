package conformance

import (
	"fmt"
	"math/rand/v2"

	"github.com/gobwas/ws"
)

// accepted is the server's answer to every permessage-deflate offer it
// takes: no context takeover either way.
const accepted = "permessage-deflate;server_no_context_takeover;client_no_context_takeover"

// compressed returns a whole message of type op with p compressed and RSV1
// set (RFC 7692 6).
func compressed(op ws.OpCode, p []byte) frame {
	return frame{fin: true, op: op, rsv: 4, payload: deflate(p)}
}

// incompressible returns n bytes that deflate does not shrink.
func incompressible(n int) []byte {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

// compressionCases are in the spirit of Autobahn's groups 12 and 13, for
// permessage-deflate (RFC 7692), which the server under test has turned on:
// the negotiation of the offers (13.x), echoes of compressed messages of
// every size, whole and fragmented, and of uncompressed ones on a
// compressed connection (12.1-12.4), and what must fail the connection
// (12.5). The client compresses with compress/flate on its own and checks
// every compressed message from the server by inflating it.
func compressionCases() []tcase {
	const (
		rfcOffer   = "RFC 7692 5, 7.1: a server accepts an offer it can honour, answering with the parameters it uses, and declines one it cannot or that is invalid"
		rfcEcho    = "RFC 7692 6, 7.2: a compressed message has RSV1 on its first frame; the receiver inflates it"
		rfcFailBit = "RFC 7692 6.1: RSV1 only on a data message's first frame; RFC 6455 5.2, 7.4.1: fail with 1002"
	)
	hello := []byte("Hello, compressed world! Hello, compressed world! Hello, compressed world! Hello, compressed world! Hello!")
	var cs []tcase

	offers := []struct {
		name, offer, accept string
	}{
		{"the bare offer", "permessage-deflate", accepted},
		{"client_max_window_bits without a value", "permessage-deflate; client_max_window_bits", accepted},
		{"client_max_window_bits=10", "permessage-deflate; client_max_window_bits=10", accepted},
		{"client_no_context_takeover", "permessage-deflate; client_no_context_takeover", accepted},
		{"server_no_context_takeover", "permessage-deflate; server_no_context_takeover", accepted},
		{"both no_context_takeover", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", accepted},
		{"a second offer after one it cannot honour", "permessage-deflate; server_max_window_bits=10, permessage-deflate", accepted},
		{"server_max_window_bits=10, declined (a 32 KiB window is all compress/flate has)", "permessage-deflate; server_max_window_bits=10", ""},
		{"server_max_window_bits=15, declined (the server may decline any offer)", "permessage-deflate; server_max_window_bits=15", ""},
		{"server_max_window_bits without a value, invalid", "permessage-deflate; server_max_window_bits", ""},
		{"an unknown parameter, invalid", "permessage-deflate; unknown_parameter", ""},
		{"a value on a flag, invalid", "permessage-deflate; client_no_context_takeover=1", ""},
		{"a parameter twice, invalid", "permessage-deflate; server_no_context_takeover; server_no_context_takeover", ""},
		{"an unknown extension", "x-webkit-deflate-frame", ""},
	}
	for i, o := range offers {
		steps := []step{send(textBytes(hello)), expectText(string(hello))}
		if o.accept != "" {
			steps = []step{send(compressed(ws.OpText, hello)), expectText(string(hello))}
		}
		cs = append(cs, tcase{
			name:   fmt.Sprintf("13.%d offer: %s", i+1, o.name),
			rfc:    rfcOffer,
			offer:  o.offer,
			accept: o.accept,
			steps:  steps,
			want:   echoed,
		})
	}

	n := 0
	for _, size := range []int{0, 16, 64, 127, 128, 256, 1024, 4096, 16384, 65536, 131072, 1 << 20} {
		for _, op := range []ws.OpCode{ws.OpText, ws.OpBinary} {
			n++
			p := pattern(size, op == ws.OpText)
			cs = append(cs, tcase{
				name:   fmt.Sprintf("12.1.%d compressed %s message of %d bytes echoed", n, opName(op), size),
				rfc:    rfcEcho,
				offer:  "permessage-deflate",
				accept: accepted,
				steps:  []step{send(compressed(op, p)), expectMessage(op, p)},
				want:   echoed,
			})
		}
	}
	for i, size := range []int{256, 65536} {
		p := incompressible(size)
		cs = append(cs, tcase{
			name:   fmt.Sprintf("12.2.%d compressed binary message of %d bytes that do not compress, echoed", i+1, size),
			rfc:    rfcEcho,
			offer:  "permessage-deflate",
			accept: accepted,
			steps:  []step{send(compressed(ws.OpBinary, p)), expectBinary(p)},
			want:   echoed,
		})
	}
	for i, size := range []int{1, 100, 1000, 4096} {
		p := pattern(65536, true)
		cs = append(cs, tcase{
			name:   fmt.Sprintf("12.3.%d compressed text message of 64 KiB in frames of %d bytes, echoed", i+1, size),
			rfc:    rfcEcho + "; RFC 6455 5.4: fragments",
			offer:  "permessage-deflate",
			accept: accepted,
			steps: []step{
				sendLazy(0, func() []frame {
					fs := fragments(ws.OpText, deflate(p), size)
					fs[0].rsv = 4
					return fs
				}),
				expectText(string(p)),
			},
			want: echoed,
		})
	}
	for i, m := range []struct {
		op ws.OpCode
		p  []byte
	}{
		{ws.OpText, pattern(1000, true)},
		{ws.OpBinary, pattern(65536, false)},
		{ws.OpText, nil},
	} {
		cs = append(cs, tcase{
			name:   fmt.Sprintf("12.4.%d uncompressed %s message of %d bytes on a compressed connection, echoed", i+1, opName(m.op), len(m.p)),
			rfc:    "RFC 7692 6: every message chooses; RSV1 clear means not compressed",
			offer:  "permessage-deflate",
			accept: accepted,
			steps:  []step{send(frame{fin: true, op: m.op, payload: m.p}), expectMessage(m.op, m.p)},
			want:   echoed,
		})
	}

	bad := []struct {
		name  string
		rfc   string
		steps []step
		code  int
		heavy bool
	}{
		{
			name:  "RSV1 on a continuation frame",
			rfc:   rfcFailBit,
			steps: []step{send(frame{op: ws.OpText, payload: []byte("part 1")}, frame{fin: true, op: ws.OpContinuation, rsv: 4, payload: []byte("part 2")})},
			code:  1002,
		},
		{
			name:  "RSV1 on a ping",
			rfc:   rfcFailBit,
			steps: []step{send(withRSV(pingFrame([]byte("ping")), 4))},
			code:  1002,
		},
		{
			name:  "RSV1 on a close frame",
			rfc:   rfcFailBit,
			steps: []step{send(withRSV(closeFrame(1000, ""), 4))},
			code:  1002,
		},
		{
			name:  "RSV2 on a compressed message",
			rfc:   "RFC 6455 5.2: RSV2 is not permessage-deflate's; fail with 1002",
			steps: []step{send(withRSV(compressed(ws.OpText, hello), 6))},
			code:  1002,
		},
		{
			name:  "a compressed message that is not DEFLATE data",
			rfc:   "RFC 7692 7.2.2: the payload must inflate; RFC 6455 7.4.1: 1007 for data inconsistent with its type",
			steps: []step{send(frame{fin: true, op: ws.OpBinary, rsv: 4, payload: []byte{0xff, 0xff, 0xff, 0xff, 0xff}})},
			code:  1007,
		},
		{
			name:  "a compressed text message that inflates to invalid UTF-8",
			rfc:   "RFC 6455 8.1: text is UTF-8, checked on the inflated message; fail with 1007",
			steps: []step{send(compressed(ws.OpText, []byte("valid, then \xff\xfe invalid")))},
			code:  1007,
		},
		{
			name:  "a compressed message that inflates past the 16 MiB limit",
			rfc:   "the server's message limit holds for the inflated size; RFC 6455 7.4.1: 1009",
			steps: []step{sendLazy(0, func() []frame { return []frame{compressed(ws.OpBinary, make([]byte, maxMessage+1))} })},
			code:  1009,
			heavy: true,
		},
	}
	for i, b := range bad {
		cs = append(cs, tcase{
			name:   fmt.Sprintf("12.5.%d %s", i+1, b.name),
			rfc:    b.rfc,
			offer:  "permessage-deflate",
			accept: accepted,
			steps:  b.steps,
			want:   fails(b.code),
			heavy:  b.heavy,
		})
	}
	return cs
}
