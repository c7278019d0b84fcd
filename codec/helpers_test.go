package codec_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/codec"
)

// maskMode says whether a test frame is masked on the wire.
type maskMode uint8

const (
	maskAuto maskMode = iota // masked when the receiver is a server, as RFC 6455 asks
	maskOn
	maskOff
)

// wireFrame is a frame to put on the wire for a decoding test. The bytes are
// built with gobwas/ws, not with the codec under test.
type wireFrame struct {
	fin      bool
	rsv      byte
	op       ws.OpCode
	payload  string
	declared int64 // the length put in the header when it is not len(payload)
	mask     maskMode
}

func frame(op ws.OpCode, fin bool, payload string) wireFrame {
	return wireFrame{fin: fin, op: op, payload: payload, declared: -1}
}

func (f wireFrame) withRsv(rsv byte) wireFrame       { f.rsv = rsv; return f }
func (f wireFrame) withMask(m maskMode) wireFrame    { f.mask = m; return f }
func (f wireFrame) declaring(n int64) wireFrame      { f.declared = n; return f }
func text(fin bool, payload string) wireFrame        { return frame(ws.OpText, fin, payload) }
func binary(fin bool, payload string) wireFrame      { return frame(ws.OpBinary, fin, payload) }
func cont(fin bool, payload string) wireFrame        { return frame(ws.OpContinuation, fin, payload) }
func control(op ws.OpCode, payload string) wireFrame { return frame(op, true, payload) }

// closeBody returns a close frame payload: the code in network order and the
// reason.
func closeBody(code uint16, reason string) string {
	return string([]byte{byte(code >> 8), byte(code)}) + reason
}

// wire encodes frames as a peer of receiver would send them.
func wire(t testing.TB, receiver codec.Role, frames ...wireFrame) []byte {
	t.Helper()
	var buf bytes.Buffer
	for i, f := range frames {
		masked := f.mask == maskOn || f.mask == maskAuto && receiver == codec.Server
		n := int64(len(f.payload))
		if f.declared >= 0 {
			n = f.declared
		}
		h := ws.Header{Fin: f.fin, Rsv: f.rsv, OpCode: f.op, Length: n, Masked: masked}
		if masked {
			h.Mask = [4]byte{0x37, 0xfa, 0x21, byte(i)}
		}
		if err := ws.WriteHeader(&buf, h); err != nil {
			t.Fatalf("ws.WriteHeader: %v", err)
		}
		p := []byte(f.payload)
		if masked {
			ws.Cipher(p, h.Mask, 0)
		}
		buf.Write(p)
	}
	return buf.Bytes()
}

// decoded is a frame as a test keeps it: its payload copied out of the
// Reader's buffer.
type decoded struct {
	fin     bool
	op      ws.OpCode
	payload string
}

// readAll reads frames from r until an error and returns them with the error.
func readAll(t testing.TB, r *codec.Reader) ([]decoded, error) {
	t.Helper()
	var frames []decoded
	for {
		f, err := r.NextFrame()
		if err != nil {
			return frames, err
		}
		frames = append(frames, decoded{fin: f.Header.Fin, op: f.Header.OpCode, payload: string(f.Payload)})
	}
}

// checkErr fails t unless err is want (errors.Is) and, for a protocol error,
// carries the close code code (errors.As).
func checkErr(t testing.TB, err, want error, code codec.CloseCode) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
	var pe *codec.ProtocolError
	isProto := errors.As(err, &pe)
	switch {
	case code == 0 && isProto:
		t.Fatalf("error %v is a *ProtocolError with code %d, want none", err, pe.Code)
	case code != 0 && !isProto:
		t.Fatalf("error %v is not a *ProtocolError", err)
	case code != 0 && pe.Code != code:
		t.Fatalf("close code = %d, want %d", pe.Code, code)
	}
}

// feeds are the ways a test gives bytes to a Reader: all at once, and one
// byte per read, which splits every header, payload and code point across
// reads.
var feeds = []struct {
	name string
	open func(p []byte) io.Reader
}{
	{
		name: "whole",
		open: func(p []byte) io.Reader { return bytes.NewReader(p) },
	},
	{
		name: "onebyte",
		open: func(p []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(p)) },
	},
}
