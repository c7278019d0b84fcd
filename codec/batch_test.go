package codec_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/codec"
)

func opposite(r codec.Role) codec.Role {
	if r == codec.Server {
		return codec.Client
	}
	return codec.Server
}

// message returns n bytes of payload: valid UTF-8 with code points of every
// length for text, so that fragments split code points, and every byte value
// for binary.
func message(op ws.OpCode, n int) []byte {
	if op == ws.OpBinary {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i*7 + i>>8)
		}
		return p
	}
	p := make([]byte, 0, n+4)
	for len(p) < n {
		p = append(p, "aé€𝄞"...)
	}
	// Cut at a code point boundary and pad with ASCII to exactly n bytes.
	p = p[:n]
	for len(p) > 0 && p[len(p)-1] >= 0x80 {
		p = p[:len(p)-1]
	}
	for len(p) < n {
		p = append(p, 'z')
	}
	return p
}

// overlaps reports whether a and b share memory.
func overlaps(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	a0, b0 := uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&b[0]))
	return a0 < b0+uintptr(len(b)) && b0 < a0+uintptr(len(a))
}

// TestRoundTrip encodes messages with a Batch for each role and decodes them
// with a Reader of the other role: whole and fragmented, text and binary,
// from empty to 1 MiB.
func TestRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 65535, 65536, 1 << 20}
	for _, role := range bothRoles {
		for _, op := range []ws.OpCode{ws.OpText, ws.OpBinary} {
			for _, size := range sizes {
				for _, fragment := range []int{0, 1000} {
					name := fmt.Sprintf("%s/%v/%d/fragment=%d", role, op, size, fragment)
					t.Run(name, func(t *testing.T) {
						roundTrip(t, role, op, message(op, size), fragment)
					})
				}
			}
		}
	}
}

func roundTrip(t *testing.T, role codec.Role, op ws.OpCode, payload []byte, fragment int) {
	t.Helper()
	orig := slices.Clone(payload)
	b := codec.Batch{Role: role}
	t.Cleanup(b.Release)
	b.AddMessage(op, payload, fragment)

	var out bytes.Buffer
	n, err := b.WriteTo(&out)
	if err != nil || n != b.Len() || int(n) != out.Len() {
		t.Fatalf("WriteTo = %d, %v; Len %d, wrote %d", n, err, b.Len(), out.Len())
	}
	if !bytes.Equal(payload, orig) {
		t.Fatal("encoding changed the caller's payload")
	}
	if role == codec.Server {
		if ok := slices.ContainsFunc(b.Buffers(), func(seg []byte) bool { return overlaps(seg, payload) }); !ok && len(payload) > 0 {
			t.Fatal("server batch copied the payload instead of referencing it")
		}
	} else {
		for _, seg := range b.Buffers() {
			if overlaps(seg, payload) {
				t.Fatal("client batch references the caller's payload: masking would change it")
			}
		}
	}

	wantFrames := 1
	if fragment > 0 && len(payload) > fragment {
		wantFrames = (len(payload) + fragment - 1) / fragment
	}
	r := codec.NewReader(&out, codec.Decoder{Role: opposite(role)}, 0)
	t.Cleanup(r.Release)
	var got []byte
	for i := 0; ; i++ {
		f, err := r.NextFrame()
		if err == io.EOF {
			if i != wantFrames {
				t.Fatalf("decoded %d frames, want %d", i, wantFrames)
			}
			break
		}
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		wantOp := ws.OpContinuation
		if i == 0 {
			wantOp = op
		}
		if f.Header.OpCode != wantOp || f.Header.Fin != (i == wantFrames-1) || f.Header.Masked != (role == codec.Client) {
			t.Fatalf("frame %d header %+v, want op %v, fin %v, masked %v", i, f.Header, wantOp, i == wantFrames-1, role == codec.Client)
		}
		got = append(got, f.Payload...)
	}
	if !bytes.Equal(got, orig) {
		t.Fatalf("decoded %d bytes that differ from the %d sent", len(got), len(orig))
	}
	b.Reset()
	if b.Len() != 0 || b.Segments() != 0 {
		t.Fatalf("after Reset: Len %d, Segments %d; want 0, 0", b.Len(), b.Segments())
	}
}

// TestClientMasksDiffer checks that every client frame gets its own mask.
func TestClientMasksDiffer(t *testing.T) {
	const frames = 64
	payload := []byte("same payload every time")
	b := codec.Batch{Role: codec.Client}
	t.Cleanup(b.Release)
	for range frames {
		b.Add(true, ws.OpBinary, 0, payload)
	}
	var out bytes.Buffer
	if _, err := b.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	masks := map[[4]byte]bool{}
	bodies := map[string]bool{}
	wire := out.Bytes()
	for len(wire) > 0 {
		h, n, err := codec.ParseHeader(wire)
		if err != nil || n == 0 {
			t.Fatalf("ParseHeader: %d, %v", n, err)
		}
		if !h.Masked {
			t.Fatal("client frame without a mask")
		}
		masks[h.Mask] = true
		bodies[string(wire[n:n+int(h.Length)])] = true
		wire = wire[n+int(h.Length):]
	}
	if len(masks) != frames || len(bodies) != frames {
		t.Fatalf("%d frames with %d distinct masks and %d distinct masked bodies, want %d", frames, len(masks), len(bodies), frames)
	}
}

// TestServerBatchSegments checks the vectored write's shape: a server frame
// is its header in the arena and the caller's payload itself; headers of
// frames without payload share one segment.
func TestServerBatchSegments(t *testing.T) {
	p1, p2 := []byte("first payload"), []byte("second")
	tests := []struct {
		name     string
		add      func(b *codec.Batch)
		segments int
		payloads [][]byte // must appear as segments, in memory
	}{
		{
			name:     "one frame is a header and the payload",
			add:      func(b *codec.Batch) { b.Add(true, ws.OpBinary, 0, p1) },
			segments: 2,
			payloads: [][]byte{p1},
		},
		{
			name: "two frames are four segments",
			add: func(b *codec.Batch) {
				b.Add(true, ws.OpBinary, 0, p1)
				b.Add(true, ws.OpText, 0, p2)
			},
			segments: 4,
			payloads: [][]byte{p1, p2},
		},
		{
			name: "empty frames share their header segment",
			add: func(b *codec.Batch) {
				b.Add(true, ws.OpPing, 0, nil)
				b.Add(true, ws.OpPong, 0, nil)
				b.Add(true, ws.OpClose, 0, []byte{})
			},
			segments: 1,
		},
		{
			name: "header of the next frame after empty ones joins them",
			add: func(b *codec.Batch) {
				b.Add(true, ws.OpPing, 0, nil)
				b.Add(true, ws.OpBinary, 0, p1)
			},
			segments: 2,
			payloads: [][]byte{p1},
		},
		{
			name: "prepared frame is one segment",
			add: func(b *codec.Batch) {
				pf := codec.Prepare(ws.OpText, p2)
				b.Add(true, ws.OpBinary, 0, p1)
				pf.AddTo(b)
				pf.Release()
			},
			segments: 3,
			payloads: [][]byte{p1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := codec.Batch{Role: codec.Server}
			t.Cleanup(b.Release)
			tt.add(&b)
			if b.Segments() != tt.segments {
				t.Errorf("Segments() = %d, want %d", b.Segments(), tt.segments)
			}
			for _, p := range tt.payloads {
				found := slices.ContainsFunc(b.Buffers(), func(seg []byte) bool {
					return len(seg) == len(p) && unsafe.SliceData(seg) == unsafe.SliceData(p)
				})
				if !found {
					t.Errorf("payload %q is not a segment of its own", p)
				}
			}
			var total int64
			for _, seg := range b.Buffers() {
				total += int64(len(seg))
			}
			if total != b.Len() {
				t.Errorf("segments hold %d bytes, Len() = %d", total, b.Len())
			}
		})
	}
}

// TestBatchManyHeaders fills more than one header arena and checks that every
// frame still decodes, then reuses the batch.
func TestBatchManyHeaders(t *testing.T) {
	b := codec.Batch{Role: codec.Server}
	t.Cleanup(b.Release)
	for round := range 3 {
		const frames = 3000
		payloads := make([][]byte, frames)
		for i := range frames {
			payloads[i] = []byte(fmt.Sprint(round, i))
			b.Add(true, ws.OpBinary, 0, payloads[i])
			if i%10 == 0 {
				b.Add(true, ws.OpPing, 0, nil)
			}
		}
		var out bytes.Buffer
		if _, err := b.WriteTo(&out); err != nil {
			t.Fatal(err)
		}
		r := codec.NewReader(&out, codec.Decoder{Role: codec.Client}, 0)
		got, err := readAll(t, r)
		r.Release()
		checkErr(t, err, io.EOF, 0)
		var data []string
		for _, f := range got {
			if f.op == ws.OpBinary {
				data = append(data, f.payload)
			}
		}
		if len(data) != frames || data[0] != string(payloads[0]) || data[frames-1] != string(payloads[frames-1]) {
			t.Fatalf("round %d: decoded %d data frames, want %d", round, len(data), frames)
		}
		b.Reset()
	}
}

// TestBatchWriteToTCP writes a batch with writev on a loopback TCP
// connection and checks the bytes that arrive, twice, to show that WriteTo
// leaves the batch whole.
func TestBatchWriteToTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback TCP: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	received := make(chan []byte, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			received <- nil
			return
		}
		defer conn.Close()
		data, _ := io.ReadAll(conn)
		received <- data
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := codec.Batch{Role: codec.Server}
	t.Cleanup(b.Release)
	big := message(ws.OpBinary, 100000)
	b.Add(true, ws.OpText, 0, []byte("hello"))
	b.Add(true, ws.OpPing, 0, nil)
	b.Add(true, ws.OpBinary, 0, big)
	var want bytes.Buffer
	for range 2 {
		n, err := b.WriteTo(conn)
		if err != nil || n != b.Len() {
			t.Fatalf("WriteTo = %d, %v; want %d", n, err, b.Len())
		}
		if _, err := b.WriteTo(&want); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	if got := <-received; !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("received %d bytes that differ from the %d written", len(got), want.Len())
	}
}

func TestBatchSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops buffers at random under the race detector")
	}
	payload := message(ws.OpBinary, 4096)
	pf := codec.Prepare(ws.OpBinary, payload)
	t.Cleanup(pf.Release)
	for _, role := range bothRoles {
		b := codec.Batch{Role: role}
		t.Cleanup(b.Release)
		run := func() {
			b.Add(true, ws.OpText, 0, payload[:100])
			b.Add(true, ws.OpPing, 0, nil)
			b.AddMessage(ws.OpBinary, payload, 1000)
			pf.AddTo(&b)
			if _, err := b.WriteTo(io.Discard); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
		run()
		if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
			t.Errorf("%s batch: %.2f allocations per Add, WriteTo and Reset round, want 0", role, allocs)
		}
	}
}

func TestFragments(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		size    int
		want    []string // payloads; the first frame has the opcode, the last FIN
	}{
		{
			name:    "empty message is one empty frame",
			payload: "",
			size:    4,
			want:    []string{""},
		},
		{
			name:    "no size means one frame",
			payload: "abcdef",
			size:    0,
			want:    []string{"abcdef"},
		},
		{
			name:    "negative size means one frame",
			payload: "abcdef",
			size:    -1,
			want:    []string{"abcdef"},
		},
		{
			name:    "message that fits is one frame",
			payload: "abcd",
			size:    4,
			want:    []string{"abcd"},
		},
		{
			name:    "exact multiple has no empty last frame",
			payload: "abcdefgh",
			size:    4,
			want:    []string{"abcd", "efgh"},
		},
		{
			name:    "remainder goes in the last frame",
			payload: "abcdefghij",
			size:    4,
			want:    []string{"abcd", "efgh", "ij"},
		},
		{
			name:    "one byte per frame",
			payload: "abc",
			size:    1,
			want:    []string{"a", "b", "c"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			i := 0
			for h, part := range codec.Fragments(ws.OpText, []byte(tt.payload), tt.size) {
				wantOp := ws.OpContinuation
				if i == 0 {
					wantOp = ws.OpText
				}
				if h.OpCode != wantOp || h.Fin != (i == len(tt.want)-1) || h.Length != int64(len(part)) || h.Masked {
					t.Fatalf("frame %d header %+v, want op %v, fin %v, length %d, unmasked", i, h, wantOp, i == len(tt.want)-1, len(part))
				}
				got = append(got, string(part))
				i++
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Fatalf("fragments %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFragmentsStopsWhenAsked(t *testing.T) {
	n := 0
	for range codec.Fragments(ws.OpBinary, make([]byte, 100), 10) {
		n++
		if n == 3 {
			break
		}
	}
	if n != 3 {
		t.Fatalf("iterated %d frames, want 3", n)
	}
}

// TestClientBatchSegments checks that small client frames are masked into the
// arena and share one segment, while a large one gets a buffer of its own.
func TestClientBatchSegments(t *testing.T) {
	small, large := []byte("small"), message(ws.OpBinary, 2000)
	tests := []struct {
		name     string
		payloads [][]byte
		segments int
	}{
		{
			name:     "small frames share one segment",
			payloads: [][]byte{small, nil, small},
			segments: 1,
		},
		{
			name:     "a large frame is a segment of its own",
			payloads: [][]byte{small, large, small},
			segments: 3,
		},
		{
			// 15 frames of 1 KiB fill a 16 KiB arena: the 16th starts another.
			name:     "frames past the arena's room",
			payloads: slices.Repeat([][]byte{make([]byte, 1024)}, 16),
			segments: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := codec.Batch{Role: codec.Client}
			t.Cleanup(b.Release)
			for _, p := range tt.payloads {
				b.Add(true, ws.OpBinary, 0, p)
			}
			if b.Segments() != tt.segments {
				t.Errorf("Segments() = %d, want %d", b.Segments(), tt.segments)
			}
			var out bytes.Buffer
			if _, err := b.WriteTo(&out); err != nil {
				t.Fatal(err)
			}
			r := codec.NewReader(&out, codec.Decoder{Role: codec.Server}, 0)
			t.Cleanup(r.Release)
			got, err := readAll(t, r)
			checkErr(t, err, io.EOF, 0)
			if len(got) != len(tt.payloads) {
				t.Fatalf("decoded %d frames, want %d", len(got), len(tt.payloads))
			}
			for i, f := range got {
				if f.payload != string(tt.payloads[i]) {
					t.Fatalf("frame %d: %d bytes that differ from the %d sent", i, len(f.payload), len(tt.payloads[i]))
				}
			}
		})
	}
}

func TestBatchCopyBelow(t *testing.T) {
	tests := []struct {
		name      string
		copyBelow int
		sizes     []int
		segments  int
	}{
		{
			name:      "small payloads join their headers in one segment",
			copyBelow: 512,
			sizes:     []int{64, 0, 512, 100},
			segments:  1,
		},
		{
			name:      "a payload over the threshold is referenced",
			copyBelow: 512,
			sizes:     []int{64, 513, 64},
			segments:  3,
		},
		{
			name:      "zero copies nothing",
			copyBelow: 0,
			sizes:     []int{64, 64},
			segments:  4,
		},
		{
			name:      "a threshold past the arena never copies past it",
			copyBelow: 1 << 20,
			sizes:     []int{20000, 64},
			segments:  3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := codec.Batch{Role: codec.Server, CopyBelow: tt.copyBelow}
			defer b.Release()
			var want []byte
			for i, n := range tt.sizes {
				p := bytes.Repeat([]byte{byte('a' + i)}, n)
				b.Add(true, ws.OpBinary, 0, p)
				want = append(want, ws.MustCompileFrame(ws.NewBinaryFrame(p))...)
			}
			if got := b.Segments(); got != tt.segments {
				t.Errorf("Segments() = %d, want %d", got, tt.segments)
			}
			var out bytes.Buffer
			if _, err := b.WriteTo(&out); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("wire bytes differ from gobwas's encoding")
			}
		})
	}
}

// WriteFrom resumes a batch where an earlier write stopped, at any byte.
func TestBatchWriteFrom(t *testing.T) {
	var b codec.Batch
	b.Role = codec.Server
	b.CopyBelow = 16
	b.AddMessage(ws.OpText, []byte("small"), 0)
	big := bytes.Repeat([]byte("0123456789"), 100)
	b.AddMessage(ws.OpBinary, big, 0)
	b.AddMessage(ws.OpText, []byte("tail"), 0)
	defer b.Reset()
	var whole bytes.Buffer
	if _, err := b.WriteTo(&whole); err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off <= b.Len(); off += 7 {
		var rest bytes.Buffer
		n, err := b.WriteFrom(&rest, off)
		if err != nil || n != b.Len()-off || !bytes.Equal(rest.Bytes(), whole.Bytes()[off:]) {
			t.Fatalf("WriteFrom(%d): %d bytes, %v; want the %d bytes after it", off, n, err, b.Len()-off)
		}
	}
}
