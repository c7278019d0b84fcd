package conformance

import (
	"bytes"
	"fmt"

	"github.com/gobwas/ws"
)

// fragmentationCases are Autobahn's group 5: fragmented messages echoed
// whole, control frames between fragments, and the continuation rules of
// RFC 6455 5.4, whose violations fail the connection with 1002.
func fragmentationCases() []tcase {
	const (
		whole    = "5.4: a fragmented message is one message; the echo server returns it whole"
		ctrlIn   = "5.4: control frames may be injected between fragments; 5.5.2: a ping is answered at once"
		ctrlFrag = "5.4, 5.5: control frames must not be fragmented; 7.4.1: fail with 1002"
		order    = "5.4: continuation frames only inside a started message, and no new message before it ends; 7.4.1: fail with 1002"
	)
	hello := []byte("Hello, world!")
	var oneByteFrags []frame
	var oneBytePings []frame
	var oneBytePongs []step
	for i, b := range hello {
		f := cont([]byte{b}, i == len(hello)-1)
		if i == 0 {
			f.op = ws.OpText
		}
		oneByteFrags = append(oneByteFrags, f)
		oneBytePings = append(oneBytePings, f)
		if !f.fin {
			p := fmt.Appendf(nil, "after fragment %d", i+1)
			oneBytePings = append(oneBytePings, pingFrame(p))
			oneBytePongs = append(oneBytePongs, expectPong(p))
		}
	}
	many := pattern(10000, true)
	cs := []tcase{
		{
			name:  "5.1 ping fragmented into two frames",
			rfc:   ctrlFrag,
			steps: []step{send(first(pingFrame([]byte("frag"))), cont([]byte("mented"), true))},
			want:  fails(1002),
		},
		{
			name:  "5.2 pong fragmented into two frames",
			rfc:   ctrlFrag,
			steps: []step{send(first(pongFrame([]byte("frag"))), cont([]byte("mented"), true))},
			want:  fails(1002),
		},
		{
			name:  "5.3 text message in two fragments",
			rfc:   whole,
			steps: []step{send(first(textFrame("frag")), cont([]byte("mented"), true)), expectText("fragmented")},
			want:  echoed,
		},
		{
			name:  "5.4 text message in two fragments written 1 byte at a time",
			rfc:   whole,
			steps: []step{sendChunked(1, first(textFrame("frag")), cont([]byte("mented"), true)), expectText("fragmented")},
			want:  echoed,
		},
		{
			name:  "5.5 text message in fragments of 1 byte",
			rfc:   whole,
			steps: []step{send(oneByteFrags...), expectText(string(hello))},
			want:  echoed,
		},
		{
			name:  "5.6 text message in two fragments with a ping between them",
			rfc:   ctrlIn,
			steps: []step{send(first(textFrame("frag")), pingFrame([]byte("ping")), cont([]byte("mented"), true)), expectPong([]byte("ping")), expectText("fragmented")},
			want:  echoed,
		},
		{
			name: "5.7 text message in two fragments with a ping between them, each frame written apart",
			rfc:  ctrlIn,
			steps: []step{
				send(first(textFrame("frag"))),
				send(pingFrame([]byte("ping"))),
				expectPong([]byte("ping")),
				send(cont([]byte("mented"), true)),
				expectText("fragmented"),
			},
			want: echoed,
		},
		{
			name:  "5.8 text message in 1-byte fragments with a ping after each",
			rfc:   ctrlIn,
			steps: append(append([]step{send(oneBytePings...)}, oneBytePongs...), expectText(string(hello))),
			want:  echoed,
		},
		{
			name:  "5.9 text message in 1-byte fragments with a ping after each, written 1 byte at a time",
			rfc:   ctrlIn,
			steps: append(append([]step{sendChunked(1, oneBytePings...)}, oneBytePongs...), expectText(string(hello))),
			want:  echoed,
		},
		{
			name:  "5.10 continuation frame (FIN set) without a message to continue",
			rfc:   order,
			steps: []step{send(cont([]byte("orphan"), true))},
			want:  fails(1002),
		},
		{
			name:  "5.11 continuation frame (FIN clear) without a message to continue",
			rfc:   order,
			steps: []step{send(cont([]byte("orphan"), false))},
			want:  fails(1002),
		},
		{
			name: "5.12 continuation frame without a message, after a valid echo",
			rfc:  order,
			steps: []step{
				send(textFrame("Hello")),
				expectText("Hello"),
				send(cont([]byte("orphan"), true), textFrame("never echoed")),
			},
			want: fails(1002),
		},
		{
			name: "5.13 continuation frame after a message that ended",
			rfc:  order,
			steps: []step{
				send(first(textFrame("frag")), cont([]byte("mented"), true)),
				expectText("fragmented"),
				send(cont([]byte("one too many"), true)),
			},
			want: fails(1002),
		},
		{
			name:  "5.14 unfinished continuation then a final one, without a message to continue",
			rfc:   order,
			steps: []step{send(cont([]byte("frag"), false), cont([]byte("mented"), true))},
			want:  fails(1002),
		},
		{
			name:  "5.15 text frame inside a fragmented text message",
			rfc:   order,
			steps: []step{send(first(textFrame("frag")), textFrame("intruder"), cont([]byte("mented"), true))},
			want:  fails(1002),
		},
		{
			name:  "5.16 binary frame inside a fragmented text message",
			rfc:   order,
			steps: []step{send(first(textFrame("frag")), binaryFrame([]byte{1}), cont([]byte("mented"), true))},
			want:  fails(1002),
		},
		{
			name:  "5.17 text frame inside a fragmented binary message",
			rfc:   order,
			steps: []step{send(first(binaryFrame([]byte{1, 2})), textFrame("intruder"), cont([]byte{3}, true))},
			want:  fails(1002),
		},
		{
			name:  "5.18 unfinished text frame inside a fragmented text message",
			rfc:   order,
			steps: []step{send(first(textFrame("frag")), first(textFrame("intruder")))},
			want:  fails(1002),
		},
		{
			name:  "5.19 close frame fragmented into two frames",
			rfc:   ctrlFrag,
			steps: []step{send(first(closeFrame(1000, "")), cont([]byte("bye"), true))},
			want:  fails(1002),
		},
		{
			name:  "5.20 binary message in two fragments",
			rfc:   whole,
			steps: []step{send(first(binaryFrame([]byte{0, 1, 2})), cont([]byte{3, 4, 0xff}, true)), expectBinary([]byte{0, 1, 2, 3, 4, 0xff})},
			want:  echoed,
		},
		{
			name:  "5.21 binary message in 1-byte fragments",
			rfc:   whole,
			steps: []step{send(fragments(ws.OpBinary, ascending(64), 1)...), expectBinary(ascending(64))},
			want:  echoed,
		},
		{
			name:  "5.22 empty text message in three empty fragments",
			rfc:   whole,
			steps: []step{send(first(textFrame("")), cont(nil, false), cont(nil, true)), expectText("")},
			want:  echoed,
		},
		{
			name:  "5.23 text message whose first and middle fragments are empty",
			rfc:   whole,
			steps: []step{send(first(textFrame("")), cont(nil, false), cont([]byte("late"), true)), expectText("late")},
			want:  echoed,
		},
		{
			name:  "5.24 text message in 1000 fragments of 10 bytes",
			rfc:   whole,
			steps: []step{send(fragments(ws.OpText, many, 10)...), expectText(string(many))},
			want:  echoed,
		},
		{
			name:  "5.25 binary message of 64 KiB in 4096 fragments of 16 bytes, written in 1000-byte pieces",
			rfc:   whole,
			steps: []step{sendChunked(1000, fragments(ws.OpBinary, pattern(65536, false), 16)...), expectBinary(pattern(65536, false))},
			want:  echoed,
		},
		{
			name: "5.26 two fragmented messages back to back, text then binary",
			rfc:  whole,
			steps: []step{
				send(first(textFrame("one ")), cont([]byte("two"), true), first(binaryFrame([]byte{1})), cont([]byte{2}, true)),
				expectText("one two"),
				expectBinary([]byte{1, 2}),
			},
			want: echoed,
		},
		{
			name:  "5.27 unsolicited pong between fragments is ignored",
			rfc:   "5.4: control frames may be injected between fragments; 5.5.3: an unsolicited pong gets no answer",
			steps: []step{send(first(textFrame("frag")), pongFrame([]byte("pong")), cont([]byte("mented"), true)), expectText("fragmented")},
			want:  echoed,
		},
		{
			name:  "5.28 close between fragments: the close is answered, the unfinished message is not echoed",
			rfc:   "5.4: control frames may be injected between fragments; 5.5.1: close answered with the same code",
			steps: []step{send(first(textFrame("never ")), closeFrame(1000, ""), cont([]byte("finished"), true))},
			want:  answers(1000),
		},
		{
			name: "5.29 fragmented text message with a fragment of 64 KiB + 1 between small ones",
			rfc:  whole,
			steps: []step{
				send(first(textFrame("head ")), cont(pattern(65537, true), false), cont([]byte(" tail"), true)),
				expectText("head " + string(pattern(65537, true)) + " tail"),
			},
			want: echoed,
		},
		{
			name: "5.30 ten pings between two fragments, all answered before the echo",
			rfc:  ctrlIn,
			steps: func() []step {
				fs := []frame{first(binaryFrame([]byte("a")))}
				var pongs []step
				for i := range 10 {
					p := bytes.Repeat([]byte{byte('0' + i)}, 10*i)
					fs = append(fs, pingFrame(p))
					pongs = append(pongs, expectPong(p))
				}
				fs = append(fs, cont([]byte("b"), true))
				return append(append([]step{send(fs...)}, pongs...), expectBinary([]byte("ab")))
			}(),
			want: echoed,
		},
	}
	return cs
}
