package conformance

// The suite over HTTP/2 (RFC 8441): the same cases, the frames inside an
// extended CONNECT stream of a cleartext HTTP/2 connection instead of a
// TCP connection of their own. The server's end of the stream
// (END_STREAM) stands for its FIN.

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	_ "github.com/wsactor/wsactor/xconnect" // RFC 8441 in net/http's server
)

// h2Transport returns a transport for one case's HTTP/2 connection.
// net/http's Transport refuses the :protocol pseudo-header in its own
// header check, but the RoundTripper that its TLSNextProto returns for a
// connection made here sends it. A transport of its own per case keeps
// each case on a connection of its own, as over TCP: a transport's
// HTTP/2 half pools connections by address.
func h2Transport() *http.Transport {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	tr.CloseIdleConnections() // sets up TLSNextProto
	return tr
}

// cleartext is how net/http's HTTP/2 half knows a cleartext connection
// handed over through TLSNextProto.
type cleartext struct{ net.Conn }

func (c cleartext) UnencryptedNetConn() net.Conn { return c.Conn }

// dialH2 opens a stream to srv with an extended CONNECT for path, offering
// offer, and checks the answer as dial checks a 101.
func dialH2(ctx context.Context, srv server, path string, deadline time.Time, offer, accept string) (*client, error) {
	var d net.Dialer
	tcp, err := d.DialContext(ctx, "tcp", srv.addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", srv.addr, err)
	}
	rt := h2Transport().TLSNextProto["unencrypted_http2"](srv.addr, tls.Client(cleartext{tcp}, nil))
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(sctx, http.MethodConnect, "http://"+srv.addr+path, pr)
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	if offer != "" {
		req.Header.Set("Sec-WebSocket-Extensions", offer)
	}
	s := &stream{pw: pw, cancel: cancel, tcp: tcp}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("extended CONNECT: %w", err)
	}
	s.body = resp.Body
	if err := checkH2Response(resp, accept); err != nil {
		s.Close()
		return nil, err
	}
	return startClient(s, bufio.NewReaderSize(s, 64<<10), accept != ""), nil
}

// checkH2Response checks the server's answer to an extended CONNECT (RFC
// 8441 section 5: 200, and the extension answer of RFC 6455).
func checkH2Response(resp *http.Response, accept string) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("handshake: status %s, want 200", resp.Status)
	}
	if resp.ProtoMajor != 2 {
		return fmt.Errorf("handshake: %s, want HTTP/2", resp.Proto)
	}
	if v := resp.Header.Get("Sec-WebSocket-Extensions"); v != accept {
		return fmt.Errorf("handshake: extension %q, want %q", v, accept)
	}
	return nil
}

// stream is a net.Conn over the client's side of one HTTP/2 stream; its
// deadline is the request's context, set at dial.
type stream struct {
	body   io.ReadCloser
	pw     *io.PipeWriter
	cancel context.CancelFunc
	tcp    net.Conn
	once   sync.Once
}

func (s *stream) Read(p []byte) (int, error)  { return s.body.Read(p) }
func (s *stream) Write(p []byte) (int, error) { return s.pw.Write(p) }

func (s *stream) Close() error {
	s.once.Do(func() {
		s.pw.Close()
		s.cancel()
		if s.body != nil {
			s.body.Close()
		}
		s.tcp.Close() // the case's connection is its own
	})
	return nil
}

func (s *stream) LocalAddr() net.Addr                { return s.tcp.LocalAddr() }
func (s *stream) RemoteAddr() net.Addr               { return s.tcp.RemoteAddr() }
func (s *stream) SetDeadline(time.Time) error        { return nil }
func (s *stream) SetReadDeadline(time.Time) error    { return nil }
func (s *stream) SetWriteDeadline(t time.Time) error { return nil }
