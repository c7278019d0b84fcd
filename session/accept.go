package session

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
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
// does), closes conn and returns an error that wraps ErrHandshake.
func AcceptConn(conn net.Conn, opts *Options) (*Session, error) {
	if opts == nil {
		opts = &defaultOptions
	}
	conn.SetDeadline(time.Now().Add(opts.handshakeTimeout()))
	var host, origin string
	u := ws.Upgrader{
		Header: ws.HandshakeHeaderHTTP(opts.Header),
		OnHost: func(h []byte) error {
			host = string(h)
			return nil
		},
		OnHeader: func(k, v []byte) error {
			if strings.EqualFold(string(k), "Origin") {
				origin = string(v)
			}
			return nil
		},
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			if err := checkOrigin(origin, host, opts.OriginPatterns); err != nil {
				return nil, ws.RejectConnectionError(
					ws.RejectionStatus(http.StatusForbidden),
					ws.RejectionReason(err.Error()),
				)
			}
			return nil, nil
		},
	}
	if len(opts.Subprotocols) > 0 {
		u.Protocol = func(p []byte) bool { return containsToken(opts.Subprotocols, string(p)) }
	}
	ext := deflateExtension(opts)
	if ext != nil {
		u.Negotiate = declineInvalid(ext.Negotiate)
	}
	hr := &headerReader{conn: conn}
	hs, err := u.Upgrade(struct {
		io.Reader
		io.Writer
	}{hr, conn})
	if err != nil {
		hr.release()
		conn.Close()
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	conn.SetDeadline(time.Time{})
	s := newSession(context.Background(), conn, codec.Server, opts, hs.Protocol, accepted(ext), hr.rest())
	hr.release()
	return s, nil
}

// headerReader gives gobwas/ws's upgrader the request up to the empty line
// that ends its headers, and no byte more: the upgrader reads through a
// pooled buffer of its own and would drop whatever it read past the
// request, such as frames a client sent right behind it. Those stay here
// for the session (rest).
type headerReader struct {
	conn    net.Conn
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
