package natsbroker

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestToken(t *testing.T) {
	long := strings.Repeat("x", MaxTokenLen+1)
	for _, tc := range []struct {
		name string
		room string
		want string
	}{
		{
			name: "plain",
			room: "lobby-1_a",
			want: "lobby-1_a",
		},
		{
			name: "dot",
			room: "chat.fr",
			want: "chat~2Efr",
		},
		{
			name: "space",
			room: "a b",
			want: "a~20b",
		},
		{
			name: "wildcards",
			room: "*>",
			want: "~2A~3E",
		},
		{
			name: "escape character",
			room: "~2E",
			want: "~7E2E",
		},
		{
			name: "unicode",
			room: "café",
			want: "caf~C3~A9",
		},
		{
			name: "empty",
			room: "",
			want: "~",
		},
		{
			name: "longest plain",
			room: long[:MaxTokenLen],
			want: long[:MaxTokenLen],
		},
		{
			name: "too long",
			room: long,
			want: "~~" + sha256Hex(long),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Token(tc.room); got != tc.want {
				t.Errorf("Token(%.40q) = %q, want %q", tc.room, got, tc.want)
			}
		})
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// validToken says whether tok is one NATS subject token that is not a
// wildcard: printable, no dot, no space, no '*' or '>'.
func validToken(tok string) bool {
	if tok == "" || len(tok) > MaxTokenLen {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' {
			return false
		}
	}
	return true
}

// FuzzToken: every name gives one valid token, and two different names two
// different tokens (up to SHA-256 for the long ones).
func FuzzToken(f *testing.F) {
	for _, s := range []string{"", "a", "a.b", "a~2Eb", "~", "~~", "*", ">", "a b", "日本", strings.Repeat("é", 80), "\x00\xff"} {
		f.Add(s, s+".")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ta, tb := Token(a), Token(b)
		if !validToken(ta) || !validToken(tb) {
			t.Fatalf("Token(%q) = %q, Token(%q) = %q: not a valid token", a, ta, b, tb)
		}
		if a != b && ta == tb {
			t.Fatalf("Token(%q) = Token(%q) = %q", a, b, ta)
		}
		if a == b && ta != tb {
			t.Fatalf("Token(%q) differs from itself", a)
		}
	})
}

func TestCheckPrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		ok     bool
	}{
		{prefix: "wsactor.room", ok: true},
		{prefix: "app", ok: true},
		{prefix: "a..b"},
		{prefix: ".a"},
		{prefix: "a.*"},
		{prefix: "a.>"},
		{prefix: "a b"},
	} {
		if err := checkPrefix(tc.prefix); (err == nil) != tc.ok {
			t.Errorf("checkPrefix(%q) = %v, want ok %v", tc.prefix, err, tc.ok)
		}
	}
}
