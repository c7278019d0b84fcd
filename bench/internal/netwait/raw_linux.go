package netwait

import (
	"io"
	"os"
	"syscall"
	"unsafe"
)

const supported = true

// ready reports whether a read on fd would not block: bytes are there, the
// peer closed, or the socket failed (the following read reports which).
func (w *Conn) ready(fd uintptr) bool {
	for {
		// A raw syscall: with MSG_DONTWAIT it never blocks, so the scheduler
		// need not be told.
		_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd,
			uintptr(unsafe.Pointer(&w.b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			return true
		}
	}
}

// tryRead makes one non-blocking read into w.p.
func (w *Conn) tryRead(fd uintptr) bool {
	for {
		n, err := syscall.Read(int(fd), w.p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			w.n, w.err = 0, ErrWouldBlock
		case err != nil:
			w.n, w.err = 0, os.NewSyscallError("read", err)
		case n == 0:
			w.n, w.err = 0, io.EOF
		default:
			w.n, w.err = n, nil
		}
		return true
	}
}

// readPooled makes one non-blocking read for ReadPooled; on EAGAIN it gives
// the buffer back and asks RawConn.Read to wait.
func (w *Conn) readPooled(fd uintptr) bool {
	if *w.buf == nil {
		*w.buf = w.get()
	}
	w.p = *w.buf
	ok := w.tryRead(fd)
	w.p = nil
	if w.err == ErrWouldBlock {
		w.put(*w.buf)
		*w.buf = nil
		w.err = nil
		return false
	}
	return ok
}
