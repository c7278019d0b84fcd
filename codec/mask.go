package codec

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/gobwas/ws"
)

// NewMask returns a fresh masking key. RFC 6455 section 5.3 asks for keys
// an attacker cannot predict: math/rand/v2's global generator is ChaCha8,
// seeded by the runtime from the operating system's entropy, and costs no
// lock and no allocation (gobwas/ws's NewMask uses math/rand's global
// source).
func NewMask() [4]byte {
	var m [4]byte
	binary.LittleEndian.PutUint32(m[:], rand.Uint32())
	return m
}

// MaskInto copies p into dst masked with key, starting at mask offset 0, and
// returns the number of bytes written (len(p); dst must be at least as
// long). p is not changed.
func MaskInto(dst, p []byte, key [4]byte) int {
	n := copy(dst, p)
	ws.Cipher(dst[:n], key, 0)
	return n
}
