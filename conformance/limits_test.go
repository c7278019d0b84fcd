package conformance

import (
	"fmt"
	"time"

	"github.com/gobwas/ws"
)

// limitCases are Autobahn's group 9: large messages echoed whole, in one
// frame and in many, up to the server's limit of 16 MiB; one byte more is
// refused with 1009 (RFC 6455 7.4.1: "a message that is too big for it to
// process"), at the header that declares it, before its bytes come; and
// many small messages back to back, all echoed in order.
func limitCases() []tcase {
	const (
		big     = "5.2, 5.4, 5.6: a message of any size up to the endpoint's limit is one message; the echo server returns it"
		tooBig  = "7.4.1, 10.4: a message over the endpoint's limit (16 MiB here) fails the connection with 1009"
		ordered = "5.6, 6.1: messages are delivered in order; the echo server returns each"
		heavyT  = 60 * time.Second
	)
	var cs []tcase
	type size struct {
		name string
		n    int
	}
	kib := func(n int) size { return size{fmt.Sprintf("%d KiB", n), n << 10} }
	mib := func(n int) size { return size{fmt.Sprintf("%d MiB", n), n << 20} }
	bigCase := func(name string, op ws.OpCode, s size, frag, chunk int) tcase {
		text := op == ws.OpText
		return tcase{
			name: name,
			rfc:  big,
			steps: []step{
				sendLazy(chunk, func() []frame {
					p := pattern(s.n, text)
					if frag == 0 {
						return []frame{{fin: true, op: op, payload: p}}
					}
					return fragments(op, p, frag)
				}),
				expectLazy(op, func() []byte { return pattern(s.n, text) }),
			},
			want:    echoed,
			timeout: heavyT,
			heavy:   s.n >= 4<<20,
		}
	}
	for i, s := range []size{kib(64), kib(256), mib(1), mib(4), mib(16)} {
		cs = append(cs, bigCase(fmt.Sprintf("9.1.%d text message of %s in one frame", i+1, s.name), ws.OpText, s, 0, 0))
	}
	for i, s := range []size{kib(64), kib(256), mib(1), mib(4), mib(16)} {
		cs = append(cs, bigCase(fmt.Sprintf("9.2.%d binary message of %s in one frame", i+1, s.name), ws.OpBinary, s, 0, 0))
	}
	for i, s := range []size{kib(256), mib(1), mib(4)} {
		cs = append(cs, bigCase(fmt.Sprintf("9.3.%d text message of %s in 64 KiB fragments", i+1, s.name), ws.OpText, s, 64<<10, 0))
	}
	cs = append(cs, bigCase("9.3.4 binary message of 16 MiB in 64 KiB fragments", ws.OpBinary, mib(16), 64<<10, 0))
	for i, s := range []size{kib(64), mib(1), mib(4)} {
		cs = append(cs, bigCase(fmt.Sprintf("9.4.%d binary message of %s in 1 KiB fragments", i+1, s.name), ws.OpBinary, s, 1<<10, 0))
	}
	cs = append(cs, bigCase("9.4.4 text message of 1 MiB in 1 KiB fragments", ws.OpText, mib(1), 1<<10, 0))
	cs = append(cs,
		bigCase("9.5.1 binary message of 1 MiB written in 1000-byte pieces", ws.OpBinary, mib(1), 0, 1000),
		bigCase("9.5.2 text message of 4 MiB in 64 KiB fragments written in 65535-byte pieces", ws.OpText, mib(4), 64<<10, 65535),
	)

	// Over the limit. Only headers and a little payload are sent: the
	// server must refuse at the declared length, not wait for the bytes.
	over := []struct {
		name  string
		steps []step
		heavy bool
	}{
		{
			name:  "binary frame declaring 16 MiB + 1 bytes, 1 KiB of it sent",
			steps: []step{send(frame{fin: true, op: ws.OpBinary, payload: pattern(1<<10, false), declared: true, declare: maxMessage + 1})},
		},
		{
			name:  "text frame declaring 16 MiB + 1 bytes, 1 KiB of it sent",
			steps: []step{send(frame{fin: true, op: ws.OpText, payload: pattern(1<<10, true), declared: true, declare: maxMessage + 1})},
		},
		{
			name:  "binary frame declaring 2^63-1 bytes",
			steps: []step{send(frame{fin: true, op: ws.OpBinary, payload: []byte("abc"), declared: true, declare: 1<<63 - 1})},
		},
		{
			name: "second fragment declaring 16 MiB after a 1 KiB first fragment",
			steps: []step{send(
				first(binaryFrame(pattern(1<<10, false))),
				frame{op: ws.OpContinuation, payload: pattern(1<<10, false), declared: true, declare: maxMessage},
			)},
		},
		{
			name: "fragments of 1 MiB adding up to 16 MiB, then a 1-byte fragment",
			steps: []step{sendLazy(0, func() []frame {
				fs := fragments(ws.OpBinary, pattern(maxMessage, false), 1<<20)
				fs[len(fs)-1].fin = false
				return append(fs, cont([]byte{0}, true))
			})},
			heavy: true,
		},
		{
			name: "frame declaring 16 MiB + 1 bytes after a valid 1 MiB echo",
			steps: []step{
				send(binaryFrame(pattern(1<<20, false))),
				expectBinary(pattern(1<<20, false)),
				send(frame{fin: true, op: ws.OpBinary, payload: []byte("abc"), declared: true, declare: maxMessage + 1}),
			},
		},
	}
	for i, o := range over {
		cs = append(cs, tcase{
			name:    fmt.Sprintf("9.6.%d over the limit: %s", i+1, o.name),
			rfc:     tooBig,
			steps:   o.steps,
			want:    fails(1009),
			timeout: heavyT,
			heavy:   o.heavy,
		})
	}

	// Many messages back to back.
	manyCase := func(name string, count, size int, op ws.OpCode, perWrite bool) tcase {
		var sends []frame
		var expects []step
		for i := range count {
			p := fmt.Appendf(nil, "%06d:", i)
			switch {
			case size == 0:
				p = nil
			case op == ws.OpText:
				p = append(p, pattern(max(size-len(p), 0), true)...)
			default:
				p = append(p, pattern(max(size-len(p), 0), false)...)
			}
			sends = append(sends, frame{fin: true, op: op, payload: p})
			expects = append(expects, expectMessage(op, p))
		}
		var steps []step
		if perWrite {
			for _, f := range sends {
				steps = append(steps, send(f))
			}
		} else {
			steps = append(steps, send(sends...))
		}
		return tcase{
			name:    name,
			rfc:     ordered,
			steps:   append(steps, expects...),
			want:    echoed,
			timeout: heavyT,
		}
	}
	cs = append(cs,
		manyCase("9.7.1 1000 text messages of 16 bytes in one write, echoed in order", 1000, 16, ws.OpText, false),
		manyCase("9.7.2 1000 binary messages of 1 KiB in one write, echoed in order", 1000, 1<<10, ws.OpBinary, false),
		manyCase("9.7.3 1000 text messages of 64 bytes, one write each, echoed in order", 1000, 64, ws.OpText, true),
		manyCase("9.7.4 100 binary messages of 64 KiB in one write, echoed in order", 100, 64<<10, ws.OpBinary, false),
		manyCase("9.7.5 1000 empty binary messages in one write, echoed in order", 1000, 0, ws.OpBinary, false),
	)
	return cs
}
