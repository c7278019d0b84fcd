package codec

import (
	"io"
	"math"

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
// sends little costs little; it is kept for later large frames until
// Release. Payloads are unmasked and text is checked as bytes arrive, so
// invalid UTF-8 fails before the rest of its frame is read.
type Reader struct {
	Decoder

	src    io.Reader
	srcErr error  // the source's first error, returned once buffered bytes run out
	err    error  // the error that ended the stream, returned by every later call
	buf    []byte // pooled read buffer; buf[r:w] holds unread bytes
	r, w   int
	big    []byte // pooled payload buffer for frames larger than buf, kept for the next one
}

// maxEmptyReads is how many reads in a row may return no bytes and no error
// before the Reader gives up with io.ErrNoProgress, as bufio does.
const maxEmptyReads = 100

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
	return &Reader{Decoder: d, src: src, buf: getBuf(size)}
}

// Buffered returns the number of bytes read from the source and not yet
// decoded.
func (r *Reader) Buffered() int { return r.w - r.r }

// NextFrame reads, checks and unmasks the next frame. The payload is valid
// until the next call to NextFrame or Release. Control frames come as they
// arrive, also between the fragments of a message; a close frame's payload
// has been checked with ParseClosePayload. Errors are *ProtocolError values
// for violations, io.EOF at a clean end between frames, and
// io.ErrUnexpectedEOF for a stream cut inside a frame, or the source's error.
// An error ends the stream: the Reader may have stopped inside a frame, so
// every later call returns the same error.
func (r *Reader) NextFrame() (Frame, error) {
	var f Frame
	if r.err != nil {
		return f, r.err
	}
	// next fills f in place: Frame holds an array, so it is returned in
	// memory, and a second copy through a returned value shows in the
	// decode benchmark.
	err := r.next(&f)
	if err != nil {
		r.err = err
	}
	return f, err
}

func (r *Reader) next(f *Frame) error {
	h, err := r.header()
	if err != nil {
		return err
	}
	if err := r.Begin(h); err != nil {
		return err
	}
	f.Header = h
	var p []byte
	if h.Length <= int64(len(r.buf)) {
		p, err = r.small(h)
	} else {
		p, err = r.large(h)
	}
	if err != nil {
		return err
	}
	f.Payload = p
	switch h.OpCode {
	case ws.OpClose:
		if _, _, err := ParseClosePayload(p); err != nil {
			return err
		}
	case ws.OpText, ws.OpBinary, ws.OpContinuation:
		if _, err := r.End(); err != nil {
			return err
		}
	}
	return nil
}

// header reads and parses the next frame header.
func (r *Reader) header() (ws.Header, error) {
	for {
		h, n, err := ParseHeader(r.buf[r.r:r.w])
		if err != nil {
			return ws.Header{}, err
		}
		if n > 0 {
			r.r += n
			return h, nil
		}
		if len(r.buf)-r.r < MaxHeaderLen {
			r.w = copy(r.buf, r.buf[r.r:r.w])
			r.r = 0
		}
		m, err := r.read(r.buf[r.w:])
		r.w += m
		if m == 0 && err != nil {
			if err == io.EOF && r.r != r.w {
				err = io.ErrUnexpectedEOF
			}
			return ws.Header{}, err
		}
	}
}

// small reads a payload that fits in the read buffer and returns it in place.
func (r *Reader) small(h ws.Header) ([]byte, error) {
	n := int(h.Length)
	if len(r.buf)-r.r < n {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	for done := 0; ; {
		if have := min(r.w-r.r, n); have > done {
			if err := r.accept(h, r.buf[r.r+done:r.r+have], done); err != nil {
				return nil, err
			}
			done = have
		}
		if done == n {
			break
		}
		m, err := r.read(r.buf[r.w:])
		r.w += m
		if m == 0 && err != nil {
			return nil, unexpected(err)
		}
	}
	p := r.buf[r.r : r.r+n : r.r+n]
	r.r += n
	return p, nil
}

// large gathers a payload longer than the read buffer in r.big. The buffer
// starts at twice the read buffer (or the payload, if shorter) and doubles
// only when full, so its capacity stays within twice the bytes received (or
// twice the read buffer).
func (r *Reader) large(h ws.Header) ([]byte, error) {
	if h.Length > math.MaxInt {
		return nil, ErrFrameTooBig
	}
	n := int(h.Length)
	big := r.big
	if first := min(n, 2*len(r.buf)); cap(big) < first {
		putBuf(big)
		big = getBuf(first)
	}
	big = big[:cap(big)]
	got := copy(big, r.buf[r.r:r.w])
	r.r, r.w = 0, 0
	err := r.accept(h, big[:got], 0)
	for err == nil && got < n {
		if got == len(big) {
			grown := getBuf(min(2*len(big), n))
			grown = grown[:cap(grown)]
			copy(grown, big[:got])
			putBuf(big)
			big = grown
		}
		m, rerr := r.read(big[got:min(len(big), n)])
		err = r.accept(h, big[got:got+m], got)
		got += m
		if err == nil && m == 0 && rerr != nil {
			err = unexpected(rerr)
		}
	}
	r.big = big
	if err != nil {
		return nil, err
	}
	return big[:n:n], nil
}

// accept unmasks the payload bytes p found at offset off of the current
// frame and, for a data frame, feeds them to the decoder's text check.
func (r *Reader) accept(h ws.Header, p []byte, off int) error {
	if h.Masked {
		ws.Cipher(p, h.Mask, off)
	}
	if h.OpCode.IsControl() {
		return nil
	}
	return r.Data(p)
}

// read reads once from the source into p. The first error the source
// returns is kept and returned by every later read, also when it came with
// bytes.
func (r *Reader) read(p []byte) (int, error) {
	if r.srcErr != nil {
		return 0, r.srcErr
	}
	for range maxEmptyReads {
		n, err := r.src.Read(p)
		if err != nil {
			r.srcErr = err
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	r.srcErr = io.ErrNoProgress
	return 0, r.srcErr
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
	putBuf(r.buf)
	r.buf = nil
	putBuf(r.big)
	r.big = nil
}
