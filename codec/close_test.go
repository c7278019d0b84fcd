package codec_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/wsactor/wsactor/codec"
)

// closeCodeRange is one line of testdata/closecodes.txt.
type closeCodeRange struct {
	lo, hi int
	valid  bool
	why    string
}

// loadCloseCodes reads ../testdata/closecodes.txt and returns its ranges and,
// for every code 0-65535, whether it is valid on the wire.
func loadCloseCodes(t testing.TB) ([]closeCodeRange, []bool) {
	t.Helper()
	file, err := os.Open("../testdata/closecodes.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var ranges []closeCodeRange
	seen := make([]int, 1<<16)
	valid := make([]bool, 1<<16)
	sc := bufio.NewScanner(file)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) < 3 || fields[1] != "valid" && fields[1] != "invalid" {
			t.Fatalf("closecodes.txt:%d: want \"code|lo-hi valid|invalid why\", got %q", line, text)
		}
		lo, hi, isRange := strings.Cut(fields[0], "-")
		if !isRange {
			hi = lo
		}
		r := closeCodeRange{valid: fields[1] == "valid", why: strings.Join(fields[2:], " ")}
		if r.lo, err = strconv.Atoi(lo); err != nil {
			t.Fatalf("closecodes.txt:%d: %v", line, err)
		}
		if r.hi, err = strconv.Atoi(hi); err != nil {
			t.Fatalf("closecodes.txt:%d: %v", line, err)
		}
		if r.lo < 0 || r.hi > 0xFFFF || r.lo > r.hi {
			t.Fatalf("closecodes.txt:%d: bad range %d-%d", line, r.lo, r.hi)
		}
		for c := r.lo; c <= r.hi; c++ {
			seen[c]++
			valid[c] = r.valid
		}
		ranges = append(ranges, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for c, n := range seen {
		if n != 1 {
			t.Fatalf("closecodes.txt lists code %d %d times, want once", c, n)
		}
	}
	return ranges, valid
}

// TestCloseCodesTable checks every close code from 0 to 65535 against the
// table in testdata: CloseCode.Valid, ParseClosePayload with and without a
// reason, and CheckCloseReason.
func TestCloseCodesTable(t *testing.T) {
	_, valid := loadCloseCodes(t)
	for c := range 1 << 16 {
		code := codec.CloseCode(c)
		if code.Valid() != valid[c] {
			t.Errorf("CloseCode(%d).Valid() = %v, want %v", c, code.Valid(), valid[c])
		}
		for _, reason := range []string{"", "bye"} {
			got, gotReason, err := codec.ParseClosePayload([]byte(closeBody(uint16(c), reason)))
			switch {
			case valid[c] && (err != nil || got != code || string(gotReason) != reason):
				t.Errorf("ParseClosePayload(%d %q) = %d %q %v, want the code and reason", c, reason, got, gotReason, err)
			case !valid[c]:
				checkErr(t, err, codec.ErrCloseCodeInvalid, codec.CloseProtocolError)
			}
		}
		err := codec.CheckCloseReason(code, "bye")
		if valid[c] != (err == nil) {
			t.Errorf("CheckCloseReason(%d, \"bye\") = %v, want valid = %v", c, err, valid[c])
		}
	}
}

// TestCloseCodesThroughReader sends a close frame with the first and last
// code of every line of the table to both roles.
func TestCloseCodesThroughReader(t *testing.T) {
	ranges, _ := loadCloseCodes(t)
	for _, r := range ranges {
		for _, c := range []int{r.lo, r.hi} {
			for _, role := range bothRoles {
				t.Run(fmt.Sprintf("%d %s/%s", c, r.why, role), func(t *testing.T) {
					input := wire(t, role, control(ws.OpClose, closeBody(uint16(c), "reason")))
					rd := codec.NewReader(bytes.NewReader(input), codec.Decoder{Role: role}, 0)
					t.Cleanup(rd.Release)
					frames, err := readAll(t, rd)
					if r.valid {
						checkErr(t, err, io.EOF, 0)
						if len(frames) != 1 || frames[0].op != ws.OpClose {
							t.Fatalf("frames %+v, want one close frame", frames)
						}
						return
					}
					checkErr(t, err, codec.ErrCloseCodeInvalid, codec.CloseProtocolError)
				})
			}
		}
	}
}

func TestParseClosePayload(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		code    codec.CloseCode
		reason  string
		err     error
		errCode codec.CloseCode
	}{
		{
			name:    "empty payload means no status",
			payload: "",
			code:    codec.CloseNoStatusReceived,
		},
		{
			name:    "code without a reason",
			payload: closeBody(1000, ""),
			code:    codec.CloseNormalClosure,
		},
		{
			name:    "code and a UTF-8 reason",
			payload: closeBody(1001, "au revoir, à bientôt"),
			code:    codec.CloseGoingAway,
			reason:  "au revoir, à bientôt",
		},
		{
			name:    "reason of 123 bytes",
			payload: closeBody(4000, strings.Repeat("r", 123)),
			code:    4000,
			reason:  strings.Repeat("r", 123),
		},
		{
			name:    "reason of 124 bytes",
			payload: closeBody(4000, strings.Repeat("r", 124)),
			err:     codec.ErrControlTooLong,
			errCode: codec.CloseProtocolError,
		},
		{
			name:    "payload of 1 byte",
			payload: "\x03",
			err:     codec.ErrClosePayload1Byte,
			errCode: codec.CloseProtocolError,
		},
		{
			name:    "code 0",
			payload: closeBody(0, ""),
			err:     codec.ErrCloseCodeInvalid,
			errCode: codec.CloseProtocolError,
		},
		{
			name:    "reason with invalid UTF-8",
			payload: closeBody(1000, "ab\xff"),
			err:     codec.ErrCloseInvalidUTF8,
			errCode: codec.CloseInvalidFramePayloadData,
		},
		{
			name:    "reason ending inside a code point",
			payload: closeBody(1000, "ab\xe2\x82"),
			err:     codec.ErrCloseInvalidUTF8,
			errCode: codec.CloseInvalidFramePayloadData,
		},
		{
			name:    "invalid code is reported before an invalid reason",
			payload: closeBody(1006, "\xff"),
			err:     codec.ErrCloseCodeInvalid,
			errCode: codec.CloseProtocolError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, reason, err := codec.ParseClosePayload([]byte(tt.payload))
			if tt.err != nil {
				checkErr(t, err, tt.err, tt.errCode)
				return
			}
			if err != nil || code != tt.code || string(reason) != tt.reason {
				t.Fatalf("ParseClosePayload = %d %q %v, want %d %q", code, reason, err, tt.code, tt.reason)
			}
		})
	}
}

func TestCheckCloseReason(t *testing.T) {
	tests := []struct {
		name    string
		code    codec.CloseCode
		reason  string
		err     error
		payload string
	}{
		{
			name:    "no code and no reason is an empty payload",
			code:    0,
			payload: "",
		},
		{
			name:    "normal closure with a reason",
			code:    codec.CloseNormalClosure,
			reason:  "done",
			payload: "\x03\xe8done",
		},
		{
			name:    "private code with a reason of 123 bytes",
			code:    4999,
			reason:  strings.Repeat("é", 61) + "x",
			payload: "\x13\x87" + strings.Repeat("é", 61) + "x",
		},
		{
			name:   "reason without a code",
			code:   0,
			reason: "why",
			err:    &codec.ProtocolError{},
		},
		{
			name: "1005 must not be sent",
			code: codec.CloseNoStatusReceived,
			err:  codec.ErrCloseCodeInvalid,
		},
		{
			name: "1006 must not be sent",
			code: codec.CloseAbnormalClosure,
			err:  codec.ErrCloseCodeInvalid,
		},
		{
			name: "1015 must not be sent",
			code: codec.CloseTLSHandshake,
			err:  codec.ErrCloseCodeInvalid,
		},
		{
			name:   "reason of 124 bytes",
			code:   codec.CloseNormalClosure,
			reason: strings.Repeat("r", 124),
			err:    codec.ErrControlTooLong,
		},
		{
			name:   "reason with invalid UTF-8",
			code:   codec.CloseNormalClosure,
			reason: "\xc3",
			err:    codec.ErrCloseInvalidUTF8,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := codec.CheckCloseReason(tt.code, tt.reason)
			if tt.err != nil {
				// The reason-without-code error has no sentinel: check its type.
				var pe *codec.ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("CheckCloseReason = %v, want a *ProtocolError", err)
				}
				if want := tt.err.(*codec.ProtocolError); want.Reason != "" && !errors.Is(err, want) {
					t.Fatalf("CheckCloseReason = %v, want %v", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("CheckCloseReason = %v", err)
			}
			if got := codec.AppendClosePayload(nil, tt.code, tt.reason); string(got) != tt.payload {
				t.Fatalf("AppendClosePayload = %q, want %q", got, tt.payload)
			}
		})
	}
}

func TestCloseCodeString(t *testing.T) {
	tests := []struct {
		name string
		code codec.CloseCode
		want string
	}{
		{
			name: "registered name",
			code: codec.CloseMessageTooBig,
			want: "message too big",
		},
		{
			name: "IANA range",
			code: 3001,
			want: "registered code 3001",
		},
		{
			name: "private range",
			code: 4321,
			want: "private code 4321",
		},
		{
			name: "unassigned",
			code: 2000,
			want: "invalid code 2000",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.code.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

// closeModel is the reference for ParseClosePayload, written from RFC 6455
// section 5.5.1 and the table in testdata, not from the code under test.
func closeModel(valid []bool, p []byte) (codec.CloseCode, string, error) {
	if len(p) == 0 {
		return codec.CloseNoStatusReceived, "", nil
	}
	if len(p) == 1 {
		return 0, "", codec.ErrClosePayload1Byte
	}
	if len(p) > 125 {
		return 0, "", codec.ErrControlTooLong
	}
	code := int(p[0])<<8 | int(p[1])
	if !valid[code] {
		return codec.CloseCode(code), "", codec.ErrCloseCodeInvalid
	}
	if !utf8.Valid(p[2:]) {
		return codec.CloseCode(code), "", codec.ErrCloseInvalidUTF8
	}
	return codec.CloseCode(code), string(p[2:]), nil
}

func FuzzCloseReason(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x03})
	f.Add([]byte(closeBody(1000, "")))
	f.Add([]byte(closeBody(1001, "going away")))
	f.Add([]byte(closeBody(1005, "")))
	f.Add([]byte(closeBody(2999, "x")))
	f.Add([]byte(closeBody(3000, "é")))
	f.Add([]byte(closeBody(4999, strings.Repeat("r", 123))))
	f.Add([]byte(closeBody(4999, strings.Repeat("r", 124))))
	f.Add([]byte(closeBody(5000, "")))
	f.Add([]byte(closeBody(1000, "\xed\xa0\x80")))
	_, valid := loadCloseCodes(f)
	f.Fuzz(func(t *testing.T, p []byte) {
		code, reason, err := codec.ParseClosePayload(p)
		wantCode, wantReason, wantErr := closeModel(valid, p)
		if err != wantErr {
			t.Fatalf("ParseClosePayload(%q) error = %v, want %v", p, err, wantErr)
		}
		if err != nil {
			var pe *codec.ProtocolError
			if !errors.As(err, &pe) || pe.Code != codec.CloseProtocolError && pe.Code != codec.CloseInvalidFramePayloadData {
				t.Fatalf("ParseClosePayload(%q) error %v has no 1002 or 1007 code", p, err)
			}
			return
		}
		if code != wantCode || string(reason) != wantReason {
			t.Fatalf("ParseClosePayload(%q) = %d %q, want %d %q", p, code, reason, wantCode, wantReason)
		}
		if len(p) == 0 {
			return // no code on the wire: nothing to build back
		}
		if err := codec.CheckCloseReason(code, string(reason)); err != nil {
			t.Fatalf("CheckCloseReason(%d, %q) = %v for a payload ParseClosePayload accepted", code, reason, err)
		}
		if back := codec.AppendClosePayload(nil, code, string(reason)); !bytes.Equal(back, p) {
			t.Fatalf("AppendClosePayload(%d, %q) = %q, want %q", code, reason, back, p)
		}
	})
}
