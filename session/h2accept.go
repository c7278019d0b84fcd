package session

// The server's side of WebSockets over HTTP/2 (RFC 8441): an extended
// CONNECT becomes a session over its stream.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/wsactor/wsactor/codec"
)

// ErrHTTP2Handler is the error of an Accept of an HTTP/2 WebSocket whose
// handler is not served through Handler: net/http ends an HTTP/2 stream
// when its handler returns and reuses the ResponseWriter's state for other
// streams, so a session may outlive its handler only where Handler waits
// for it.
var ErrHTTP2Handler = errors.New("session: a WebSocket over HTTP/2 outlives its handler only inside session.Handler: serve the handler as session.Handler(h)")

// Handler returns h wrapped so that the WebSocket sessions it accepts over
// HTTP/2 (RFC 8441) may outlive it, as they do over HTTP/1.1: after h
// returns, Handler waits until the session has ended and no longer uses
// the stream, then returns to net/http, which ends the stream. A handler
// that returns right after Accept is thus as safe over HTTP/2 as over
// HTTP/1.1. If h panics, the session is ended first. Any other request
// goes to h untouched; wrapping a whole mux is fine.
//
// Over HTTP/2, Accept refuses a request that did not come through Handler
// (ErrHTTP2Handler), and answers 500.
func Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 || r.Method != http.MethodConnect || r.Context().Value(streamsKey{}) != nil {
			h.ServeHTTP(w, r)
			return
		}
		ss := new(streams)
		returned := false
		defer func() {
			ss.end(!returned)
		}()
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), streamsKey{}, ss)))
		returned = true
	})
}

type streamsKey struct{}

// streams is what Handler knows of its request's WebSocket.
type streams struct {
	mu   sync.Mutex
	conn *streamConn
	over bool // the handler returned: the stream may not be used any more
}

// take registers c as the request's WebSocket; false when the handler has
// returned or already accepted one.
func (ss *streams) take(c *streamConn) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.over || ss.conn != nil {
		return false
	}
	ss.conn = c
	return true
}

// end waits, once the handler returned, until the stream is no longer used;
// with abort (the handler panicked), it closes the conn first.
func (ss *streams) end(abort bool) {
	ss.mu.Lock()
	ss.over = true
	c := ss.conn
	ss.mu.Unlock()
	if c == nil {
		return
	}
	if abort {
		c.Close()
	}
	<-c.done
}

// acceptStream accepts an RFC 8441 extended CONNECT.
func acceptStream(w http.ResponseWriter, r *http.Request, opts *Options) (*Session, error) {
	if status, err := checkConnect(r, opts); err != nil {
		if status == http.StatusBadRequest {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		http.Error(w, err.Error(), status)
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	ss, _ := r.Context().Value(streamsKey{}).(*streams)
	if ss == nil {
		http.Error(w, "the server cannot serve this WebSocket over HTTP/2", http.StatusInternalServerError)
		return nil, fmt.Errorf("%w: %w", ErrHandshake, ErrHTTP2Handler)
	}
	rc := http.NewResponseController(w)
	c := newStreamConn(r.Body, w, localAddr(r), remoteAddr(r))
	c.flush = rc.Flush
	// A deadline in the past resets the stream at once, and wakes a write
	// that waits on the peer.
	c.abort = func() { rc.SetWriteDeadline(aLongTimeAgo) }
	if !ss.take(c) {
		c.closed = true
		close(c.done)
		return nil, fmt.Errorf("%w: the request's stream is no longer the handler's (it returned, or accepted already)", ErrHandshake)
	}

	var protocol string
	for _, p := range headerTokens(r.Header, "Sec-WebSocket-Protocol") {
		if containsToken(opts.Subprotocols, p) {
			protocol = p
			break
		}
	}
	deflate := opts.Compression != nil && offersDeflate(r.Header.Values("Sec-WebSocket-Extensions"))
	h := w.Header()
	for k, v := range opts.Header {
		h[k] = append(h[k], v...)
	}
	if protocol != "" {
		h.Set("Sec-WebSocket-Protocol", protocol)
	}
	if deflate {
		h.Set("Sec-WebSocket-Extensions", deflateHeader)
	}
	// The server's ReadTimeout and WriteTimeout would reset the stream
	// mid-session: the session keeps its own timeouts. Without the
	// stream's deadlines (a wrapper of the ResponseWriter that hides
	// them: it needs an Unwrap method), nothing could stop a write that
	// the peer blocks: refused.
	rc.SetReadDeadline(time.Time{})
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		c.Close()
		http.Error(w, "the server cannot serve this WebSocket over HTTP/2", http.StatusInternalServerError)
		return nil, fmt.Errorf("%w: the ResponseWriter hides its stream's deadlines (give its wrapper an Unwrap method): %w", ErrHandshake, err)
	}
	w.WriteHeader(http.StatusOK)
	if err := c.Flush(); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return newSession(r.Context(), c, codec.Server, opts, protocol, deflate, nil), nil
}

// checkConnect checks an extended CONNECT as checkRequest checks an
// Upgrade: the protocol, the version (RFC 8441 section 5 keeps
// Sec-WebSocket-Version; no key, since the stream needs no proof), the
// origin.
func checkConnect(r *http.Request, opts *Options) (int, error) {
	if p := r.Header.Get(":protocol"); !strings.EqualFold(p, "websocket") {
		return http.StatusBadRequest, fmt.Errorf("not a WebSocket CONNECT: :protocol is %q, not websocket", p)
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		return http.StatusBadRequest, fmt.Errorf("unsupported Sec-WebSocket-Version %q: this server speaks 13", v)
	}
	if err := checkOrigin(r.Header.Get("Origin"), r.Host, opts.OriginPatterns); err != nil {
		return http.StatusForbidden, err
	}
	return 0, nil
}

func localAddr(r *http.Request) net.Addr {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a
	}
	return addr("")
}

func remoteAddr(r *http.Request) net.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return addr(r.RemoteAddr)
}

func headerTokens(h http.Header, key string) []string {
	var out []string
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// ExtendedConnect reports whether net/http's HTTP/2 server in this process
// accepts RFC 8441's extended CONNECT, that is whether browsers and other
// clients may open WebSockets over its HTTP/2 connections. It asks a server
// over an in-memory connection once, and remembers. Go 1.26 needs
// GODEBUG=http2xconnect=1 in the environment as the process starts:
// importing github.com/wsactor/wsactor/xconnect sees to it.
func ExtendedConnect() bool {
	xconnectOnce.Do(func() { xconnectOn = probeExtendedConnect() })
	return xconnectOn
}

var (
	xconnectOnce sync.Once
	xconnectOn   bool
)

// probeExtendedConnect reads the SETTINGS that an h2c server sends first,
// and looks for SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 section 3).
func probeExtendedConnect() bool {
	cli, srv := net.Pipe()
	defer cli.Close()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	hs := &http.Server{Protocols: &p, Handler: http.NotFoundHandler()}
	ln := &oneConn{c: srv, closed: make(chan struct{})}
	served := make(chan struct{})
	go func() {
		hs.Serve(ln)
		close(served)
	}()
	defer func() {
		hs.Close()
		<-served
	}()
	cli.SetDeadline(time.Now().Add(5 * time.Second))
	wrote := make(chan struct{})
	go func() {
		io.WriteString(cli, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
		close(wrote)
	}()
	defer func() {
		cli.Close()
		<-wrote
	}()
	var hdr [9]byte
	if _, err := io.ReadFull(cli, hdr[:]); err != nil || hdr[3] != 0x4 {
		return false
	}
	n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
	if n > 1<<10 {
		return false
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(cli, payload); err != nil {
		return false
	}
	for ; len(payload) >= 6; payload = payload[6:] {
		if binary.BigEndian.Uint16(payload) == 0x8 && binary.BigEndian.Uint32(payload[2:]) == 1 {
			return true
		}
	}
	return false
}

// oneConn is a listener that hands out one connection.
type oneConn struct {
	mu     sync.Mutex
	c      net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *oneConn) Accept() (net.Conn, error) {
	l.mu.Lock()
	c := l.c
	l.c = nil
	l.mu.Unlock()
	if c != nil {
		return c, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *oneConn) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConn) Addr() net.Addr { return addr("pipe") }
