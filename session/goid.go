package session

import (
	"runtime"
	"strconv"
	"strings"
)

// goid returns the id of the calling goroutine, as runtime.Stack prints it.
// It costs a stack print (about a microsecond): the reader takes it once
// per goroutine, and the blocking calls only when a handler runs.
func goid() int64 {
	var buf [64]byte
	b := string(buf[:runtime.Stack(buf[:], false)])
	b = strings.TrimPrefix(b, "goroutine ")
	if i := strings.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseInt(b, 10, 64)
	return id
}

// onReader reports whether the caller is the session's reader, inside
// Options.OnMessage or OnControl: a blocking call there that needs the
// reader to read would wait for itself.
func (s *Session) onReader() bool {
	g := s.handlerG.Load()
	return g != 0 && g == goid()
}
