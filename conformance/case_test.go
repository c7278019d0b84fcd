package conformance

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// Time bounds. They are loose enough for a shared two-core machine under
// -race, and tight enough to tell "soon" from "at some timeout".
const (
	// caseTimeout bounds a whole case unless the case sets its own.
	caseTimeout = 15 * time.Second
	// replyBound is how long an expected echo, pong or close frame may take
	// after the client's last write.
	replyBound = 5 * time.Second
	// tcpBound is how soon after its close frame the server must close TCP
	// (RFC 6455 section 7.1.1: the server closes the TCP connection first,
	// as soon as the closing handshake is done).
	tcpBound = 2 * time.Second
	// parallel is how many cases run at once, each on its own connection.
	parallel = 8
	// heavyParallel is how many cases that move tens of MiB run at once.
	heavyParallel = 2
)

// tcase is one conformance case: what the client does, what it must see in
// return (in order: every frame from the server must be expected), and how
// the connection must end.
type tcase struct {
	name    string
	rfc     string // the RFC 6455 sections the expectation comes from
	steps   []step
	want    outcome
	timeout time.Duration // the whole case; caseTimeout when zero
	heavy   bool          // moves tens of MiB: at most heavyParallel at once
	offer   string        // Sec-WebSocket-Extensions offered, if any
	accept  string        // the server's answer to offer ("": declined)
	// noReset: the server must end TCP with a FIN after its close frame,
	// even when it has not read everything the client sent.
	noReset bool
}

type stepKind uint8

const (
	stepSend    stepKind = iota + 1
	stepMessage          // expect a whole data message
	stepPong             // expect a pong
	stepMaybe            // a data message that may come or not (the RFC leaves it open)
)

// step is one thing the client does or expects, in order. Payloads are
// built when the case runs, so that the table holds no large buffers.
type step struct {
	kind   stepKind
	frames func() []frame // stepSend
	chunk  int            // stepSend: write the bytes in pieces of this size
	op     ws.OpCode      // stepMessage: OpText or OpBinary
	want   func() []byte  // stepMessage, stepPong: the payload
}

type outcomeKind uint8

const (
	// wantEcho: everything expected came back and the connection is
	// healthy: the client then closes with 1000, and the server must
	// answer with 1000 and close TCP.
	wantEcho outcomeKind = iota
	// wantFail: the server must fail the connection (RFC 6455 section
	// 7.1.7): a close frame with one of codes, nothing else after what
	// the steps expect, then TCP closed by the server.
	wantFail
	// wantAnswer: the steps sent a close frame; the server must answer with
	// one of codes (5.5.1) and close TCP (7.1.1).
	wantAnswer
)

// noCode stands for a close frame without a payload in a set of codes.
const noCode = -1

type outcome struct {
	kind  outcomeKind
	codes []int
}

var echoed = outcome{kind: wantEcho}

func fails(code int) outcome        { return outcome{kind: wantFail, codes: []int{code}} }
func answers(codes ...int) outcome  { return outcome{kind: wantAnswer, codes: codes} }
func (o outcome) allows(c int) bool { return slices.Contains(o.codes, c) }
func (o outcome) describe() string  { return describeCodes(o.codes) }
func describeCodes(cs []int) string {
	var s []string
	for _, c := range cs {
		if c == noCode {
			s = append(s, "no code")
		} else {
			s = append(s, fmt.Sprint(c))
		}
	}
	return strings.Join(s, " or ")
}

// Steps.

// send writes the frames' bytes with one write.
func send(fs ...frame) step { return step{kind: stepSend, frames: func() []frame { return fs }} }

// sendChunked writes the frames' bytes in pieces of chunk bytes, so that the
// server reads headers and payloads cut at every place.
func sendChunked(chunk int, fs ...frame) step {
	return step{kind: stepSend, frames: func() []frame { return fs }, chunk: chunk}
}

// sendLazy writes the frames gen returns when the case runs.
func sendLazy(chunk int, gen func() []frame) step {
	return step{kind: stepSend, frames: gen, chunk: chunk}
}

// expectText expects the text message s.
func expectText(s string) step { return expectMessage(ws.OpText, []byte(s)) }

// expectBinary expects the binary message p.
func expectBinary(p []byte) step { return expectMessage(ws.OpBinary, p) }

func expectMessage(op ws.OpCode, p []byte) step {
	return step{kind: stepMessage, op: op, want: func() []byte { return p }}
}

// expectLazy expects a message whose payload gen builds when the case runs.
func expectLazy(op ws.OpCode, gen func() []byte) step {
	return step{kind: stepMessage, op: op, want: gen}
}

// maybeMessage accepts the message p of type op as the next frame from
// the server, or its absence: for what RFC 6455 leaves to the server.
func maybeMessage(op ws.OpCode, gen func() []byte) step {
	return step{kind: stepMaybe, op: op, want: gen}
}

// expectPong expects a pong with payload p.
func expectPong(p []byte) step {
	return step{kind: stepPong, want: func() []byte { return p }}
}

// Frames.

func textFrame(s string) frame      { return frame{fin: true, op: ws.OpText, payload: []byte(s)} }
func textBytes(p []byte) frame      { return frame{fin: true, op: ws.OpText, payload: p} }
func binaryFrame(p []byte) frame    { return frame{fin: true, op: ws.OpBinary, payload: p} }
func pingFrame(p []byte) frame      { return frame{fin: true, op: ws.OpPing, payload: p} }
func pongFrame(p []byte) frame      { return frame{fin: true, op: ws.OpPong, payload: p} }
func closeRaw(p []byte) frame       { return frame{fin: true, op: ws.OpClose, payload: p} }
func cont(p []byte, fin bool) frame { return frame{fin: fin, op: ws.OpContinuation, payload: p} }

// closeFrame is a close frame with code and reason.
func closeFrame(code uint16, reason string) frame {
	return closeRaw(append(binary.BigEndian.AppendUint16(nil, code), reason...))
}

// first makes f the first, unfinished, fragment of a message.
func first(f frame) frame {
	f.fin = false
	return f
}

// withRSV sets reserved bits on f.
func withRSV(f frame, bits byte) frame {
	f.rsv = bits
	return f
}

// fragments splits a message of type op into frames of at most size bytes.
func fragments(op ws.OpCode, p []byte, size int) []frame {
	var fs []frame
	for i := 0; ; i += size {
		part := p[i:min(i+size, len(p))]
		f := frame{fin: i+size >= len(p), op: ws.OpContinuation, payload: part}
		if i == 0 {
			f.op = op
		}
		fs = append(fs, f)
		if f.fin {
			return fs
		}
	}
}

// Payloads.

// repeat returns n bytes of b.
func repeat(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// pattern returns n bytes of a fixed pattern: printable ASCII for text,
// every byte value for binary. The same n gives the same bytes, so a case
// can build what it sends and what it expects apart.
func pattern(n int, text bool) []byte {
	p := make([]byte, n)
	for i := range p {
		if text {
			p[i] = 'a' + byte(i%26)
			if i%61 == 60 {
				p[i] = ' '
			}
		} else {
			p[i] = byte(i*131 + i>>8)
		}
	}
	return p
}

// ascending returns n bytes 0, 1, 2, ...
func ascending(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

// The runner.

// result is what the summary counts.
type results struct {
	mu     sync.Mutex
	passed int
	failed []string
}

var summary results

func (r *results) record(name string, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if failed {
		r.failed = append(r.failed, name)
	} else {
		r.passed++
	}
}

// print writes the summary line alone on its line, then the failed cases.
func (r *results) print(w io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(w, "%d passed, %d failed\n", r.passed, len(r.failed))
	if len(r.failed) > 0 {
		slices.SortFunc(r.failed, compareNames)
		fmt.Fprintln(w, "failed cases:")
		for _, n := range r.failed {
			fmt.Fprintln(w, "\t"+n)
		}
	}
}

// compareNames orders case names by their numbers: 1.2.10 after 1.2.9.
func compareNames(a, b string) int {
	na, _, _ := strings.Cut(a, " ")
	nb, _, _ := strings.Cut(b, " ")
	pa, pb := strings.Split(na, "."), strings.Split(nb, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		var x, y int
		fmt.Sscan(pa[i], &x)
		fmt.Sscan(pb[i], &y)
		if x != y {
			return x - y
		}
	}
	if len(pa) != len(pb) {
		return len(pa) - len(pb)
	}
	return strings.Compare(a, b)
}

func allCases() []tcase {
	var cs []tcase
	for _, group := range [][]tcase{
		framingCases(),
		pingCases(),
		reservedBitsCases(),
		opcodeCases(),
		fragmentationCases(),
		utf8Cases(),
		closeCases(),
		limitCases(),
		compressionCases(),
		orderCases(),
	} {
		cs = append(cs, group...)
	}
	return cs
}

func TestCaseTable(t *testing.T) {
	cs := allCases()
	seen := make(map[string]bool)
	numbers := make(map[string]string)
	for _, c := range cs {
		num, desc, ok := strings.Cut(c.name, " ")
		if !ok || desc == "" {
			t.Errorf("case %q: want a number and a description", c.name)
		}
		if seen[c.name] {
			t.Errorf("case %q twice", c.name)
		}
		if other, dup := numbers[num]; dup {
			t.Errorf("cases %q and %q share a number", other, c.name)
		}
		seen[c.name], numbers[num] = true, c.name
		if c.rfc == "" {
			t.Errorf("case %q: no RFC section for its expectation", c.name)
		}
		if c.want.kind != wantEcho && len(c.want.codes) == 0 {
			t.Errorf("case %q: a close is expected with no code set", c.name)
		}
	}
	if len(cs) < 150 {
		t.Errorf("%d cases, want at least 150", len(cs))
	}
}

// TestConformance runs every case on its own connection, at most parallel
// at once, each as a subtest named after the case (go test -run
// 'TestConformance/6\.3\.2_' runs one).
func TestConformance(t *testing.T) { conform(t, newServer(t, false)) }

// TestConformanceHTTP2 runs every case over HTTP/2 (RFC 8441), each in a
// stream of a connection of its own.
func TestConformanceHTTP2(t *testing.T) { conform(t, newServer(t, true)) }

func conform(t *testing.T, srv server) {
	cases := allCases()
	work := make(chan tcase)
	heavy := make(chan struct{}, heavyParallel)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for tc := range work {
				// t.Run may be called from many goroutines at once: the
				// workers bound the parallelism whatever -parallel says.
				t.Run(tc.name, func(t *testing.T) {
					t.Cleanup(func() { summary.record(tc.name, t.Failed()) })
					if tc.heavy {
						heavy <- struct{}{}
						defer func() { <-heavy }()
					}
					runCase(t, srv, tc)
				})
			}
		})
	}
	for _, tc := range cases {
		work <- tc
	}
	close(work)
	wg.Wait()
}

// runCase runs tc on a fresh connection to srv.
func runCase(t *testing.T, srv server, tc tcase) {
	timeout := tc.timeout
	if timeout == 0 {
		timeout = caseTimeout
	}
	deadline := time.Now().Add(timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	dialCase := dial
	if srv.h2 {
		dialCase = func(ctx context.Context, _, path string, deadline time.Time, offer, accept string) (*client, error) {
			return dialH2(ctx, srv, path, deadline, offer, accept)
		}
	}
	c, err := dialCase(ctx, srv.addr, srv.path, deadline, tc.offer, tc.accept)
	if err != nil {
		t.Fatalf("opening handshake: %v", err)
	}
	defer c.close()
	fatal := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s\n\texpected per RFC 6455 %s", fmt.Sprintf(format, args...), tc.rfc)
	}
	for i, s := range tc.steps {
		switch s.kind {
		case stepSend:
			fs := s.frames()
			var b []byte
			if len(fs) == 1 {
				b = fs[0].encode()
			} else {
				for _, f := range fs {
					b = append(b, f.encode()...)
				}
			}
			for _, f := range fs {
				if c.sentClose {
					c.afterClose = true
				}
				if f.op == ws.OpClose {
					c.sentClose = true
				}
			}
			c.write(b, s.chunk)
		case stepMessage:
			want := s.want()
			bound := replyBound
			if tc.heavy {
				// Megabytes echoed under -race on a shared machine: what
				// this bounds is a hang, not the speed.
				bound = 4 * replyBound
			}
			e := c.next(bound)
			if e.op != s.op || !bytes.Equal(e.payload, want) {
				fatal("step %d: want the %s message %s back, got %s%s", i+1, opName(s.op), summarize(want), e, diff(e.payload, want))
			}
		case stepMaybe:
			want := s.want()
			e := c.next(replyBound)
			switch {
			case e.op == s.op && bytes.Equal(e.payload, want):
				t.Logf("step %d: the optional %s message came", i+1, opName(s.op))
			case e.op == s.op:
				fatal("step %d: want the %s message %s back or none, got %s%s", i+1, opName(s.op), summarize(want), e, diff(e.payload, want))
			default:
				t.Logf("step %d: the optional %s message did not come", i+1, opName(s.op))
				c.unread(e)
			}
		case stepPong:
			want := s.want()
			e := c.next(replyBound)
			if e.op != ws.OpPong || !bytes.Equal(e.payload, want) {
				fatal("step %d: want a pong with %s, got %s", i+1, summarize(want), e)
			}
		}
	}
	want := tc.want
	if want.kind == wantEcho {
		c.write(closeFrame(1000, "").encode(), 0)
		c.afterClose = c.sentClose
		c.sentClose = true
		want = answers(1000)
	}
	e := c.next(replyBound)
	if e.op != ws.OpClose {
		fatal("want a close frame with %s from the server, got %s", want.describe(), e)
	}
	code := noCode
	if len(e.payload) >= 2 {
		code = int(binary.BigEndian.Uint16(e.payload))
	}
	if !want.allows(code) {
		fatal("want a close frame with %s, got %s", want.describe(), e)
	}
	if code == noCode && len(want.codes) > 1 {
		t.Logf("the server answered with an empty close frame")
	}
	if !c.sentClose {
		// RFC 6455 section 5.5.1: an endpoint that receives a close frame
		// and has not sent one answers with one. The server may already
		// have closed TCP (a failed connection need not wait): a write
		// error here is no failure.
		var reply frame
		if code == noCode {
			reply = closeRaw(nil)
		} else {
			reply = closeFrame(uint16(code), "")
		}
		c.write(reply.encode(), 0)
	}
	end := c.next(tcpBound)
	switch {
	case end.end == nil:
		fatal("want the server to close TCP after its close frame, got %s", end)
	case errors.Is(end.end, io.EOF):
	case isReset(end.end) && want.kind == wantAnswer && !c.afterClose:
		// The server had read every byte the client sent: nothing justifies
		// an abortive close.
		fatal("want the server to close TCP with a FIN after the closing handshake, got a reset")
	case isReset(end.end) && tc.noReset:
		fatal("want the server to close TCP with a FIN after its close frame, got a reset: a socket closed with unread bytes resets, which can destroy what was sent before")
	case isReset(end.end):
		// Bytes the server did not read (after a violation, or after the
		// client's close frame) make its kernel send a reset: a close all
		// the same.
		t.Logf("the server closed TCP with a reset, not a FIN: it had not read everything")
	default:
		fatal("want the server to close TCP within %v of its close frame, got %s", tcpBound, end)
	}
	if c.writeErr != nil {
		t.Logf("a write failed, after the server had closed: %v", c.writeErr)
	}
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// summarize describes an expected payload briefly.
func summarize(p []byte) string {
	return fmt.Sprintf("of %d bytes %s", len(p), preview(p))
}

// diff says where got and want first differ, when both are long.
func diff(got, want []byte) string {
	if len(want) <= 24 && len(got) <= 24 {
		return ""
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf(" (first difference at byte %d: %#02x, want %#02x)", i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf(" (%d bytes, want %d)", len(got), len(want))
	}
	return ""
}
