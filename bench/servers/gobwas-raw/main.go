// Command gobwas-raw is the hand-written gobwas/ws echo server: ws.Upgrade
// on its own listener, pooled bufio buffers, one flush per drained burst.
// See package rawecho.
//
//	gobwas-raw -addr 127.0.0.1:9001 [-stats-addr 127.0.0.1:10001] [-write-timeout 10s]
package main

import (
	"flag"
	"time"

	"github.com/wsactor/wsactor/bench/internal/cli"
	"github.com/wsactor/wsactor/bench/internal/servers/rawecho"
)

func main() {
	buf := flag.Int("buffer", 64<<10, "size of the pooled read and write buffers")
	hold := flag.Bool("hold-buffers", false, "keep the buffers while a connection waits for bytes, as a blocking read does")
	writeTimeout := flag.Duration("write-timeout", 10*time.Second, "deadline of each burst of broadcast writes: a connection that does not read is closed after it")
	cli.Run("gobwas-raw", true, func() cli.Server {
		return rawecho.New(rawecho.Options{BufferSize: *buf, HoldBuffers: *hold, WriteTimeout: *writeTimeout})
	})
}
