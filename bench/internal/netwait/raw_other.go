//go:build !linux

package netwait

// supported is false: without these system calls, reads block as usual.
const supported = false

func (w *Conn) ready(uintptr) bool      { return true }
func (w *Conn) tryRead(uintptr) bool    { return true }
func (w *Conn) readPooled(uintptr) bool { return true }
