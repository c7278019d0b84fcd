package chat

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wsactor/wsactor/session"
)

// Limits of the protocol, in runes.
const (
	MaxNameLen = 32   // a room's or a member's name
	MaxTextLen = 2000 // a say's text
)

// The messages the server sends. Each is encoded once and written to every
// member it is for.
type (
	welcome struct {
		Type    string   `json:"type"` // "welcome"
		Room    string   `json:"room"`
		Name    string   `json:"name"`
		Members []string `json:"members"`
	}
	presence struct {
		Type string `json:"type"` // "joined" or "left"
		Name string `json:"name"`
	}
	said struct {
		Type string `json:"type"` // "said"
		Name string `json:"name"`
		Text string `json:"text"`
		At   string `json:"at"` // RFC 3339, UTC
	}
)

// encode returns v as JSON. The values are the fixed structs above, of
// strings: encoding them cannot fail.
func encode(v any) []byte {
	p, err := json.Marshal(v)
	if err != nil {
		panic("chat: encode: " + err.Error())
	}
	return p
}

func saidAt(name, text string, at time.Time) []byte {
	return encode(said{Type: "said", Name: name, Text: text, At: at.UTC().Format(time.RFC3339)})
}

// cleanName returns s with the spaces around it trimmed, and whether what
// is left is a valid room or member name: 1 to MaxNameLen letters, digits,
// '-', '_' or '.'. Invalid UTF-8 decodes to U+FFFD, which is none of those.
func cleanName(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > MaxNameLen*utf8.UTFMax {
		return "", false
	}
	n := 0
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '_' && r != '.' {
			return "", false
		}
		n++
	}
	return s, n <= MaxNameLen
}

// uniqueName returns base, or when taken says it is in use, base with the
// first suffix "-2", "-3", ... that makes it free; base is cut short so that
// the result stays within MaxNameLen runes.
func uniqueName(base string, taken func(string) bool) string {
	if !taken(base) {
		return base
	}
	for i := 2; ; i++ {
		suffix := "-" + strconv.Itoa(i)
		name := cutRunes(base, MaxNameLen-len(suffix)) + suffix
		if !taken(name) {
			return name
		}
	}
}

// cutRunes returns s's first n runes.
func cutRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// violation is why a session is closed for what it sent: the close frame's
// code and reason (a reason is at most 123 bytes).
type violation struct {
	close  session.CloseReason
	detail string // for the log
}

func violated(close session.CloseReason, detail string) *violation {
	return &violation{close: close, detail: detail}
}

// The close frames of the protocol's violations. The codes are argued in
// the package doc.
var (
	notText = session.CloseReason{Code: session.CloseUnsupportedData, Reason: "binary messages are not part of the chat protocol"}
	badSay  = session.CloseReason{Code: session.ClosePolicyViolation, Reason: `want {"type":"say","text":"1 to 2000 characters"}`}
)

// parseSay returns the text of a client's message, which must be a text
// message holding a JSON object with exactly two members, "type": "say"
// and "text", a string of 1 to MaxTextLen runes. The member names are
// matched exactly (encoding/json alone would match "TYPE" too).
func parseSay(typ session.MessageType, p []byte) (string, *violation) {
	if typ != session.Text {
		return "", violated(notText, "a binary message")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(p, &obj); err != nil {
		return "", violated(badSay, "not a JSON object: "+err.Error())
	}
	var kind, text string
	rawType, okType := obj["type"]
	rawText, okText := obj["text"]
	switch {
	case obj == nil:
		return "", violated(badSay, "null")
	case len(obj) != 2 || !okType || !okText:
		return "", violated(badSay, "want exactly the members type and text")
	case json.Unmarshal(rawType, &kind) != nil || kind != "say":
		return "", violated(badSay, "type is not \"say\": "+string(rawType))
	case json.Unmarshal(rawText, &text) != nil || rawText[0] != '"':
		return "", violated(badSay, "text is not a string")
	}
	if n := utf8.RuneCountInString(text); n < 1 || n > MaxTextLen {
		return "", violated(badSay, "text of "+strconv.Itoa(n)+" runes")
	}
	return text, nil
}
