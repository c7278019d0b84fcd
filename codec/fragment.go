package codec

import (
	"iter"

	"github.com/gobwas/ws"
)

// Fragments splits a message of type op with payload p into frames of at
// most size bytes each (RFC 6455 section 5.4): the first frame carries op,
// the rest are continuations, the last has FIN set. With size <= 0, or when
// p fits, it yields one frame. The headers yielded have no mask; an empty
// message is one empty frame. Control frames may be sent between the yielded
// frames, never inside one.
func Fragments(op ws.OpCode, p []byte, size int) iter.Seq2[ws.Header, []byte] {
	return func(yield func(ws.Header, []byte) bool) {
		if size <= 0 || len(p) <= size {
			yield(ws.Header{Fin: true, OpCode: op, Length: int64(len(p))}, p)
			return
		}
		for first := true; ; first = false {
			part := p
			if len(part) > size {
				part = part[:size]
			}
			p = p[len(part):]
			h := ws.Header{Fin: len(p) == 0, OpCode: ws.OpContinuation, Length: int64(len(part))}
			if first {
				h.OpCode = op
			}
			if !yield(h, part) || len(p) == 0 {
				return
			}
		}
	}
}
