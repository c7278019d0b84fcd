// Command gobwas-wsutil is the echo server on gobwas/ws's wsutil helpers.
// See package wsutilecho.
//
//	gobwas-wsutil -addr 127.0.0.1:9001
package main

import (
	"github.com/wsactor/wsactor/bench/internal/cli"
	"github.com/wsactor/wsactor/bench/internal/servers/wsutilecho"
)

func main() {
	cli.Run("gobwas-wsutil", false, func() cli.Server { return wsutilecho.New() })
}
