package conformance

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	crand "crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// websocketGUID is the constant of RFC 6455 section 1.3 that the server
// appends to the key to prove it read the handshake.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// maxServerMessage bounds what the client gathers of one message from the
// server: the largest echo a case expects is 16 MiB, so a server that
// declares more has gone wrong, and the client must not allocate for it.
const maxServerMessage = 16<<20 + 1<<20

// frame is one frame the client sends. The zero values give a well-formed
// masked frame; the other fields break it on purpose.
type frame struct {
	fin     bool
	rsv     byte // RSV1 = 4, RSV2 = 2, RSV3 = 1 (gobwas/ws's ws.Header.Rsv layout)
	op      ws.OpCode
	payload []byte

	noMask   bool   // send it unmasked (a client must mask: RFC 6455 5.1)
	lenBytes int    // encode the length in 2 or 8 extended bytes even when fewer would do
	declared bool   // the length field says declare instead of len(payload)
	declare  uint64 // the declared length when declared is set
}

// encode returns the frame's bytes on the wire, masked with a fresh random
// key unless noMask is set. Well-formed headers go through gobwas/ws;
// malformed lengths are written by hand, as no library writes them.
func (f frame) encode() []byte {
	var key [4]byte
	masked := !f.noMask
	if masked {
		binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	}
	buf := bytes.NewBuffer(make([]byte, 0, ws.MaxHeaderSize+len(f.payload)))
	if f.lenBytes == 0 && !f.declared {
		h := ws.Header{Fin: f.fin, Rsv: f.rsv, OpCode: f.op, Masked: masked, Mask: key, Length: int64(len(f.payload))}
		if err := ws.WriteHeader(buf, h); err != nil {
			panic(err) // a bytes.Buffer does not fail
		}
	} else {
		n := uint64(len(f.payload))
		if f.declared {
			n = f.declare
		}
		b0 := f.rsv<<4 | byte(f.op)
		if f.fin {
			b0 |= 0x80
		}
		var b1 byte
		if masked {
			b1 = 0x80
		}
		var ext []byte
		switch lb := f.lenBytes; {
		case lb == 8 || lb == 0 && n > 0xFFFF:
			b1 |= 127
			ext = binary.BigEndian.AppendUint64(nil, n)
		case lb == 2 || lb == 0 && n > 125:
			b1 |= 126
			ext = binary.BigEndian.AppendUint16(nil, uint16(n))
		default:
			b1 |= byte(n)
		}
		buf.WriteByte(b0)
		buf.WriteByte(b1)
		buf.Write(ext)
		if masked {
			buf.Write(key[:])
		}
	}
	start := buf.Len()
	buf.Write(f.payload)
	b := buf.Bytes()
	if masked {
		ws.Cipher(b[start:], key, 0)
	}
	return b
}

// event is what the client's reader saw: a whole data message, a control
// frame, or the end of the connection (end set, op zero).
type event struct {
	op      ws.OpCode // OpText or OpBinary for a message; OpPing, OpPong, OpClose
	payload []byte
	frames  int // the number of frames a data message came in
	end     error
}

func (e event) String() string {
	switch {
	case e.end != nil:
		return "end of connection (" + describeEnd(e.end) + ")"
	case e.op == ws.OpClose:
		return "close frame " + describeClose(e.payload)
	case e.op == ws.OpText || e.op == ws.OpBinary:
		return fmt.Sprintf("%s message of %d bytes in %d frame(s) %s", opName(e.op), len(e.payload), e.frames, preview(e.payload))
	}
	return fmt.Sprintf("%s with %d bytes %s", opName(e.op), len(e.payload), preview(e.payload))
}

// violation is a frame from the server that breaks a rule a server must
// keep.
type violation struct{ what string }

func (v *violation) Error() string { return "the server broke RFC 6455: " + v.what }

func violationf(format string, args ...any) error { return &violation{fmt.Sprintf(format, args...)} }

// client is one raw WebSocket connection from the client's side. The case's
// goroutine writes; a reader goroutine reads and checks frames and hands
// them over as events, so that a server that echoes while the client is
// still writing never blocks on a full socket.
type client struct {
	conn       net.Conn
	br         *bufio.Reader
	events     chan event
	quit       chan struct{}
	done       chan struct{}
	deflate    bool    // permessage-deflate was negotiated
	sentClose  bool    // a close frame was written (well-formed or not)
	afterClose bool    // bytes were written after the client's close frame
	writeErr   error   // the first write error, kept for the log
	pushed     []event // events given back by unread
}

// dial opens a TCP connection to addr, runs the opening handshake for path
// (RFC 6455 section 4.1), offering the extensions in offer when it is not
// empty, and waits for the server's 101 before returning. The server must
// answer the offer with accept (empty: decline it). Every read and write on
// the connection ends at deadline.
func dial(ctx context.Context, addr, path string, deadline time.Time, offer, accept string) (*client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	conn.SetDeadline(deadline)
	var nonce [16]byte
	crand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET " + path + " HTTP/1.1\r\n" +
		"Host: " + addr + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n"
	if offer != "" {
		req += "Sec-WebSocket-Extensions: " + offer + "\r\n"
	}
	req += "\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, fmt.Errorf("write handshake: %w", err)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("read handshake response: %w", err)
	}
	if err := checkResponse(resp, key, accept); err != nil {
		conn.Close()
		return nil, err
	}
	return startClient(conn, br, accept != ""), nil
}

// startClient starts the reader of a client whose handshake is done.
func startClient(conn net.Conn, br *bufio.Reader, deflate bool) *client {
	c := &client{
		conn:    conn,
		br:      br,
		events:  make(chan event, 4096),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		deflate: deflate,
	}
	go c.readLoop()
	return c
}

// checkResponse checks the server's handshake answer (RFC 6455 section
// 4.2.2 point 5 and section 4.1's client-side checks).
func checkResponse(resp *http.Response, key, accept string) error {
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("handshake: status %s, want 101 Switching Protocols", resp.Status)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		return fmt.Errorf("handshake: Upgrade %q, want websocket", resp.Header.Get("Upgrade"))
	}
	if !hasToken(resp.Header.Values("Connection"), "upgrade") {
		return fmt.Errorf("handshake: Connection %q, want Upgrade", resp.Header.Values("Connection"))
	}
	sum := sha1.Sum([]byte(key + websocketGUID))
	if want, got := base64.StdEncoding.EncodeToString(sum[:]), resp.Header.Get("Sec-WebSocket-Accept"); got != want {
		return fmt.Errorf("handshake: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	if v := resp.Header.Get("Sec-WebSocket-Extensions"); v != accept {
		if accept == "" {
			return fmt.Errorf("handshake: extension %q, want the offer declined (RFC 7692 5)", v)
		}
		return fmt.Errorf("handshake: extension %q, want %q (RFC 7692 7.1)", v, accept)
	}
	if v := resp.Header.Get("Sec-WebSocket-Protocol"); v != "" {
		return fmt.Errorf("handshake: subprotocol %q that the client did not offer", v)
	}
	return nil
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// write writes b in one call, or in pieces of chunk bytes when chunk > 0.
// A write error is kept, not returned: after a protocol error the server
// may close first, and what it sent before is what the case checks.
func (c *client) write(b []byte, chunk int) {
	if c.writeErr != nil {
		return
	}
	if chunk <= 0 {
		chunk = len(b)
	}
	for len(b) > 0 {
		n := min(chunk, len(b))
		if _, err := c.conn.Write(b[:n]); err != nil {
			c.writeErr = err
			return
		}
		b = b[n:]
	}
}

// next returns the next event, or a timeout end event after d. Pings from
// the server are skipped: a server may send keep-alive pings at any time,
// and the cases do not expect them.
func (c *client) next(d time.Duration) event {
	if len(c.pushed) > 0 {
		e := c.pushed[len(c.pushed)-1]
		c.pushed = c.pushed[:len(c.pushed)-1]
		return e
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-c.events:
			if !ok {
				return event{end: errors.New("reader gone")}
			}
			if e.op == ws.OpPing {
				continue
			}
			return e
		case <-timer.C:
			return event{end: errNothing}
		}
	}
}

// unread gives e back: the next call of next returns it.
func (c *client) unread(e event) { c.pushed = append(c.pushed, e) }

var errNothing = errors.New("nothing arrived in time")

// close ends the connection from the client's side and waits for the reader.
func (c *client) close() {
	close(c.quit)
	c.conn.Close()
	<-c.done
}

// emit hands e to the case, or gives up when the case is over.
func (c *client) emit(e event) bool {
	select {
	case c.events <- e:
		return true
	case <-c.quit:
		return false
	}
}

// serverHeader is a frame header as the server sent it.
type serverHeader struct {
	fin    bool
	rsv    byte
	op     ws.OpCode
	masked bool
	length uint64
}

// readHeader reads a header and checks what a header alone can break: the
// length's most significant bit and its minimal encoding (RFC 6455 5.2).
func readHeader(r *bufio.Reader) (serverHeader, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:2]); err != nil {
		return serverHeader{}, err
	}
	h := serverHeader{
		fin:    b[0]&0x80 != 0,
		rsv:    b[0] >> 4 & 7,
		op:     ws.OpCode(b[0] & 0x0F),
		masked: b[1]&0x80 != 0,
		length: uint64(b[1] & 0x7F),
	}
	switch h.length {
	case 126:
		if _, err := io.ReadFull(r, b[:2]); err != nil {
			return h, unexpectedEOF(err)
		}
		h.length = uint64(binary.BigEndian.Uint16(b[:2]))
		if h.length <= 125 {
			return h, violationf("length %d in a 16-bit field (not the minimal encoding)", h.length)
		}
	case 127:
		if _, err := io.ReadFull(r, b[:8]); err != nil {
			return h, unexpectedEOF(err)
		}
		h.length = binary.BigEndian.Uint64(b[:8])
		if h.length>>63 != 0 {
			return h, violationf("64-bit length with its most significant bit set")
		}
		if h.length <= 0xFFFF {
			return h, violationf("length %d in a 64-bit field (not the minimal encoding)", h.length)
		}
	}
	if h.masked {
		if _, err := io.ReadFull(r, b[:4]); err != nil {
			return h, unexpectedEOF(err)
		}
	}
	return h, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readLoop reads the server's frames and checks each against the rules for
// frames a server sends (RFC 6455 sections 5.1 to 5.5): unmasked, no
// reserved bits or opcodes, control frames whole and short, continuations
// in order, text that is UTF-8, a close payload that may be sent, and
// nothing after the close frame. Data frames are gathered into messages.
func (c *client) readLoop() {
	defer close(c.done)
	var (
		msg        []byte
		msgOp      ws.OpCode
		frames     int
		closed     bool
		compressed bool
		control    [125]byte
	)
	fail := func(err error) { c.emit(event{end: err}) }
	for {
		h, err := readHeader(c.br)
		if err != nil {
			fail(err)
			return
		}
		if closed {
			fail(violationf("%s frame after the close frame", opName(h.op)))
			return
		}
		switch {
		case h.masked:
			fail(violationf("masked %s frame (a server must not mask: 5.1)", opName(h.op)))
			return
		case c.deflate && h.rsv == 4 && (h.op == ws.OpText || h.op == ws.OpBinary):
			// RSV1 marks a compressed message, on its first frame only
			// (RFC 7692 6.1).
		case c.deflate && h.rsv == 4:
			fail(violationf("RSV1 on a %s frame (RFC 7692 6.1: only a message's first frame)", opName(h.op)))
			return
		case h.rsv != 0:
			fail(violationf("%s frame with reserved bits %03b and no extension negotiated for them (5.2)", opName(h.op), h.rsv))
			return
		}
		switch h.op {
		case ws.OpPing, ws.OpPong, ws.OpClose:
			if !h.fin {
				fail(violationf("fragmented %s frame (5.5)", opName(h.op)))
				return
			}
			if h.length > 125 {
				fail(violationf("%s frame with %d bytes of payload (over 125: 5.5)", opName(h.op), h.length))
				return
			}
			p := control[:h.length]
			if _, err := io.ReadFull(c.br, p); err != nil {
				fail(unexpectedEOF(err))
				return
			}
			p = bytes.Clone(p)
			if h.op == ws.OpClose {
				if err := checkClosePayload(p); err != nil {
					fail(err)
					return
				}
				closed = true
			}
			if !c.emit(event{op: h.op, payload: p}) {
				return
			}
			continue
		case ws.OpText, ws.OpBinary:
			if msgOp != 0 {
				fail(violationf("%s frame inside a fragmented message (5.4)", opName(h.op)))
				return
			}
			msgOp, msg, frames = h.op, nil, 0
			compressed = h.rsv == 4
		case ws.OpContinuation:
			if msgOp == 0 {
				fail(violationf("continuation frame without a message to continue (5.4)"))
				return
			}
		default:
			fail(violationf("reserved opcode %d (5.2)", h.op))
			return
		}
		if uint64(len(msg))+h.length > maxServerMessage {
			fail(violationf("a message of more than %d bytes, which no case sends", maxServerMessage))
			return
		}
		frames++
		// Grow with the bytes that arrive, not with the declared length.
		for left := int(h.length); left > 0; {
			n := min(left, 64<<10)
			msg = append(msg, make([]byte, n)...)
			if _, err := io.ReadFull(c.br, msg[len(msg)-n:]); err != nil {
				fail(unexpectedEOF(err))
				return
			}
			left -= n
		}
		if !h.fin {
			continue
		}
		if compressed {
			if msg, err = inflate(msg); err != nil {
				fail(violationf("a compressed message that does not inflate: %v (RFC 7692 7.2.2)", err))
				return
			}
		}
		if msgOp == ws.OpText && !utf8.Valid(msg) {
			fail(violationf("text message of %d bytes that is not UTF-8 (8.1)", len(msg)))
			return
		}
		if msg == nil {
			msg = []byte{}
		}
		if !c.emit(event{op: msgOp, payload: msg, frames: frames}) {
			return
		}
		msgOp, msg = 0, nil
	}
}

// inflate inflates a compressed message body (RFC 7692 7.2.2: append
// 00 00 ff ff), reading no more than maxServerMessage bytes.
func inflate(p []byte) ([]byte, error) {
	r := flate.NewReader(io.MultiReader(bytes.NewReader(p), bytes.NewReader([]byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff})))
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, maxServerMessage+1))
	if err == nil && len(out) > maxServerMessage {
		err = fmt.Errorf("inflates to more than %d bytes", maxServerMessage)
	}
	return out, err
}

// deflate compresses p as a permessage-deflate message body (RFC 7692
// 7.2.1: a sync flush, its 00 00 ff ff removed), for the client to send.
func deflate(p []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	w.Write(p)
	w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0x00, 0x00, 0xff, 0xff})
}

// checkClosePayload checks a close frame from the server: empty, or a code
// that may be sent (7.4.1, 7.4.2) followed by a UTF-8 reason (5.5.1).
func checkClosePayload(p []byte) error {
	switch {
	case len(p) == 0:
		return nil
	case len(p) == 1:
		return violationf("close frame with a 1-byte payload (5.5.1)")
	}
	if code := binary.BigEndian.Uint16(p); !sendableCode(code) {
		return violationf("close code %d, which must not be sent (7.4)", code)
	}
	if !utf8.Valid(p[2:]) {
		return violationf("close reason that is not UTF-8 (5.5.1)")
	}
	return nil
}

// sendableCode reports whether code may appear in a close frame: the codes
// RFC 6455 section 7.4.1 defines for use, the IANA-registered 1012-1014,
// and the ranges 3000-3999 (registered) and 4000-4999 (private).
func sendableCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

func opName(op ws.OpCode) string {
	switch op {
	case ws.OpContinuation:
		return "continuation"
	case ws.OpText:
		return "text"
	case ws.OpBinary:
		return "binary"
	case ws.OpClose:
		return "close"
	case ws.OpPing:
		return "ping"
	case ws.OpPong:
		return "pong"
	}
	return fmt.Sprintf("opcode-%d", op)
}

func describeClose(p []byte) string {
	if len(p) < 2 {
		return "without a code"
	}
	code := binary.BigEndian.Uint16(p)
	if len(p) == 2 {
		return fmt.Sprintf("with code %d", code)
	}
	return fmt.Sprintf("with code %d and reason %q", code, p[2:])
}

func describeEnd(err error) string {
	var v *violation
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		return "EOF: the server closed TCP"
	case isReset(err):
		return "connection reset by the server"
	case errors.As(err, &v):
		return v.Error()
	case errors.Is(err, errNothing):
		return err.Error()
	case errors.As(err, &ne) && ne.Timeout():
		return "the case's deadline passed"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the server closed TCP inside a frame"
	}
	return err.Error()
}

func preview(p []byte) string {
	const n = 24
	if len(p) <= n {
		return fmt.Sprintf("%q", p)
	}
	return fmt.Sprintf("%q...", p[:n])
}
