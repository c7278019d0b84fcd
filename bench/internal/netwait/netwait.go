// Package netwait lets a connection's reader wait for incoming bytes without
// holding a read buffer, so that an idle connection costs its goroutine and
// its socket and nothing from the buffer pools, while a busy one pays no
// extra system call for it.
//
// Go's net.Conn has no way to try a read without blocking, nor to wait for
// readability other than a Read into a buffer (a zero-length Read returns at
// once). syscall.RawConn.Read gives both: TryRead makes one non-blocking
// read(2), and only when it finds nothing does the caller give its buffers
// back and Wait, which parks on the runtime's network poller until a
// MSG_PEEK|MSG_DONTWAIT probe finds a byte (the probe consumes nothing).
// The probe is needed because RawConn.Read first resets the poller's
// readiness state, so an edge that arrived since TryRead may be forgotten.
package netwait

import (
	"errors"
	"net"
	"syscall"
)

// ErrWouldBlock is returned by TryRead when no byte is ready.
var ErrWouldBlock = errors.New("netwait: no byte ready")

// Conn reads from a net.Conn without blocking and waits for its bytes. It
// is meant for the connection's one reading goroutine.
type Conn struct {
	c      net.Conn
	rc     syscall.RawConn
	waitFn func(fd uintptr) bool
	readFn func(fd uintptr) bool

	p   []byte
	n   int
	err error
	b   [1]byte

	// The state of one ReadPooled call.
	buf      *[]byte
	off      int
	get      func() []byte
	put      func([]byte)
	pooledFn func(fd uintptr) bool
}

// New returns a Conn for c. If c exposes no file descriptor (it is not a
// TCP or Unix socket), TryRead blocks like Read and Wait returns at once.
func New(c net.Conn) *Conn {
	w := &Conn{c: c}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return w
	}
	rc, err := sc.SyscallConn()
	if err != nil || !supported {
		return w
	}
	w.rc = rc
	w.waitFn = w.ready
	w.readFn = w.tryRead
	w.pooledFn = w.readPooled
	return w
}

// Read reads into p, blocking until bytes come, like net.Conn.Read.
func (w *Conn) Read(p []byte) (int, error) {
	return w.c.Read(p)
}

// TryRead reads what is ready into p without waiting. It returns
// ErrWouldBlock if nothing is, and io.EOF when the peer has closed.
func (w *Conn) TryRead(p []byte) (int, error) {
	if w.rc == nil {
		return w.c.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	w.p = p
	err := w.rc.Read(w.readFn)
	w.p = nil
	if err != nil {
		return 0, err
	}
	n, err := w.n, w.err
	w.err = nil
	return n, err
}

// ReadPooled reads into (*buf)[off:], blocking until bytes come. With
// off == 0 it holds no buffer while it waits: if *buf is nil it takes one
// from get only when a read is about to be tried, and gives it back to put
// (setting *buf to nil) whenever that read finds nothing. With off > 0,
// *buf must not be nil and is kept. It returns io.EOF when the peer has
// closed.
func (w *Conn) ReadPooled(buf *[]byte, off int, get func() []byte, put func([]byte)) (int, error) {
	if *buf == nil {
		*buf = get()
	}
	if w.rc == nil || off > 0 {
		return w.c.Read((*buf)[off:])
	}
	w.buf, w.get, w.put = buf, get, put
	err := w.rc.Read(w.pooledFn)
	w.buf, w.get, w.put = nil, nil, nil
	if err != nil {
		return 0, err
	}
	n, err := w.n, w.err
	w.err = nil
	return n, err
}

// Wait blocks until the connection has bytes to read, has reached EOF or
// has failed, or until its read deadline passes or it is closed (then it
// returns the error that Read would). It consumes no byte.
func (w *Conn) Wait() error {
	if w.rc == nil {
		return nil
	}
	return w.rc.Read(w.waitFn)
}
