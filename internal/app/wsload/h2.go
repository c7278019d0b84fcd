package wsload

// -h2: the connections are RFC 8441 streams of a few HTTP/2 connections
// (cleartext h2c for ws://, TLS with ALPN h2 for wss://) instead of TCP
// connections of their own.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"
)

// h2StreamsPerConn is how many streams -h2 puts on one HTTP/2 connection
// at most: Go's client assumes 100 until the server's SETTINGS say more.
const h2StreamsPerConn = 100

// h2Pool is the HTTP/2 connections of a run, made as the first stream of
// each is dialed; stream i goes on connection i mod n.
type h2Pool struct {
	url   *url.URL
	tls   *tls.Config
	mu    sync.Mutex
	conns []*h2Conn
}

type h2Conn struct {
	once sync.Once
	rt   http.RoundTripper
	tcp  net.Conn
	err  error
}

// newH2Pool returns the pool of a run of cfg: HTTP2Conns connections, or
// as many more as h2StreamsPerConn streams each need.
func newH2Pool(cfg Config) *h2Pool {
	u, _ := url.Parse(cfg.URL)
	n := max(cfg.HTTP2Conns, 1, (cfg.Conns+h2StreamsPerConn-1)/h2StreamsPerConn)
	p := &h2Pool{url: u, conns: make([]*h2Conn, n)}
	for i := range p.conns {
		p.conns[i] = new(h2Conn)
	}
	if u.Scheme == "wss" {
		p.tls = &tls.Config{NextProtos: []string{"h2"}, InsecureSkipVerify: cfg.Insecure}
	}
	return p
}

// close closes the HTTP/2 connections.
func (p *h2Pool) close() {
	for _, c := range p.conns {
		if c.tcp != nil {
			c.tcp.Close()
		}
	}
}

// roundTripper returns connection i's, made on first use. A transport of
// its own per connection keeps each stream on the connection it is given:
// net/http's Transport refuses the :protocol pseudo-header in its own
// header check, but the RoundTripper its TLSNextProto returns for a
// connection made here sends it.
func (p *h2Pool) roundTripper(ctx context.Context, i int) (http.RoundTripper, error) {
	c := p.conns[i%len(p.conns)]
	c.once.Do(func() {
		var d net.Dialer
		tcp, err := d.DialContext(ctx, "tcp", p.url.Host)
		if err != nil {
			c.err = err
			return
		}
		var proto http.Protocols
		proto.SetHTTP2(true)
		proto.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: &proto}
		tr.CloseIdleConnections() // sets up TLSNextProto
		if p.tls == nil {
			c.tcp = tcp
			c.rt = tr.TLSNextProto["unencrypted_http2"](p.url.Host, tls.Client(cleartext{tcp}, nil))
			return
		}
		cfg := p.tls.Clone()
		cfg.ServerName = p.url.Hostname()
		tc := tls.Client(tcp, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			tcp.Close()
			c.err = err
			return
		}
		if tc.ConnectionState().NegotiatedProtocol != "h2" {
			tc.Close()
			c.err = errors.New("the server does not speak HTTP/2 over TLS")
			return
		}
		c.tcp = tc
		c.rt = tr.TLSNextProto["h2"](p.url.Host, tc)
	})
	return c.rt, c.err
}

// cleartext is how net/http's HTTP/2 half knows a cleartext connection
// handed over through TLSNextProto.
type cleartext struct{ net.Conn }

func (c cleartext) UnencryptedNetConn() net.Conn { return c.Conn }

// dial opens stream i with an extended CONNECT.
func (p *h2Pool) dial(ctx context.Context, i int) (net.Conn, error) {
	rt, err := p.roundTripper(ctx, i)
	if err != nil {
		return nil, err
	}
	u := *p.url
	u.Scheme = "http"
	if p.tls != nil {
		u.Scheme = "https"
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(sctx, http.MethodConnect, u.String(), pr)
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("extended CONNECT: %s", resp.Status)
	}
	return newH2Stream(resp.Body, pw, cancel), nil
}

// h2Stream is a net.Conn over one stream. A goroutine reads the stream, so
// that a read deadline (the coordinator's wake-up) interrupts a Read
// without resetting the stream; writes have no deadline.
type h2Stream struct {
	body    io.ReadCloser
	pw      *io.PipeWriter
	cancel  context.CancelFunc
	chunks  chan []byte
	readErr error // set before chunks is closed
	rest    []byte

	mu      sync.Mutex
	expired chan struct{} // closed when the read deadline passes
	timer   *time.Timer
	once    sync.Once
}

func newH2Stream(body io.ReadCloser, pw *io.PipeWriter, cancel context.CancelFunc) *h2Stream {
	s := &h2Stream{body: body, pw: pw, cancel: cancel, chunks: make(chan []byte, 4), expired: make(chan struct{})}
	go s.pump()
	return s
}

func (s *h2Stream) pump() {
	defer close(s.chunks)
	for {
		buf := make([]byte, 32<<10)
		n, err := s.body.Read(buf)
		if n > 0 {
			s.chunks <- buf[:n]
		}
		if err != nil {
			s.readErr = err
			return
		}
	}
}

func (s *h2Stream) Read(p []byte) (int, error) {
	if len(s.rest) == 0 {
		s.mu.Lock()
		expired := s.expired
		s.mu.Unlock()
		select {
		case b, ok := <-s.chunks:
			if !ok {
				return 0, s.readErr
			}
			s.rest = b
		case <-expired:
			return 0, os.ErrDeadlineExceeded
		}
	}
	n := copy(p, s.rest)
	s.rest = s.rest[n:]
	return n, nil
}

func (s *h2Stream) Write(p []byte) (int, error) { return s.pw.Write(p) }

// Close ends our side of the stream and the stream; the pump ends with it.
func (s *h2Stream) Close() error {
	s.once.Do(func() {
		s.pw.Close()
		s.cancel()
		s.body.Close()
		go func() { // drain, so that the pump is never stuck on a send
			for range s.chunks {
			}
		}()
	})
	return nil
}

func (s *h2Stream) SetDeadline(t time.Time) error { return s.SetReadDeadline(t) }

func (s *h2Stream) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	select {
	case <-s.expired:
		s.expired = make(chan struct{})
	default:
	}
	switch {
	case t.IsZero():
	case !time.Now().Before(t):
		close(s.expired)
	default:
		ch := s.expired
		s.timer = time.AfterFunc(time.Until(t), func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.expired == ch {
				select {
				case <-ch:
				default:
					close(ch)
				}
			}
		})
	}
	return nil
}

func (s *h2Stream) SetWriteDeadline(time.Time) error { return nil }
func (s *h2Stream) LocalAddr() net.Addr              { return addr("h2 stream") }
func (s *h2Stream) RemoteAddr() net.Addr             { return addr("h2 stream") }

type addr string

func (a addr) Network() string { return "h2" }
func (a addr) String() string  { return string(a) }
