package session

import (
	"bytes"
	"runtime"
)

// goid returns the id of the calling goroutine, as runtime.Stack prints it.
// It costs a stack print (about a microsecond): the reader takes it once
// per goroutine, and the blocking calls only when a handler runs.
func goid() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	var id int64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + int64(c-'0')
	}
	return id
}

// onReader reports whether the caller is the session's reader, inside
// Options.OnMessage or OnControl: a blocking call there that needs the
// reader to read would wait for itself.
func (s *Session) onReader() bool {
	g := s.readerG.Load()
	return g != 0 && g == goid()
}
