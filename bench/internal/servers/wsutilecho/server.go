// Package wsutilecho is the echo server on gobwas/ws's high-level helpers,
// as its README shows them: ws.UpgradeHTTP, then a goroutine per connection
// that reads with wsutil.ReadClientData (which answers pings and the close
// handshake itself) and writes with wsutil.WriteServerMessage, both on the
// bare net.Conn. It has no broadcast endpoint: wsutil has no broadcast
// helper (the hand-written gobwas loop, rawecho, has one).
package wsutilecho

import (
	"net/http"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wsactor/wsactor/bench/internal/servers/httpserve"
)

// maxMessageSize bounds the messages wsutil reads, as the README advises
// (it has no limit otherwise).
const maxMessageSize = 16 << 20

// Server is the wsutil echo server.
type Server struct {
	*httpserve.Server
}

// New returns a Server. It sets wsutil's package-level message limit.
func New() *Server {
	wsutil.SetMaxMessageSize(maxMessageSize)
	s := &Server{}
	s.Server = httpserve.New(http.HandlerFunc(s.echo), nil)
	return s
}

func (s *Server) echo(w http.ResponseWriter, r *http.Request) {
	conn, _, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	if !s.Conns.Add(conn) {
		return
	}
	go func() {
		defer s.Conns.Done(conn)
		defer conn.Close()
		for {
			msg, op, err := wsutil.ReadClientData(conn)
			if err != nil {
				return
			}
			err = wsutil.WriteServerMessage(conn, op, msg)
			if err != nil {
				return
			}
		}
	}()
}
