package echod

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/wsactor/wsactor/internal/bufpool"
	"github.com/wsactor/wsactor/session"
)

// The front: the daemon's own accept loop for plain HTTP/1.1. It reads a
// connection's request head itself; a WebSocket upgrade on one of the
// Server's WebSocket routes is accepted here with
// session.AcceptConnBuffered, and every other connection (pages,
// /healthz, /debug/vars, a bad or odd request, HTTP/2 with prior
// knowledge) goes with the bytes read so far to net/http's server through
// a listener of the front's own. In a storm of reconnections a handshake
// then costs neither net/http's goroutine, bufio buffers and request
// maps, nor a goroutine at all when the request is there at the accept:
// the accept loop reads it without blocking and upgrades on its own stack
// (docs/decisions.md, "Connection storms").

// headMax is the request head the front reads itself. A head that does not
// end within it goes to net/http, which serves up to MaxHeaderBytes (431
// beyond).
const headMax = 4096

type front struct {
	s       *Server
	ln      net.Listener
	hs      *http.Server
	handoff handoffListener

	wg      sync.WaitGroup // handshakes on goroutines of their own
	mu      sync.Mutex
	reading map[net.Conn]struct{} // heads being read on those goroutines
	closed  bool
}

func newFront(s *Server, ln net.Listener, hs *http.Server) *front {
	f := &front{s: s, ln: ln, hs: hs, reading: make(map[net.Conn]struct{})}
	f.handoff = handoffListener{ln: ln, conns: make(chan net.Conn), done: make(chan struct{})}
	return f
}

// serve accepts until the listener closes (Shutdown closes it through the
// http.Server, which closes the handoff listener), then waits for the
// handshakes under way and for net/http's Serve, whose error it returns.
// It accepts on GOMAXPROCS loops: a loop upgrades the heads that are there
// at the accept on its own goroutine, one after the other, so one loop
// alone would make a storm's handshakes wait for each other.
func (f *front) serve() error {
	served := make(chan error, 1)
	go func() { served <- f.hs.Serve(&f.handoff) }()
	var (
		once    sync.Once
		err     error
		stopped bool // by net/http's Shutdown or Close, through the handoff listener
		loops   sync.WaitGroup
	)
	stop := func(aerr error) {
		once.Do(func() {
			select {
			case <-f.handoff.done:
				stopped = true
			default:
			}
			err = aerr
			f.handoff.Close() // the other loops' Accept fails
		})
	}
	for range max(runtime.GOMAXPROCS(0), 1) {
		loops.Go(func() { stop(f.acceptLoop()) })
	}
	loops.Wait()
	f.mu.Lock()
	f.closed = true
	for c := range f.reading {
		c.SetReadDeadline(aLongTimeAgo)
	}
	f.mu.Unlock()
	f.wg.Wait()
	herr := <-served
	if stopped {
		return herr // http.ErrServerClosed
	}
	return err
}

// acceptLoop accepts until the listener fails for good, and returns why.
func (f *front) acceptLoop() error {
	var backoff time.Duration
	for {
		c, err := f.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors, say: wait a little, as net/http
				// does, unless the front closes meanwhile.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
					continue
				case <-f.handoff.done:
					t.Stop()
				}
			}
			return err
		}
		backoff = 0
		f.accept(c)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

var aLongTimeAgo = time.Unix(1, 0)

// accept takes c's request head: at once, on the accept loop, when all of
// it is there already; on a goroutine of its own, bounded by the
// handshake timeout, when it is still to come.
func (f *front) accept(c net.Conn) {
	buf := bufpool.Get(headMax)
	n := tryRead(c, buf)
	if n > 0 && headEnd(buf[:n]) > 0 {
		f.route(c, buf, n)
		return
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		bufpool.Put(buf)
		c.Close()
		return
	}
	f.reading[c] = struct{}{}
	f.wg.Add(1)
	f.mu.Unlock()
	go f.readHead(c, buf, max(n, 0))
}

// readHead reads the rest of c's head, until the handshake timeout counted
// from now (a slow or silent client is cut), and routes it.
func (f *front) readHead(c net.Conn, buf []byte, n int) {
	defer f.wg.Done()
	c.SetReadDeadline(time.Now().Add(f.s.cfg.HandshakeTimeout))
	for n < len(buf) && headEnd(buf[:n]) == 0 {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			f.mu.Lock()
			delete(f.reading, c)
			f.mu.Unlock()
			bufpool.Put(buf)
			c.Close()
			return
		}
	}
	f.mu.Lock()
	delete(f.reading, c)
	closed := f.closed
	f.mu.Unlock()
	if closed {
		bufpool.Put(buf)
		c.Close()
		return
	}
	f.route(c, buf, n)
}

// route serves c, whose first n bytes are in buf (pooled; route gives it
// back): a WebSocket upgrade on a WebSocket route here, anything else
// through net/http.
func (f *front) route(c net.Conn, buf []byte, n int) {
	s := f.s
	var opts *session.Options
	var room string
	ok := false
	if headEnd(buf[:n]) > 0 { // a longer head is net/http's (431 beyond MaxHeaderBytes)
		opts, room, ok = s.upgradeRoute(buf[:n])
	}
	if !ok {
		c.SetReadDeadline(time.Time{})
		f.handoff.give(&prefixConn{Conn: c, prefix: buf, n: n})
		return
	}
	if msg := s.reserve(); msg != "" {
		bufpool.Put(buf)
		s.m.rejectedConns.Add(1)
		c.SetWriteDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
		c.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: " +
			itoa(len(msg)+1) + "\r\n\r\n" + msg + "\n"))
		c.Close()
		return
	}
	start := s.now()
	ctx := context.Background()
	if room != "" {
		ctx = context.WithValue(ctx, roomKey{}, room)
	}
	ss, err := session.AcceptConnBuffered(ctx, c, buf[:n], opts)
	bufpool.Put(buf)
	if err != nil {
		s.release()
		s.m.handshakeFailures.Add(1)
		s.log.Debug("handshake failed", "remote", c.RemoteAddr(), "err", err)
		return
	}
	s.m.sessionsByProto.Add("http1", 1) // the front takes HTTP/1.1 upgrades only
	s.register(ss, room != "", start)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// upgradeRoute reports whether head, a whole request head, is a WebSocket
// upgrade (a GET over HTTP/1.1 with Connection: Upgrade and Upgrade:
// websocket) on one of the Server's WebSocket routes, and which: its
// session options and, for a room, the room's name. Whatever it does not
// take goes to net/http, which answers as it always did (426 for a request
// without the upgrade, 400 for a bad room name, the page, ...).
func (s *Server) upgradeRoute(head []byte) (opts *session.Options, room string, ok bool) {
	line, rest, found := bytes.Cut(head, []byte("\r\n"))
	if !found {
		return nil, "", false
	}
	target, ok := bytes.CutPrefix(line, []byte("GET "))
	if !ok {
		return nil, "", false
	}
	target, ok = bytes.CutSuffix(target, []byte(" HTTP/1.1"))
	if !ok || len(target) == 0 || target[0] != '/' || bytes.IndexByte(target, '%') >= 0 || bytes.IndexByte(target, ' ') >= 0 {
		return nil, "", false
	}
	path := target
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	switch {
	case string(path) == s.cfg.Path:
		opts = &s.echoOpts
	case string(path) == "/broadcast" && s.cfg.Broadcast:
		opts, room = &s.roomOpts, broadcastRoom
	case bytes.HasPrefix(path, []byte("/room/")):
		name, valid := roomName(string(path))
		if !valid {
			return nil, "", false
		}
		opts, room = &s.roomOpts, name
	default:
		return nil, "", false
	}
	var upgrade, connection bool
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		k, v, found := bytes.Cut(h, []byte(":"))
		if !found {
			continue
		}
		switch {
		case len(k) == len("Upgrade") && equalFold(k, "upgrade"):
			upgrade = upgrade || hasToken(v, "websocket")
		case len(k) == len("Connection") && equalFold(k, "connection"):
			connection = connection || hasToken(v, "upgrade")
		}
	}
	if !upgrade || !connection {
		return nil, "", false
	}
	return opts, room, true
}

// hasToken reports whether the comma-separated list v holds token (ASCII,
// lower case), in any case.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte(","))
		if equalFold(bytes.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// equalFold reports whether b is lower, ASCII, in any case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// headEnd returns the length of the request head at the start of b, up to
// and including the empty line that ends it, or 0 when it has not ended.
func headEnd(b []byte) int {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return 0
}

// handoffListener is the listener net/http's server serves: the
// connections the front gives it.
type handoffListener struct {
	ln    net.Listener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops the listener and the front's own: net/http's Shutdown and
// Close call it.
func (l *handoffListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.ln.Close()
	})
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.ln.Addr() }

// give hands c to net/http, or closes it once the listener is closed.
func (l *handoffListener) give(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

// prefixConn is a connection whose first bytes the front already read:
// net/http reads them first. The pooled buffer goes back once they are
// read, or when the connection closes.
type prefixConn struct {
	net.Conn
	mu     sync.Mutex
	prefix []byte // pooled; prefix[off:n] is still to be read
	off, n int
}

func (c *prefixConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.prefix != nil {
		k := copy(p, c.prefix[c.off:c.n])
		c.off += k
		if c.off == c.n {
			bufpool.Put(c.prefix)
			c.prefix = nil
		}
		c.mu.Unlock()
		return k, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

func (c *prefixConn) Close() error {
	c.mu.Lock()
	if c.prefix != nil {
		bufpool.Put(c.prefix)
		c.prefix = nil
	}
	c.mu.Unlock()
	return c.Conn.Close()
}
