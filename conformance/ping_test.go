package conformance

import (
	"fmt"

	"github.com/gobwas/ws"
)

// pingCases are Autobahn's group 2: pings answered with pongs that carry
// the same payload (RFC 6455 5.5.2, 5.5.3), control payloads over 125
// bytes refused (5.5), and unsolicited pongs ignored (5.5.3).
func pingCases() []tcase {
	const answered = "5.5.2: a ping is answered with a pong with the same payload (5.5.3)"
	ten := func() ([]frame, []step) {
		var fs []frame
		var want []step
		for i := range 10 {
			p := fmt.Appendf(nil, "ping %d", i)
			fs = append(fs, pingFrame(p))
			want = append(want, expectPong(p))
		}
		return fs, want
	}
	tenPings, tenPongs := ten()
	cs := []tcase{
		{
			name:  "2.1 ping without payload",
			rfc:   answered,
			steps: []step{send(pingFrame(nil)), expectPong(nil)},
			want:  echoed,
		},
		{
			name:  "2.2 ping with a short text payload",
			rfc:   answered,
			steps: []step{send(pingFrame([]byte("Hello, world!"))), expectPong([]byte("Hello, world!"))},
			want:  echoed,
		},
		{
			name:  "2.3 ping with a binary payload",
			rfc:   answered,
			steps: []step{send(pingFrame([]byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff})), expectPong([]byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff})},
			want:  echoed,
		},
		{
			name:  "2.4 ping with a 125-byte payload, the largest allowed",
			rfc:   answered + "; 5.5: up to 125 bytes",
			steps: []step{send(pingFrame(ascending(125))), expectPong(ascending(125))},
			want:  echoed,
		},
		{
			name:  "2.5 ping with a 126-byte payload",
			rfc:   "5.5: control frames carry at most 125 bytes; 7.4.1: fail with 1002",
			steps: []step{send(pingFrame(ascending(126)))},
			want:  fails(1002),
		},
		{
			name:  "2.6 ping with a 125-byte payload written 1 byte at a time",
			rfc:   answered,
			steps: []step{sendChunked(1, pingFrame(ascending(125))), expectPong(ascending(125))},
			want:  echoed,
		},
		{
			name:  "2.7 unsolicited empty pong is ignored",
			rfc:   "5.5.3: a pong may be sent unsolicited; no response is expected",
			steps: []step{send(pongFrame(nil), textFrame("after the pong")), expectText("after the pong")},
			want:  echoed,
		},
		{
			name:  "2.8 unsolicited pong with payload is ignored",
			rfc:   "5.5.3: a pong may be sent unsolicited; no response is expected",
			steps: []step{send(pongFrame([]byte("unsolicited"))), send(textFrame("after the pong")), expectText("after the pong")},
			want:  echoed,
		},
		{
			name:  "2.9 unsolicited pong, then a ping: one pong with the ping's payload",
			rfc:   answered + "; the unsolicited pong gets no answer",
			steps: []step{send(pongFrame([]byte("unsolicited")), pingFrame([]byte("solicited"))), expectPong([]byte("solicited"))},
			want:  echoed,
		},
		{
			// RFC 6455 5.5.3 lets an endpoint answer only the most recent
			// of pings it has not yet answered; wsactor's contract
			// (DESIGN.md, "Reading") answers every ping, as Autobahn 2.10
			// expects.
			name:  "2.10 ten pings in one write, all answered in order",
			rfc:   answered + "; wsactor answers every ping (stricter than 5.5.3's may)",
			steps: append([]step{send(tenPings...)}, tenPongs...),
			want:  echoed,
		},
		{
			name:  "2.11 ten pings written 1 byte at a time, all answered in order",
			rfc:   answered + "; wsactor answers every ping (stricter than 5.5.3's may)",
			steps: append([]step{sendChunked(1, tenPings...)}, tenPongs...),
			want:  echoed,
		},
		{
			name: "2.12 ping between the fragments of a text message",
			rfc:  "5.4: control frames may be injected between fragments; " + answered,
			steps: []step{
				send(first(textFrame("frag")), pingFrame([]byte("between")), cont([]byte("mented"), true)),
				expectPong([]byte("between")),
				expectText("fragmented"),
			},
			want: echoed,
		},
		{
			name:  "2.13 pong with a 126-byte payload",
			rfc:   "5.5: control frames carry at most 125 bytes; 7.4.1: fail with 1002",
			steps: []step{send(pongFrame(ascending(126)))},
			want:  fails(1002),
		},
		{
			name:  "2.14 ping declaring a 65536-byte payload (64-bit length)",
			rfc:   "5.5: control frames carry at most 125 bytes; 7.4.1: fail with 1002",
			steps: []step{send(frame{fin: true, op: ws.OpPing, payload: ascending(16), declared: true, declare: 65536})},
			want:  fails(1002),
		},
		{
			name: "2.15 ping, then close: the pong comes before the close",
			rfc:  answered + "; 5.5.1: close answered with the same code",
			steps: []step{
				send(pingFrame([]byte("last")), closeFrame(1000, "")),
				expectPong([]byte("last")),
			},
			want: answers(1000),
		},
		{
			name:  "2.16 ping after a valid echo, then a ping with a 126-byte payload",
			rfc:   "5.5: control frames carry at most 125 bytes; 7.4.1: fail with 1002",
			steps: []step{send(textFrame("Hello")), expectText("Hello"), send(pingFrame([]byte("ok"))), expectPong([]byte("ok")), send(pingFrame(ascending(126)))},
			want:  fails(1002),
		},
	}
	return cs
}
