// Package xconnect turns on RFC 8441 (WebSockets over HTTP/2) in net/http's
// HTTP/2 server for the whole process. Import it for its side effect:
//
//	import _ "github.com/wsactor/wsactor/xconnect"
//
// Go 1.26's server accepts the extended CONNECT of RFC 8441 only when the
// process's environment holds GODEBUG=http2xconnect=1 as net/http is
// initialized: the setting is read from the environment in net/http's init,
// so neither a //go:debug directive nor a godebug line in go.mod reaches it
// (both are refused as unknown settings), and os.Setenv in main comes too
// late. This package adds the setting to GODEBUG in its own init, which runs
// before net/http's: it imports only os and strings, and Go initializes the
// packages that are ready in the order of their import paths
// ("github.com/..." before "net/http"; the Go spec, Package initialization).
//
// A GODEBUG that already names http2xconnect is left as it is, so
// GODEBUG=http2xconnect=0 still turns it off. session.ExtendedConnect
// reports whether the server in this process accepts RFC 8441.
package xconnect

import (
	"os"
	"strings"
)

func init() {
	v := os.Getenv("GODEBUG")
	if strings.Contains(v, "http2xconnect=") {
		return
	}
	if v != "" {
		v += ","
	}
	os.Setenv("GODEBUG", v+"http2xconnect=1")
}
