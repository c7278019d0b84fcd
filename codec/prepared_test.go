package codec_test

import (
	"bytes"
	"io"
	"slices"
	"sync"
	"testing"
	"unsafe"

	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/codec"
)

func TestPreparedRefcount(t *testing.T) {
	pf := codec.Prepare(ws.OpText, []byte("broadcast"))
	steps := []struct {
		name     string
		do       func()
		refs     int32
		released bool
	}{
		{
			name:     "Prepare holds its creator's reference",
			do:       func() {},
			refs:     1,
			released: false,
		},
		{
			name:     "Retain adds a reference",
			do:       func() { pf.Retain().Retain() },
			refs:     3,
			released: false,
		},
		{
			name:     "Release of a reference that is not the last keeps the buffer",
			do:       pf.Release,
			refs:     2,
			released: false,
		},
		{
			name:     "second to last Release keeps the buffer",
			do:       pf.Release,
			refs:     1,
			released: false,
		},
		{
			name:     "last Release returns the buffer",
			do:       pf.Release,
			refs:     0,
			released: true,
		},
	}
	for _, step := range steps {
		step.do()
		if pf.Refs() != step.refs || pf.Released() != step.released {
			t.Fatalf("%s: refs %d, released %v; want %d, %v", step.name, pf.Refs(), pf.Released(), step.refs, step.released)
		}
	}
}

func TestPreparedMisusePanics(t *testing.T) {
	tests := []struct {
		name string
		do   func(pf *codec.Prepared)
	}{
		{
			name: "Release after the last reference",
			do: func(pf *codec.Prepared) {
				pf.Release()
				pf.Release()
			},
		},
		{
			name: "Retain after the last reference",
			do: func(pf *codec.Prepared) {
				pf.Release()
				pf.Retain()
			},
		},
		{
			name: "one Release more than Retain",
			do: func(pf *codec.Prepared) {
				pf.Retain()
				pf.Release()
				pf.Release()
				pf.Release()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pf := codec.Prepare(ws.OpBinary, []byte("x"))
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tt.do(pf)
		})
	}
}

// TestPreparedConcurrentRelease has many holders release at once: exactly
// one of them must return the buffer.
func TestPreparedConcurrentRelease(t *testing.T) {
	for range 50 {
		pf := codec.Prepare(ws.OpBinary, make([]byte, 1000))
		const holders = 16
		for range holders - 1 {
			pf.Retain()
		}
		var wg sync.WaitGroup
		for range holders {
			wg.Go(func() {
				b := codec.Batch{Role: codec.Server}
				pf.AddTo(&b)
				if _, err := b.WriteTo(io.Discard); err != nil {
					t.Error(err)
				}
				b.Release()
				pf.Release()
			})
		}
		wg.Wait()
		if !pf.Released() || pf.Refs() != 0 {
			t.Fatalf("after every holder released: released %v, refs %d", pf.Released(), pf.Refs())
		}
	}
}

func TestPreparedAddTo(t *testing.T) {
	payload := message(ws.OpText, 300)
	pf := codec.Prepare(ws.OpText, payload)
	t.Cleanup(pf.Release)
	if pf.Opcode() != ws.OpText || !bytes.Equal(pf.Payload(), payload) {
		t.Fatalf("Opcode %v, Payload %d bytes; want text, %d bytes", pf.Opcode(), len(pf.Payload()), len(payload))
	}
	payload[0] = 'X' // Prepare copied the payload: the caller may reuse it
	if pf.Payload()[0] == 'X' {
		t.Fatal("Prepare kept a reference to the caller's payload")
	}
	frame := slices.Clone(pf.Frame())
	for _, role := range bothRoles {
		t.Run(role.String(), func(t *testing.T) {
			b := codec.Batch{Role: role}
			t.Cleanup(b.Release)
			pf.AddTo(&b)
			pf.AddTo(&b)
			var out bytes.Buffer
			if _, err := b.WriteTo(&out); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pf.Frame(), frame) {
				t.Fatal("AddTo changed the prepared bytes")
			}
			if role == codec.Server {
				if !bytes.Equal(out.Bytes(), append(slices.Clone(frame), frame...)) {
					t.Fatal("server batch did not send the prepared bytes as they are")
				}
				for _, seg := range b.Buffers() {
					if unsafe.SliceData(seg) != unsafe.SliceData(pf.Frame()) {
						t.Fatal("server batch copied the prepared frame")
					}
				}
			}
			r := codec.NewReader(&out, codec.Decoder{Role: opposite(role)}, 0)
			t.Cleanup(r.Release)
			var masks [][4]byte
			for range 2 {
				f, err := r.NextFrame()
				if err != nil {
					t.Fatal(err)
				}
				if string(f.Payload) != string(pf.Payload()) || f.Header.OpCode != ws.OpText || !f.Header.Fin {
					t.Fatalf("decoded %+v with %d bytes, want the prepared text message", f.Header, len(f.Payload))
				}
				if f.Header.Masked != (role == codec.Client) {
					t.Fatalf("masked = %v for a %s batch", f.Header.Masked, role)
				}
				masks = append(masks, f.Header.Mask)
			}
			if role == codec.Client && masks[0] == masks[1] {
				t.Fatal("two sends of a prepared frame share a mask")
			}
		})
	}
}
