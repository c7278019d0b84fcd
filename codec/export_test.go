package codec

// Buffers returns the segments of b's vectored write, for checks of where
// each segment's memory lives.
func (b *Batch) Buffers() [][]byte { return b.bufs }

// BufferCaps returns the capacities of r's read buffer and of its buffer for
// payloads larger than the read buffer.
func (r *Reader) BufferCaps() (buf, big int) { return cap(r.buf), cap(r.big) }

// Released reports whether pf's buffer went back to the pool.
func (pf *Prepared) Released() bool { return pf.frame == nil }

// Refs returns pf's reference count.
func (pf *Prepared) Refs() int32 { return pf.refs.Load() }

// GetBuf and PutBuf are the codec's pooled buffer functions.
var (
	GetBuf = getBuf
	PutBuf = putBuf
)
