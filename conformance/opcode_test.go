package conformance

import (
	"fmt"

	"github.com/gobwas/ws"
)

// opcodeCases are Autobahn's group 4: the reserved opcodes, non-control
// 3-7 and control 11-15, fail the connection with 1002 (RFC 6455 5.2:
// "if an unknown opcode is received, the receiving endpoint MUST _Fail the
// WebSocket Connection_"), with and without a payload, after a valid echo.
// A ping follows each that must get no pong.
func opcodeCases() []tcase {
	const rfc = "5.2: an unknown opcode fails the connection; 7.4.1: with 1002"
	var cs []tcase
	groups := []struct {
		n    int
		kind string
		ops  []ws.OpCode
	}{
		{1, "reserved non-control", []ws.OpCode{3, 4, 5, 6, 7}},
		{2, "reserved control", []ws.OpCode{11, 12, 13, 14, 15}},
	}
	for _, g := range groups {
		i := 0
		for _, op := range g.ops {
			for _, payload := range [][]byte{nil, []byte("reserved")} {
				i++
				with := "without payload"
				if payload != nil {
					with = fmt.Sprintf("with a payload of %d bytes", len(payload))
				}
				cs = append(cs, tcase{
					name: fmt.Sprintf("4.%d.%d %s opcode %d %s, after a valid echo", g.n, i, g.kind, op, with),
					rfc:  rfc,
					steps: []step{
						send(textFrame("Hello")),
						expectText("Hello"),
						send(frame{fin: true, op: op, payload: payload}, pingFrame([]byte("unanswered"))),
					},
					want: fails(1002),
				})
			}
		}
	}
	cs = append(cs,
		tcase{
			name:  "4.3.1 reserved opcode 3 as the first frame of the connection",
			rfc:   rfc,
			steps: []step{send(frame{fin: true, op: 3, payload: []byte("x")})},
			want:  fails(1002),
		},
		tcase{
			name: "4.3.2 reserved opcode 11 between the fragments of a text message",
			rfc:  rfc,
			steps: []step{
				send(first(textFrame("frag")), frame{fin: true, op: 11}, cont([]byte("ment"), true)),
			},
			want: fails(1002),
		},
		tcase{
			name: "4.3.3 reserved opcode 5 unfinished (FIN clear)",
			rfc:  rfc,
			steps: []step{
				send(frame{op: 5, payload: []byte("x")}),
			},
			want: fails(1002),
		},
	)
	return cs
}
