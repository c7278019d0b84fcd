package codec_test

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wsactor/wsactor/codec"
)

var utf8Cases = []struct {
	name  string
	in    string
	valid bool
}{
	{
		name:  "empty",
		in:    "",
		valid: true,
	},
	{
		name:  "ascii",
		in:    "hello, world",
		valid: true,
	},
	{
		name:  "two-byte sequences",
		in:    "héllo wörld ß",
		valid: true,
	},
	{
		name:  "three-byte sequences",
		in:    "€ 日本語",
		valid: true,
	},
	{
		name:  "four-byte sequences",
		in:    "𝄞 😀",
		valid: true,
	},
	{
		name:  "boundaries of each length",
		in:    "\x00\x7f\u0080\u07ff\u0800\ufffd\uffff\U00010000\U0010ffff",
		valid: true,
	},
	{
		name:  "last code points before and after the surrogates",
		in:    "\ud7ff\ue000",
		valid: true,
	},
	{
		name:  "lone continuation byte",
		in:    "a\x80b",
		valid: false,
	},
	{
		name:  "byte 0xFF",
		in:    "\xff",
		valid: false,
	},
	{
		name:  "byte 0xFE",
		in:    "ab\xfe",
		valid: false,
	},
	{
		name:  "lead byte 0xF5, beyond U+10FFFF",
		in:    "\xf5\x80\x80\x80",
		valid: false,
	},
	{
		name:  "overlong two-byte slash",
		in:    "\xc0\xaf",
		valid: false,
	},
	{
		name:  "overlong two-byte with lead 0xC1",
		in:    "\xc1\xbf",
		valid: false,
	},
	{
		name:  "overlong three-byte",
		in:    "\xe0\x80\xaf",
		valid: false,
	},
	{
		name:  "overlong three-byte just below U+0800",
		in:    "\xe0\x9f\xbf",
		valid: false,
	},
	{
		name:  "overlong four-byte",
		in:    "\xf0\x80\x80\xaf",
		valid: false,
	},
	{
		name:  "overlong four-byte just below U+10000",
		in:    "\xf0\x8f\xbf\xbf",
		valid: false,
	},
	{
		name:  "first high surrogate",
		in:    "\xed\xa0\x80",
		valid: false,
	},
	{
		name:  "last low surrogate",
		in:    "\xed\xbf\xbf",
		valid: false,
	},
	{
		name:  "surrogate pair encoded as two code points (CESU-8)",
		in:    "\xed\xa0\xbd\xed\xb8\x80",
		valid: false,
	},
	{
		name:  "U+110000",
		in:    "\xf4\x90\x80\x80",
		valid: false,
	},
	{
		name:  "truncated two-byte at the end",
		in:    "ab\xc3",
		valid: false,
	},
	{
		name:  "truncated three-byte at the end",
		in:    "ab\xe2\x82",
		valid: false,
	},
	{
		name:  "truncated four-byte at the end",
		in:    "ab\xf0\x9f\x98",
		valid: false,
	},
	{
		name:  "truncated sequence followed by ascii",
		in:    "\xe2\x82a",
		valid: false,
	},
	{
		name:  "too many continuation bytes",
		in:    "\xc3\xa9\xa9",
		valid: false,
	},
	{
		name:  "five-byte form",
		in:    "\xf8\x88\x80\x80\x80",
		valid: false,
	},
}

func TestUTF8Table(t *testing.T) {
	for _, tc := range utf8Cases {
		t.Run(tc.name, func(t *testing.T) {
			if utf8.ValidString(tc.in) != tc.valid {
				t.Fatalf("table error: utf8.ValidString(%q) = %v", tc.in, !tc.valid)
			}
			var v codec.UTF8
			got := v.Write([]byte(tc.in)) && v.Done()
			if got != tc.valid {
				t.Errorf("whole: valid = %v, want %v", got, tc.valid)
			}
			if codec.ValidUTF8([]byte(tc.in)) != tc.valid {
				t.Errorf("ValidUTF8 = %v, want %v", !tc.valid, tc.valid)
			}
			v.Reset()
			ok := true
			for i := range len(tc.in) {
				ok = v.Write([]byte{tc.in[i]})
				if !ok {
					break
				}
			}
			if got := ok && v.Done(); got != tc.valid {
				t.Errorf("byte by byte: valid = %v, want %v", got, tc.valid)
			}
		})
	}
}

// TestUTF8FailsFast feeds text whose first impossible byte comes before the
// end: Write must report false for the piece holding that byte, whatever
// follows.
func TestUTF8FailsFast(t *testing.T) {
	tests := []struct {
		name   string
		pieces []string
		failAt int // index of the first piece for which Write reports false
	}{
		{
			name:   "above U+10FFFF seen at its second byte",
			pieces: []string{"\xf4\x90"},
			failAt: 0,
		},
		{
			name:   "above U+10FFFF split after its lead byte",
			pieces: []string{"ok\xf4", "\x90", "\x80\x80"},
			failAt: 1,
		},
		{
			name:   "surrogate seen at its second byte",
			pieces: []string{"abc\xed\xa0"},
			failAt: 0,
		},
		{
			name:   "overlong three-byte seen at its second byte",
			pieces: []string{"\xe0", "\x80"},
			failAt: 1,
		},
		{
			name:   "overlong four-byte seen at its second byte",
			pieces: []string{"x", "\xf0\x8f"},
			failAt: 1,
		},
		{
			name:   "lead byte 0xC0 fails alone",
			pieces: []string{"abc", "\xc0"},
			failAt: 1,
		},
		{
			name:   "lead byte 0xF5 fails alone",
			pieces: []string{"\xf5"},
			failAt: 0,
		},
		{
			name:   "ascii where a continuation byte must come",
			pieces: []string{"\xf0\x9f", "\x98", "A"},
			failAt: 2,
		},
		{
			name:   "bad byte in the middle of a long piece",
			pieces: []string{strings.Repeat("é", 100) + "\xff" + strings.Repeat("é", 100)},
			failAt: 0,
		},
		{
			name:   "stays failed after valid text",
			pieces: []string{"\xff", "valid"},
			failAt: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v codec.UTF8
			for i, p := range tt.pieces {
				ok := v.Write([]byte(p))
				if want := i < tt.failAt; ok != want {
					t.Fatalf("Write(%q), piece %d, = %v, want %v", p, i, ok, want)
				}
			}
			if v.Done() {
				t.Fatal("Done after a failure = true")
			}
			v.Reset()
			if !v.Write([]byte("é")) || !v.Done() {
				t.Fatal("Reset did not clear the failure")
			}
		})
	}
}

// TestUTF8EverySplit feeds multibyte text in two and in three pieces at every
// pair of split points, valid and invalid, and compares with utf8.Valid.
func TestUTF8EverySplit(t *testing.T) {
	inputs := []string{
		"é",
		"€",
		"𝄞",
		"a€b𝄞cé",
		"日本語テキスト",
		"\U0010ffff\U00010000\u0800\u07ff",
		"ab\xf4\x90\x80\x80",
		"\xed\xa0\x80x",
		"€\xe2\x82",
		"𝄞\xf0\x9d\x84",
		"\xe0\xa0\x80\xe0\x9f\xbf",
	}
	for _, in := range inputs {
		want := utf8.ValidString(in)
		for i := 0; i <= len(in); i++ {
			for j := i; j <= len(in); j++ {
				var v2, v3 codec.UTF8
				got2 := v2.Write([]byte(in[:i]))
				got2 = v2.Write([]byte(in[i:])) && got2 && v2.Done()
				if got2 != want {
					t.Errorf("%q split at %d: valid = %v, want %v", in, i, got2, want)
				}
				got3 := v3.Write([]byte(in[:i]))
				got3 = v3.Write([]byte(in[i:j])) && got3
				got3 = v3.Write([]byte(in[j:])) && got3 && v3.Done()
				if got3 != want {
					t.Errorf("%q split at %d and %d: valid = %v, want %v", in, i, j, got3, want)
				}
			}
		}
	}
}

// extendable reports whether some bytes appended to q could make it valid
// UTF-8: the reference for a validator that fails fast. It uses only
// utf8.Valid. A cut code point is completed by trying every second byte
// (whose range depends on the lead byte) followed by any continuation bytes.
func extendable(q []byte) bool {
	if utf8.Valid(q) {
		return true
	}
	for k := 1; k <= 3 && k <= len(q); k++ {
		head, tail := q[:len(q)-k], q[len(q)-k:]
		if !utf8.Valid(head) {
			continue
		}
		cand := make([]byte, 0, 4)
		if k == 1 {
			for second := byte(0x80); second <= 0xbf; second++ {
				for pad := 0; pad <= 2; pad++ {
					cand = append(append(append(cand[:0], tail...), second), "\x80\x80"[:pad]...)
					if utf8.Valid(cand) {
						return true
					}
				}
			}
			continue
		}
		for pad := 1; pad <= 4-k; pad++ {
			cand = append(append(cand[:0], tail...), "\x80\x80"[:pad]...)
			if utf8.Valid(cand) {
				return true
			}
		}
	}
	return false
}

func TestExtendableReference(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{
			name: "valid text",
			in:   "a€",
			want: true,
		},
		{
			name: "cut three-byte sequence",
			in:   "a\xe2\x82",
			want: true,
		},
		{
			name: "cut four-byte sequence after its lead",
			in:   "\xf4",
			want: true,
		},
		{
			name: "impossible second byte",
			in:   "\xf4\x90",
			want: false,
		},
		{
			name: "invalid byte before a cut sequence",
			in:   "\xff\xe2",
			want: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := extendable([]byte(tt.in)); got != tt.want {
				t.Fatalf("extendable(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// checkStreaming feeds data to a UTF8 in the pieces that the cut points
// make, and checks each Write against extendable and the end against
// utf8.Valid.
func checkStreaming(t *testing.T, data []byte, cuts []int) {
	t.Helper()
	var v codec.UTF8
	start := 0
	for _, end := range append(cuts, len(data)) {
		got := v.Write(data[start:end])
		if want := extendable(data[:end]); got != want {
			t.Fatalf("%q cut at %v: Write of bytes %d-%d = %v, want %v", data, cuts, start, end, got, want)
		}
		if !got {
			return
		}
		start = end
	}
	if got, want := v.Done(), utf8.Valid(data); got != want {
		t.Fatalf("%q cut at %v: Done = %v, utf8.Valid = %v", data, cuts, got, want)
	}
}

// randomCuts returns up to eight sorted cut points in [0, n].
func randomCuts(rng *rand.Rand, n int) []int {
	cuts := make([]int, rng.IntN(9))
	for i := range cuts {
		cuts[i] = rng.IntN(n + 1)
	}
	slices.Sort(cuts)
	return cuts
}

// randomText returns bytes that are often valid UTF-8 and often almost so:
// code points of every length, with bytes dropped, changed or inserted.
func randomText(rng *rand.Rand) []byte {
	var b []byte
	for range rng.IntN(40) {
		switch rng.IntN(10) {
		case 0:
			b = append(b, byte(rng.IntN(256)))
		case 1:
			b = append(b, byte(0x80+rng.IntN(64)))
		case 2:
			b = append(b, byte(0xc0+rng.IntN(64)))
		default:
			var r rune
			switch rng.IntN(4) {
			case 0:
				r = rune(rng.IntN(0x80))
			case 1:
				r = rune(0x80 + rng.IntN(0x800-0x80))
			case 2:
				r = rune(0x800 + rng.IntN(0x10000-0x800))
			default:
				r = rune(0x10000 + rng.IntN(0x110000-0x10000))
			}
			b = utf8.AppendRune(b, r)
		}
	}
	if len(b) > 0 && rng.IntN(4) == 0 {
		b = b[:rng.IntN(len(b))]
	}
	return b
}

// TestUTF8MatchesStdlib is a property test: random text cut at random points
// must give the answer utf8.Valid gives, and fail at the first piece no
// continuation could save.
func TestUTF8MatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		data := randomText(rng)
		checkStreaming(t, data, randomCuts(rng, len(data)))
	}
}

func FuzzUTF8(f *testing.F) {
	for _, tc := range utf8Cases {
		f.Add([]byte(tc.in), uint64(len(tc.in)))
	}
	f.Add([]byte("a€b𝄞c"), uint64(7))
	f.Add([]byte("\xf4\x90\x80\x80"), uint64(1))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, uint64(len(data))))
		checkStreaming(t, data, randomCuts(rng, len(data)))
	})
}
