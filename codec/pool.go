package codec

import "github.com/wsactor/wsactor/internal/bufpool"

// The codec's buffers come from internal/bufpool: pbytes allocates on every
// Put and pools only 128 B to 64 KiB (see that package's doc).
const (
	minPooled = bufpool.MinSize
	maxPooled = bufpool.MaxSize
)

func getBuf(n int) []byte { return bufpool.Get(n) }

func putBuf(b []byte) { bufpool.Put(b) }

// ReleaseFrame returns a buffer from EncodeFrame (or a Job's Frame) to the
// codec's pool. The buffer must not be used afterwards. Releasing a slice that
// did not come from the codec is harmless: it joins the pool if its capacity
// fits a size class.
func ReleaseFrame(frame []byte) { putBuf(frame) }
