package conformance

import (
	"fmt"
	"strings"

	"github.com/gobwas/ws"
)

// closeCases are Autobahn's group 7: the closing handshake (RFC 6455 5.5.1,
// 7.1), the close codes a frame may carry (7.4), close payloads that are
// malformed, and what follows a close frame. In every case the server must
// close TCP soon after its close frame (7.1.1: "the underlying TCP
// connection, in most normal cases, SHOULD be closed first by the server").
func closeCases() []tcase {
	const (
		answer  = "5.5.1: a close frame is answered with a close frame, typically echoing the code; 7.1.1: then the server closes TCP"
		badCode = "7.4.1, 7.4.2: a close code that is reserved, unassigned or out of range is a protocol error: fail with 1002"
	)
	cs := []tcase{
		{
			name:  "7.1.1 close with 1000 after a valid echo",
			rfc:   answer,
			steps: []step{send(textFrame("Hello")), expectText("Hello"), send(closeFrame(1000, ""))},
			want:  answers(1000),
		},
		{
			name:  "7.1.2 two close frames: the second is not answered",
			rfc:   answer + "; 5.5.1: after a close frame, nothing more is sent",
			steps: []step{send(closeFrame(1000, ""), closeFrame(1000, "again"))},
			want:  answers(1000),
		},
		{
			name:  "7.1.3 text after the close frame is not echoed",
			rfc:   answer + "; 1.4, 5.5.1: after a close frame, no more data frames are processed",
			steps: []step{send(closeFrame(1000, ""), textFrame("after close"))},
			want:  answers(1000),
		},
		{
			name:  "7.1.4 ping after the close frame is not answered",
			rfc:   answer + "; 5.5.1: after a close frame, nothing more is sent",
			steps: []step{send(closeFrame(1000, ""), pingFrame([]byte("after close")))},
			want:  answers(1000),
		},
		{
			name:  "7.1.5 text after the close frame, in a separate write",
			rfc:   answer + "; 1.4, 5.5.1: after a close frame, no more data frames are processed",
			steps: []step{send(closeFrame(1000, "")), send(textFrame("after close"), binaryFrame([]byte{1}))},
			want:  answers(1000),
		},
		{
			name:  "7.1.6 close in the middle of a fragmented message",
			rfc:   answer + "; the unfinished message is not echoed",
			steps: []step{send(first(textFrame("frag")), closeFrame(1000, ""))},
			want:  answers(1000),
		},
		{
			// RFC 6455 5.5.1 lets the server answer a close at once,
			// dropping what it has not sent yet, or finish its current
			// message first ("MAY delay sending a Close frame until its
			// current message is sent"). So the echo may come, whole, or
			// not at all; the close must come (Autobahn marks its 7.1.6
			// informational for the same reason).
			name: "7.1.7 close right behind a 256 KiB message: the echo may come first, the close must",
			rfc:  answer + "; 5.5.1: the server may send its close before the echo of a message it received",
			steps: []step{
				send(textBytes(pattern(256<<10, true)), closeFrame(1000, "")),
				maybeMessage(ws.OpText, func() []byte { return pattern(256<<10, true) }),
			},
			want: answers(1000),
		},
		{
			name: "7.1.8 close frame written 1 byte at a time",
			rfc:  answer,
			steps: []step{
				sendChunked(1, closeFrame(1000, "slowly")),
			},
			want: answers(1000),
		},
		{
			// RFC 6455 7.1.1 and 7.1.2: after the handshake the server
			// closes TCP and the client waits for it. The client here never
			// closes its side: only the server's FIN can end the case in
			// time (tcpBound).
			name:  "7.2.1 the server closes TCP first after the closing handshake",
			rfc:   "7.1.1: the server closes the TCP connection first, as soon as both close frames are through",
			steps: []step{send(closeFrame(1000, "bye"))},
			want:  answers(1000),
		},
		{
			name:  "7.2.2 the server closes TCP after failing the connection, without waiting for the client's close",
			rfc:   "7.1.7: _Fail the WebSocket Connection_: send a close frame, then close TCP",
			steps: []step{send(frame{fin: true, op: 3})},
			want:  fails(1002),
		},
		{
			// An empty close carries no code (the receiver sees 1005, which
			// must not be sent, 7.4.1), so the echo cannot repeat a code: it
			// is an empty close frame, or 1000 (normal closure). Both are
			// RFC 6455; wsactor sends the empty one (it echoes what it got).
			name:  "7.3.1 empty close frame: answered with an empty close or 1000",
			rfc:   "5.5.1: a close frame must be answered; 7.1.5, 7.4.1: no code received means 1005, which must not be sent",
			steps: []step{send(closeRaw(nil))},
			want:  answers(noCode, 1000),
		},
		{
			name:  "7.3.2 close payload of 1 byte",
			rfc:   "5.5.1: a close body starts with a 2-byte code; 1 byte is a protocol error: fail with 1002",
			steps: []step{send(closeRaw([]byte{0x03}))},
			want:  fails(1002),
		},
		{
			name:  "7.3.3 close with code 1000 and no reason",
			rfc:   answer,
			steps: []step{send(closeFrame(1000, ""))},
			want:  answers(1000),
		},
		{
			name:  "7.3.4 close with code 1000 and a short reason",
			rfc:   answer,
			steps: []step{send(closeFrame(1000, "Hello World!"))},
			want:  answers(1000),
		},
		{
			name:  "7.3.5 close with code 1000 and a 123-byte reason, the longest",
			rfc:   answer + "; 5.5: 125 bytes of payload, 2 for the code",
			steps: []step{send(closeFrame(1000, strings.Repeat("*", 123)))},
			want:  answers(1000),
		},
		{
			name:  "7.3.6 close with code 1000 and a 124-byte reason (126-byte payload)",
			rfc:   "5.5: control frames carry at most 125 bytes; 7.4.1: fail with 1002",
			steps: []step{send(closeFrame(1000, strings.Repeat("*", 124)))},
			want:  fails(1002),
		},
		{
			name:  "7.3.7 close with code 1000 and a UTF-8 reason of 123 bytes with multibyte characters",
			rfc:   answer,
			steps: []step{send(closeFrame(1000, strings.Repeat("€", 41)))},
			want:  answers(1000),
		},
		{
			name:  "7.5.1 close reason that is not UTF-8",
			rfc:   "5.5.1: the reason is UTF-8; 8.1, 7.4.1: fail with 1007",
			steps: []step{send(closeFrame(1000, string(x("CE BA E1 BD B9 CF 83 CE BC CE B5 ED A0 80 65 64 69 74 65 64"))))},
			want:  fails(1007),
		},
		{
			name:  "7.5.2 close reason that ends inside a code point",
			rfc:   "5.5.1: the reason is UTF-8; 8.1, 7.4.1: fail with 1007",
			steps: []step{send(closeFrame(1000, "bye "+string(x("E2 82"))))},
			want:  fails(1007),
		},
		{
			name:  "7.5.3 close reason with a lone continuation byte",
			rfc:   "5.5.1: the reason is UTF-8; 8.1, 7.4.1: fail with 1007",
			steps: []step{send(closeFrame(1001, string(x("80"))))},
			want:  fails(1007),
		},
	}
	// 7.7: every code a close frame may carry is answered with itself.
	valid := []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999}
	for i, code := range valid {
		cs = append(cs, tcase{
			name:  fmt.Sprintf("7.7.%d close with code %d is echoed with %d", i+1, code, code),
			rfc:   answer + "; 7.4.1, 7.4.2 and the IANA registry: the code may be sent; wsactor echoes the peer's code",
			steps: []step{send(closeFrame(code, ""))},
			want:  answers(int(code)),
		})
	}
	n := len(valid)
	cs = append(cs, tcase{
		name:  fmt.Sprintf("7.7.%d close with code 4321 and a reason is echoed with 4321", n+1),
		rfc:   answer + "; 7.4.2: 4000-4999 are private codes",
		steps: []step{send(closeFrame(4321, "private reason"))},
		want:  answers(4321),
	})
	// 7.9: codes no endpoint may send fail the connection with 1002.
	invalid := []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}
	for i, code := range invalid {
		cs = append(cs, tcase{
			name:  fmt.Sprintf("7.9.%d close with code %d", i+1, code),
			rfc:   badCode,
			steps: []step{send(closeFrame(code, ""))},
			want:  fails(1002),
		})
	}
	cs = append(cs, tcase{
		name:  fmt.Sprintf("7.9.%d close with code 1006 and a reason, after a valid echo", len(invalid)+1),
		rfc:   badCode,
		steps: []step{send(textFrame("Hello")), expectText("Hello"), send(closeFrame(1006, "abnormal"))},
		want:  fails(1002),
	})
	return cs
}
