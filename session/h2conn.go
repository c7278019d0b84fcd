package session

// streamConn: the net.Conn a session runs over when its WebSocket is an
// HTTP/2 stream (RFC 8441), on either side.

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// errStreamReadDeadline is what SetReadDeadline answers on a stream: the
// session needs no read deadline there (it does not park a stream's reader
// and closes rather than half-closes), and HTTP/2's own would reset the
// stream.
var errStreamReadDeadline = errors.New("session: read deadlines are not supported on an HTTP/2 stream")

// streamChunk is the most a stream's Write hands to HTTP/2 at once: the
// write timeout counts from the last chunk that went out, as it counts from
// the last progress on a socket.
const streamChunk = 64 << 10

// streamConn is a net.Conn over an HTTP/2 stream: reads from what the peer
// sends (the request body on a server, the response body on a client),
// writes to what we send (the ResponseWriter, or the pipe that is the
// request body). HTTP/2 cannot interrupt a blocked read or write without
// resetting the stream, so the deadlines are the session's own: a write
// that makes no progress for the write timeout resets the stream (abort),
// as a socket's write timeout ends the session anyway; read deadlines are
// not needed (errStreamReadDeadline). Close ends the stream as it should
// end: abort only when a write is in flight.
//
// The server's ResponseWriter may be used only while its handler runs:
// done is closed once the conn is closed and no write uses it any more,
// and Handler waits for it before it returns to net/http.
type streamConn struct {
	body   io.ReadCloser // what the peer sends
	w      io.Writer     // what we send
	flush  func() error  // after a batch of writes; nil when writes need none
	abort  func()        // resets the stream
	finish func()        // ends our side of the stream cleanly (a client's END_STREAM); may be nil
	local  net.Addr
	remote net.Addr

	mu       sync.Mutex
	closed   bool
	writing  bool
	timedOut bool
	timeout  time.Duration // the write timeout SetWriteDeadline gave; 0: none
	timer    *time.Timer   // armed while a write waits on the peer
	done     chan struct{} // closed once closed and no write uses w
}

func newStreamConn(body io.ReadCloser, w io.Writer, local, remote net.Addr) *streamConn {
	return &streamConn{body: body, w: w, local: local, remote: remote, done: make(chan struct{})}
}

func (c *streamConn) Read(p []byte) (int, error) {
	n, err := c.body.Read(p)
	if err != nil {
		c.mu.Lock()
		if c.closed && err != io.EOF {
			err = net.ErrClosed
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *streamConn) Write(p []byte) (int, error) {
	var n int
	for n < len(p) {
		end := min(len(p), n+streamChunk)
		if err := c.begin(); err != nil {
			return n, err
		}
		k, err := c.w.Write(p[n:end])
		n += k
		if err = c.end(err); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Flush sends what the writes since the last Flush left in HTTP/2's
// buffers; the session calls it after each batch.
func (c *streamConn) Flush() error {
	if c.flush == nil {
		return nil
	}
	if err := c.begin(); err != nil {
		return err
	}
	return c.end(c.flush())
}

// begin starts a write: w may be used until end.
func (c *streamConn) begin() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return net.ErrClosed
	case c.timedOut:
		return os.ErrDeadlineExceeded
	}
	c.writing = true
	if c.timeout > 0 {
		if c.timer == nil {
			c.timer = time.AfterFunc(c.timeout, c.writeTimedOut)
		} else {
			c.timer.Reset(c.timeout)
		}
	}
	return nil
}

func (c *streamConn) end(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writing = false
	if c.timer != nil {
		c.timer.Stop()
	}
	switch {
	case c.timedOut:
		err = os.ErrDeadlineExceeded
	case c.closed:
		close(c.done)
		if err != nil {
			err = net.ErrClosed
		}
	}
	return err
}

func (c *streamConn) writeTimedOut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writing && !c.closed && !c.timedOut {
		c.timedOut = true
		c.abort()
	}
}

// Close ends the stream: cleanly when no write is in flight, by a reset
// that interrupts the write otherwise. A reader blocked in Read returns.
func (c *streamConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.writing {
		c.abort() // end closes done once the write returns
	} else {
		if c.finish != nil {
			c.finish()
		}
		close(c.done)
	}
	c.mu.Unlock()
	return c.body.Close()
}

func (c *streamConn) LocalAddr() net.Addr  { return c.local }
func (c *streamConn) RemoteAddr() net.Addr { return c.remote }

func (c *streamConn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.SetReadDeadline(t)
}

func (c *streamConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() {
		return nil
	}
	return errStreamReadDeadline
}

// SetWriteDeadline sets the write timeout: each chunk of a later write
// must go out within the time from now to t. The session sets it before
// each batch (batch.go).
func (c *streamConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timeout = 0
	if !t.IsZero() {
		c.timeout = max(time.Until(t), time.Nanosecond)
	}
	return nil
}

// addr is a net.Addr known only by its text (a request's RemoteAddr that
// does not parse as host:port).
type addr string

func (a addr) Network() string { return "tcp" }
func (a addr) String() string  { return string(a) }
