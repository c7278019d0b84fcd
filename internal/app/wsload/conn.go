package wsload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/gobwas/pool/pbytes"
	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/codec"
)

const (
	// readBufSize is the read buffer of a connection that carries load: one
	// read returns many frames, parsed in place.
	readBufSize = 64 << 10
	// idleReadBufSize is the read buffer of an idle connection, enough for
	// any control frame; larger frames are parsed in chunks anyway.
	idleReadBufSize = 512
)

// conn is one connection and the goroutine that owns it. The goroutine both
// reads and writes: after parsing what one read returned, it writes the
// pongs it owes and the refill of its window in one write each, so a
// connection needs no lock and no second goroutine.
type conn struct {
	r  *runner
	id int
	nc net.Conn // set before r.dialed.Done, never changed after

	sending bool         // set by the coordinator before r.roles is closed
	ps      codec.Parser // the WebSocket stream: frames checked as a client must
	tcpf    tcpFramer    // the stream in tcp mode
	rbuf    []byte
	out     []byte // control frames to write before the next refill
	mask    [4]byte

	// The window. frames holds 2*Inflight pre-encoded frames, frame j
	// carrying the payload of slot j%Inflight, so that the refill of any k
	// <= Inflight slots from any slot is one contiguous slice.
	frames      []byte
	flen        int
	plain       []byte // Inflight unmasked payloads, for -verify
	sendTS      []int64
	measured    []bool
	sendSlot    int
	outstanding int
	sent        int64 // messages sent, warm-up included

	// The message being received.
	recvSlot int
	msgOp    Op
	msgLen   int64
	msgBad   bool
	ctl      [maxControlPayload]byte
	ctlLen   int
	recvN    int64 // data messages received, all phases

	verify    bool // compare payload bytes (-verify)
	desync    bool // a protocol error: the stream cannot be parsed any more
	closing   bool // our close frame is on its way: drop data, answer nothing
	closeSent bool
	closeRecv bool
	closeWith int  // code of the close frame we send
	closeCode int  // code of the server's close frame, or 1006
	broken    bool // the socket failed: no closing handshake
	done      bool // drained: nothing more is expected

	pingAt int64        // storm: when our ping went out, on the run's clock
	rtt    atomic.Int64 // storm: its round trip to the pong, in ns; 0 before

	hist     *Hist
	msgs     int64 // measured messages echoed intact
	lastRecv int64 // when the last of them (or, receiving only, of any message) arrived

	// Read by the coordinator and the progress line.
	drained   atomic.Bool
	sentTotal atomic.Int64 // sent, published when drained
	delivered atomic.Int64 // recvN, published after every read
	errs      atomic.Int64
}

// run dials, learns its role, encodes its window, waits for the start,
// carries load and closes. It is the connection's goroutine.
func (c *conn) run(ctx context.Context) {
	r := c.r
	initial, err := c.dial(ctx)
	if err != nil {
		r.dialFailed(err)
		c.finishDrain()
		r.dialed.Done()
		return
	}
	r.up.Add(1)
	r.dialed.Done()
	<-r.roles
	c.prepare()
	r.ready.Done()
	<-r.start

	if c.loop(initial) {
		c.shutdown()
	} else {
		c.nc.Close()
	}
	r.up.Add(-1)
	c.release()
}

// dialTurn waits for connection id's turn in cfg's ramp (which began at
// base), then for a place in sem, the dials allowed at once; the caller
// gives the place back once it has dialed.
func dialTurn(ctx context.Context, cfg *Config, id int, base time.Time, sem chan struct{}) error {
	if cfg.Ramp > 0 && id > 0 {
		at := time.Duration(int64(cfg.Ramp) * int64(id) / int64(cfg.Conns))
		t := time.NewTimer(at - time.Since(base))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dial waits for the connection's turn in the ramp, then dials and, in ws
// mode, does the opening handshake. It returns any bytes the server sent
// right after its handshake response.
func (c *conn) dial(ctx context.Context) ([]byte, error) {
	r := c.r
	if err := dialTurn(ctx, &r.cfg, c.id, r.base, r.dialSem); err != nil {
		return nil, err
	}
	defer func() { <-r.dialSem }()

	nd := net.Dialer{Timeout: r.cfg.DialTimeout}
	if len(r.sources) > 0 {
		nd.LocalAddr = r.sources[c.id%len(r.sources)]
	}
	if r.tcp {
		nc, err := nd.DialContext(ctx, "tcp", r.addr)
		if err != nil {
			return nil, err
		}
		c.nc = nc
		return nil, nil
	}
	if r.h2 != nil {
		nc, err := r.h2.dial(ctx, c.id)
		c.nc = nc
		return nil, err
	}
	wd := r.wsDialer
	if nd.LocalAddr != nil {
		wd.NetDial = nd.DialContext
	}
	nc, br, _, err := wd.Dial(ctx, r.cfg.URL)
	if err != nil {
		return nil, err
	}
	c.nc = nc
	if br == nil {
		return nil, nil
	}
	b, _ := br.Peek(br.Buffered())
	initial := bytes.Clone(b)
	ws.PutReader(br)
	return initial, nil
}

// prepare takes the buffers and encodes the window.
func (c *conn) prepare() {
	r := c.r
	// No size limit: the echo of any message this run sends must come back.
	c.ps.Decoder = codec.Decoder{Role: codec.Client, MaxMessage: -1}
	c.closeWith = int(ws.StatusNormalClosure)
	m := rand.Uint32()
	c.mask = [4]byte{byte(m), byte(m >> 8), byte(m >> 16), byte(m >> 24)}
	c.out = make([]byte, 0, 2*(maxHeaderLen+maxControlPayload))
	if r.cfg.Mode.holds() {
		c.rbuf = make([]byte, idleReadBufSize)
		c.finishDrain()
		return
	}
	c.rbuf = pbytes.GetLen(readBufSize)
	c.verify = r.cfg.Verify
	if !c.sending {
		if r.cfg.Verify {
			c.plain = payloads(r.cfg)
		}
		return
	}
	n := r.cfg.Inflight
	c.plain = payloads(r.cfg)
	c.sendTS = make([]int64, n)
	c.measured = make([]bool, n)
	c.hist = new(Hist)
	size := r.cfg.Size
	if r.tcp {
		c.flen = tcpHeaderLen + size
	} else {
		c.flen = len(appendClientFrame(nil, r.op, c.plain[:size], c.mask))
	}
	c.frames = pbytes.GetLen(2 * n * c.flen)[:0]
	for j := range 2 * n {
		p := c.plain[(j%n)*size : (j%n+1)*size]
		if r.tcp {
			c.frames = appendTCPFrame(c.frames, p)
		} else {
			c.frames = appendClientFrame(c.frames, r.op, p, c.mask)
		}
	}
}

// payloads returns the unmasked payloads of the Inflight slots, one after
// the other: deterministic, and different from slot to slot so that -verify
// notices a reordered echo.
func payloads(cfg Config) []byte {
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	p := make([]byte, cfg.Inflight*cfg.Size)
	for s := range cfg.Inflight {
		for i := range cfg.Size {
			k := s*cfg.Size + i
			if cfg.Binary {
				p[k] = byte(s*131 + i*7 + 1)
			} else {
				p[k] = alnum[(s*7+i)%len(alnum)]
			}
		}
	}
	return p
}

func (c *conn) release() {
	if cap(c.rbuf) == readBufSize {
		pbytes.Put(c.rbuf)
	}
	if c.frames != nil {
		pbytes.Put(c.frames)
	}
	c.rbuf, c.frames = nil, nil
}

// loop carries the load until the coordinator asks for the close or the
// connection ends. It reports whether the closing handshake is still to do.
func (c *conn) loop(initial []byte) bool {
	if len(initial) > 0 && !c.consume(initial, c.r.now()) {
		return !c.broken
	}
	if !c.flush() {
		return false
	}
	for {
		if c.checkPhase() {
			return true
		}
		n, err := c.nc.Read(c.rbuf)
		if n > 0 {
			if !c.consume(c.rbuf[:n], c.r.now()) {
				return !c.broken
			}
			if !c.flush() {
				return false
			}
		}
		if err != nil {
			if isTimeout(err) {
				// The coordinator woke us to look at the phase; a wake that
				// comes after this is never lost, since checkPhase loads the
				// phase after the deadline is cleared.
				c.nc.SetDeadline(time.Time{})
				continue
			}
			c.fail(err)
			return false
		}
	}
}

// checkPhase drains the connection when the phase says so, and reports
// whether it is time to close.
func (c *conn) checkPhase() bool {
	r := c.r
	if r.pingNow.Load() && c.pingAt == 0 && !c.broken && !c.closing {
		c.pingAt = r.now()
		if _, err := c.nc.Write(appendClientFrame(c.out[:0], OpPing, []byte("storm"), c.mask)); err != nil {
			c.fail(err)
			return true
		}
	}
	ph := r.phase.Load()
	if !c.done {
		switch {
		case ph >= phaseAbort:
			c.finishDrain()
		case c.sending && ph >= phaseStop && c.outstanding == 0:
			c.finishDrain()
		case !c.sending && ph >= phaseDrainRecv && c.recvN >= r.target.Load():
			c.finishDrain()
		}
	}
	return ph >= phaseClose
}

// finishDrain marks the connection as expecting nothing more, counts what
// never came as lost, and tells the coordinator.
func (c *conn) finishDrain() {
	if c.done {
		return
	}
	c.done = true
	r := c.r
	if c.outstanding > 0 {
		c.errs.Add(int64(c.outstanding))
		r.noteErr(errLost)
		c.outstanding = 0
	}
	if !c.sending && r.cfg.Mode == ModeBroadcast && r.phase.Load() >= phaseDrainRecv && c.nc != nil {
		if missing := r.target.Load() - c.recvN; missing > 0 {
			c.errs.Add(missing)
			r.noteErr(errLost)
		}
	}
	c.sentTotal.Store(c.sent)
	c.drained.Store(true)
	r.drainedN.Add(1)
	r.wake()
}

var (
	errLost       = errors.New("messages lost: no echo before the end of the run")
	errBadEcho    = errors.New("echo differs from the message sent (opcode, length or content)")
	errUnexpected = errors.New("data message received with none outstanding")
	errEarlyClose = errors.New("server closed the connection before the end of the run")
)

// fail records a failed socket.
func (c *conn) fail(err error) {
	c.broken = true
	if !c.closeRecv {
		c.closeCode = closeAbnormal
	}
	if c.r.phase.Load() < phaseClose {
		c.errs.Add(1)
		c.r.noteErr(err)
	}
	c.finishDrain()
}

// protocolError records a frame that no conforming server sends; the
// connection closes with the code that err names (1002, 1007).
func (c *conn) protocolError(err error) bool {
	c.errs.Add(1)
	c.r.noteErr(fmt.Errorf("server broke the protocol: %w", err))
	c.closeWith = int(ws.StatusProtocolError)
	if pe, ok := err.(*codec.ProtocolError); ok {
		c.closeWith = int(pe.Code)
	}
	c.desync = true
	c.finishDrain()
	return false
}

// consume parses p, which arrived at now. It reports false when the
// connection must close: the server closed it or broke the protocol.
func (c *conn) consume(p []byte, now int64) bool {
	before := c.recvN
	ok := c.parse(p, now)
	if c.recvN != before {
		c.delivered.Store(c.recvN)
	}
	return ok
}

// parse parses p with the codec's frame parser, which checks every frame as
// a client must (masking, reserved bits and opcodes, control frames,
// continuation order, UTF-8 of text); in tcp mode with tcpFramer.
func (c *conn) parse(p []byte, now int64) bool {
	if c.r.tcp {
		return c.parseTCP(p, now)
	}
	for len(p) > 0 {
		ch, n, ok, err := c.ps.Next(p)
		p = p[n:]
		if err != nil {
			return c.protocolError(err)
		}
		if !ok {
			continue // a header split across reads, kept by the parser
		}
		op := ch.Op
		if op.IsControl() {
			if !c.control(op, ch.Payload, ch.First, ch.Last) {
				return false
			}
			continue
		}
		if ch.First && op != ws.OpContinuation {
			c.msgOp = Op(op)
			c.msgLen = 0
			c.msgBad = false
		}
		c.data(ch.Payload)
		if ch.Last && ch.Fin {
			c.message(now)
		}
	}
	return true
}

// parseTCP parses p in tcp mode: each length-prefixed message is a binary
// one.
func (c *conn) parseTCP(p []byte, now int64) bool {
	for len(p) > 0 {
		payload, n, first, last, ok := c.tcpf.next(p)
		p = p[n:]
		if !ok {
			continue
		}
		if first {
			c.msgOp = OpBinary
			c.msgLen = 0
			c.msgBad = false
		}
		c.data(payload)
		if last {
			c.message(now)
		}
	}
	return true
}

// data accounts for a piece of the current message's payload.
func (c *conn) data(b []byte) {
	if c.verify && !c.msgBad && len(b) > 0 {
		c.msgBad = !c.matches(b)
	}
	c.msgLen += int64(len(b))
}

// matches reports whether b is what the current message carries at msgLen.
func (c *conn) matches(b []byte) bool {
	size := int64(c.r.cfg.Size)
	if c.msgLen+int64(len(b)) > size {
		return true // length is checked when the message ends
	}
	start := int64(c.recvSlot)*size + c.msgLen
	return bytes.Equal(b, c.plain[start:start+int64(len(b))])
}

// message accounts for a whole data message.
func (c *conn) message(now int64) {
	if c.closing || c.done && c.sending {
		return // late echo after the drain: already counted as lost
	}
	r := c.r
	c.recvN++
	bad := c.msgBad || c.msgOp != r.op || c.msgLen != int64(r.cfg.Size)
	if bad {
		c.errs.Add(1)
		r.noteErr(errBadEcho)
	}
	if c.sending {
		if c.outstanding == 0 {
			c.errs.Add(1)
			r.noteErr(errUnexpected)
			return
		}
		slot := c.recvSlot
		if c.measured[slot] && !bad {
			c.hist.Record(time.Duration(now - c.sendTS[slot]))
			c.msgs++
			c.lastRecv = now
		}
		c.outstanding--
	} else {
		c.lastRecv = now
	}
	if c.recvSlot++; c.recvSlot == r.cfg.Inflight {
		c.recvSlot = 0
	}
}

// control handles a piece of a control frame of opcode op. It reports
// false when the server closed.
func (c *conn) control(op ws.OpCode, payload []byte, first, last bool) bool {
	if first {
		c.ctlLen = 0
	}
	c.ctlLen += copy(c.ctl[c.ctlLen:], payload)
	if !last {
		return true
	}
	p := c.ctl[:c.ctlLen]
	switch Op(op) {
	case OpPing:
		if !c.closing {
			c.out = appendClientFrame(c.out, OpPong, p, c.mask)
		}
	case OpPong:
		if c.pingAt != 0 && c.rtt.Load() == 0 {
			c.rtt.Store(max(c.r.now()-c.pingAt, 1))
			c.r.pongs.Add(1)
			c.r.wake()
		}
	case OpClose:
		c.closeRecv = true
		c.closeCode = closeCode(p)
		if !c.closing && c.r.phase.Load() < phaseClose {
			c.errs.Add(1)
			c.r.noteErr(errEarlyClose)
		}
		if !c.closeSent {
			c.closeWith = c.closeCode // echo the server's code
		}
		c.finishDrain()
		return false
	}
	return true
}

// flush writes the pongs owed, then refills the window.
func (c *conn) flush() bool {
	if len(c.out) > 0 {
		if _, err := c.nc.Write(c.out); err != nil {
			c.fail(err)
			return false
		}
		c.out = c.out[:0]
	}
	if c.sending {
		return c.refill()
	}
	return true
}

// refill sends as many messages as the window lacks, in one write.
func (c *conn) refill() bool {
	r := c.r
	ph := r.phase.Load()
	if ph >= phaseStop || c.done {
		return true
	}
	n := r.cfg.Inflight
	k := n - c.outstanding
	if k <= 0 {
		return true
	}
	meas := ph == phaseMeasure
	if meas && r.limited {
		if k = r.take(k); k == 0 {
			return true
		}
	}
	s := c.sendSlot
	now := r.now()
	for i := s; i < s+k; i++ {
		j := i
		if j >= n {
			j -= n
		}
		c.sendTS[j] = now
		c.measured[j] = meas
	}
	if _, err := c.nc.Write(c.frames[s*c.flen : (s+k)*c.flen]); err != nil {
		c.fail(err)
		return false
	}
	if c.sendSlot = s + k; c.sendSlot >= n {
		c.sendSlot -= n
	}
	c.outstanding += k
	c.sent += int64(k)
	return true
}

// shutdown closes the connection cleanly: in ws mode it sends a close frame
// (1000, or the server's code echoed), waits for the server's, then for the
// server to close the TCP connection (RFC 6455, section 7.1.1); in tcp mode
// it half-closes and waits for the server's end of stream. All of it is
// bounded by the close wait (2 s).
func (c *conn) shutdown() {
	c.finishDrain()
	defer c.nc.Close()
	deadline := time.Now().Add(c.r.cfg.closeWait)
	c.nc.SetDeadline(deadline)
	c.closing = true
	if c.r.tcp {
		if tc, ok := c.nc.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		c.waitEOF(deadline)
		return
	}
	if !c.closeSent {
		frame := appendClientClose(c.out[:0], c.closeWith, c.mask)
		if _, err := c.nc.Write(frame); err != nil {
			if !c.closeRecv {
				c.closeCode = closeAbnormal
			}
			return
		}
		c.closeSent = true
	}
	for !c.closeRecv && !c.desync {
		n, err := c.nc.Read(c.rbuf)
		if n > 0 && !c.parse(c.rbuf[:n], c.r.now()) {
			break
		}
		if err != nil {
			if c.retry(err, deadline) {
				continue
			}
			break
		}
	}
	if !c.closeRecv {
		c.closeCode = closeAbnormal
		return
	}
	c.waitEOF(deadline)
}

// waitEOF reads and drops until the server closes or the deadline passes.
func (c *conn) waitEOF(deadline time.Time) {
	for {
		_, err := c.nc.Read(c.rbuf)
		if err != nil && !c.retry(err, deadline) {
			return
		}
	}
}

// retry reports whether a read failed only because of an early wake from
// the coordinator, and if so restores the deadline.
func (c *conn) retry(err error, deadline time.Time) bool {
	if !isTimeout(err) || !time.Now().Before(deadline) {
		return false
	}
	c.nc.SetReadDeadline(deadline)
	return true
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
