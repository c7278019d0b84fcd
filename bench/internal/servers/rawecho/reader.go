package rawecho

import (
	"encoding/binary"
	"sync"

	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/bench/internal/netwait"
)

// frameReader reads client frames out of one pooled read buffer. Between
// bursts, when every byte read has been used, it holds no buffer: the
// buffer is taken from the pool only when a read is tried and goes back
// when that read finds nothing (netwait.ReadPooled), so waiting for bytes
// costs no extra system call and an idle connection no buffer.
type frameReader struct {
	nc    *netwait.Conn
	pool  *sync.Pool // of *[]byte
	hold  bool
	limit int64

	buf    []byte  // nil between bursts
	pooled *[]byte // buf's pool handle
	r, w   int     // the unread bytes are buf[r:w]

	get func() []byte
	put func([]byte)
}

func newFrameReader(nc *netwait.Conn, pool *sync.Pool, hold bool, limit int64) *frameReader {
	fr := &frameReader{nc: nc, pool: pool, hold: hold, limit: limit}
	fr.get = func() []byte {
		fr.pooled = fr.pool.Get().(*[]byte)
		return *fr.pooled
	}
	fr.put = func([]byte) {
		if fr.pooled != nil {
			fr.pool.Put(fr.pooled)
			fr.pooled = nil
		}
	}
	return fr
}

// release gives the buffer back. The reader must be drained.
func (fr *frameReader) release() {
	fr.put(nil)
	fr.buf = nil
	fr.r, fr.w = 0, 0
}

// drained reports whether every byte read so far has been used.
func (fr *frameReader) drained() bool { return fr.r == fr.w }

// next returns the next frame header. If the reader is drained, it first
// calls idle (the end of a burst: the caller flushes its replies) and then
// waits for bytes without holding a buffer.
func (fr *frameReader) next(idle func() error) (ws.Header, error) {
	if fr.r == fr.w {
		err := idle()
		if err != nil {
			return ws.Header{}, err
		}
		fr.r, fr.w = 0, 0
		var n int
		if fr.hold {
			if fr.buf == nil {
				fr.buf = fr.get()
			}
			n, err = fr.nc.Read(fr.buf)
		} else {
			n, err = fr.nc.ReadPooled(&fr.buf, 0, fr.get, fr.put)
		}
		fr.w = n
		if n == 0 {
			return ws.Header{}, err
		}
	}
	err := fr.ensure(2)
	if err != nil {
		return ws.Header{}, err
	}
	b := fr.buf[fr.r:fr.w]
	l := b[1] & 0x7f
	n := 2
	switch l {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&0x80 != 0 {
		n += 4
	}
	err = fr.ensure(n)
	if err != nil {
		return ws.Header{}, err
	}
	h, err := parseHeader(fr.buf[fr.r:fr.r+n], fr.limit)
	fr.r += n
	return h, err
}

// payload returns the next n bytes, unmasked with mask, valid until the next
// call. n must not exceed the buffer's size.
func (fr *frameReader) payload(n int, mask [4]byte) ([]byte, error) {
	err := fr.ensure(n)
	if err != nil {
		return nil, err
	}
	p := fr.buf[fr.r : fr.r+n]
	fr.r += n
	ws.Cipher(p, mask, 0)
	return p, nil
}

// stream passes the next n bytes, unmasked with mask, to f in pieces as
// they arrive: for payloads longer than the buffer.
func (fr *frameReader) stream(n int64, mask [4]byte, f func([]byte) error) error {
	for off := int64(0); off < n; {
		if fr.r == fr.w {
			fr.r, fr.w = 0, 0
			err := fr.more()
			if err != nil {
				return err
			}
		}
		p := fr.buf[fr.r:min(fr.w, fr.r+int(min(n-off, int64(len(fr.buf)))))]
		ws.Cipher(p, mask, int(off))
		fr.r += len(p)
		off += int64(len(p))
		err := f(p)
		if err != nil {
			return err
		}
	}
	return nil
}

// size returns the size of the read buffer.
func (fr *frameReader) size() int { return len(fr.buf) }

// ensure blocks until at least n unread bytes are in the buffer.
func (fr *frameReader) ensure(n int) error {
	if len(fr.buf)-fr.r < n {
		fr.w = copy(fr.buf, fr.buf[fr.r:fr.w])
		fr.r = 0
	}
	for fr.w-fr.r < n {
		err := fr.more()
		if err != nil {
			return err
		}
	}
	return nil
}

// more reads at least one byte into the free end of the buffer, blocking.
func (fr *frameReader) more() error {
	n, err := fr.nc.Read(fr.buf[fr.w:])
	fr.w += n
	if n > 0 {
		return nil
	}
	return err
}

// parseHeader parses a whole client frame header b and checks what a server
// must check: masking, reserved bits and opcodes, control frames
// unfragmented and at most 125 bytes, the frame limit.
func parseHeader(b []byte, limit int64) (ws.Header, error) {
	var h ws.Header
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	switch l := b[1] & 0x7f; l {
	case 126:
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			return h, errProtocol
		}
		h.Length = int64(u)
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		copy(h.Mask[:], b[len(b)-4:])
	}
	switch {
	case !h.Masked, h.Rsv != 0, h.OpCode.IsReserved():
		return h, errProtocol
	case h.OpCode.IsControl() && (!h.Fin || h.Length > 125):
		return h, errProtocol
	case h.Length > limit:
		return h, errTooBig
	}
	return h, nil
}
