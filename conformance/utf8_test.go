package conformance

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/gobwas/ws"
)

// x decodes hex bytes written with spaces: x("C0 AF").
func x(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// utf8Cases are Autobahn's group 6: text messages must be valid UTF-8 (RFC
// 6455 5.6, 8.1), whole or in fragments, with code points split anywhere;
// an invalid one fails the connection with 1007 (7.4.1). Invalid means
// what RFC 3629 says: overlong forms, surrogates, code points above
// U+10FFFF, truncated sequences, the bytes 0xC0, 0xC1 and 0xF5-0xFF, and
// continuation bytes without a lead. The server must fail fast: as soon as
// the bytes received make the text impossible, without waiting for the
// rest of the frame or message.
func utf8Cases() []tcase {
	const (
		valid   = "5.6, 8.1: text is UTF-8 (RFC 3629); the echo server returns it"
		invalid = "8.1: text that is not valid UTF-8 fails the connection; 7.4.1: with 1007"
		fast    = "8.1: invalid UTF-8 fails the connection with 1007 (7.4.1) as soon as it is seen, without waiting for the final fragment"
	)
	var cs []tcase

	// 6.1: valid text in one frame.
	singles := []struct {
		name string
		p    []byte
	}{
		{"ASCII", []byte("Hello, world!")},
		{"mixed Latin-1 supplement", []byte("Hello-µ@ßöäüàá-UTF-8!!")},
		{"Greek 'κόσμε'", []byte("κόσμε")},
		{"U+0000 (NUL byte)", x("00")},
		{"U+007F, the last 1-byte code point", x("7F")},
		{"U+0080, the first 2-byte code point", x("C2 80")},
		{"U+07FF, the last 2-byte code point", x("DF BF")},
		{"U+0800, the first 3-byte code point", x("E0 A0 80")},
		{"U+D7FF, just below the surrogates", x("ED 9F BF")},
		{"U+E000, just above the surrogates", x("EE 80 80")},
		{"U+FEFF, a byte order mark", x("EF BB BF")},
		{"U+FFFD, the replacement character", x("EF BF BD")},
		{"U+FFFE and U+FFFF, noncharacters that are valid UTF-8", x("EF BF BE EF BF BF")},
		{"U+10000, the first 4-byte code point", x("F0 90 80 80")},
		{"U+1F600, an emoji", x("F0 9F 98 80")},
		{"U+10FFFF, the last code point", x("F4 8F BF BF")},
		{"every 1-byte code point", ascending(128)},
	}
	for i, s := range singles {
		cs = append(cs, tcase{
			name:  fmt.Sprintf("6.1.%d valid text: %s", i+1, s.name),
			rfc:   valid,
			steps: []step{send(textBytes(s.p)), expectMessage(ws.OpText, s.p)},
			want:  echoed,
		})
	}

	// 6.2: valid text in fragments, code points split between them.
	splits := []struct {
		name  string
		parts [][]byte
	}{
		{"'κόσμε' in 1-byte fragments", split([]byte("κόσμε"), 1)},
		{"mixed Latin-1 supplement in 1-byte fragments", split([]byte("Hello-µ@ßöäüàá-UTF-8!!"), 1)},
		{"U+00F1 split 1|1", [][]byte{x("C3"), x("B1")}},
		{"U+20AC split 1|2", [][]byte{x("E2"), x("82 AC")}},
		{"U+20AC split 2|1", [][]byte{x("E2 82"), x("AC")}},
		{"U+1F600 split 1|3", [][]byte{x("F0"), x("9F 98 80")}},
		{"U+1F600 split 2|2", [][]byte{x("F0 9F"), x("98 80")}},
		{"U+1F600 split 3|1", [][]byte{x("F0 9F 98"), x("80")}},
		{"U+10FFFF split 1|1|1|1", [][]byte{x("F4"), x("8F"), x("BF"), x("BF")}},
		{"U+0800 split after its lead byte, with empty fragments around", [][]byte{nil, x("E0"), nil, x("A0 80"), nil}},
		{"mixed-width text in 7-byte fragments", split([]byte(strings.Repeat("aµ€😀κόσμε", 20)), 7)},
	}
	for i, s := range splits {
		whole := cat(s.parts...)
		cs = append(cs, tcase{
			name:  fmt.Sprintf("6.2.%d valid text in fragments: %s", i+1, s.name),
			rfc:   valid + "; 5.4: code points may be split between fragments",
			steps: []step{send(textFragments(s.parts, true)...), expectMessage(ws.OpText, whole)},
			want:  echoed,
		})
	}
	n := len(splits)
	cs = append(cs,
		tcase{
			name: fmt.Sprintf("6.2.%d valid text in one frame written 1 byte at a time", n+1),
			rfc:  valid,
			steps: []step{
				sendChunked(1, textBytes([]byte("aµ€😀κόσμε"))),
				expectText("aµ€😀κόσμε"),
			},
			want: echoed,
		},
		tcase{
			name: fmt.Sprintf("6.2.%d U+1F600 split 2|2 with a ping between the fragments", n+2),
			rfc:  valid + "; 5.4: control frames between fragments",
			steps: []step{
				send(first(textBytes(x("F0 9F"))), pingFrame([]byte("mid"))),
				expectPong([]byte("mid")),
				send(cont(x("98 80"), true)),
				expectMessage(ws.OpText, x("F0 9F 98 80")),
			},
			want: echoed,
		},
	)

	// 6.3 to 6.8: invalid text in one frame.
	invalids := []struct {
		group string
		cases []struct {
			name string
			p    []byte
		}
	}{
		{"3", []struct {
			name string
			p    []byte
		}{
			{"overlong 1-byte form of '/' in 2 bytes", x("C0 AF")},
			{"overlong 2-byte form of '/' in 3 bytes", x("E0 80 AF")},
			{"overlong form of '/' in 4 bytes", x("F0 80 80 AF")},
			{"overlong form of '/' in 5 bytes", x("F8 80 80 80 AF")},
			{"overlong U+007F in 2 bytes, the largest 2-byte overlong", x("C1 BF")},
			{"overlong U+07FF in 3 bytes, the largest 3-byte overlong", x("E0 9F BF")},
			{"overlong U+FFFF in 4 bytes, the largest 4-byte overlong", x("F0 8F BF BF")},
			{"overlong NUL in 2 bytes", x("C0 80")},
			{"overlong NUL in 3 bytes", x("E0 80 80")},
			{"overlong '/' after valid text", cat([]byte("κόσμε"), x("C0 AF"))},
		}},
		{"4", []struct {
			name string
			p    []byte
		}{
			{"surrogate U+D800", x("ED A0 80")},
			{"surrogate U+DB7F", x("ED AD BF")},
			{"surrogate U+DB80", x("ED AE 80")},
			{"surrogate U+DBFF", x("ED AF BF")},
			{"surrogate U+DC00", x("ED B0 80")},
			{"surrogate U+DF80", x("ED BE 80")},
			{"surrogate U+DFFF", x("ED BF BF")},
			{"surrogate pair U+D800 U+DC00 (CESU-8)", x("ED A0 80 ED B0 80")},
			{"surrogate pair U+DBFF U+DFFF (CESU-8)", x("ED AF BF ED BF BF")},
		}},
		{"5", []struct {
			name string
			p    []byte
		}{
			{"U+110000, just above the last code point", x("F4 90 80 80")},
			{"U+13FFFF", x("F4 BF BF BF")},
			{"U+1FFFFF, the largest 4-byte form", x("F7 BF BF BF")},
			{"lead byte 0xF5", x("F5 80 80 80")},
			{"5-byte form of U+200000", x("F8 88 80 80 80")},
			{"6-byte form of U+4000000", x("FC 84 80 80 80 80")},
			{"6-byte form of U+7FFFFFFF", x("FD BF BF BF BF BF")},
		}},
		{"6", []struct {
			name string
			p    []byte
		}{
			{"lead byte 0xC2 alone at the end", x("C2")},
			{"U+20AC without its last byte at the end", x("E2 82")},
			{"U+1F600 without its last byte at the end", x("F0 9F 98")},
			{"'κόσμε' cut inside its last code point", x("CE BA E1 BD B9 CF 83 CE BC CE")},
			{"2-byte lead followed by ASCII", x("C2 41")},
			{"3-byte lead and one continuation followed by ASCII", x("E2 82 41")},
			{"4-byte lead and two continuations followed by ASCII", x("F0 9F 98 41")},
			{"every lead byte without its continuations", x("C2 20 E0 20 E1 20 ED 20 F0 20 F1 20 F4 20")},
		}},
		{"7", []struct {
			name string
			p    []byte
		}{
			{"byte 0xFE", x("FE")},
			{"byte 0xFF", x("FF")},
			{"bytes FE FE FF FF", x("FE FE FF FF")},
			{"byte 0xFF between ASCII", cat([]byte("abc"), x("FF"), []byte("def"))},
			{"byte 0xC0 between ASCII", cat([]byte("abc"), x("C0"), []byte("def"))},
			{"byte 0xC1 between ASCII", cat([]byte("abc"), x("C1"), []byte("def"))},
		}},
		{"8", []struct {
			name string
			p    []byte
		}{
			{"lone continuation byte 0x80", x("80")},
			{"lone continuation byte 0xBF", x("BF")},
			{"two continuation bytes", x("80 BF")},
			{"seven continuation bytes", x("80 BF 80 BF 80 BF 80")},
			{"continuation byte between ASCII", cat([]byte("abc"), x("80"), []byte("def"))},
			{"every continuation byte 0x80-0xBF in a row", func() []byte {
				var b []byte
				for c := 0x80; c <= 0xBF; c++ {
					b = append(b, byte(c))
				}
				return b
			}()},
			{"a continuation byte too many after U+03BA", x("CE BA 80")},
		}},
	}
	for _, g := range invalids {
		for i, c := range g.cases {
			cs = append(cs, tcase{
				name:  fmt.Sprintf("6.%s.%d invalid text: %s", g.group, i+1, c.name),
				rfc:   invalid,
				steps: []step{send(textBytes(c.p))},
				want:  fails(1007),
			})
		}
	}

	// 6.9: fail fast. The bad fragment goes out without FIN, and nothing
	// after it: the close must come all the same.
	failFast := []struct {
		name  string
		parts [][]byte // all sent unfinished
	}{
		{"byte 0xFF in the first fragment", [][]byte{x("FF")}},
		{"overlong '/' after valid text in the first fragment", [][]byte{cat([]byte("Hello"), x("C0 AF"))}},
		{"surrogate U+D800 in the second fragment", [][]byte{[]byte("κόσμε"), x("ED A0 80")}},
		{"surrogate completed impossible by the second fragment (ED | A0)", [][]byte{cat([]byte("abc"), x("ED")), x("A0")}},
		{"code point above U+10FFFF made by the second fragment (F4 | 90)", [][]byte{x("F4"), x("90")}},
		{"overlong form made by the second fragment (E0 | 80)", [][]byte{x("E0"), x("80")}},
		{"lone continuation byte in the third fragment", [][]byte{[]byte("one "), []byte("two "), cat([]byte("abc"), x("80"))}},
		{"byte 0xFE in a fragment after a valid 64 KiB one", [][]byte{pattern(65536, true), x("FE")}},
		{"valid first fragment that ends mid code point, invalid byte next", [][]byte{x("CE BA E1"), x("41")}},
	}
	for i, f := range failFast {
		cs = append(cs, tcase{
			name:  fmt.Sprintf("6.9.%d fail fast, no final fragment sent: %s", i+1, f.name),
			rfc:   fast,
			steps: []step{send(textFragments(f.parts, false)...)},
			want:  fails(1007),
		})
	}
	m := len(failFast)
	cs = append(cs,
		tcase{
			name: fmt.Sprintf("6.9.%d fail fast inside a frame: 16 of 65536 declared bytes sent, the 6th 0xFF", m+1),
			rfc:  fast + "; nor for the rest of the frame",
			steps: []step{send(frame{
				fin: true, op: ws.OpText, declared: true, declare: 65536,
				payload: cat([]byte("Hello"), x("FF"), []byte("0123456789")),
			})},
			want: fails(1007),
		},
		tcase{
			name: fmt.Sprintf("6.9.%d fail fast inside an unfinished frame: 8 of 1000 declared bytes sent, a surrogate among them", m+2),
			rfc:  fast + "; nor for the rest of the frame",
			steps: []step{send(frame{
				op: ws.OpText, declared: true, declare: 1000,
				payload: cat([]byte("abc"), x("ED B0 80"), []byte("de")),
			})},
			want: fails(1007),
		},
	)

	// 6.10: a fragmented message whose text is invalid only once it ends,
	// or whose final fragment holds the invalid byte.
	ends := []struct {
		name  string
		parts [][]byte
	}{
		{"'κόσμε' whose final fragment ends inside a code point", [][]byte{[]byte("κόσ"), x("CE BC CE")}},
		{"U+1F600 whose last byte never comes (F0 9F | 98, final)", [][]byte{x("F0 9F"), x("98")}},
		{"final fragment that is a lone lead byte", [][]byte{[]byte("abc"), x("E2")}},
		{"byte 0xFE in the final fragment", [][]byte{[]byte("abc"), x("FE")}},
		{"overlong NUL in the final fragment", [][]byte{[]byte("abc"), x("C0 80")}},
	}
	for i, e := range ends {
		cs = append(cs, tcase{
			name:  fmt.Sprintf("6.10.%d invalid fragmented text: %s", i+1, e.name),
			rfc:   invalid,
			steps: []step{send(textFragments(e.parts, true)...)},
			want:  fails(1007),
		})
	}

	// 6.11: binary messages are not text: any bytes are echoed.
	cs = append(cs,
		tcase{
			name:  "6.11.1 binary message with bytes that are not UTF-8 is echoed as is",
			rfc:   "5.6: only text frames carry UTF-8; binary data is the application's",
			steps: []step{send(binaryFrame(x("FF FE C0 AF ED A0 80 80"))), expectBinary(x("FF FE C0 AF ED A0 80 80"))},
			want:  echoed,
		},
		tcase{
			name: "6.11.2 fragmented binary message cut inside a would-be code point is echoed as is",
			rfc:  "5.6: only text frames carry UTF-8; binary data is the application's",
			steps: []step{
				send(first(binaryFrame(x("F0 9F"))), cont(x("FF"), true)),
				expectBinary(x("F0 9F FF")),
			},
			want: echoed,
		},
		tcase{
			name: "6.11.3 valid text after invalid binary data on the same connection",
			rfc:  "5.6; 8.1: each text message is checked on its own",
			steps: []step{
				send(binaryFrame(x("C0"))), expectBinary(x("C0")),
				send(textFrame("κόσμε")), expectText("κόσμε"),
			},
			want: echoed,
		},
	)
	return cs
}

// split cuts p into pieces of n bytes.
func split(p []byte, n int) [][]byte {
	var parts [][]byte
	for len(p) > n {
		parts = append(parts, p[:n])
		p = p[n:]
	}
	return append(parts, p)
}

// textFragments makes a text message of parts, one frame each; the last
// has FIN set when fin is.
func textFragments(parts [][]byte, fin bool) []frame {
	fs := make([]frame, len(parts))
	for i, p := range parts {
		fs[i] = cont(p, fin && i == len(parts)-1)
		if i == 0 {
			fs[i].op = ws.OpText
		}
	}
	return fs
}
