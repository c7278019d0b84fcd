package session

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/bufpool"
)

// Accept upgrades an HTTP request to a WebSocket session (the server role).
// On a request that is not a valid WebSocket handshake it answers with the
// fitting status, writes nothing else, and returns an error that wraps
// ErrHandshake: 426 Upgrade Required (with Sec-WebSocket-Version: 13) for a
// request without the upgrade or with another protocol version, 400 for a
// malformed one (method, key), 403 for an origin that is not allowed.
//
// Over HTTP/2, Accept takes an extended CONNECT (RFC 8441) with the same
// checks, answers 200 and runs the session over the stream; the handler
// must be served through Handler, which keeps the stream for the session
// after the handler returns (otherwise Accept answers 500 and returns an
// error that wraps ErrHTTP2Handler). net/http's server accepts extended
// CONNECT only when the process allows it: see ExtendedConnect.
//
// The session starts at once: with Options.OnMessage its messages may
// arrive before Accept returns.
func Accept(w http.ResponseWriter, r *http.Request, opts *Options) (*Session, error) {
	if opts == nil {
		opts = &defaultOptions
	}
	if r.ProtoMajor == 2 && r.Method == http.MethodConnect {
		return acceptStream(w, r, opts) // RFC 8441: h2accept.go
	}
	if status, err := checkRequest(r, opts); err != nil {
		if status == http.StatusUpgradeRequired {
			w.Header().Set("Upgrade", "websocket")
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		http.Error(w, err.Error(), status)
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	u := ws.HTTPUpgrader{
		Timeout: opts.handshakeTimeout(),
		Header:  opts.Header,
	}
	if len(opts.Subprotocols) > 0 {
		u.Protocol = func(p string) bool { return containsToken(opts.Subprotocols, p) }
	}
	ext := deflateExtension(opts)
	if ext != nil {
		u.Negotiate = declineInvalid(ext.Negotiate)
	}
	conn, rw, hs, err := u.Upgrade(r, w)
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	var initial []byte
	if rw != nil && rw.Reader.Buffered() > 0 {
		initial, _ = rw.Reader.Peek(rw.Reader.Buffered())
	}
	return newSession(r.Context(), conn, codec.Server, opts, hs.Protocol, accepted(ext), initial), nil
}

// AcceptConn runs the server's opening handshake on conn, a connection the
// caller accepted itself, within the handshake timeout, and returns the
// session. On failure it answers with the fitting HTTP status (as Accept
// does; 431 for a request head over 64 KiB), closes conn and returns an
// error that wraps ErrHandshake.
//
// A session accepted on a plain TCP connection on Linux starts parked
// (docs/decisions.md): it has no reader goroutine until its first bytes
// come.
func AcceptConn(conn net.Conn, opts *Options) (*Session, error) {
	return AcceptConnBuffered(context.Background(), conn, nil, opts)
}

// AcceptConnBuffered is AcceptConn for a caller that already read the
// start of conn's stream, buffered: the request or a part of it, and
// perhaps frames behind it. The handshake reads buffered first, then conn.
// buffered is copied; the caller keeps it. ctx is the one Options.OnOpen
// receives.
func AcceptConnBuffered(ctx context.Context, conn net.Conn, buffered []byte, opts *Options) (*Session, error) {
	if opts == nil {
		opts = &defaultOptions
	}
	conn.SetDeadline(time.Now().Add(opts.handshakeTimeout()))
	h := handshakes.Get().(*handshake)
	defer h.release()
	h.opts = opts
	h.hr.conn = conn
	if len(buffered) > 0 {
		h.hr.buf = bufpool.Get(max(len(buffered), 4096))
		h.hr.end = copy(h.hr.buf, buffered)
	}
	u := h.u
	u.Header = ws.HandshakeHeaderHTTP(opts.Header)
	if len(opts.Subprotocols) > 0 {
		u.Protocol = h.protocol
	}
	ext := deflateExtension(opts)
	if ext != nil {
		u.Negotiate = declineInvalid(ext.Negotiate)
	}
	hs, err := u.Upgrade(&h.rw)
	if err != nil {
		if errors.Is(err, errHeadTooLarge) {
			// gobwas/ws answers only the errors it finds itself.
			conn.Write([]byte("HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
		}
		conn.Close()
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	conn.SetDeadline(time.Time{})
	return newSession(ctx, conn, codec.Server, opts, hs.Protocol, accepted(ext), h.hr.rest()), nil
}

// handshake is the state of one AcceptConn, pooled with its upgrader,
// whose callbacks are bound to it once: a handshake in a storm of them
// leaves no garbage but the session.
type handshake struct {
	opts      *Options
	hr        headerReader
	rw        handshakeRW
	u         ws.Upgrader
	host      []byte // the Host header, in a buffer kept across uses
	origin    []byte // the Origin header, when hasOrigin
	hasOrigin bool
	protocol  func([]byte) bool
}

var handshakes = sync.Pool{New: func() any {
	h := &handshake{}
	h.rw.h = &h.hr
	h.u = ws.Upgrader{
		OnHost:          h.onHost,
		OnHeader:        h.onHeader,
		OnBeforeUpgrade: h.onBeforeUpgrade,
	}
	h.protocol = h.acceptProtocol
	return h
}}

func (h *handshake) onHost(v []byte) error {
	h.host = append(h.host[:0], v...)
	return nil
}

func (h *handshake) onHeader(k, v []byte) error {
	if len(k) == len("Origin") && equalFoldASCII(k, "Origin") {
		h.origin = append(h.origin[:0], v...)
		h.hasOrigin = true
	}
	return nil
}

func (h *handshake) onBeforeUpgrade() (ws.HandshakeHeader, error) {
	if !h.hasOrigin {
		return nil, nil
	}
	if err := checkOrigin(string(h.origin), string(h.host), h.opts.OriginPatterns); err != nil {
		return nil, ws.RejectConnectionError(
			ws.RejectionStatus(http.StatusForbidden),
			ws.RejectionReason(err.Error()),
		)
	}
	return nil, nil
}

func (h *handshake) acceptProtocol(p []byte) bool {
	for _, v := range h.opts.Subprotocols {
		if v == string(p) {
			return true
		}
	}
	return false
}

// release gives back the header buffer and puts h back in the pool;
// what the session kept of the buffer, newSession copied.
func (h *handshake) release() {
	h.hr.release()
	h.hr = headerReader{}
	h.opts = nil
	h.hasOrigin = false
	if cap(h.host) > 256 {
		h.host = nil
	}
	if cap(h.origin) > 256 {
		h.origin = nil
	}
	handshakes.Put(h)
}

// handshakeRW is the connection as the upgrader sees it: reads through the
// headerReader, writes straight to the socket.
type handshakeRW struct{ h *headerReader }

func (rw *handshakeRW) Read(p []byte) (int, error)  { return rw.h.Read(p) }
func (rw *handshakeRW) Write(p []byte) (int, error) { return rw.h.conn.Write(p) }

func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// maxHead bounds the request head AcceptConn reads, as net/http's
// MaxHeaderBytes does (the daemon's is 64 KiB too): gobwas/ws gathers a
// header line of any length, so without it a peer could make a handshake
// hold as much as it sends within the handshake timeout.
const maxHead = 64 << 10

var errHeadTooLarge = fmt.Errorf("request head over %d KiB", maxHead>>10)

// headerReader gives gobwas/ws's upgrader the request up to the empty line
// that ends its headers, and no byte more: the upgrader reads through a
// pooled buffer of its own and would drop whatever it read past the
// request, such as frames a client sent right behind it. Those stay here
// for the session (rest). A head over maxHead fails with errHeadTooLarge.
type headerReader struct {
	conn    net.Conn
	total   int    // bytes of the head handed out
	buf     []byte // pooled; buf[off:end] is read and not handed out
	off     int
	end     int
	done    bool // the end of the headers was handed out
	line    int  // bytes of the current line so far
	last    byte // the byte before the current one
	started bool // a non-empty line was seen
}

func (h *headerReader) Read(p []byte) (int, error) {
	if h.done {
		return 0, io.EOF
	}
	if h.off == h.end {
		if h.buf == nil {
			h.buf = bufpool.Get(4096)
		}
		n, err := h.conn.Read(h.buf)
		h.off, h.end = 0, n
		if n == 0 {
			return 0, err
		}
	}
	n := min(len(p), h.end-h.off)
	for i, c := range h.buf[h.off : h.off+n] {
		if c != '\n' {
			h.line++
			h.last = c
			continue
		}
		empty := h.line == 0 || h.line == 1 && h.last == '\r'
		if empty && h.started {
			n, h.done = i+1, true
			break
		}
		h.started = h.started || !empty
		h.line = 0
	}
	h.total += n
	if !h.done && h.total > maxHead {
		return 0, errHeadTooLarge
	}
	copy(p, h.buf[h.off:h.off+n])
	h.off += n
	return n, nil
}

// rest returns what came after the request's headers, or nil.
func (h *headerReader) rest() []byte {
	if h.off == h.end {
		return nil
	}
	return h.buf[h.off:h.end]
}

func (h *headerReader) release() {
	if h.buf != nil {
		bufpool.Put(h.buf)
		h.buf = nil
	}
}

// deflateParams are the permessage-deflate parameters wsactor speaks: no
// context takeover either way (codec/deflate.go).
var deflateParams = wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}

// deflateExtension returns the negotiation of permessage-deflate for one
// handshake, or nil without Options.Compression. gobwas/ws/wsflate's
// Extension accepts the first offer it can honour and answers with
// deflateParams; it declines an offer of server_max_window_bits, since
// compress/flate always uses a 32 KiB window.
func deflateExtension(opts *Options) *wsflate.Extension {
	if opts.Compression == nil {
		return nil
	}
	return &wsflate.Extension{Parameters: deflateParams}
}

func accepted(ext *wsflate.Extension) bool {
	if ext == nil {
		return false
	}
	_, ok := ext.Accepted()
	return ok
}

// declineInvalid makes a negotiation decline an offer it finds invalid,
// where gobwas/ws would fail the handshake: RFC 7692 section 5 says that a
// server MUST decline such an offer. (Generic so that this module need not
// import gobwas/httphead for the option type.)
func declineInvalid[O any](negotiate func(O) (O, error)) func(O) (O, error) {
	return func(offer O) (O, error) {
		accept, err := negotiate(offer)
		if err != nil {
			var none O
			return none, nil
		}
		return accept, nil
	}
}

// checkRequest checks what gobwas/ws's upgrader leaves to us or answers
// with a less fitting status: the upgrade itself (426, so that a plain GET
// learns which protocol to speak), the key's encoding, and the origin.
func checkRequest(r *http.Request, opts *Options) (int, error) {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		return http.StatusUpgradeRequired, fmt.Errorf("not a WebSocket handshake: expected Connection: Upgrade and Upgrade: websocket")
	}
	if r.Method != http.MethodGet {
		return http.StatusMethodNotAllowed, fmt.Errorf("WebSocket handshake must be a GET, not %s", r.Method)
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		if v == "" {
			return http.StatusBadRequest, fmt.Errorf("missing Sec-WebSocket-Version")
		}
		return http.StatusUpgradeRequired, fmt.Errorf("unsupported Sec-WebSocket-Version %q: this server speaks 13", v)
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if raw, err := base64.StdEncoding.DecodeString(key); err != nil || len(raw) != 16 {
		return http.StatusBadRequest, fmt.Errorf("missing or malformed Sec-WebSocket-Key")
	}
	if err := checkOrigin(r.Header.Get("Origin"), r.Host, opts.OriginPatterns); err != nil {
		return http.StatusForbidden, err
	}
	return 0, nil
}

// checkOrigin accepts a request without an Origin (not from a browser), one
// from the server's own host, and one whose host matches a pattern.
func checkOrigin(origin, host string, patterns []string) error {
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("malformed Origin %q", origin)
	}
	if strings.EqualFold(u.Host, host) {
		return nil
	}
	for _, p := range patterns {
		if p == "*" {
			return nil
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(u.Host)); ok {
			return nil
		}
	}
	return fmt.Errorf("origin %q is not allowed (host %q); add it to Options.OriginPatterns", origin, host)
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func containsToken(list []string, p string) bool {
	for _, v := range list {
		if v == p {
			return true
		}
	}
	return false
}
