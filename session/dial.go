package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/gobwas/pool/pbufio"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/wsactor/wsactor/codec"
)

// Dial opens a WebSocket session to a ws:// or wss:// URL (the client
// role). The TCP dial, the TLS handshake and the opening handshake together
// are bounded by the handshake timeout and by ctx; ctx does not bound the
// session afterwards. When the handshake fails, Dial returns a
// *HandshakeError: it matches ErrHandshake, wraps the cause (a timeout
// matches context.DeadlineExceeded, whether ctx or the handshake timeout
// ran out) and, when the server answered with another status than 101,
// carries the server's response.
func Dial(ctx context.Context, url string, opts *Options) (*Session, error) {
	if opts == nil {
		opts = &defaultOptions
	}
	// The handshake timeout as a context rather than ws.Dialer.Timeout:
	// gobwas/ws then reports its expiry as context.DeadlineExceeded in
	// every phase, where a bare connection deadline gives "i/o timeout".
	ctx, cancel := context.WithTimeout(ctx, opts.handshakeTimeout())
	defer cancel()
	if opts.HTTP2 != nil {
		return dialStream(ctx, url, opts) // RFC 8441: h2dial.go
	}
	var r dialResponse
	d := ws.Dialer{
		Protocols:     opts.Subprotocols,
		TLSConfig:     opts.TLSConfig,
		NetDial:       opts.NetDial,
		OnHeader:      r.onHeader,
		OnStatusError: r.onStatusError,
	}
	if opts.Header != nil {
		d.Header = ws.HandshakeHeaderHTTP(opts.Header)
	}
	if opts.Compression != nil {
		d.Extensions = append(d.Extensions, deflateParams.Option())
	}
	if d.NetDial == nil {
		var nd net.Dialer
		d.NetDial = nd.DialContext
	}
	conn, br, hs, err := d.Dial(ctx, url)
	if err != nil {
		return nil, r.fail(url, err)
	}
	deflate := false
	for _, opt := range hs.Extensions {
		var p wsflate.Parameters
		err := p.Parse(opt)
		switch {
		case err == nil && !p.ServerNoContextTakeover:
			err = fmt.Errorf("the server would keep its compression context, which was offered without (server_no_context_takeover)")
		case err == nil && p.ClientMaxWindowBits.Defined() && p.ClientMaxWindowBits < 15:
			err = fmt.Errorf("client_max_window_bits=%d: compress/flate always uses a 32 KiB window", p.ClientMaxWindowBits)
		}
		if err != nil {
			if br != nil {
				ws.PutReader(br)
			}
			conn.Close()
			r.switching = true
			return nil, r.fail(url, fmt.Errorf("permessage-deflate: %w", err))
		}
		deflate = true
	}
	var initial []byte
	if br != nil {
		if n := br.Buffered(); n > 0 {
			initial, _ = br.Peek(n)
			initial = append([]byte(nil), initial...)
		}
		ws.PutReader(br)
	}
	return newSession(ctx, conn, codec.Client, opts, hs.Protocol, deflate, initial), nil
}

// HandshakeError is the error Dial returns when the opening handshake
// fails; get it with errors.As. It matches ErrHandshake with errors.Is, and
// Unwrap gives the cause: the TCP dial's or the TLS handshake's error (a
// refused connection matches syscall.ECONNREFUSED), context.DeadlineExceeded
// or context.Canceled when ctx or the handshake timeout ended it,
// gobwas/ws's error for a 101 response that failed its checks, or
// ErrHandshake itself when the server answered with another status.
//
// Response is the server's answer, or nil when none was read. For a status
// other than 101 it carries the status line, every header the server sent
// (none if they exceed 1 MiB or do not parse) and at most the first 1 KiB
// of the body: as much as Content-Length declares, or else what arrived
// before the server closed the connection or the handshake timeout ran
// out. Its ContentLength is the length the server declared; its Body is in
// memory and needs no Close. For a 101 response that failed the checks (or
// negotiated permessage-deflate parameters Dial refuses), gobwas/ws hands
// over neither the status line nor the headers it checks itself: Response
// reads "HTTP/1.1 101 Switching Protocols", its Header holds the other
// headers read before the failure (Upgrade, Connection and
// Sec-WebSocket-* left out), and its Body is empty.
type HandshakeError struct {
	// URL is the URL given to Dial.
	URL string
	// Response is what the server answered, or nil.
	Response *http.Response

	err error
}

// Error says which URL the handshake failed with, and the status the
// server answered with or the cause.
func (e *HandshakeError) Error() string {
	if e.err == ErrHandshake && e.Response != nil {
		return fmt.Sprintf("%v: %s: server answered %s", ErrHandshake, e.URL, e.Response.Status)
	}
	return fmt.Sprintf("%v: %s: %v", ErrHandshake, e.URL, e.err)
}

// Unwrap returns the cause of the failure: ErrHandshake for a status
// other than 101.
func (e *HandshakeError) Unwrap() error { return e.err }

// Is makes a *HandshakeError match ErrHandshake, whatever its cause.
func (e *HandshakeError) Is(target error) bool { return target == ErrHandshake }

// Limits on what Dial keeps of a failed handshake's response. Both are
// read as the bytes arrive; a length the server declares bounds the body's
// buffer but never sizes it beyond maxResponseBody.
const (
	maxResponseHeader = 1 << 20
	maxResponseBody   = 1 << 10
)

// dialResponse gathers a failed handshake's response from gobwas/ws's
// callbacks. gobwas/ws calls OnStatusError for a status other than 101,
// right after the status line, with a reader over that line and whatever
// follows it on the connection (headers and body, read as they arrive, under
// the handshake's deadline); it calls OnHeader only after a 101, once per
// header it does not check itself, and stops at the first header that
// fails a check.
type dialResponse struct {
	resp        *http.Response // the status error's response
	header      http.Header    // the 101's headers, from OnHeader
	headerBytes int
	switching   bool // a 101 was read
}

func (r *dialResponse) onHeader(k, v []byte) error {
	r.switching = true
	r.headerBytes += len(k) + len(v)
	if r.headerBytes > maxResponseHeader {
		return nil // kept only for a failure's report: not a reason to fail
	}
	if r.header == nil {
		r.header = make(http.Header)
	}
	r.header.Add(string(k), string(v))
	return nil
}

func (r *dialResponse) onStatusError(status int, reason []byte, resp io.Reader) {
	br := pbufio.GetReader(&io.LimitedReader{R: resp, N: maxResponseHeader + maxResponseBody}, 4096)
	defer pbufio.PutReader(br)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		r.resp = statusResponse(status, string(reason))
		return
	}
	n := int64(maxResponseBody)
	if res.ContentLength >= 0 {
		n = min(n, res.ContentLength)
	}
	body := make([]byte, n)
	got, _ := io.ReadFull(res.Body, body) // a short body is what arrived
	res.Body = io.NopCloser(bytes.NewReader(body[:got]))
	r.resp = res
}

// fail returns the error for a handshake with url that failed with err.
func (r *dialResponse) fail(url string, err error) error {
	e := &HandshakeError{URL: url, err: err}
	var status ws.StatusError
	switch {
	case errors.As(err, &status):
		e.err = ErrHandshake
		e.Response = r.resp
		if e.Response == nil { // gobwas/ws calls OnStatusError before; be safe
			e.Response = statusResponse(int(status), http.StatusText(int(status)))
		}
	case r.switching || failed101(err):
		e.Response = statusResponse(http.StatusSwitchingProtocols, "Switching Protocols")
		if r.header != nil {
			e.Response.Header = r.header
		}
	}
	return e
}

// statusResponse is a response of which only the status is known, in
// HTTP/1.1: gobwas/ws accepts no other version below 2.
func statusResponse(status int, reason string) *http.Response {
	return &http.Response{
		Status:     fmt.Sprintf("%d %s", status, reason),
		StatusCode: status,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header),
		Body:       http.NoBody,
	}
}

// failed101 tells the errors gobwas/ws gives only after a 101 status line.
func failed101(err error) bool {
	for _, target := range []error{
		ws.ErrHandshakeBadUpgrade,
		ws.ErrHandshakeBadConnection,
		ws.ErrHandshakeBadSecAccept,
		ws.ErrHandshakeBadSubProtocol,
		ws.ErrHandshakeBadExtensions,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
