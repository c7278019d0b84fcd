package wsload

import (
	"testing"

	"github.com/gobwas/ws"
)

// BenchmarkParse parses what one 64 KiB read brings a connection under echo
// load: 64 B echoes back to back (992 of them), through the connection's
// whole read path (frame parsing, the protocol checks, message accounting).
func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct {
		name string
		op   Op
	}{
		{name: "text", op: OpText},
		{name: "binary", op: OpBinary},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const size = 64
			frame := ws.MustCompileFrame(ws.NewFrame(ws.OpCode(bc.op), true, pattern64(size)))
			var buf []byte
			for len(buf)+len(frame) <= 64<<10 {
				buf = append(buf, frame...)
			}
			r := &runner{cfg: Config{Size: size, Inflight: 1000}, op: bc.op}
			c := &conn{r: r}
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				if !c.parse(buf, 0) {
					b.Fatal("parse failed")
				}
			}
			if want := int64(b.N) * int64(len(buf)/len(frame)); c.recvN != want || c.errs.Load() != 0 {
				b.Fatalf("%d messages, %d errors; want %d and none", c.recvN, c.errs.Load(), want)
			}
		})
	}
}

// pattern64 returns n bytes of printable ASCII, valid as text.
func pattern64(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = 'a' + byte(i%26)
	}
	return p
}
