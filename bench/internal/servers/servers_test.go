// Package servers_test starts every library's benchmark server in-process
// on loopback and checks what the benchmark relies on: echo with the
// message's own opcode (short, and longer than every buffer), pong, the
// close handshake, broadcast where there is one, and the stats keys.
package servers_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"go.uber.org/goleak"

	"github.com/wsactor/wsactor/bench/internal/cli"
	"github.com/wsactor/wsactor/bench/internal/servers/coderecho"
	"github.com/wsactor/wsactor/bench/internal/servers/gorillaecho"
	"github.com/wsactor/wsactor/bench/internal/servers/gwsecho"
	"github.com/wsactor/wsactor/bench/internal/servers/rawecho"
	"github.com/wsactor/wsactor/bench/internal/servers/tcpecho"
	"github.com/wsactor/wsactor/bench/internal/servers/wsactorgroup"
	"github.com/wsactor/wsactor/bench/internal/servers/wsutilecho"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type serverCase struct {
	name      string
	new       func() cli.Server
	broadcast bool
	tcp       bool // length-prefixed TCP, not WebSocket
	ordered   bool // replies keep the order of the requests
	dropped   bool // the stats report the broadcasts dropped
}

var serverCases = []serverCase{
	{
		name:      "gorilla",
		new:       func() cli.Server { return gorillaecho.New(gorillaecho.Options{}) },
		broadcast: true,
		ordered:   true,
	},
	{
		name:      "coder",
		new:       func() cli.Server { return coderecho.New(coderecho.Options{}) },
		broadcast: true,
		ordered:   true,
	},
	{
		name:    "gobwas-wsutil",
		new:     func() cli.Server { return wsutilecho.New() },
		ordered: true,
	},
	{
		name:      "gobwas-raw",
		new:       func() cli.Server { return rawecho.New(rawecho.Options{BufferSize: 4096}) },
		broadcast: true,
		ordered:   true,
	},
	{
		name:      "gobwas-raw/hold-buffers",
		new:       func() cli.Server { return rawecho.New(rawecho.Options{BufferSize: 4096, HoldBuffers: true}) },
		broadcast: true,
		ordered:   true,
	},
	{
		name:      "gws",
		new:       func() cli.Server { return gwsecho.New(gwsecho.Options{Parallel: true}) },
		broadcast: true,
	},
	{
		name:      "gws/serial",
		new:       func() cli.Server { return gwsecho.New(gwsecho.Options{}) },
		broadcast: true,
		ordered:   true,
	},
	{
		name:      "wsactor-group",
		new:       func() cli.Server { return wsactorgroup.New(wsactorgroup.Options{}) },
		broadcast: true,
		ordered:   true,
		dropped:   true,
	},
	{
		name:    "tcp",
		new:     func() cli.Server { return tcpecho.New(tcpecho.Options{BufferSize: 4096}) },
		tcp:     true,
		ordered: true,
	},
	{
		name:      "tcp/broadcast",
		new:       func() cli.Server { return tcpecho.New(tcpecho.Options{Broadcast: true}) },
		tcp:       true,
		broadcast: true,
	},
}

func TestServers(t *testing.T) {
	for _, tc := range serverCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, statsURL := start(t, tc.new())
			switch {
			case tc.tcp && tc.broadcast:
				testTCPBroadcast(t, addr)
			case tc.tcp:
				testTCPEcho(t, addr)
			default:
				testEcho(t, addr, tc.ordered)
				testPingClose(t, addr)
				if tc.broadcast {
					testBroadcast(t, addr)
				}
			}
			testStats(t, statsURL, tc.dropped)
		})
	}
}

// start serves srv on loopback until the test ends and returns its address
// and its stats URL.
func start(t *testing.T, srv cli.Server) (addr, statsURL string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	n := 1
	statsURL = "http://" + ln.Addr().String() + "/debug/vars"
	if ss, ok := srv.(cli.StatsServer); ok {
		sln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { errc <- ss.ServeStats(sln) }()
		n++
		statsURL = "http://" + sln.Addr().String() + "/debug/vars"
	}
	t.Cleanup(func() {
		err := srv.Close()
		if err != nil {
			t.Errorf("close: %v", err)
		}
		for range n {
			err := <-errc
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	})
	return ln.Addr().String(), statsURL
}

// dial opens a WebSocket to path and returns it with a reader that holds
// the bytes read past the handshake.
func dial(t *testing.T, addr, path string) (net.Conn, io.Reader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, br, _, err := ws.Dial(ctx, "ws://"+addr+path)
	if err != nil {
		t.Fatalf(
			"dial %s: %v",
			path, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if br != nil {
		return c, io.MultiReader(br, c)
	}
	return c, c
}

type readWriter struct {
	io.Reader
	io.Writer
}

func testEcho(t *testing.T, addr string, ordered bool) {
	c, r := dial(t, addr, "/")
	rw := readWriter{r, c}
	long := bytes.Repeat([]byte("0123456789abcdef"), 20<<10) // 320 KiB
	msgs := []struct {
		name string
		op   ws.OpCode
		p    []byte
	}{
		{
			name: "text",
			op:   ws.OpText,
			p:    []byte("hello"),
		},
		{
			name: "binary",
			op:   ws.OpBinary,
			p:    []byte{0, 1, 2, 3, 255},
		},
		{
			name: "long binary",
			op:   ws.OpBinary,
			p:    long,
		},
		{
			name: "empty",
			op:   ws.OpBinary,
			p:    []byte{},
		},
	}
	// One burst of every message, then every reply.
	var burst bytes.Buffer
	for _, m := range msgs {
		err := wsutil.WriteClientMessage(&burst, m.op, m.p)
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.Write(burst.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]bool, len(msgs))
	for i := range msgs {
		p, op, err := wsutil.ReadServerData(rw)
		if err != nil {
			t.Fatalf(
				"reply %d: %v",
				i, err)
		}
		j := i
		if !ordered {
			for j = range msgs {
				if !seen[j] && op == msgs[j].op && bytes.Equal(p, msgs[j].p) {
					break
				}
			}
		}
		m := msgs[j]
		if seen[j] || op != m.op || !bytes.Equal(p, m.p) {
			t.Fatalf(
				"reply %d: got opcode %v, %d bytes; want %s: opcode %v, %d bytes",
				i, op, len(p), m.name, m.op, len(m.p))
		}
		seen[j] = true
	}
}

func testPingClose(t *testing.T, addr string) {
	c, r := dial(t, addr, "/")
	err := ws.WriteFrame(c, ws.MaskFrame(ws.NewPingFrame([]byte("ping!"))))
	if err != nil {
		t.Fatal(err)
	}
	f, err := ws.ReadFrame(r)
	if err != nil {
		t.Fatal(err)
	}
	if f.Header.OpCode != ws.OpPong || string(f.Payload) != "ping!" {
		t.Fatalf(
			"got opcode %v payload %q; want a pong with %q",
			f.Header.OpCode, f.Payload, "ping!")
	}

	err = ws.WriteFrame(c, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye"))))
	if err != nil {
		t.Fatal(err)
	}
	f, err = ws.ReadFrame(r)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := ws.ParseCloseFrameData(f.Payload)
	if f.Header.OpCode != ws.OpClose || code != ws.StatusNormalClosure {
		t.Fatalf(
			"got opcode %v code %d; want a close frame with %d",
			f.Header.OpCode, code, ws.StatusNormalClosure)
	}
	// The server closes the TCP connection first.
	_, err = r.Read(make([]byte, 1))
	if !errors.Is(err, io.EOF) {
		t.Fatalf(
			"after the close handshake: read error %v; want EOF",
			err)
	}
}

func testBroadcast(t *testing.T, addr string) {
	a, _ := dial(t, addr, "/broadcast")
	b, rb := dial(t, addr, "/broadcast")
	got := make(chan []byte, 64)
	go func() {
		defer close(got)
		for {
			p, _, err := wsutil.ReadServerData(readWriter{rb, b})
			if err != nil {
				return
			}
			got <- p
		}
	}()
	// b may join the hub just after its handshake: send until it hears.
	for i := 0; ; i++ {
		if i == 50 {
			t.Fatal("no broadcast message reached the second connection")
		}
		err := wsutil.WriteClientMessage(a, ws.OpText, []byte("to all"))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-got:
			if string(p) != "to all" {
				t.Fatalf(
					"got %q; want %q",
					p, "to all")
			}
			_ = b.Close()
			for range got {
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func testTCPEcho(t *testing.T, addr string) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	payloads := [][]byte{
		[]byte("hello"),
		{},
		bytes.Repeat([]byte("x"), 100<<10), // longer than the 4 KiB buffer
		[]byte("bye"),
	}
	var burst []byte
	for _, p := range payloads {
		burst = binary.BigEndian.AppendUint32(burst, uint32(len(p)))
		burst = append(burst, p...)
	}
	_, err = c.Write(burst)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(burst))
	_, err = io.ReadFull(c, got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, burst) {
		t.Fatal("echo differs from the frames sent")
	}
}

func testTCPBroadcast(t *testing.T, addr string) {
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	a, b := dial(), dial()
	frame := binary.BigEndian.AppendUint32(nil, 6)
	frame = append(frame, "to all"...)
	got := make(chan []byte, 64)
	go func() {
		defer close(got)
		for {
			p := make([]byte, len(frame))
			_, err := io.ReadFull(b, p)
			if err != nil {
				return
			}
			got <- p
		}
	}()
	// b may join the group just after it connects: send until it hears.
	for i := 0; ; i++ {
		if i == 50 {
			t.Fatal("no broadcast frame reached the second connection")
		}
		_, err := a.Write(frame)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-got:
			if !bytes.Equal(p, frame) {
				t.Fatalf(
					"got %q; want %q",
					p, frame)
			}
			_ = b.Close()
			for range got {
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func testStats(t *testing.T, url string, dropped bool) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	for _, u := range []string{url, url + "?gc=1"} {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		err = json.NewDecoder(resp.Body).Decode(&v)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatalf(
				"%s: %v",
				u, err)
		}
		keys := []string{"rss_bytes", "heap_inuse_bytes", "stack_inuse_bytes", "goroutines", "conns"}
		if dropped {
			keys = append(keys, "dropped")
		} else if _, ok := v["dropped"]; ok {
			t.Errorf(
				"%s: dropped reported by a server that never drops",
				u)
		}
		for _, k := range keys {
			x, ok := v[k].(float64)
			if !ok || x < 0 {
				t.Errorf(
					"%s: %s = %v; want a number >= 0",
					u, k, v[k])
			}
		}
	}
}

// TestRawProtocolError checks that the hand-written loop answers an
// unmasked client frame with close code 1002 and ends the connection.
func TestRawProtocolError(t *testing.T) {
	for _, hold := range []bool{false, true} {
		addr, _ := start(t, rawecho.New(rawecho.Options{HoldBuffers: hold}))
		c, r := dial(t, addr, "/")
		err := ws.WriteFrame(c, ws.NewBinaryFrame([]byte("unmasked")))
		if err != nil {
			t.Fatal(err)
		}
		f, err := ws.ReadFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		code, _ := ws.ParseCloseFrameData(f.Payload)
		if f.Header.OpCode != ws.OpClose || code != ws.StatusProtocolError {
			t.Fatalf(
				"hold %v: got opcode %v code %d; want a close frame with %d",
				hold, f.Header.OpCode, code, ws.StatusProtocolError)
		}
		_, err = r.Read(make([]byte, 1))
		if !errors.Is(err, io.EOF) {
			t.Fatalf(
				"hold %v: after the close frame: read error %v; want EOF",
				hold, err)
		}
	}
}

// TestBroadcastCutsSilent checks what the fan-out scenarios rely on: a
// broadcast member that never reads is cut by the server's write timeout,
// and the member that reads goes on receiving. gws is not here: its
// Broadcaster has no write timeout.
func TestBroadcastCutsSilent(t *testing.T) {
	// Long enough that the member that reads is never cut, even under
	// -race on a busy machine; the subtests run one at a time for that.
	const timeout = time.Second
	cases := []struct {
		name    string
		new     func() cli.Server
		tcp     bool
		dropped bool // the stats count the broadcasts dropped for the silent member
	}{
		{
			name: "tcp",
			new:  func() cli.Server { return tcpecho.New(tcpecho.Options{Broadcast: true, WriteTimeout: timeout}) },
			tcp:  true,
		},
		{
			name: "gobwas-raw",
			new:  func() cli.Server { return rawecho.New(rawecho.Options{WriteTimeout: timeout}) },
		},
		{
			name: "gorilla",
			new:  func() cli.Server { return gorillaecho.New(gorillaecho.Options{WriteTimeout: timeout}) },
		},
		{
			name: "coder",
			new:  func() cli.Server { return coderecho.New(coderecho.Options{WriteTimeout: timeout}) },
		},
		{
			name: "wsactor-group",
			new: func() cli.Server {
				return wsactorgroup.New(wsactorgroup.Options{WriteTimeout: timeout, MaxBacklog: 8 << 10})
			},
			dropped: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr, statsURL := start(t, tc.new())
			testCutsSilent(t, addr, statsURL, tc.tcp, tc.dropped)
		})
	}
}

// smallReceiveBuffer dials with a 4 KiB receive buffer, set before the
// connection is made, so that a member that does not read fills up soon.
func smallReceiveBuffer(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return d.DialContext(ctx, network, addr)
}

func testCutsSilent(t *testing.T, addr, statsURL string, tcp, dropped bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var pub, silent net.Conn
	var pubR io.Reader
	if tcp {
		var err error
		silent, err = smallReceiveBuffer(ctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = silent.Close() })
		pub, err = net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pub.Close() })
		pubR = pub
	} else {
		d := ws.Dialer{NetDial: smallReceiveBuffer}
		c, br, _, err := d.Dial(ctx, "ws://"+addr+"/broadcast")
		if err != nil {
			t.Fatal(err)
		}
		if br != nil {
			ws.PutReader(br)
		}
		silent = c
		t.Cleanup(func() { _ = silent.Close() })
		pub, pubR = dial(t, addr, "/broadcast")
	}
	// The socket buffers of the silent member take megabytes before its
	// writes block; wsactor-group, which drops for it rather than wait,
	// fills them more slowly.
	deadline := time.Now().Add(20 * time.Second)
	_ = pub.SetDeadline(deadline)

	// The publisher reads its own copies all along and counts them.
	var got atomic.Int64
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			var err error
			if tcp {
				var hdr [4]byte
				_, err = io.ReadFull(pubR, hdr[:])
				if err == nil {
					_, err = io.CopyN(io.Discard, pubR, int64(binary.BigEndian.Uint32(hdr[:])))
				}
			} else {
				_, _, err = wsutil.ReadServerData(readWriter{pubR, pub})
			}
			if err != nil {
				return
			}
			got.Add(1)
		}
	}()
	payload := bytes.Repeat([]byte("x"), 2<<10)
	send := func() {
		var err error
		if tcp {
			_, err = pub.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...))
		} else {
			err = wsutil.WriteClientMessage(pub, ws.OpBinary, payload)
		}
		if err != nil {
			t.Fatalf(
				"publish: %v",
				err)
		}
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	vars := func() map[string]float64 {
		resp, err := client.Get(statsURL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]float64
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	// Publish until the server is down to the one member that reads.
	for sent := 0; ; sent++ {
		if time.Now().After(deadline) {
			t.Fatalf(
				"after %d messages, the silent member is still connected: %v",
				sent, vars())
		}
		send()
		if sent%16 == 15 && vars()["conns"] == 1 {
			break
		}
	}
	if v := vars(); dropped && v["dropped"] <= 0 {
		t.Errorf(
			"dropped %v; want the broadcasts the silent member could not take counted",
			v["dropped"])
	}
	// The reading member still gets what is published.
	before := got.Load()
	for got.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("the member that reads got nothing once the silent one was cut")
		}
		send()
		time.Sleep(10 * time.Millisecond)
	}
	_ = pub.Close()
	<-readDone
}
