package codec_test

import (
	"fmt"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/codec"
)

var bothRoles = []codec.Role{codec.Server, codec.Client}

// decodeCase is a stream of frames and what a Reader must make of it.
type decodeCase struct {
	name    string
	roles   []codec.Role  // receiving roles to run; nil means both
	decoder codec.Decoder // limits and reserved bits; the runner sets Role
	frames  []wireFrame   // encoded for each role by wire
	raw     []byte        // bytes used as they are instead of frames
	good    int           // frames decoded before the error
	err     error         // the error that ends the stream: io.EOF when it is valid
	code    codec.CloseCode
}

func decodeCases() []decodeCase {
	cases := []decodeCase{
		// Reserved bits.
		{
			name:   "rsv1 on a data frame without an extension",
			frames: []wireFrame{text(true, "a").withRsv(4)},
			err:    codec.ErrReservedBits,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "rsv2 on a data frame without an extension",
			frames: []wireFrame{binary(true, "a").withRsv(2)},
			err:    codec.ErrReservedBits,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "rsv3 on a data frame without an extension",
			frames: []wireFrame{binary(true, "a").withRsv(1)},
			err:    codec.ErrReservedBits,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "rsv1 on a control frame without an extension",
			frames: []wireFrame{control(ws.OpPing, "").withRsv(4)},
			err:    codec.ErrReservedBits,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "rsv bits after a valid frame",
			frames: []wireFrame{text(true, "ok"), text(true, "a").withRsv(7)},
			good:   1,
			err:    codec.ErrReservedBits,
			code:   codec.CloseProtocolError,
		},
		{
			name:    "rsv1 allowed by a negotiated extension",
			decoder: codec.Decoder{Rsv: 4},
			frames:  []wireFrame{binary(true, "a").withRsv(4)},
			good:    1,
			err:     io.EOF,
		},
		{
			name:    "rsv2 refused when only rsv1 is negotiated",
			decoder: codec.Decoder{Rsv: 4},
			frames:  []wireFrame{binary(true, "a").withRsv(6)},
			err:     codec.ErrReservedBits,
			code:    codec.CloseProtocolError,
		},

		// Masking by role.
		{
			name:   "server refuses an unmasked data frame",
			roles:  []codec.Role{codec.Server},
			frames: []wireFrame{text(true, "a").withMask(maskOff)},
			err:    codec.ErrMaskRequired,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "server refuses an unmasked control frame",
			roles:  []codec.Role{codec.Server},
			frames: []wireFrame{control(ws.OpPing, "a").withMask(maskOff)},
			err:    codec.ErrMaskRequired,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "server refuses an unmasked empty frame",
			roles:  []codec.Role{codec.Server},
			frames: []wireFrame{binary(true, "").withMask(maskOff)},
			err:    codec.ErrMaskRequired,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "client refuses a masked data frame",
			roles:  []codec.Role{codec.Client},
			frames: []wireFrame{text(true, "a").withMask(maskOn)},
			err:    codec.ErrMaskUnexpected,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "client refuses a masked control frame",
			roles:  []codec.Role{codec.Client},
			frames: []wireFrame{control(ws.OpPong, "a").withMask(maskOn)},
			err:    codec.ErrMaskUnexpected,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "each role accepts its peer's masking",
			frames: []wireFrame{text(true, "hello"), control(ws.OpPing, "p"), binary(true, "\x00\xff")},
			good:   3,
			err:    io.EOF,
		},

		// Control frames.
		{
			name:   "ping of 125 bytes",
			frames: []wireFrame{control(ws.OpPing, strings.Repeat("p", 125))},
			good:   1,
			err:    io.EOF,
		},
		{
			name:   "ping of 126 bytes",
			frames: []wireFrame{control(ws.OpPing, strings.Repeat("p", 126))},
			err:    codec.ErrControlTooLong,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "pong declaring 64 KiB",
			frames: []wireFrame{control(ws.OpPong, "").declaring(1 << 16)},
			err:    codec.ErrControlTooLong,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "close of 126 bytes",
			frames: []wireFrame{control(ws.OpClose, closeBody(1000, strings.Repeat("r", 124)))},
			err:    codec.ErrControlTooLong,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "fragmented ping",
			frames: []wireFrame{frame(ws.OpPing, false, "a")},
			err:    codec.ErrControlFragmented,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "fragmented pong",
			frames: []wireFrame{frame(ws.OpPong, false, "")},
			err:    codec.ErrControlFragmented,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "fragmented close",
			frames: []wireFrame{frame(ws.OpClose, false, closeBody(1000, ""))},
			err:    codec.ErrControlFragmented,
			code:   codec.CloseProtocolError,
		},

		// Continuation order.
		{
			name:   "continuation without a started message",
			frames: []wireFrame{cont(true, "a")},
			err:    codec.ErrContinuationUnexpected,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "continuation after a finished message",
			frames: []wireFrame{text(true, "a"), cont(true, "b")},
			good:   1,
			err:    codec.ErrContinuationUnexpected,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "text frame inside a fragmented message",
			frames: []wireFrame{text(false, "a"), text(true, "b")},
			good:   1,
			err:    codec.ErrContinuationExpected,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "binary frame inside a fragmented text message",
			frames: []wireFrame{text(false, "a"), cont(false, "b"), binary(true, "c")},
			good:   2,
			err:    codec.ErrContinuationExpected,
			code:   codec.CloseProtocolError,
		},
		{
			name: "control frames between fragments",
			frames: []wireFrame{
				text(false, "he"),
				control(ws.OpPing, "1"),
				cont(false, "ll"),
				control(ws.OpPong, "2"),
				control(ws.OpClose, closeBody(1000, "bye")),
				cont(true, "o"),
			},
			good: 6,
			err:  io.EOF,
		},
		{
			name:   "fragmented message then a new one",
			frames: []wireFrame{binary(false, "a"), cont(false, ""), cont(true, "b"), text(true, "c")},
			good:   4,
			err:    io.EOF,
		},

		// Payload length encoding: the header check comes before any role
		// check, so these bytes fail the same way for both roles.
		{
			name: "64-bit length with its top bit set",
			raw:  []byte{0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0},
			err:  codec.ErrLengthMSB,
			code: codec.CloseProtocolError,
		},
		{
			name: "masked 64-bit length with its top bit set",
			raw:  []byte{0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4},
			err:  codec.ErrLengthMSB,
			code: codec.CloseProtocolError,
		},
		{
			name: "16-bit length of 125",
			raw:  []byte{0x82, 0x7E, 0, 125},
			err:  codec.ErrLengthNotMinimal,
			code: codec.CloseProtocolError,
		},
		{
			name: "16-bit length of 0",
			raw:  []byte{0x82, 0x7E, 0, 0},
			err:  codec.ErrLengthNotMinimal,
			code: codec.CloseProtocolError,
		},
		{
			name: "64-bit length of 65535",
			raw:  []byte{0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF},
			err:  codec.ErrLengthNotMinimal,
			code: codec.CloseProtocolError,
		},
		{
			name: "64-bit length of 126",
			raw:  []byte{0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 126},
			err:  codec.ErrLengthNotMinimal,
			code: codec.CloseProtocolError,
		},
		{
			name:   "16-bit length of 126 and 64-bit length of 65536",
			frames: []wireFrame{binary(true, strings.Repeat("x", 126)), binary(true, strings.Repeat("y", 1<<16))},
			good:   2,
			err:    io.EOF,
		},

		// Size limits.
		{
			name:    "frame at the frame limit",
			decoder: codec.Decoder{MaxFrame: 10},
			frames:  []wireFrame{binary(true, "0123456789")},
			good:    1,
			err:     io.EOF,
		},
		{
			name:    "frame over the frame limit",
			decoder: codec.Decoder{MaxFrame: 10},
			frames:  []wireFrame{binary(true, "0123456789a")},
			err:     codec.ErrFrameTooBig,
			code:    codec.CloseMessageTooBig,
		},
		{
			name:    "message at the message limit across fragments",
			decoder: codec.Decoder{MaxMessage: 10},
			frames:  []wireFrame{text(false, "012345"), cont(true, "6789")},
			good:    2,
			err:     io.EOF,
		},
		{
			name:    "message over the message limit across fragments",
			decoder: codec.Decoder{MaxMessage: 10},
			frames:  []wireFrame{text(false, "012345"), cont(true, "6789a")},
			good:    1,
			err:     codec.ErrMessageTooBig,
			code:    codec.CloseMessageTooBig,
		},
		{
			name:    "message limit counts each message afresh",
			decoder: codec.Decoder{MaxMessage: 10},
			frames:  []wireFrame{binary(true, "01234567"), binary(false, "0123"), cont(true, "4567")},
			good:    3,
			err:     io.EOF,
		},
		{
			name:    "control frames do not count toward the message limit",
			decoder: codec.Decoder{MaxMessage: 10},
			frames:  []wireFrame{binary(false, "012345"), control(ws.OpPing, strings.Repeat("p", 100)), cont(true, "6789")},
			good:    3,
			err:     io.EOF,
		},
		{
			name:   "declared length over the default limit",
			frames: []wireFrame{binary(true, "").declaring(codec.DefaultMaxMessage + 1)},
			err:    codec.ErrMessageTooBig,
			code:   codec.CloseMessageTooBig,
		},
		{
			name:   "declared length near 2^63 after a fragment does not wrap past the limit",
			frames: []wireFrame{binary(false, "abc"), cont(true, "").declaring(math.MaxInt64 - 1)},
			good:   1,
			err:    codec.ErrMessageTooBig,
			code:   codec.CloseMessageTooBig,
		},

		// UTF-8 of text messages.
		{
			name:   "valid text",
			frames: []wireFrame{text(true, "héllo wörld € 𝄞")},
			good:   1,
			err:    io.EOF,
		},
		{
			name:   "empty text",
			frames: []wireFrame{text(true, "")},
			good:   1,
			err:    io.EOF,
		},
		{
			name:   "invalid byte in text",
			frames: []wireFrame{text(true, "ab\xffcd")},
			err:    codec.ErrInvalidUTF8,
			code:   codec.CloseInvalidFramePayloadData,
		},
		{
			name:   "surrogate in text",
			frames: []wireFrame{text(true, "\xed\xa0\x80")},
			err:    codec.ErrInvalidUTF8,
			code:   codec.CloseInvalidFramePayloadData,
		},
		{
			name:   "overlong encoding in text",
			frames: []wireFrame{text(true, "\xc0\xaf")},
			err:    codec.ErrInvalidUTF8,
			code:   codec.CloseInvalidFramePayloadData,
		},
		{
			name:   "code point above U+10FFFF in text",
			frames: []wireFrame{text(true, "\xf4\x90\x80\x80")},
			err:    codec.ErrInvalidUTF8,
			code:   codec.CloseInvalidFramePayloadData,
		},
		{
			name:   "code point split across two fragments",
			frames: []wireFrame{text(false, "a\xe2\x82"), cont(true, "\xac")},
			good:   2,
			err:    io.EOF,
		},
		{
			name:   "code point split across three fragments with a ping between",
			frames: []wireFrame{text(false, "\xf0\x9d"), control(ws.OpPing, ""), cont(false, "\x84"), cont(true, "\x9e")},
			good:   4,
			err:    io.EOF,
		},
		{
			name:   "split code point completed by an invalid byte",
			frames: []wireFrame{text(false, "\xe2\x82"), cont(true, "A")},
			good:   1,
			err:    codec.ErrInvalidUTF8,
			code:   codec.CloseInvalidFramePayloadData,
		},
		{
			name:   "impossible byte fails at its own fragment",
			frames: []wireFrame{text(false, "ok\xf4\x90"), cont(true, "\x80\x80")},
			err:    codec.ErrInvalidUTF8,
			code:   codec.CloseInvalidFramePayloadData,
		},
		{
			name:   "text message ending inside a code point",
			frames: []wireFrame{text(true, "a\xe2\x82")},
			err:    codec.ErrInvalidUTF8,
			code:   codec.CloseInvalidFramePayloadData,
		},
		{
			name:   "fragmented text ending inside a code point",
			frames: []wireFrame{text(false, "a"), cont(true, "\xf0\x9f\x98")},
			good:   1,
			err:    codec.ErrInvalidUTF8,
			code:   codec.CloseInvalidFramePayloadData,
		},
		{
			name:   "invalid text in a frame larger than the read buffer",
			frames: []wireFrame{text(true, strings.Repeat("é", 5000)+"\xff")},
			err:    codec.ErrInvalidUTF8,
			code:   codec.CloseInvalidFramePayloadData,
		},
		{
			name:   "binary message is not checked",
			frames: []wireFrame{binary(false, "\xff\xfe"), cont(true, "\xed\xa0\x80")},
			good:   2,
			err:    io.EOF,
		},

		// Close payloads.
		{
			name:   "close without a payload",
			frames: []wireFrame{control(ws.OpClose, "")},
			good:   1,
			err:    io.EOF,
		},
		{
			name:   "close with a code and a 123-byte reason",
			frames: []wireFrame{control(ws.OpClose, closeBody(4999, strings.Repeat("r", 123)))},
			good:   1,
			err:    io.EOF,
		},
		{
			name:   "close with a 1-byte payload",
			frames: []wireFrame{control(ws.OpClose, "\x03")},
			err:    codec.ErrClosePayload1Byte,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "close with code 1005",
			frames: []wireFrame{control(ws.OpClose, closeBody(1005, ""))},
			err:    codec.ErrCloseCodeInvalid,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "close with code 5000",
			frames: []wireFrame{control(ws.OpClose, closeBody(5000, "x"))},
			err:    codec.ErrCloseCodeInvalid,
			code:   codec.CloseProtocolError,
		},
		{
			name:   "close with an invalid UTF-8 reason",
			frames: []wireFrame{control(ws.OpClose, closeBody(1000, "bad \xc3"))},
			err:    codec.ErrCloseInvalidUTF8,
			code:   codec.CloseInvalidFramePayloadData,
		},

		// Streams that end.
		{
			name: "empty stream",
			err:  io.EOF,
		},
		{
			name: "stream cut inside the first two header bytes",
			raw:  []byte{0x81},
			err:  io.ErrUnexpectedEOF,
		},
		{
			name: "stream cut inside an extended length",
			raw:  []byte{0x82, 0x7F, 0, 0, 0},
			err:  io.ErrUnexpectedEOF,
		},
		{
			name:   "stream cut inside a payload",
			frames: []wireFrame{binary(true, "short").declaring(10)},
			err:    io.ErrUnexpectedEOF,
		},
		{
			name:   "stream cut inside a payload larger than the read buffer",
			frames: []wireFrame{binary(true, strings.Repeat("x", 9000)).declaring(20000)},
			err:    io.ErrUnexpectedEOF,
		},
		{
			name:   "stream cut between the fragments of a message",
			frames: []wireFrame{text(false, "a")},
			good:   1,
			err:    io.EOF,
		},
	}
	for _, op := range []ws.OpCode{3, 4, 5, 6, 7, 11, 12, 13, 14, 15} {
		cases = append(cases, decodeCase{
			name:   fmt.Sprintf("reserved opcode %d", op),
			frames: []wireFrame{frame(op, true, "")},
			err:    codec.ErrReservedOpcode,
			code:   codec.CloseProtocolError,
		})
	}
	return cases
}

func TestReaderRules(t *testing.T) {
	for _, tc := range decodeCases() {
		roles := tc.roles
		if roles == nil {
			roles = bothRoles
		}
		for _, role := range roles {
			input := tc.raw
			if input == nil {
				input = wire(t, role, tc.frames...)
			}
			for _, feed := range feeds {
				t.Run(fmt.Sprintf("%s/%s/%s", tc.name, role, feed.name), func(t *testing.T) {
					d := tc.decoder
					d.Role = role
					r := codec.NewReader(feed.open(input), d, 0)
					t.Cleanup(r.Release)
					frames, err := readAll(t, r)
					if len(frames) != tc.good {
						t.Errorf("decoded %d frames before the error, want %d", len(frames), tc.good)
					}
					checkErr(t, err, tc.err, tc.code)
					for i, f := range frames {
						if want := tc.frames[i]; f.payload != want.payload || f.op != want.op || f.fin != want.fin {
							t.Errorf("frame %d = %+v, want op %d fin %v payload %q", i, f, want.op, want.fin, want.payload)
						}
					}
				})
			}
		}
	}
}

// TestDecoderMessageState checks the state the Decoder reports between
// frames of a fragmented message.
func TestDecoderMessageState(t *testing.T) {
	d := codec.Decoder{Role: codec.Client}
	steps := []struct {
		name      string
		header    ws.Header
		inMessage bool
		size      int64
		done      bool
	}{
		{
			name:      "first fragment starts the message",
			header:    ws.Header{OpCode: ws.OpText, Length: 3},
			inMessage: true,
			size:      3,
		},
		{
			name:      "ping between fragments leaves the message alone",
			header:    ws.Header{Fin: true, OpCode: ws.OpPing, Length: 4},
			inMessage: true,
			size:      3,
		},
		{
			name:      "continuation adds to the size",
			header:    ws.Header{OpCode: ws.OpContinuation, Length: 5},
			inMessage: true,
			size:      8,
		},
		{
			name:      "final continuation ends the message",
			header:    ws.Header{Fin: true, OpCode: ws.OpContinuation, Length: 2},
			inMessage: false,
			size:      10,
			done:      true,
		},
	}
	for _, step := range steps {
		if err := d.Begin(step.header); err != nil {
			t.Fatalf("%s: Begin: %v", step.name, err)
		}
		if !step.header.OpCode.IsControl() {
			if err := d.Data([]byte("ab")[:min(2, step.header.Length)]); err != nil {
				t.Fatalf("%s: Data: %v", step.name, err)
			}
			done, err := d.End()
			if err != nil || done != step.done {
				t.Fatalf("%s: End = %v, %v; want %v, nil", step.name, done, err, step.done)
			}
		}
		if d.InMessage() != step.inMessage || d.MessageSize() != step.size || d.Opcode() != ws.OpText {
			t.Fatalf("%s: InMessage %v, MessageSize %d, Opcode %v; want %v, %d, text",
				step.name, d.InMessage(), d.MessageSize(), d.Opcode(), step.inMessage, step.size)
		}
	}
}

func TestDecoderLimits(t *testing.T) {
	tests := []struct {
		name    string
		decoder codec.Decoder
		lengths []int64 // declared lengths of a message's frames
		err     error
	}{
		{
			name:    "negative MaxMessage means no limit",
			decoder: codec.Decoder{MaxMessage: -1},
			lengths: []int64{1 << 40, 1 << 50},
		},
		{
			name:    "no limit still refuses a message whose size overflows int64",
			decoder: codec.Decoder{MaxMessage: -1},
			lengths: []int64{1 << 62, 1 << 62, 1 << 62},
			err:     codec.ErrMessageTooBig,
		},
		{
			name:    "zero MaxMessage means the 16 MiB default",
			decoder: codec.Decoder{},
			lengths: []int64{codec.DefaultMaxMessage - 1, 1},
		},
		{
			name:    "the default refuses one byte more",
			decoder: codec.Decoder{},
			lengths: []int64{codec.DefaultMaxMessage, 1},
			err:     codec.ErrMessageTooBig,
		},
		{
			name:    "a huge declared length after a fragment is refused",
			decoder: codec.Decoder{MaxMessage: 1 << 20},
			lengths: []int64{1 << 19, math.MaxInt64},
			err:     codec.ErrMessageTooBig,
		},
		{
			name:    "frame limit applies to each fragment",
			decoder: codec.Decoder{MaxMessage: -1, MaxFrame: 100},
			lengths: []int64{100, 100, 101},
			err:     codec.ErrFrameTooBig,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.decoder
			d.Role = codec.Client
			var err error
			for i, n := range tt.lengths {
				h := ws.Header{Fin: i == len(tt.lengths)-1, OpCode: ws.OpBinary, Length: n}
				if i > 0 {
					h.OpCode = ws.OpContinuation
				}
				if err = d.Begin(h); err != nil {
					break
				}
			}
			if tt.err == nil && err != nil {
				t.Fatalf("Begin: %v", err)
			}
			if tt.err != nil {
				checkErr(t, err, tt.err, codec.CloseMessageTooBig)
			}
		})
	}
}
