package conformance

import (
	"fmt"

	"github.com/gobwas/ws"
)

// orderCases are group 10, what the server owes the client around a close,
// which Autobahn does not check:
//
//   - 10.1, 10.2: answers before failure. A valid message comes first, then
//     a frame that fails the connection. The echo of the valid message must
//     come, whole, before the close frame with the code for the violation
//     (strictly: a server that may drop it is not enough here), whether the
//     two arrive in one TCP write (10.1) or in two (10.2). RFC 6455 7.1.7
//     fails the connection for what comes after; what came before was a
//     valid message, received and processed (6.2) and answered.
//   - 10.3: bytes after the client's close frame. The server answers the
//     close frame with its own, which must arrive intact, then its FIN: no
//     reset, though bytes it will never process follow the close frame
//     (closing a socket with unread bytes sends a reset, which can destroy
//     the close frame on its way), and no pong or echo for them.
//
// The connection must end with a FIN in every case (noReset).
func orderCases() []tcase {
	const (
		before = "6.2, 7.1.7: the valid message before the violation is received and answered; the violation then fails the connection"
		after  = "5.5.1: a close frame is answered with a close frame and nothing is sent after it; 7.1.1: then the server closes TCP"
	)
	bad := []struct {
		name string
		f    frame
		code int
		rfc  string
	}{
		{
			name: "an unmasked frame",
			f:    frame{fin: true, op: ws.OpText, payload: []byte("unmasked"), noMask: true},
			code: 1002,
			rfc:  "5.1: a server must close on an unmasked frame, with 1002",
		},
		{
			name: "a frame with reserved opcode 3",
			f:    frame{fin: true, op: 3, payload: []byte("reserved")},
			code: 1002,
			rfc:  "5.2: an unknown opcode fails the connection; 7.4.1: with 1002",
		},
		{
			name: "a text frame with RSV1 set and no extension negotiated",
			f:    withRSV(textFrame("rsv1"), 4),
			code: 1002,
			rfc:  "5.2: reserved bits must be 0 unless an extension defines them; 7.4.1: fail with 1002",
		},
		{
			name: "a text message that is not UTF-8",
			f:    textBytes(x("CE BA E1 BD B9 CF 83 CE BC CE B5 ED A0 80 65 64 69 74 65 64")),
			code: 1007,
			rfc:  "8.1: text that is not valid UTF-8 fails the connection; 7.4.1: with 1007",
		},
		{
			name: "a frame declaring 16 MiB + 1 bytes, 1 KiB of it sent",
			f:    frame{fin: true, op: ws.OpBinary, payload: pattern(1<<10, false), declared: true, declare: maxMessage + 1},
			code: 1009,
			rfc:  "7.4.1, 10.4: a message over the endpoint's limit (16 MiB here) fails the connection with 1009",
		},
		{
			name: "a fragmented ping (FIN clear)",
			f:    frame{op: ws.OpPing, payload: []byte("fragment")},
			code: 1002,
			rfc:  "5.5: control frames must not be fragmented; 7.4.1: fail with 1002",
		},
		{
			name: "a continuation frame without a message to continue",
			f:    cont([]byte("continued"), true),
			code: 1002,
			rfc:  "5.4: a continuation frame continues a fragmented message; 7.4.1: fail with 1002",
		},
	}
	var cs []tcase
	for i, b := range bad {
		cs = append(cs, tcase{
			name:    fmt.Sprintf("10.1.%d a text message then %s, in one write: the echo, then close %d", i+1, b.name, b.code),
			rfc:     before + "; " + b.rfc,
			steps:   []step{send(textFrame("Hello"), b.f), expectText("Hello")},
			want:    fails(b.code),
			noReset: true,
		})
	}
	for i, b := range bad {
		cs = append(cs, tcase{
			name:    fmt.Sprintf("10.2.%d a text message then %s, in two writes: the echo, then close %d", i+1, b.name, b.code),
			rfc:     before + "; " + b.rfc,
			steps:   []step{send(textFrame("Hello")), send(b.f), expectText("Hello")},
			want:    fails(b.code),
			noReset: true,
		})
	}
	cs = append(cs,
		tcase{
			name:    "10.3.1 close frame with a ping and a text message behind it in the same write: the close answered intact, then FIN",
			rfc:     after + "; 1.4: after a close frame, no more data frames are processed",
			steps:   []step{send(closeFrame(1000, "bye"), pingFrame([]byte("after close")), textFrame("after close"))},
			want:    answers(1000),
			noReset: true,
		},
		tcase{
			name:    "10.3.2 close frame with a 64 KiB text message behind it in the same write: the close answered intact, then FIN",
			rfc:     after + "; 1.4: after a close frame, no more data frames are processed",
			steps:   []step{send(closeFrame(1000, "bye"), textBytes(pattern(64<<10, true)), pingFrame([]byte("after close")))},
			want:    answers(1000),
			noReset: true,
		},
	)
	return cs
}
