package interop

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gorilla/websocket"
	"github.com/wsactor/wsactor/session"
)

// peerConn is a client connection of another WebSocket library, seen
// through what the interop tests need of it.
type peerConn interface {
	// write sends one whole message.
	write(ctx context.Context, typ session.MessageType, p []byte) error
	// read returns the next whole message.
	read(ctx context.Context) (session.MessageType, []byte, error)
	// pingPong sends a ping and checks that its pong comes back.
	pingPong(ctx context.Context) error
	// closeHandshake starts the closing handshake with code and reason and
	// returns the close code the peer answered with.
	closeHandshake(code int, reason string) (int, error)
	// awaitClose reads until the peer's close frame, which the library
	// answers on its own, and returns its code and reason.
	awaitClose(ctx context.Context) (int, string, error)
	// abort closes the TCP connection at once; it may be called after any
	// of the above.
	abort()
}

// peerLib is a WebSocket library that can dial a wsactor server.
type peerLib struct {
	name string
	dial func(ctx context.Context, url string) (peerConn, error)
}

// peerLibs are the clients every server test runs with. The "+deflate"
// ones offer permessage-deflate, which the wsactor server, configured
// without compression, must decline in a way the client accepts.
var peerLibs = []peerLib{
	{
		name: "gorilla",
		dial: func(ctx context.Context, url string) (peerConn, error) {
			return dialGorilla(ctx, url, false)
		},
	},
	{
		name: "coder",
		dial: func(ctx context.Context, url string) (peerConn, error) {
			return dialCoder(ctx, url, coder.CompressionDisabled)
		},
	},
	{
		name: "gorilla+deflate",
		dial: func(ctx context.Context, url string) (peerConn, error) {
			return dialGorilla(ctx, url, true)
		},
	},
	{
		name: "coder+deflate",
		dial: func(ctx context.Context, url string) (peerConn, error) {
			return dialCoder(ctx, url, coder.CompressionContextTakeover)
		},
	},
}

// dialPeer dials url with lib and aborts the connection at the test's end.
func dialPeer(t *testing.T, lib peerLib, url string) peerConn {
	t.Helper()
	c, err := lib.dial(testContext(t), url)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", lib.name, url, err)
	}
	t.Cleanup(c.abort)
	return c
}

// pingEchoText is the text message pingPong sends after its ping, whose
// echo it reads.
const pingEchoText = "after the ping"

// gorillaConn is a gorilla/websocket client. gorilla leaves "one reader and
// one writer at a time" to its user; every method here runs on the test's
// goroutine.
type gorillaConn struct {
	c     *websocket.Conn
	pongs chan string
}

func dialGorilla(ctx context.Context, url string, offerDeflate bool) (peerConn, error) {
	d := websocket.Dialer{HandshakeTimeout: testTimeout, EnableCompression: offerDeflate}
	c, resp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		c.Close()
		return nil, fmt.Errorf("the server accepted extensions %q, configured without compression", ext)
	}
	g := &gorillaConn{c: c, pongs: make(chan string, 1)}
	c.SetPongHandler(func(data string) error {
		select {
		case g.pongs <- data:
		default:
		}
		return nil
	})
	return g, nil
}

func gorillaType(typ session.MessageType) int {
	if typ == session.Text {
		return websocket.TextMessage
	}
	return websocket.BinaryMessage
}

func fromGorillaType(typ int) session.MessageType {
	switch typ {
	case websocket.TextMessage:
		return session.Text
	case websocket.BinaryMessage:
		return session.Binary
	}
	return 0
}

func deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(testTimeout)
}

func (g *gorillaConn) write(ctx context.Context, typ session.MessageType, p []byte) error {
	g.c.SetWriteDeadline(deadline(ctx))
	return g.c.WriteMessage(gorillaType(typ), p)
}

func (g *gorillaConn) read(ctx context.Context) (session.MessageType, []byte, error) {
	g.c.SetReadDeadline(deadline(ctx))
	typ, p, err := g.c.ReadMessage()
	return fromGorillaType(typ), p, err
}

// pingPong sends a ping, then a text message. gorilla runs its pong handler
// only while a read is under way, so the test reads the message's echo and
// expects the pong to have come first: the server reads the ping before
// the message and answers it before echoing.
func (g *gorillaConn) pingPong(ctx context.Context) error {
	const ping = "are you there?"
	if err := g.c.WriteControl(websocket.PingMessage, []byte(ping), deadline(ctx)); err != nil {
		return fmt.Errorf("write ping: %w", err)
	}
	if err := g.write(ctx, session.Text, []byte(pingEchoText)); err != nil {
		return err
	}
	if _, p, err := g.read(ctx); err != nil || string(p) != pingEchoText {
		return fmt.Errorf("read the echo after the ping: %q, %v", p, err)
	}
	select {
	case got := <-g.pongs:
		if got != ping {
			return fmt.Errorf("pong payload %q, want %q", got, ping)
		}
		return nil
	default:
		return errors.New("no pong before the echo of a message sent after the ping")
	}
}

func (g *gorillaConn) closeHandshake(code int, reason string) (int, error) {
	msg := websocket.FormatCloseMessage(code, reason)
	if err := g.c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(testTimeout)); err != nil {
		return 0, fmt.Errorf("write close: %w", err)
	}
	got, _, err := g.awaitClose(context.Background())
	return got, err
}

// awaitClose reads until the close frame. gorilla's default close handler
// answers it with a close frame carrying the same code.
func (g *gorillaConn) awaitClose(ctx context.Context) (int, string, error) {
	g.c.SetReadDeadline(deadline(ctx))
	for {
		_, _, err := g.c.ReadMessage()
		if err == nil {
			continue // data after our close frame: dropped
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text, nil
		}
		return 0, "", fmt.Errorf("read until the close frame: %w", err)
	}
}

func (g *gorillaConn) abort() { g.c.NetConn().Close() }

// coderConn is a coder/websocket client.
type coderConn struct {
	c *coder.Conn
}

func dialCoder(ctx context.Context, url string, mode coder.CompressionMode) (peerConn, error) {
	c, resp, err := coder.Dial(ctx, url, &coder.DialOptions{CompressionMode: mode})
	if err != nil {
		return nil, err
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		c.CloseNow()
		return nil, fmt.Errorf("the server accepted extensions %q, configured without compression", ext)
	}
	c.SetReadLimit(4 << 20) // its default is 32 KiB
	return &coderConn{c: c}, nil
}

func coderType(typ session.MessageType) coder.MessageType {
	if typ == session.Text {
		return coder.MessageText
	}
	return coder.MessageBinary
}

func fromCoderType(typ coder.MessageType) session.MessageType {
	switch typ {
	case coder.MessageText:
		return session.Text
	case coder.MessageBinary:
		return session.Binary
	}
	return 0
}

func (c *coderConn) write(ctx context.Context, typ session.MessageType, p []byte) error {
	return c.c.Write(ctx, coderType(typ), p)
}

func (c *coderConn) read(ctx context.Context) (session.MessageType, []byte, error) {
	typ, p, err := c.c.Read(ctx)
	return fromCoderType(typ), p, err
}

// pingPong uses coder's Ping, which waits for the pong with the payload it
// sent; a concurrent read must be under way for the pong to be read.
func (c *coderConn) pingPong(ctx context.Context) error {
	type result struct {
		p   []byte
		err error
	}
	echo := make(chan result, 1)
	go func() {
		_, p, err := c.c.Read(ctx)
		echo <- result{p, err}
	}()
	pingErr := c.c.Ping(ctx)
	// The read above ends with this message's echo.
	writeErr := c.write(ctx, session.Text, []byte(pingEchoText))
	r := <-echo
	switch {
	case pingErr != nil:
		return pingErr
	case writeErr != nil:
		return writeErr
	case r.err != nil || string(r.p) != pingEchoText:
		return fmt.Errorf("read the echo after the ping: %q, %v", r.p, r.err)
	}
	return nil
}

// closeHandshake uses coder's Close, which sends the close frame, reads
// until the peer's, and returns nil only when the peer answered with the
// same code.
func (c *coderConn) closeHandshake(code int, reason string) (int, error) {
	err := c.c.Close(coder.StatusCode(code), reason)
	if err == nil {
		return code, nil
	}
	if got := coder.CloseStatus(err); got != -1 {
		return int(got), nil
	}
	return 0, err
}

// awaitClose reads until the close frame; coder answers it with a close
// frame carrying the same code and reason and closes the connection.
func (c *coderConn) awaitClose(ctx context.Context) (int, string, error) {
	for {
		_, _, err := c.c.Read(ctx)
		if err == nil {
			continue
		}
		var ce coder.CloseError
		if errors.As(err, &ce) {
			return int(ce.Code), ce.Reason, nil
		}
		return 0, "", fmt.Errorf("read until the close frame: %w", err)
	}
}

// abort closes at once; after a close handshake it is a no-op.
func (c *coderConn) abort() { c.c.CloseNow() }
