package interop

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gorilla/websocket"
)

// Servers of other libraries for a wsactor client: echo servers written
// the way their docs show, plus two commands. A text message closeCommand
// makes the server start the closing handshake with serverCloseCode and
// serverCloseReason instead of echoing; pingCommand makes it ping the
// client and, once the pong with the ping's payload came back, send the
// text "pong".
const (
	closeCommand      = "please close"
	pingCommand       = "please ping"
	serverCloseCode   = 4002
	serverCloseReason = "server-bye"
)

// peerEnd is how a connection ended, seen by the other library's server:
// the number of data messages it received, the close code and reason it
// received (0 when none), or the error that ended it otherwise.
type peerEnd struct {
	messages int
	code     int
	reason   string
	err      error
}

// peerServer is an echo server of another library on loopback. Ends gets
// one peerEnd per connection once its handler is done; Pinged gets the
// payload of every ping the server received, after it answered it.
type peerServer struct {
	URL    string
	Ends   chan peerEnd
	Pinged chan string
}

// peerServerLib is a WebSocket library that serves a wsactor client.
type peerServerLib struct {
	name  string
	serve func(ps *peerServer) http.HandlerFunc
}

var peerServerLibs = []peerServerLib{
	{
		name:  "gorilla",
		serve: gorillaEcho,
	},
	{
		name:  "coder",
		serve: coderEcho,
	},
}

// startPeerServer starts lib's echo server for the test and, at its end,
// waits for every handler to return.
func startPeerServer(t *testing.T, lib peerServerLib) *peerServer {
	t.Helper()
	ps := &peerServer{Ends: make(chan peerEnd, 64), Pinged: make(chan string, 64)}
	var wg sync.WaitGroup
	h := lib.serve(ps)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		h(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		done := make(chan struct{})
		go func() {
			wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(testTimeout):
			t.Errorf("%s server: handlers still running after %v", lib.name, testTimeout)
		}
	})
	ps.URL = wsURL(srv.URL)
	return ps
}

// end returns how the server saw the next connection end.
func (ps *peerServer) end(t *testing.T) peerEnd {
	t.Helper()
	select {
	case e := <-ps.Ends:
		return e
	case <-time.After(testTimeout):
		t.Fatalf("the server's handler did not end within %v", testTimeout)
		return peerEnd{}
	}
}

// notePing reports a ping the server received; when nobody waits for
// them, pings beyond Pinged's capacity are not reported.
func (ps *peerServer) notePing(p string) {
	select {
	case ps.Pinged <- p:
	default:
	}
}

// pinged waits for the server to have received (and answered) a ping.
func (ps *peerServer) pinged(t *testing.T) string {
	t.Helper()
	select {
	case p := <-ps.Pinged:
		return p
	case <-time.After(testTimeout):
		t.Fatalf("the server received no ping within %v", testTimeout)
		return ""
	}
}

// gorillaEcho is gorilla's echo example: ReadMessage, WriteMessage, until
// an error. Its default close handler answers a client's close frame with
// the same code.
func gorillaEcho(ps *peerServer) http.HandlerFunc {
	var upgrader websocket.Upgrader
	const ping = "srv-ping"
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			ps.Ends <- peerEnd{err: err}
			return
		}
		defer c.Close()
		// Handlers run inside ReadMessage, on this goroutine: gorilla's one
		// writer at a time holds.
		c.SetPingHandler(func(data string) error {
			err := c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(testTimeout))
			ps.notePing(data)
			if errors.Is(err, websocket.ErrCloseSent) {
				return nil
			}
			return err
		})
		c.SetPongHandler(func(data string) error {
			reply := "pong"
			if data != ping {
				reply = "pong with payload " + data + ", want " + ping
			}
			return c.WriteMessage(websocket.TextMessage, []byte(reply))
		})
		var n int
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					ps.Ends <- peerEnd{messages: n, code: ce.Code, reason: ce.Text}
				} else {
					ps.Ends <- peerEnd{messages: n, err: err}
				}
				return
			}
			n++
			switch {
			case mt == websocket.TextMessage && string(msg) == closeCommand:
				// Start the handshake; the loop reads on until the
				// client's answer.
				msg = websocket.FormatCloseMessage(serverCloseCode, serverCloseReason)
				err = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(testTimeout))
			case mt == websocket.TextMessage && string(msg) == pingCommand:
				err = c.WriteControl(websocket.PingMessage, []byte(ping), time.Now().Add(testTimeout))
			default:
				err = c.WriteMessage(mt, msg)
			}
			if err != nil {
				ps.Ends <- peerEnd{messages: n, err: err}
				return
			}
		}
	}
}

// coderEcho is a coder/websocket echo server: Read, Write, until an error.
// coder answers a client's close frame with the same code and reason.
func coderEcho(ps *peerServer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := coder.Accept(w, r, &coder.AcceptOptions{
			OnPingReceived: func(_ context.Context, p []byte) bool {
				ps.notePing(string(p))
				return true // coder answers it
			},
		})
		if err != nil {
			ps.Ends <- peerEnd{err: err}
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(4 << 20) // its default is 32 KiB
		ctx := r.Context()
		var pings sync.WaitGroup
		defer pings.Wait()
		var n int
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				var ce coder.CloseError
				if errors.As(err, &ce) {
					ps.Ends <- peerEnd{messages: n, code: int(ce.Code), reason: ce.Reason}
				} else {
					ps.Ends <- peerEnd{messages: n, err: err}
				}
				return
			}
			n++
			switch {
			case typ == coder.MessageText && string(p) == closeCommand:
				// Close returns nil when the client answered with the
				// same code.
				if err := c.Close(serverCloseCode, serverCloseReason); err != nil {
					ps.Ends <- peerEnd{messages: n, err: err}
					return
				}
				ps.Ends <- peerEnd{messages: n, code: serverCloseCode, reason: serverCloseReason}
				return
			case typ == coder.MessageText && string(p) == pingCommand:
				// Ping waits for the pong with its payload, which this
				// loop's Read takes in.
				pings.Go(func() {
					reply := "pong"
					if err := c.Ping(ctx); err != nil {
						reply = err.Error()
					}
					c.Write(ctx, coder.MessageText, []byte(reply))
				})
				continue
			}
			if err := c.Write(ctx, typ, p); err != nil {
				ps.Ends <- peerEnd{messages: n, err: err}
				return
			}
		}
	}
}
