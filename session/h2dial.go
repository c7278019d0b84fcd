package session

// The client's side of WebSockets over HTTP/2 (RFC 8441): Dial through an
// HTTP2 pool of connections.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	neturl "net/url"
	"strings"
	"sync"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
)

// HTTP2 is a pool of HTTP/2 connections for dialing WebSockets over HTTP/2
// (RFC 8441), set in Options.HTTP2: sessions dialed through the same HTTP2
// to the same server share one connection while it has room for another
// stream (Go's server allows 250 at once), and further connections are
// made as needed. wss:// goes over TLS with ALPN h2; ws:// over cleartext
// HTTP/2 with prior knowledge (h2c, for tests and for servers that speak
// it behind a proxy). The server must allow extended CONNECT in its
// SETTINGS, or Dial fails. A connection stays open once its streams have
// ended, for the next Dial, until CloseIdleConnections. The zero value is
// ready to use; an HTTP2 must not be copied after its first use.
type HTTP2 struct {
	// TLSConfig is used for wss:// URLs, with NextProtos set to h2.
	// Default: a zero tls.Config with the URL's host as ServerName.
	TLSConfig *tls.Config

	// NetDial dials the TCP connections. Default: a net.Dialer.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)

	once sync.Once
	tr   *http.Transport
	err  error
	mu   sync.Mutex
	rts  map[string]http.RoundTripper // by URL scheme, once a connection was made
}

// CloseIdleConnections closes the pool's connections that carry no
// stream.
func (h *HTTP2) CloseIdleConnections() {
	if h.init() == nil {
		h.tr.CloseIdleConnections()
	}
}

// init makes the transport whose HTTP/2 half the pool uses. net/http's
// Transport refuses the :protocol pseudo-header that RFC 8441 needs (its
// header check runs before HTTP/2 is chosen), but the RoundTripper that
// its TLSNextProto hands out for a connection made elsewhere sends it: so
// the pool dials its connections itself and gives them to that.
func (h *HTTP2) init() error {
	h.once.Do(func() {
		var p http.Protocols
		p.SetHTTP2(true)
		p.SetUnencryptedHTTP2(true)
		h.tr = &http.Transport{Protocols: &p}
		h.tr.CloseIdleConnections() // sets up HTTP/2, and TLSNextProto with it
		if h.tr.TLSNextProto["h2"] == nil || h.tr.TLSNextProto["unencrypted_http2"] == nil {
			h.err = errors.New("session: net/http's HTTP/2 client is not available (GODEBUG=http2client=0?)")
		}
	})
	return h.err
}

// roundTrip sends req on a connection of the pool, made when none has
// room.
func (h *HTTP2) roundTrip(req *http.Request) (*http.Response, error) {
	if err := h.init(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	rt := h.rts[req.URL.Scheme]
	h.mu.Unlock()
	if rt != nil {
		resp, err := rt.RoundTrip(req)
		var none interface{ IsHTTP2NoCachedConnection() }
		if !errors.As(err, &none) {
			return resp, err
		}
	}
	rt, err := h.connect(req.Context(), req.URL.Scheme, req.URL.Host)
	if err != nil {
		return nil, err
	}
	return rt.RoundTrip(req)
}

// connect makes a connection to authority and gives it to the pool.
func (h *HTTP2) connect(ctx context.Context, scheme, authority string) (http.RoundTripper, error) {
	host, port, err := net.SplitHostPort(authority)
	if err != nil {
		host, port = authority, "80"
		if scheme == "https" {
			port = "443"
		}
	}
	dial := h.NetDial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	c, err := dial(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, err
	}
	var rt http.RoundTripper
	if scheme == "https" {
		cfg := &tls.Config{}
		if h.TLSConfig != nil {
			cfg = h.TLSConfig.Clone()
		}
		cfg.NextProtos = []string{"h2"}
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			tc.Close()
			return nil, fmt.Errorf("session: %s does not speak HTTP/2 over TLS (ALPN answered %q)", authority, p)
		}
		rt = h.tr.TLSNextProto["h2"](authority, tc)
	} else {
		// net/http hands a cleartext connection to its HTTP/2 half
		// inside a *tls.Conn that is never used for TLS.
		rt = h.tr.TLSNextProto["unencrypted_http2"](authority, tls.Client(h2cConn{c}, nil))
	}
	h.mu.Lock()
	if h.rts == nil {
		h.rts = make(map[string]http.RoundTripper)
	}
	h.rts[scheme] = rt
	h.mu.Unlock()
	return rt, nil
}

// h2cConn is how net/http's HTTP/2 half recognizes a cleartext connection
// handed to it through TLSNextProto.
type h2cConn struct{ net.Conn }

func (c h2cConn) UnencryptedNetConn() net.Conn { return c.Conn }

// dialStream opens a session as an RFC 8441 stream; ctx bounds the
// handshake only.
func dialStream(ctx context.Context, url string, opts *Options) (*Session, error) {
	fail := func(err error, resp *http.Response) error {
		return &HandshakeError{URL: url, Response: resp, err: err}
	}
	u, err := neturl.Parse(url)
	if err != nil {
		return nil, fail(err, nil)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return nil, fail(fmt.Errorf("unexpected URL scheme %q: want ws or wss", u.Scheme), nil)
	}
	u.Fragment = ""

	// The stream lives on after Dial: its context is not ctx, which ends
	// it only while the handshake lasts.
	sctx, abort := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, abort)
	var local, remote net.Addr
	sctx = httptrace.WithClientTrace(sctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		local, remote = info.Conn.LocalAddr(), info.Conn.RemoteAddr()
	}})
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(sctx, http.MethodConnect, u.String(), pr)
	if err != nil {
		abort()
		return nil, fail(err, nil)
	}
	for k, v := range opts.Header {
		req.Header[k] = append([]string(nil), v...)
	}
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	if len(opts.Subprotocols) > 0 {
		req.Header.Set("Sec-WebSocket-Protocol", strings.Join(opts.Subprotocols, ", "))
	}
	if opts.Compression != nil {
		req.Header.Set("Sec-WebSocket-Extensions", deflateHeader)
	}
	resp, err := opts.HTTP2.roundTrip(req)
	broken := func(err error, resp *http.Response) (*Session, error) {
		stop()
		abort()
		pw.CloseWithError(err)
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return nil, fail(err, resp)
	}
	if err != nil {
		return broken(err, nil)
	}
	if resp.StatusCode != http.StatusOK {
		body := make([]byte, maxResponseBody)
		n, _ := io.ReadFull(resp.Body, body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body[:n]))
		return broken(ErrHandshake, resp)
	}
	protocol := resp.Header.Get("Sec-WebSocket-Protocol")
	if protocol != "" && !containsToken(opts.Subprotocols, protocol) {
		resp.Body.Close()
		return broken(ws.ErrHandshakeBadSubProtocol, nil)
	}
	deflate, err := answeredDeflate(resp.Header.Values("Sec-WebSocket-Extensions"))
	if err == nil && deflate && opts.Compression == nil {
		err = errors.New("permessage-deflate: the server answered an extension that was not offered")
	}
	if err != nil {
		resp.Body.Close()
		return broken(err, nil)
	}
	if !stop() {
		resp.Body.Close()
		return broken(ctx.Err(), nil)
	}
	c := newStreamConn(resp.Body, pw, local, remote)
	c.abort = func() {
		abort()
		pw.CloseWithError(net.ErrClosed)
	}
	c.finish = func() {
		pw.Close() // our END_STREAM
		abort()
	}
	if c.local == nil {
		c.local, c.remote = addr(""), addr(u.Host)
	}
	return newSession(ctx, c, codec.Client, opts, protocol, deflate, nil), nil
}
