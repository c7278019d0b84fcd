package natsbroker

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"

	"github.com/wsactor/wsactor/session"
)

// DefaultPrefix is the subject prefix of the rooms when Options.Prefix is
// empty.
const DefaultPrefix = "wsactor.room"

// MaxTokenLen is the longest token Token writes out; a room whose escaped
// name would be longer is named by the hash of its name. NATS carries a
// subject in the protocol's control line (4 KiB by default), so a name of
// any length must not become a subject of any length.
const MaxTokenLen = 128

// Token returns the subject token of a room: one NATS subject token, never a
// wildcard, a different one for every name. Bytes of A-Z, a-z, 0-9, '-' and
// '_' stay as they are; every other byte (a dot, a space, '*', '>', '~',
// each byte of a multi-byte UTF-8 character) becomes '~' and two upper-case
// hex digits. The empty name is "~", which no other name gives, since every
// other '~' is followed by two hex digits. A name whose escaped form would
// be longer than MaxTokenLen is "~~" and the SHA-256 of the name in hex; its
// messages also carry the escaped name in a header, and a receiver drops a
// message whose name is not its room's, so that even two names with one hash
// never receive each other's messages.
//
//	"lobby"       lobby
//	"chat.fr"     chat~2Efr
//	"a b"         a~20b
//	">"           ~3E
//	"café"        caf~C3~A9
//	""            ~
func Token(room string) string {
	tok, _ := token(room)
	return tok
}

// token returns the room's token and whether it is a hash.
func token(room string) (tok string, hashed bool) {
	if room == "" {
		return "~", false
	}
	n := 0
	for i := 0; i < len(room); i++ {
		if plain(room[i]) {
			n++
		} else {
			n += 3
		}
	}
	if n > MaxTokenLen {
		sum := sha256.Sum256([]byte(room))
		return "~~" + hex.EncodeToString(sum[:]), true
	}
	if n == len(room) {
		return room, false
	}
	return escape(room, n), false
}

// escape writes room with its bytes that are not plain as ~XX; n is the
// length of the result.
func escape(room string, n int) string {
	const digits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(n)
	for i := 0; i < len(room); i++ {
		c := room[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('~')
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&15])
	}
	return b.String()
}

// escaped returns the escaped name of room whatever its length: the value
// of the room header of a hashed room's messages.
func escaped(room string) string {
	n := 0
	for i := 0; i < len(room); i++ {
		if plain(room[i]) {
			n++
		} else {
			n += 3
		}
	}
	return escape(room, n)
}

func plain(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// The last token of a subject names the message type.
const (
	textToken   = "t"
	binaryToken = "b"
)

// typeToken returns the last token of a message of type typ.
func typeToken(typ session.MessageType) (string, error) {
	switch typ {
	case session.Text:
		return textToken, nil
	case session.Binary:
		return binaryToken, nil
	}
	return "", errors.New("natsbroker: publish: a message type other than text or binary")
}

// messageType is the inverse of typeToken, from a whole subject.
func messageType(subject string) (session.MessageType, bool) {
	i := strings.LastIndexByte(subject, '.')
	switch subject[i+1:] {
	case textToken:
		return session.Text, true
	case binaryToken:
		return session.Binary, true
	}
	return 0, false
}

// checkPrefix says whether p can begin a subject: tokens of printable
// characters without wildcards, none empty.
func checkPrefix(p string) error {
	for tok := range strings.SplitSeq(p, ".") {
		if tok == "" {
			return errors.New("natsbroker: Options.Prefix " + strconv.Quote(p) + " has an empty token")
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c <= ' ' || c == 0x7f || c == '*' || c == '>' {
				return errors.New("natsbroker: Options.Prefix " + strconv.Quote(p) + " has a wildcard, a space or a control character")
			}
		}
	}
	return nil
}
