package session

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
)

// testTimeout bounds every wait in these tests. It is reached only when
// something is broken: the tests synchronize on channels, completions and
// the wire, never on the clock.
const testTimeout = 10 * time.Second

// bigWrite is large enough that a peer which does not read keeps it in
// flight: far more than the session's send buffer (blockWriter makes it
// small) plus the small receive buffer rawConfig.readBuffer gives the peer.
const bigWrite = 8 << 20

// testOptions returns Options for tests: keep-alive pings off, so that
// nothing unasked for appears on the wire, and handshake and close
// timeouts that only a broken test reaches (the machine is shared, and a
// loaded one can take seconds to schedule a handshake under -race). The
// tests of those timeouts set short ones.
func testOptions() *Options {
	return &Options{
		HandshakeTimeout: testTimeout,
		CloseTimeout:     testTimeout,
		IdleTimeout:      -1,
		// Room for writes queued behind a bigWrite held in flight; the
		// bound itself is tested with its own options.
		MaxPendingBytes: 4 * bigWrite,
	}
}

// frame is one WebSocket frame as a raw peer writes or reads it, payload
// unmasked.
type frame struct {
	fin     bool
	rsv     byte
	op      ws.OpCode
	payload []byte
}

func textFrame(s string) frame { return frame{fin: true, op: ws.OpText, payload: []byte(s)} }

func closeFrame(code codec.CloseCode, reason string) frame {
	return frame{fin: true, op: ws.OpClose, payload: codec.AppendClosePayload(nil, code, reason)}
}

// closeCode returns the code of a close frame's payload, 1005 for an empty
// one.
func (f frame) closeCode() codec.CloseCode {
	if len(f.payload) < 2 {
		return codec.CloseNoStatusReceived
	}
	return codec.CloseCode(binary.BigEndian.Uint16(f.payload))
}

func (f frame) String() string {
	if f.op == ws.OpClose {
		return fmt.Sprintf("close %d %q", uint16(f.closeCode()), f.payload[min(2, len(f.payload)):])
	}
	if len(f.payload) > 32 {
		return fmt.Sprintf("op %d fin %t, %d bytes", f.op, f.fin, len(f.payload))
	}
	return fmt.Sprintf("op %d fin %t %q", f.op, f.fin, f.payload)
}

// encodeFrame encodes f as it goes on the wire, masked with a fresh key
// when masked is set. The payload is copied, never changed.
func encodeFrame(f frame, masked bool) []byte {
	h := ws.Header{Fin: f.fin, Rsv: f.rsv, OpCode: f.op, Length: int64(len(f.payload)), Masked: masked}
	p := slices.Clone(f.payload)
	if masked {
		h.Mask = codec.NewMask()
		ws.Cipher(p, h.Mask, 0)
	}
	return append(codec.AppendHeader(nil, h), p...)
}

// rawPeer is the other end of a session's connection, driven by hand, so
// that a test sees and makes every byte on the wire.
type rawPeer struct {
	conn     net.Conn
	src      io.Reader // bytes buffered during the handshake, then conn
	client   bool      // this end is the client: it masks, and expects unmasked frames
	protocol string    // the negotiated subprotocol
}

// write sends f, masked if this end is the client.
func (p *rawPeer) write(f frame) error {
	_, err := p.conn.Write(encodeFrame(f, p.client))
	return err
}

// writeRaw sends b as it is.
func (p *rawPeer) writeRaw(b []byte) error {
	_, err := p.conn.Write(b)
	return err
}

// readHeader reads one frame header and checks its masking against the
// sender's role.
func (p *rawPeer) readHeader() (ws.Header, error) {
	h, err := ws.ReadHeader(p.src)
	if err != nil {
		return h, err
	}
	if h.Masked == p.client {
		return h, fmt.Errorf("frame from the session masked=%t, want %t", h.Masked, !p.client)
	}
	return h, nil
}

// readPayload reads the payload that h announces, unmasked.
func (p *rawPeer) readPayload(h ws.Header) ([]byte, error) {
	b := make([]byte, h.Length) // lengths here are the session's own, bounded by the test
	if _, err := io.ReadFull(p.src, b); err != nil {
		return nil, err
	}
	if h.Masked {
		ws.Cipher(b, h.Mask, 0)
	}
	return b, nil
}

// read reads the next frame, within testTimeout.
func (p *rawPeer) read() (frame, error) {
	p.conn.SetReadDeadline(time.Now().Add(testTimeout))
	defer p.conn.SetReadDeadline(time.Time{})
	h, err := p.readHeader()
	if err != nil {
		return frame{}, err
	}
	b, err := p.readPayload(h)
	if err != nil {
		return frame{}, err
	}
	return frame{fin: h.Fin, rsv: h.Rsv, op: h.OpCode, payload: b}, nil
}

// mustRead reads the next frame or fails the test. Test goroutine only.
func (p *rawPeer) mustRead(t *testing.T) frame {
	t.Helper()
	f, err := p.read()
	if err != nil {
		t.Fatalf("raw peer: read: %v", err)
	}
	return f
}

// mustWrite writes f or fails the test. Test goroutine only.
func (p *rawPeer) mustWrite(t *testing.T, f frame) {
	t.Helper()
	if err := p.write(f); err != nil {
		t.Fatalf("raw peer: write %v: %v", f, err)
	}
}

// readAll reads frames until the stream ends and returns them with the
// error that ended it (io.EOF after a clean TCP close).
func (p *rawPeer) readAll() ([]frame, error) {
	var fs []frame
	for {
		f, err := p.read()
		if err != nil {
			return fs, err
		}
		fs = append(fs, f)
	}
}

// expectEOF reads until the stream ends and reports an error unless it
// ended with the session's FIN and no further frame.
func (p *rawPeer) expectEOF() error {
	fs, err := p.readAll()
	if len(fs) > 0 {
		return fmt.Errorf("frames after the close frame: %v", fs)
	}
	if err != io.EOF {
		return fmt.Errorf("stream ended with %v, want EOF", err)
	}
	return nil
}

// silentFor reports an error unless nothing at all arrives, not even a FIN,
// within d: the session is waiting for this end.
func (p *rawPeer) silentFor(d time.Duration) error {
	p.conn.SetReadDeadline(time.Now().Add(d))
	defer p.conn.SetReadDeadline(time.Time{})
	var b [1]byte
	n, err := p.src.Read(b[:])
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil
	}
	return fmt.Errorf("got %d bytes, %v; want nothing for %v", n, err, d)
}

// finishClose completes a closing handshake that the session started, once
// this end has read the session's close frame: it echoes code, and then
// closes TCP the way its role must. A server peer sends its FIN first and
// then sees the client's; a client peer waits for the server's FIN.
func (p *rawPeer) finishClose(code codec.CloseCode) error {
	if err := p.write(closeFrame(code, "")); err != nil {
		return err
	}
	if !p.client {
		if err := p.conn.(*net.TCPConn).CloseWrite(); err != nil {
			return err
		}
	}
	return p.expectEOF()
}

// serve plays a well-behaved peer until the stream ends: it answers pings
// with pongs and the session's close frame with its own (closing TCP first
// when it is the server), and sends every frame it read to frames, which
// it closes at the end.
func (p *rawPeer) serve() <-chan frame {
	frames := make(chan frame, 4096)
	go func() {
		defer close(frames)
		for {
			f, err := p.read()
			if err != nil {
				return
			}
			frames <- f
			switch f.op {
			case ws.OpPing:
				p.write(frame{fin: true, op: ws.OpPong, payload: f.payload})
			case ws.OpClose:
				p.finishClose(f.closeCode())
				return
			}
		}
	}()
	return frames
}

// rawConfig configures the raw end of a connection.
type rawConfig struct {
	protocols  []string // offered (client) or accepted (server) subprotocols
	readBuffer int      // SO_RCVBUF of the raw end when > 0: a small one keeps big writes in flight
	// wrap, when set, wraps the connection a server session is accepted on.
	wrap func(net.Conn) net.Conn
}

func (cfg rawConfig) control(network, address string, c syscall.RawConn) error {
	if cfg.readBuffer <= 0 {
		return nil
	}
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, cfg.readBuffer)
	})
	return errors.Join(err, serr)
}

// listen returns a loopback listener closed at the end of the test. Its
// accepted connections get cfg's socket options.
func listen(t *testing.T, cfg rawConfig) net.Listener {
	t.Helper()
	lc := net.ListenConfig{Control: cfg.control}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// openRaw returns a session of role, with opts, connected over loopback
// TCP to a raw peer of the other role. Both are torn down at the end of the
// test.
func openRaw(t *testing.T, role codec.Role, opts *Options, cfg rawConfig) (*Session, *rawPeer) {
	t.Helper()
	if role == codec.Server {
		return acceptRaw(t, opts, cfg)
	}
	return dialRaw(t, opts, cfg)
}

// accepted1 is what AcceptConn returned for one connection.
type accepted1 struct {
	s   *Session
	err error
}

// acceptOne runs AcceptConn, with opts, on the next connection ln accepts
// (wrapped by wrap, if any).
func acceptOne(ln net.Listener, opts *Options, wrap ...func(net.Conn) net.Conn) <-chan accepted1 {
	ch := make(chan accepted1, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- accepted1{err: err}
			return
		}
		for _, w := range wrap {
			c = w(c)
		}
		s, err := AcceptConn(c, opts)
		ch <- accepted1{s, err}
	}()
	return ch
}

// acceptRaw returns a server session from AcceptConn and the raw client
// connected to it.
func acceptRaw(t *testing.T, opts *Options, cfg rawConfig) (*Session, *rawPeer) {
	t.Helper()
	ln := listen(t, rawConfig{})
	var accepted <-chan accepted1
	if cfg.wrap != nil {
		accepted = acceptOne(ln, opts, cfg.wrap)
	} else {
		accepted = acceptOne(ln, opts)
	}
	d := net.Dialer{Timeout: testTimeout, Control: cfg.control}
	conn, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(testTimeout))
	u := &url.URL{Scheme: "ws", Host: ln.Addr().String(), Path: "/"}
	br, hs, err := ws.Dialer{Protocols: cfg.protocols}.Upgrade(conn, u)
	if err != nil {
		t.Fatalf("raw client: handshake: %v", err)
	}
	conn.SetDeadline(time.Time{})
	var res accepted1
	select {
	case res = <-accepted:
	case <-time.After(testTimeout):
		t.Fatal("AcceptConn did not return")
	}
	if res.err != nil {
		t.Fatalf("AcceptConn: %v", res.err)
	}
	endSession(t, res.s)
	p := &rawPeer{conn: conn, src: conn, client: true, protocol: hs.Protocol}
	if br != nil {
		p.src = io.MultiReader(br, conn)
	}
	return res.s, p
}

// dialRaw returns a client session from Dial and the raw server it
// dialed.
func dialRaw(t *testing.T, opts *Options, cfg rawConfig) (*Session, *rawPeer) {
	t.Helper()
	ln := listen(t, cfg)
	type result struct {
		p   *rawPeer
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- result{err: err}
			return
		}
		c.SetDeadline(time.Now().Add(testTimeout))
		u := ws.Upgrader{Protocol: func(p []byte) bool { return slices.Contains(cfg.protocols, string(p)) }}
		hs, err := u.Upgrade(c)
		c.SetDeadline(time.Time{})
		if err != nil {
			c.Close()
			accepted <- result{err: err}
			return
		}
		accepted <- result{p: &rawPeer{conn: c, src: c, protocol: hs.Protocol}}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := Dial(ctx, "ws://"+ln.Addr().String()+"/", opts)
	res := <-accepted // Dial has returned: the raw server is done with the handshake too
	if res.p != nil {
		t.Cleanup(func() { res.p.conn.Close() })
	}
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if res.err != nil {
		t.Fatalf("raw server: handshake: %v", res.err)
	}
	endSession(t, s)
	return s, res.p
}

// endSession makes sure s has ended, and its inbound side drained, when the
// test is over, so that goleak sees nothing of it.
func endSession(t *testing.T, s *Session) {
	t.Helper()
	t.Cleanup(func() {
		select {
		case <-s.Done():
		default:
			s.Cancel(Terminal, nil)
		}
		timer := time.NewTimer(testTimeout)
		defer timer.Stop()
		select {
		case <-s.Done():
		case <-timer.C:
			t.Errorf("session did not end")
			return
		}
		if ch := s.Messages(); ch != nil {
			for {
				select {
				case m, ok := <-ch:
					if !ok {
						return
					}
					m.Release()
				case <-timer.C:
					t.Errorf("Messages not closed after the session ended")
					return
				}
			}
		}
	})
}

// dialSession dials url with opts within testTimeout; the session ends
// with the test.
func dialSession(t *testing.T, url string, opts *Options) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	endSession(t, s)
	return s
}

// echoServer serves WebSocket echo sessions made by Accept with opts (its
// OnMessage is set to echo) and returns their ws:// URL. Every session has
// ended when the test is over.
func echoServer(t *testing.T, opts *Options) string {
	t.Helper()
	o := *opts
	o.OnMessage = func(s *Session, m Message) { s.WriteMessage(&m, nil) }
	var mu sync.Mutex
	var sessions []*Session
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Accept(w, r, &o)
		if err != nil {
			return
		}
		mu.Lock()
		sessions = append(sessions, s)
		mu.Unlock()
	}))
	t.Cleanup(func() {
		srv.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, s := range sessions {
			select {
			case <-s.Done():
			default:
				s.Cancel(Terminal, nil)
			}
			select {
			case <-s.Done():
			case <-time.After(testTimeout):
				t.Errorf("echo session did not end")
				return
			}
		}
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// await returns the next completion on ch, or fails the test.
func await(t *testing.T, ch <-chan Completion) Completion {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(testTimeout):
		t.Fatal("no completion")
	}
	panic("unreachable")
}

// awaitDone waits for s to end and returns Err.
func awaitDone(t *testing.T, s *Session) error {
	t.Helper()
	select {
	case <-s.Done():
		return s.Err()
	case <-time.After(testTimeout):
		t.Fatal("session did not end")
	}
	panic("unreachable")
}

// endedBy fails the test unless s has already ended, with an error
// matching want: the Close completion (and Cancel(Terminal)'s) comes after
// the end, so that Done and Err tell the same story at once.
func endedBy(t *testing.T, s *Session, want error) {
	t.Helper()
	select {
	case <-s.Done():
	default:
		t.Fatal("command completed before the session ended")
	}
	if err := s.Err(); !errors.Is(err, want) {
		t.Fatalf("Err() = %v, want %v", err, want)
	}
}

// noCompletion fails the test if a completion is waiting on ch.
func noCompletion(t *testing.T, ch <-chan Completion, when string) {
	t.Helper()
	select {
	case c := <-ch:
		t.Fatalf("%s: unexpected completion %+v", when, c)
	default:
	}
}

// check fails the test on a completion other than want's kind, id and
// error (matched with errors.Is).
func check(t *testing.T, c Completion, kind Kind, id uint64, want error) {
	t.Helper()
	if c.Kind != kind || c.ID != id {
		t.Fatalf("completion %v %d (err %v), want %v %d", c.Kind, c.ID, c.Err, kind, id)
	}
	if want == nil && c.Err != nil || want != nil && !errors.Is(c.Err, want) {
		t.Fatalf("%v %d completed with %v, want %v", kind, id, c.Err, want)
	}
}

// blockWriter puts a bigWrite in flight on s, a server session: p must
// have a small read buffer and read nothing else meanwhile. It returns once the frame's header
// has arrived, so that the write has begun and cannot finish until p reads
// the payload with finishBigWrite.
func blockWriter(t *testing.T, s *Session, p *rawPeer, reply chan<- Completion) (id uint64, payload []byte) {
	t.Helper()
	// Whatever the machine's TCP autotuning allows, the session's send
	// buffer stays far below bigWrite.
	if err := s.conn.(*net.TCPConn).SetWriteBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	payload = make([]byte, bigWrite)
	for i := range payload {
		payload[i] = byte(i)
	}
	id, _ = s.WriteBinary(payload, reply)
	p.conn.SetReadDeadline(time.Now().Add(testTimeout))
	h, err := p.readHeader()
	p.conn.SetReadDeadline(time.Time{})
	if err != nil {
		t.Fatalf("raw peer: big write header: %v", err)
	}
	if h.OpCode != ws.OpBinary || h.Length != bigWrite {
		t.Fatalf("raw peer: header %+v, want a binary frame of %d bytes", h, bigWrite)
	}
	return id, payload
}

// finishBigWrite reads the payload of the write blockWriter started.
func finishBigWrite(t *testing.T, p *rawPeer, want []byte) {
	t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(testTimeout))
	defer p.conn.SetReadDeadline(time.Time{})
	got := make([]byte, len(want))
	if _, err := io.ReadFull(p.src, got); err != nil {
		t.Fatalf("raw peer: big write payload: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Fatal("raw peer: big write payload differs")
	}
}

// idOf is the id of a command call, whatever its error: for tests that
// look at the completion.
func idOf(id uint64, _ error) uint64 { return id }
