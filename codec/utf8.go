package codec

import "unicode/utf8"

// UTF8 validates UTF-8 text that arrives in pieces: across fragments of a
// message and across reads. It fails fast: Write reports false at the first
// byte that no valid continuation could follow, not at the end of the
// message (Autobahn 6.x, RFC 6455 section 8.1). The zero value is ready.
//
// The standard library validates only whole strings; the state machine here
// carries an incomplete code point from one piece to the next and hands the
// complete middle of each piece to utf8.Valid, which is faster than any
// byte-at-a-time table.
type UTF8 struct {
	state uint8
}

// Decoder states: how many continuation bytes are still expected and, for the
// four lead bytes whose second byte has a narrower range, which range.
const (
	utf8Accept uint8 = iota
	utf8Need1        // one more 80-BF
	utf8Need2        // two more 80-BF
	utf8Need3        // three more 80-BF
	utf8E0           // A0-BF, then one more (no overlong 3-byte forms)
	utf8ED           // 80-9F, then one more (no surrogates)
	utf8F0           // 90-BF, then two more (no overlong 4-byte forms)
	utf8F4           // 80-8F, then two more (nothing above U+10FFFF)
	utf8Reject
)

// Write feeds p and reports whether the text so far can still be valid UTF-8.
// After it reported false it keeps reporting false until Reset.
func (v *UTF8) Write(p []byte) bool {
	if v.state == utf8Reject {
		return false
	}
	i := 0
	for v.state != utf8Accept && i < len(p) {
		v.state = utf8Step(v.state, p[i])
		i++
		if v.state == utf8Reject {
			return false
		}
	}
	if i == len(p) {
		return true
	}
	p = p[i:]
	cut := incompleteTail(p)
	if !utf8.Valid(p[:cut]) {
		v.state = utf8Reject
		return false
	}
	for _, b := range p[cut:] {
		v.state = utf8Step(v.state, b)
		if v.state == utf8Reject {
			return false
		}
	}
	return true
}

// Done reports whether the text ends on a code point boundary with nothing
// invalid seen: true at the end of a valid message.
func (v *UTF8) Done() bool { return v.state == utf8Accept }

// Reset makes v ready for a new message.
func (v *UTF8) Reset() { v.state = utf8Accept }

// ValidUTF8 reports whether p is entirely valid UTF-8.
func ValidUTF8(p []byte) bool { return utf8.Valid(p) }

// incompleteTail returns the index where a code point that p cuts off at its
// end begins, or len(p) when p ends on a boundary (or the tail is invalid
// anyway, which utf8.Valid will then report).
func incompleteTail(p []byte) int {
	n := len(p)
	for k := 1; k <= 3 && k <= n; k++ {
		b := p[n-k]
		if b < 0x80 {
			return n
		}
		if b >= 0xC0 { // a lead byte
			if seqLen(b) > k {
				return n - k
			}
			return n
		}
	}
	return n
}

func seqLen(lead byte) int {
	switch {
	case lead >= 0xF0:
		return 4
	case lead >= 0xE0:
		return 3
	default:
		return 2
	}
}

func utf8Step(state, b uint8) uint8 {
	switch state {
	case utf8Accept:
		switch {
		case b < 0x80:
			return utf8Accept
		case b >= 0xC2 && b <= 0xDF:
			return utf8Need1
		case b == 0xE0:
			return utf8E0
		case b == 0xED:
			return utf8ED
		case b >= 0xE1 && b <= 0xEF:
			return utf8Need2
		case b == 0xF0:
			return utf8F0
		case b >= 0xF1 && b <= 0xF3:
			return utf8Need3
		case b == 0xF4:
			return utf8F4
		}
		return utf8Reject
	case utf8Need1, utf8Need2, utf8Need3:
		if b >= 0x80 && b <= 0xBF {
			return state - 1
		}
	case utf8E0:
		if b >= 0xA0 && b <= 0xBF {
			return utf8Need1
		}
	case utf8ED:
		if b >= 0x80 && b <= 0x9F {
			return utf8Need1
		}
	case utf8F0:
		if b >= 0x90 && b <= 0xBF {
			return utf8Need2
		}
	case utf8F4:
		if b >= 0x80 && b <= 0x8F {
			return utf8Need2
		}
	}
	return utf8Reject
}
