package session

import (
	"bytes"
	"testing"

	"github.com/wsactor/wsactor/codec"
	"github.com/wsactor/wsactor/internal/bufpool"
)

// A prepared message goes to a compressed and a plain session in their own
// wire forms, the compressed one made once for every compressed session.
func TestPreparedWireForms(t *testing.T) {
	payload := bytes.Repeat([]byte("broadcast "), 400)
	pm := Prepare(Text, payload)
	z1, p1 := acceptCompressedRaw(t, compressedOptions())
	z2, p2 := acceptCompressedRaw(t, compressedOptions())
	plain, p3 := openRaw(t, codec.Server, testOptions(), rawConfig{})
	reply := make(chan Completion, 3)
	for _, s := range []*Session{z1, z2, plain} {
		if _, err := s.WritePrepared(pm, reply); err != nil {
			t.Fatal(err)
		}
	}
	pm.Release() // the writes hold their own references
	for range 3 {
		if c := await(t, reply); c.Err != nil || c.N != len(payload) {
			t.Fatalf("completion %+v, want %d bytes written", c, len(payload))
		}
	}
	var first []byte
	for i, p := range []*rawPeer{p1, p2} {
		h, err := p.readHeader()
		if err != nil {
			t.Fatal(err)
		}
		body, err := p.readPayload(h)
		if err != nil {
			t.Fatal(err)
		}
		if !h.Rsv1() || len(body) >= len(payload) {
			t.Fatalf("compressed session %d: RSV1 %v, %d bytes; want a compressed frame", i, h.Rsv1(), len(body))
		}
		out, err := codec.Inflate(body, -1)
		if err != nil || !bytes.Equal(out, payload) {
			t.Fatalf("compressed session %d: inflates to %d bytes, %v", i, len(out), err)
		}
		bufpool.Put(out)
		if first == nil {
			first = body
		} else if !bytes.Equal(first, body) {
			t.Error("the two compressed sessions got different bytes: compressed twice?")
		}
	}
	f := p3.mustRead(t)
	if f.rsv != 0 || !bytes.Equal(f.payload, payload) {
		t.Fatalf("plain session: rsv %d, %d bytes; want the plain message", f.rsv, len(f.payload))
	}
}

// The creator's reference is released once; one more Release panics, and a
// write after the last release is refused loudly.
func TestPreparedReleaseTwice(t *testing.T) {
	pm := Prepare(Binary, []byte("x"))
	pm.Release()
	for name, f := range map[string]func(){
		"Release":       pm.Release,
		"WritePrepared": func() { new(Session).WritePrepared(pm, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s after the last Release did not panic", name)
				}
			}()
			f()
		}()
	}
}

// A second Release while a write holds the message panics and leaves the
// write's reference alone: the message still goes out whole.
func TestPreparedReleaseTwiceDuringAWrite(t *testing.T) {
	s, p := openRaw(t, codec.Server, testOptions(), smallBuffer)
	reply := make(chan Completion, 2)
	_, big := blockWriter(t, s, p, reply)
	payload := bytes.Repeat([]byte("prepared "), 100)
	pm := Prepare(Binary, payload)
	if _, err := s.WritePrepared(pm, reply); err != nil {
		t.Fatal(err)
	}
	pm.Release()
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a second Release did not panic")
			}
		}()
		pm.Release()
	}()
	finishBigWrite(t, p, big)
	await(t, reply)
	if c := await(t, reply); c.Err != nil {
		t.Fatalf("the prepared write: %v", c.Err)
	}
	if f := p.mustRead(t); !bytes.Equal(f.payload, payload) {
		t.Fatalf("the prepared message went out as %d bytes, want its own %d", len(f.payload), len(payload))
	}
}
