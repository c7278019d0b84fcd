package conformance

import (
	"fmt"

	"github.com/gobwas/ws"
)

// framingCases are Autobahn's group 1 (text and binary messages of every
// length encoding, in one write and cut into pieces), with the length
// encodings a server must refuse and the unmasked frames it must refuse.
func framingCases() []tcase {
	var cs []tcase
	sizes := []int{0, 125, 126, 127, 128, 65535, 65536, 65537, 300000}
	for i, n := range sizes {
		cs = append(cs, tcase{
			name:  fmt.Sprintf("1.1.%d text message of %d bytes in one frame", i+1, n),
			rfc:   "5.2, 5.6: a data frame's length in 7, 16 or 64 bits; the echo server returns the message",
			steps: []step{send(textBytes(pattern(n, true))), expectText(string(pattern(n, true)))},
			want:  echoed,
		})
	}
	for i, n := range sizes {
		cs = append(cs, tcase{
			name:  fmt.Sprintf("1.2.%d binary message of %d bytes in one frame", i+1, n),
			rfc:   "5.2, 5.6: a data frame's length in 7, 16 or 64 bits; the echo server returns the message",
			steps: []step{send(binaryFrame(pattern(n, false))), expectBinary(pattern(n, false))},
			want:  echoed,
		})
	}
	chunked := []struct {
		name  string
		chunk int
		f     frame
	}{
		{"text message of 65536 bytes written in 997-byte pieces", 997, textBytes(pattern(65536, true))},
		{"binary message of 65536 bytes written in 997-byte pieces", 997, binaryFrame(pattern(65536, false))},
		{"empty text message written 1 byte at a time", 1, textFrame("")},
		{"text message of 125 bytes written 1 byte at a time", 1, textBytes(pattern(125, true))},
		{"binary message of 126 bytes written 1 byte at a time (16-bit length split)", 1, binaryFrame(pattern(126, false))},
		{"binary message of 65537 bytes (64-bit length) written in 7-byte pieces", 7, binaryFrame(pattern(65537, false))},
	}
	for i, c := range chunked {
		op := c.f.op
		cs = append(cs, tcase{
			name:  fmt.Sprintf("1.3.%d %s", i+1, c.name),
			rfc:   "5.2: frames are a byte stream; how TCP cuts it does not matter",
			steps: []step{sendChunked(c.chunk, c.f), expectMessage(op, c.f.payload)},
			want:  echoed,
		})
	}
	cs = append(cs,
		tcase{
			name: "1.3.7 a text and a binary message in one write, echoed in order",
			rfc:  "5.6: each message is echoed, in the order received",
			steps: []step{
				send(textFrame("first"), binaryFrame([]byte{2, 0, 2})),
				expectText("first"),
				expectBinary([]byte{2, 0, 2}),
			},
			want: echoed,
		},
		tcase{
			name: "1.3.8 three messages written 1 byte at a time",
			rfc:  "5.2: frames are a byte stream; how TCP cuts it does not matter",
			steps: []step{
				sendChunked(1, textFrame("one"), binaryFrame(ascending(130)), textFrame("three")),
				expectText("one"),
				expectBinary(ascending(130)),
				expectText("three"),
			},
			want: echoed,
		},
	)

	// Length encodings (RFC 6455 5.2): "the minimal number of bytes MUST be
	// used to encode the length", and "the most significant bit MUST be 0".
	lengths := []struct {
		name string
		f    frame
	}{
		{"empty text message with its length in a 16-bit field", frame{fin: true, op: ws.OpText, lenBytes: 2}},
		{"text message of 125 bytes with its length in a 16-bit field", frame{fin: true, op: ws.OpText, payload: pattern(125, true), lenBytes: 2}},
		{"binary message of 126 bytes with its length in a 64-bit field", frame{fin: true, op: ws.OpBinary, payload: pattern(126, false), lenBytes: 8}},
		{"binary message of 65535 bytes with its length in a 64-bit field", frame{fin: true, op: ws.OpBinary, payload: pattern(65535, false), lenBytes: 8}},
		{"ping of 5 bytes with its length in a 16-bit field", frame{fin: true, op: ws.OpPing, payload: []byte("hello"), lenBytes: 2}},
		{"64-bit length 2^63 (most significant bit set)", frame{fin: true, op: ws.OpBinary, payload: []byte("abc"), lenBytes: 8, declared: true, declare: 1 << 63}},
		{"64-bit length 2^64-1 (all bits set)", frame{fin: true, op: ws.OpBinary, payload: []byte("abc"), lenBytes: 8, declared: true, declare: ^uint64(0)}},
		{"64-bit length 2^63+5 on a text frame", frame{fin: true, op: ws.OpText, payload: []byte("abcde"), lenBytes: 8, declared: true, declare: 1<<63 + 5}},
	}
	for i, l := range lengths {
		cs = append(cs, tcase{
			name:  fmt.Sprintf("1.4.%d %s, after a valid echo", i+1, l.name),
			rfc:   "5.2 (minimal length encoding; 64-bit length's top bit 0), 7.4.1: fail with 1002",
			steps: []step{send(textFrame("Hello")), expectText("Hello"), send(l.f)},
			want:  fails(1002),
		})
	}

	// Masking (RFC 6455 5.1): "a client MUST mask all frames that it sends
	// to the server"; "a server MUST close the connection upon receiving a
	// frame that is not masked", with 1002.
	unmasked := []struct {
		name  string
		f     frame
		first bool
	}{
		{"unmasked text frame", textFrame("Hello"), false},
		{"unmasked binary frame after a valid echo", binaryFrame([]byte{1, 2, 3}), true},
		{"unmasked ping", pingFrame([]byte("ping")), false},
		{"unmasked close frame", closeFrame(1000, ""), false},
		{"unmasked continuation inside a masked message", cont([]byte("lo"), true), false},
	}
	for i, u := range unmasked {
		f := u.f
		f.noMask = true
		var steps []step
		switch {
		case u.first:
			steps = []step{send(textFrame("Hello")), expectText("Hello"), send(f)}
		case f.op == ws.OpContinuation:
			steps = []step{send(first(textFrame("Hel")), f)}
		default:
			steps = []step{send(f)}
		}
		cs = append(cs, tcase{
			name:  fmt.Sprintf("1.5.%d %s", i+1, u.name),
			rfc:   "5.1: a server must close on an unmasked frame, with 1002",
			steps: steps,
			want:  fails(1002),
		})
	}
	return cs
}
