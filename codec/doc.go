// Package codec is everything wsactor knows about bytes on the wire: RFC 6455
// frames for both roles, close payloads, UTF-8 checking, fragmentation,
// prepared (encode-once) frames and the codec worker pool.
//
// It is pure: nothing here owns a socket or a session's goroutine. Frames are
// encoded into pooled buffers from github.com/gobwas/pool; a server frame
// references the caller's payload unchanged (zero copy, written with one
// vectored write), a client frame is masked into a pooled buffer with a fresh
// random mask and never changes the caller's bytes.
//
// Decoding checks every rule of RFC 6455 by role and reports each violation as
// a *ProtocolError that names the close code to send (1002, 1007 or 1009).
// The decoder never allocates on a length the peer declared: buffers grow as
// bytes arrive.
//
// The building blocks come from github.com/gobwas/ws (ws.Header, ws.OpCode,
// ws.Cipher); what is written here by hand says why beside it.
package codec
