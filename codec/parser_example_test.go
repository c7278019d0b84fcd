package codec_test

import (
	"fmt"

	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/codec"
)

// A server's Parser is pushed each read as it arrives: here a masked text
// message whose header and payload are cut across three reads, then a ping
// and a whole message in one read. Payloads come unmasked, in place in the
// reads' buffer; the caller gathers what spans reads.
func ExampleParser() {
	var wire []byte
	for _, f := range []ws.Frame{
		ws.NewTextFrame([]byte("hello, world")),
		ws.NewPingFrame([]byte("?")),
		ws.NewBinaryFrame([]byte{1, 2, 3}),
	} {
		f = ws.MaskFrameWith(f, [4]byte{1, 2, 3, 4})
		wire = append(wire, ws.MustCompileFrame(f)...)
	}
	reads := [][]byte{wire[:3], wire[3:12], wire[12:]}

	name := map[ws.OpCode]string{ws.OpText: "text", ws.OpBinary: "binary", ws.OpPing: "ping", ws.OpPong: "pong", ws.OpClose: "close"}
	p := codec.Parser{Decoder: codec.Decoder{Role: codec.Server}}
	var msg []byte
	for _, b := range reads {
		for len(b) > 0 {
			c, n, ok, err := p.Next(b)
			b = b[n:]
			if err != nil {
				fmt.Println(err) // fail the connection with its close code
				return
			}
			if !ok {
				continue // the read ended inside a header
			}
			switch {
			case c.Op.IsControl():
				fmt.Printf("control %s %q\n", name[c.Op], c.Payload)
			case c.Whole() && c.Fin && c.Op != ws.OpContinuation:
				fmt.Printf("message %s in one read: %q\n", name[c.Op], c.Payload) // no copy
			default:
				msg = append(msg, c.Payload...)
				if c.Last && c.Fin {
					fmt.Printf("message %s across reads: %q\n", name[p.Opcode()], msg)
					msg = msg[:0]
				}
			}
		}
	}
	// Output:
	// message text across reads: "hello, world"
	// control ping "?"
	// message binary in one read: "\x01\x02\x03"
}
