package conformance

import "fmt"

// reservedBitsCases are Autobahn's group 3: a frame with RSV1, RSV2 or RSV3
// set when no extension defines them (none is negotiated here) fails the
// connection with 1002 (RFC 6455 5.2, 7.4.1). Each comes after a valid
// echo, and a ping follows it that must get no pong: the server reads
// nothing after the violation.
func reservedBitsCases() []tcase {
	const rfc = "5.2: reserved bits must be 0 unless an extension defines them; 7.4.1: fail with 1002"
	bitName := map[byte]string{
		4: "RSV1", 2: "RSV2", 1: "RSV3",
		6: "RSV1+RSV2", 5: "RSV1+RSV3", 3: "RSV2+RSV3", 7: "RSV1+RSV2+RSV3",
	}
	kinds := []struct {
		name string
		f    frame
		bits []byte
	}{
		{"text frame", textFrame("Hello"), []byte{4, 2, 1, 6, 5, 3, 7}},
		{"binary frame", binaryFrame([]byte{0xde, 0xad, 0xbe, 0xef}), []byte{4, 2, 1, 7}},
		{"ping", pingFrame([]byte("ping")), []byte{4, 2, 1}},
		{"pong", pongFrame([]byte("pong")), []byte{4, 1}},
		{"close frame", closeFrame(1000, ""), []byte{4, 2, 1}},
		{"empty text frame", textFrame(""), []byte{4}},
	}
	var cs []tcase
	n := 0
	for _, k := range kinds {
		for _, bits := range k.bits {
			n++
			cs = append(cs, tcase{
				name: fmt.Sprintf("3.%d %s with %s set, after a valid echo", n, k.name, bitName[bits]),
				rfc:  rfc,
				steps: []step{
					send(textFrame("Hello")),
					expectText("Hello"),
					send(withRSV(k.f, bits), pingFrame([]byte("unanswered"))),
				},
				want: fails(1002),
			})
		}
	}
	cs = append(cs,
		tcase{
			name: fmt.Sprintf("3.%d continuation frame with RSV1 set inside a text message", n+1),
			rfc:  rfc,
			steps: []step{
				send(first(textFrame("Hel")), withRSV(cont([]byte("lo"), true), 4)),
			},
			want: fails(1002),
		},
		tcase{
			name: fmt.Sprintf("3.%d text frame with RSV2 set, written 1 byte at a time", n+2),
			rfc:  rfc,
			steps: []step{
				sendChunked(1, withRSV(textFrame("Hello"), 2)),
			},
			want: fails(1002),
		},
	)
	return cs
}
