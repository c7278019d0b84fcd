// Command wsactor-group is wsactor's fan-out server on session.Group: every
// connection of /broadcast is a member, every message is broadcast to all.
// See package wsactorgroup.
//
//	wsactor-group -addr 127.0.0.1:9001 [-max-backlog 262144] [-write-timeout 2s]
package main

import (
	"flag"
	"time"

	"github.com/wsactor/wsactor/bench/internal/cli"
	"github.com/wsactor/wsactor/bench/internal/servers/wsactorgroup"
)

func main() {
	backlog := flag.Int64("max-backlog", 256<<10, "GroupOptions.MaxBacklog: payload bytes a member may have waiting before broadcasts are dropped for it")
	writeTimeout := flag.Duration("write-timeout", 2*time.Second, "Options.WriteTimeout of the broadcast sessions: a member that does not read is cut after it")
	cli.Run("wsactor-group", false, func() cli.Server {
		return wsactorgroup.New(wsactorgroup.Options{MaxBacklog: *backlog, WriteTimeout: *writeTimeout})
	})
}
