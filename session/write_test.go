package session

import (
	"bytes"
	"slices"
	"testing"

	"github.com/gobwas/pool/pbytes"
	"github.com/gobwas/ws"
	"github.com/wsactor/wsactor/codec"
)

// Write takes only Text and Binary: another type would put a control or
// continuation frame of the caller's making on the wire.
func TestWriteInvalidType(t *testing.T) {
	tests := []struct {
		name string
		typ  MessageType
	}{
		{
			name: "continuation",
			typ:  MessageType(ws.OpContinuation),
		},
		{
			name: "ping",
			typ:  MessageType(ws.OpPing),
		},
		{
			name: "close",
			typ:  MessageType(ws.OpClose),
		},
		{
			name: "reserved",
			typ:  3,
		},
	}
	s, p := openRaw(t, codec.Server, testOptions(), rawConfig{})
	reply := make(chan Completion, 1)
	for _, tc := range tests {
		id, _ := s.Write(tc.typ, make([]byte, 200), reply)
		if c := await(t, reply); c.ID != id || c.Err == nil {
			t.Errorf("%s: Write completed with %v, want an error", tc.name, c.Err)
		}
		id, _ = s.WriteMessage(&Message{Type: tc.typ, Payload: pbytes.GetLen(10)}, reply)
		if c := await(t, reply); c.ID != id || c.Err == nil {
			t.Errorf("%s: WriteMessage completed with %v, want an error", tc.name, c.Err)
		}
	}
	id, _ := s.WriteText([]byte("valid"), reply)
	check(t, await(t, reply), KindWrite, id, nil)
	if f := p.mustRead(t); f.op != ws.OpText || string(f.payload) != "valid" {
		t.Fatalf("got %v, want the valid write first", f)
	}
}

// Outgoing messages: split into frames of FragmentSize, masked by a client
// without touching the caller's bytes, and prepared frames written as they
// are (or masked afresh by a client).
func TestWriteFramesOnTheWire(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			opts := testOptions()
			opts.FragmentSize = 1000
			s, p := openRaw(t, r.role, opts, rawConfig{})
			payload := make([]byte, 4500)
			for i := range payload {
				payload[i] = 'a' + byte(i%26)
			}
			orig := slices.Clone(payload)
			reply := make(chan Completion, 2)
			id, _ := s.WriteText(payload, reply)
			c := await(t, reply)
			check(t, c, KindWrite, id, nil)
			if c.N != len(payload) || !bytes.Equal(payload, orig) || &c.Payload[0] != &payload[0] {
				t.Fatalf("completion N=%d; payload changed or not handed back", c.N)
			}
			var got []byte
			for i := 0; ; i++ {
				f := p.mustRead(t)
				wantOp := ws.OpContinuation
				if i == 0 {
					wantOp = ws.OpText
				}
				if f.op != wantOp || len(f.payload) > 1000 {
					t.Fatalf("frame %d: %v, want op %d of at most 1000 bytes", i, f, wantOp)
				}
				got = append(got, f.payload...)
				if f.fin {
					break
				}
			}
			if !bytes.Equal(got, orig) {
				t.Fatal("fragments do not add up to the message")
			}
			pf := Prepare(Binary, []byte("prepared"))
			for range 2 {
				id, _ := s.WritePrepared(pf, reply)
				check(t, await(t, reply), KindWrite, id, nil)
				if f := p.mustRead(t); f.op != ws.OpBinary || !f.fin || string(f.payload) != "prepared" {
					t.Fatalf("got %v, want the prepared message", f)
				}
			}
			pf.Release()
		})
	}
}
