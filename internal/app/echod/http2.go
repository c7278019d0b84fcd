package echod

// WebSockets over HTTP/2 (RFC 8441): net/http's http.Server speaks HTTP/2
// over TLS (ALPN h2) and, with Config.H2C, over cleartext connections with
// prior knowledge; session.Accept takes the extended CONNECT, and
// session.Handler keeps each stream for its session after the request's
// handler returns. Whether the process accepts extended CONNECT at all is
// decided as it starts (cmd/wsechod imports package xconnect).

import (
	"net/http"
)

// protocols returns the HTTP versions Serve speaks: HTTP/1.1, HTTP/2 over
// TLS, and cleartext HTTP/2 with Config.H2C.
func (s *Server) protocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(s.cfg.H2C)
	return &p
}

// countProtocol counts a session by the HTTP version of its handshake, for
// sessions_by_protocol.
func (s *Server) countProtocol(r *http.Request) {
	if r.ProtoMajor == 2 {
		s.m.sessionsByProto.Add("http2", 1)
	} else {
		s.m.sessionsByProto.Add("http1", 1)
	}
}
