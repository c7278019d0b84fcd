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

// Reader decodes frames from an io.Reader, one whole frame per call: it is
// the pull form of Parser, which does the parsing and the checks. It reads
// into a pooled buffer; a frame that fits in the buffer is returned in place,
// without a copy; a larger one is gathered in a pooled buffer that grows only
// as its bytes arrive, so a peer that declares a huge length and sends little
// costs little; it is kept for later large frames until Release. Payloads
// are unmasked and text is checked as bytes arrive, so invalid UTF-8 fails
// before the rest of its frame is read.
type Reader struct {
	p      Parser
	src    io.Reader
	srcErr error  // the source's first error, returned once buffered bytes run out
	err    error  // the error that ended the stream, returned by every later call
	buf    []byte // pooled read buffer; buf[r:w] holds bytes not yet parsed
	r, w   int
	big    []byte // pooled payload buffer for frames larger than buf, kept for the next one
}

// maxEmptyReads is how many reads in a row may return no bytes and no error
// before the Reader gives up with io.ErrNoProgress, as bufio does.
const maxEmptyReads = 100

// NewReader returns a Reader of src that checks frames with d (its role and
// limits), with a pooled read buffer of size bytes (DefaultReadBuffer when
// size <= 0). Release returns its buffers to the pool.
func NewReader(src io.Reader, d Decoder, size int) *Reader {
	if size <= 0 {
		size = DefaultReadBuffer
	}
	if size < MaxHeaderLen {
		size = MaxHeaderLen
	}
	return &Reader{p: Parser{Decoder: d}, src: src, buf: getBuf(size)}
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
	first, last, err := r.header()
	if err != nil {
		return err
	}
	h := &r.p.h
	var p []byte
	if h.Length <= int64(len(r.buf)) {
		p, err = r.small(first, last)
	} else {
		p, err = r.large(first)
	}
	if err != nil {
		return err
	}
	if h.OpCode == ws.OpClose {
		if _, _, err := ParseClosePayload(p); err != nil {
			return err
		}
	}
	f.Header, f.Payload = *h, p
	return nil
}

// header reads until the parser completes the next frame's header and
// returns the payload of the frame's first chunk, which lies just before
// buf[r], and whether it ends the frame.
func (r *Reader) header() (first []byte, last bool, err error) {
	for {
		if r.r < r.w {
			c, n, ok, err := r.p.Next(r.buf[r.r:r.w])
			r.r += n
			if err != nil || ok {
				return c.Payload, c.Last, err
			}
		}
		// The parser holds any part of a header: the buffer is free.
		r.r, r.w = 0, 0
		m, err := r.read(r.buf)
		r.w = m
		if m == 0 && err != nil {
			if err == io.EOF && r.p.InFrame() {
				err = io.ErrUnexpectedEOF
			}
			return nil, false, err
		}
	}
}

// small reads the rest of a payload that fits in the read buffer and returns
// it in place; first is the payload of the frame's first chunk, and last
// whether it ends the frame.
func (r *Reader) small(first []byte, last bool) ([]byte, error) {
	n := int(r.p.h.Length)
	start := r.r - len(first)
	for !last {
		// The chunk took every buffered byte: make room for the rest of the
		// payload behind what came of it.
		if len(r.buf)-start < n {
			r.w = copy(r.buf, r.buf[start:r.w])
			start, r.r = 0, r.w
		}
		m, err := r.read(r.buf[r.w:])
		r.w += m
		if m == 0 && err != nil {
			return nil, unexpected(err)
		}
		c, k, _, err := r.p.Next(r.buf[r.r:r.w])
		r.r += k
		if err != nil {
			return nil, err
		}
		last = c.Last
	}
	return r.buf[start : start+n : start+n], nil
}

// large gathers a payload longer than the read buffer in r.big; first is
// the payload of the frame's first chunk. The buffer starts at twice the read buffer (or the
// payload, if shorter) and doubles only when full, so its capacity stays
// within twice the bytes received (or twice the read buffer). The rest of
// the payload is read straight into it and parsed there.
func (r *Reader) large(first []byte) ([]byte, error) {
	if r.p.h.Length > math.MaxInt {
		return nil, ErrFrameTooBig
	}
	n := int(r.p.h.Length)
	big := r.big
	if first := min(n, 2*len(r.buf)); cap(big) < first {
		putBuf(big)
		big = getBuf(first)
	}
	big = big[:cap(big)]
	// The frame is longer than the buffer, so its first chunk took every
	// buffered byte.
	got := copy(big, first)
	r.r, r.w = 0, 0
	var err error
	for got < n {
		if got == len(big) {
			grown := getBuf(min(2*len(big), n))
			grown = grown[:cap(grown)]
			copy(grown, big[:got])
			putBuf(big)
			big = grown
		}
		m, rerr := r.read(big[got:min(len(big), n)])
		if m > 0 {
			// Never more than the frame's rest: the parser takes it all.
			if _, _, _, err = r.p.Next(big[got : got+m]); err != nil {
				break
			}
			got += m
		}
		if m == 0 && rerr != nil {
			err = unexpected(rerr)
			break
		}
	}
	r.big = big
	if err != nil {
		return nil, err
	}
	return big[:n:n], nil
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
