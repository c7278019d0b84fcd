package codec

import (
	"io"

	"github.com/gobwas/pool/pbytes"
	"github.com/gobwas/ws"
)

// DefaultReadBuffer is the read buffer size of a Reader when none is given.
const DefaultReadBuffer = 4096

// Frame is one decoded frame: its header and its unmasked payload.
type Frame struct {
	Header  ws.Header
	Payload []byte
}

// Reader decodes frames from an io.Reader through a pooled buffer, checking
// each one with its Decoder. A frame that fits in the buffer is returned in
// place, without a copy; a larger one is gathered in a pooled buffer that
// grows only as its bytes arrive, so a peer that declares a huge length and
// sends little costs little.
type Reader struct {
	Decoder

	src  io.Reader
	buf  []byte // pooled read buffer; buf[r:w] holds unread bytes
	r, w int
	big  []byte // pooled payload buffer for frames larger than buf
}

// NewReader returns a Reader of src for d's role and limits with a pooled
// read buffer of size bytes (DefaultReadBuffer when size <= 0). Release
// returns its buffers to the pool.
func NewReader(src io.Reader, d Decoder, size int) *Reader {
	if size <= 0 {
		size = DefaultReadBuffer
	}
	if size < MaxHeaderLen {
		size = MaxHeaderLen
	}
	return &Reader{Decoder: d, src: src, buf: pbytes.GetLen(size)}
}

// Buffered returns the number of bytes read from the source and not yet
// decoded.
func (r *Reader) Buffered() int { return r.w - r.r }

// NextFrame reads, checks and unmasks the next frame. The payload is valid
// until the next call to NextFrame or Release. Control frames come as they
// arrive, also between the fragments of a message; a close frame's payload
// has been checked with ParseClosePayload. Errors are *ProtocolError values
// for violations, io.EOF at a clean end between frames, and
// io.ErrUnexpectedEOF for a stream cut inside a frame.
func (r *Reader) NextFrame() (Frame, error) {
	var h ws.Header
	for {
		var n int
		var err error
		h, n, err = ParseHeader(r.buf[r.r:r.w])
		if err != nil {
			return Frame{}, err
		}
		if n > 0 {
			r.r += n
			break
		}
		if err := r.fill(r.w - r.r + 1); err != nil {
			if err == io.EOF && r.r != r.w {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
	}
	if err := r.Begin(h); err != nil {
		return Frame{}, err
	}
	p, err := r.payload(h.Length)
	if err != nil {
		return Frame{}, err
	}
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	f := Frame{Header: h, Payload: p}
	switch h.OpCode {
	case ws.OpClose:
		if _, _, err := ParseClosePayload(p); err != nil {
			return f, err
		}
	case ws.OpText, ws.OpBinary, ws.OpContinuation:
		if err := r.Data(p); err != nil {
			return f, err
		}
		if _, err := r.End(); err != nil {
			return f, err
		}
	}
	return f, nil
}

// payload returns the next n payload bytes.
func (r *Reader) payload(n64 int64) ([]byte, error) {
	if n64 <= int64(len(r.buf)) {
		n := int(n64)
		if r.w-r.r < n {
			if err := r.fill(n); err != nil {
				return nil, unexpected(err)
			}
		}
		p := r.buf[r.r : r.r+n]
		r.r += n
		return p, nil
	}
	// Larger than the read buffer: gather it, growing with what arrives.
	if r.big != nil {
		pbytes.Put(r.big)
		r.big = nil
	}
	have := copy(r.buf, r.buf[r.r:r.w])
	r.r, r.w = 0, 0
	first := int64(len(r.buf)) * 2
	if first > n64 {
		first = n64
	}
	big := pbytes.GetLen(int(first))
	got := copy(big, r.buf[:have])
	for int64(got) < n64 {
		if got == len(big) {
			size := int64(len(big)) * 2
			if size > n64 {
				size = n64
			}
			grown := pbytes.GetLen(int(size))
			copy(grown, big[:got])
			pbytes.Put(big)
			big = grown
		}
		want := len(big)
		if int64(want) > n64 {
			want = int(n64)
		}
		m, err := r.src.Read(big[got:want])
		got += m
		if err != nil && int64(got) < n64 {
			pbytes.Put(big)
			return nil, unexpected(err)
		}
	}
	r.big = big
	return big[:n64], nil
}

// fill reads until at least n unread bytes are buffered.
func (r *Reader) fill(n int) error {
	if r.r > 0 && len(r.buf)-r.r < n {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	for r.w-r.r < n {
		m, err := r.src.Read(r.buf[r.w:])
		r.w += m
		if err != nil {
			if r.w-r.r >= n {
				return nil
			}
			return err
		}
	}
	return nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Release returns the Reader's buffers to the pool. The Reader and every
// payload it returned must not be used afterwards.
func (r *Reader) Release() {
	if r.buf != nil {
		pbytes.Put(r.buf)
		r.buf = nil
	}
	if r.big != nil {
		pbytes.Put(r.big)
		r.big = nil
	}
}
