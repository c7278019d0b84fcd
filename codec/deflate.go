package codec

import (
	"compress/flate"
	"io"
	"sync"

	"github.com/gobwas/ws"
)

// permessage-deflate (RFC 7692), without context takeover: every message is
// compressed and inflated on its own, so a session keeps no compression
// state between messages and the compressors and decompressors come from
// pools. The negotiation is gobwas/ws/wsflate's; the compression is
// compress/flate's, over pooled buffers.

// RSV1 is the reserved bit (in ws.Header.Rsv's layout) that marks a
// compressed message.
const RSV1 byte = 0x04

// deflateTail is what a sender strips from the end of a compressed message
// (RFC 7692 7.2.1) and a receiver appends, followed here by a final empty
// stored block so that the inflater ends with io.EOF.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// flateWriters pools compressors by level (flate.HuffmanOnly -2 to
// flate.BestCompression 9).
var flateWriters [12]sync.Pool

// growWriter appends to a pooled buffer, growing it through the pool.
type growWriter struct{ b []byte }

func (w *growWriter) Write(p []byte) (int, error) {
	if len(w.b)+len(p) > cap(w.b) {
		nb := getBuf(max(2*cap(w.b), len(w.b)+len(p)))[:len(w.b)]
		copy(nb, w.b)
		putBuf(w.b)
		w.b = nb
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

// Compress returns p compressed as one permessage-deflate message body, at
// flate level (out of range: flate.BestSpeed), in a pooled buffer for the
// caller to give back with the session's pool (bufpool.Put).
func Compress(p []byte, level int) []byte {
	if level < flate.HuffmanOnly || level > flate.BestCompression {
		level = flate.BestSpeed
	}
	out := &growWriter{b: getBuf(len(p)/2 + 64)[:0]}
	pool := &flateWriters[level+2]
	fw, _ := pool.Get().(*flate.Writer)
	if fw == nil {
		fw, _ = flate.NewWriter(out, level) // the level is valid
	} else {
		fw.Reset(out)
	}
	fw.Write(p)
	fw.Flush() // ends on a sync flush: 00 00 ff ff
	fw.Reset(nil)
	pool.Put(fw)
	b := out.b
	if n := len(b); n >= 4 && b[n-4] == 0 && b[n-3] == 0 && b[n-2] == 0xff && b[n-1] == 0xff {
		b = b[:n-4]
	}
	return b
}

// inflateSource feeds a compressed message and the tail to the inflater
// as an io.ByteReader, so that compress/flate reads it without a bufio
// wrapper of its own.
type inflateSource struct {
	p, tail []byte
}

func (s *inflateSource) Read(b []byte) (int, error) {
	if len(s.p) == 0 {
		s.p, s.tail = s.tail, nil
		if len(s.p) == 0 {
			return 0, io.EOF
		}
	}
	n := copy(b, s.p)
	s.p = s.p[n:]
	return n, nil
}

func (s *inflateSource) ReadByte() (byte, error) {
	if len(s.p) == 0 {
		s.p, s.tail = s.tail, nil
		if len(s.p) == 0 {
			return 0, io.EOF
		}
	}
	c := s.p[0]
	s.p = s.p[1:]
	return c, nil
}

type inflater struct {
	src inflateSource
	r   io.ReadCloser
}

var inflaters = sync.Pool{New: func() any {
	f := new(inflater)
	f.r = flate.NewReader(&f.src)
	return f
}}

// Inflate returns the message body p (permessage-deflate) inflated, in a
// pooled buffer for the caller to give back with the session's pool. It
// never holds more than limit+1 inflated bytes (limit < 0: no limit): a
// larger message is ErrMessageTooBig (1009). Data that is not DEFLATE is
// ErrInvalidCompressed (1007). An inflated text message is still to be
// checked with ValidUTF8 (1007: ErrInvalidUTF8).
func Inflate(p []byte, limit int64) ([]byte, error) {
	f := inflaters.Get().(*inflater)
	f.src = inflateSource{p: p, tail: deflateTail}
	f.r.(flate.Resetter).Reset(&f.src, nil)
	size := max(2*len(p), 512)
	if limit >= 0 && int64(size) > limit+1 {
		size = int(limit + 1)
	}
	out := getBuf(size)[:0]
	var err error
	for {
		if len(out) == cap(out) {
			if limit >= 0 && int64(len(out)) > limit {
				err = ErrMessageTooBig
				break
			}
			grow := 2 * cap(out)
			if limit >= 0 && int64(grow) > limit+1 {
				grow = int(limit + 1)
			}
			nb := getBuf(grow)[:len(out)]
			copy(nb, out)
			putBuf(out)
			out = nb
		}
		var n int
		n, err = f.r.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if err == io.EOF {
			err = nil
			break
		}
		if err != nil {
			err = ErrInvalidCompressed
			break
		}
	}
	if err == nil && limit >= 0 && int64(len(out)) > limit {
		err = ErrMessageTooBig
	}
	f.src = inflateSource{}
	inflaters.Put(f)
	if err != nil {
		putBuf(out)
		return nil, err
	}
	return out, nil
}

// AddCompressed encodes z, a message of type op compressed with Compress,
// split into frames of at most fragment bytes (one frame when fragment <=
// 0 or z fits), RSV1 set on the first.
func (b *Batch) AddCompressed(op ws.OpCode, z []byte, fragment int) {
	if fragment <= 0 || len(z) <= fragment {
		b.Add(true, op, RSV1, z)
		return
	}
	rsv := RSV1
	for h, part := range Fragments(op, z, fragment) {
		b.Add(h.Fin, h.OpCode, rsv, part)
		rsv = 0
	}
}

// DeflateStream compresses one message that arrives in pieces, for a
// writer that sends its frames before the message ends. What it has
// compressed accumulates in a pooled buffer; Take hands out all of it but
// the last 4 bytes, which may be the start of the tail that Finish removes
// (RFC 7692 7.2.1), and Finish the rest. It is not safe for concurrent use.
type DeflateStream struct {
	fw    *flate.Writer
	pool  *sync.Pool
	out   growWriter
	taken bool
}

// NewDeflateStream starts a compressed message at flate level (out of
// range: flate.BestSpeed).
func NewDeflateStream(level int) *DeflateStream {
	if level < flate.HuffmanOnly || level > flate.BestCompression {
		level = flate.BestSpeed
	}
	d := &DeflateStream{pool: &flateWriters[level+2]}
	d.fw, _ = d.pool.Get().(*flate.Writer)
	if d.fw == nil {
		d.fw, _ = flate.NewWriter(&d.out, level)
	} else {
		d.fw.Reset(&d.out)
	}
	return d
}

// Write compresses p; the compressed bytes wait in the stream's buffer.
func (d *DeflateStream) Write(p []byte) (int, error) { return d.fw.Write(p) }

// Buffered returns how many compressed bytes wait.
func (d *DeflateStream) Buffered() int { return len(d.out.b) }

// Take returns up to max of the compressed bytes that wait, never the last
// 4, in a pooled buffer for the caller to give back; nil when there are
// none.
func (d *DeflateStream) Take(max int) []byte {
	n := min(len(d.out.b)-4, max)
	if n <= 0 {
		return nil
	}
	if n < len(d.out.b)-4 {
		p := getBuf(n)[:n]
		copy(p, d.out.b)
		d.out.b = d.out.b[:copy(d.out.b, d.out.b[n:])]
		return p
	}
	// All but the last 4: hand the buffer itself over.
	p := d.out.b[:n]
	nb := getBuf(cap(d.out.b))[:4]
	copy(nb, d.out.b[n:n+4])
	d.out.b = nb
	return p
}

// Finish ends the message and returns the rest of its compressed body, the
// tail removed, in a pooled buffer for the caller to give back (nil when it
// is empty). The stream is done: its compressor goes back to the pool.
func (d *DeflateStream) Finish() []byte {
	d.fw.Flush()
	b := d.out.b
	if n := len(b); n >= 4 && b[n-4] == 0 && b[n-3] == 0 && b[n-2] == 0xff && b[n-1] == 0xff {
		b = b[:n-4]
	}
	d.out.b = nil
	d.release()
	if len(b) == 0 {
		if cap(b) > 0 {
			putBuf(b)
		}
		return nil
	}
	return b
}

// Release gives back what the stream holds, for a message abandoned before
// Finish.
func (d *DeflateStream) Release() {
	if d.out.b != nil {
		putBuf(d.out.b)
		d.out.b = nil
	}
	d.release()
}

func (d *DeflateStream) release() {
	if d.fw != nil {
		d.fw.Reset(nil)
		d.pool.Put(d.fw)
		d.fw = nil
	}
}
