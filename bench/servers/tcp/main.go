// Command tcp is the loopback ceiling: a plain TCP echo of length-prefixed
// frames (4-byte big-endian length, then the payload), one write per read.
// See package tcpecho.
//
//	tcp -addr 127.0.0.1:9001 [-stats-addr 127.0.0.1:10001] [-broadcast] [-write-timeout 10s]
package main

import (
	"flag"
	"time"

	"github.com/wsactor/wsactor/bench/internal/cli"
	"github.com/wsactor/wsactor/bench/internal/servers/tcpecho"
)

func main() {
	buf := flag.Int("buffer", 128<<10, "size of the pooled read buffer")
	hold := flag.Bool("hold-buffers", false, "keep the buffer while a connection waits for bytes, as a blocking read does")
	broadcast := flag.Bool("broadcast", false, "send the frames of every connection to every connection instead of echoing them")
	writeTimeout := flag.Duration("write-timeout", 10*time.Second, "deadline of each broadcast write: a connection that does not read is closed after it")
	cli.Run("tcp", true, func() cli.Server {
		return tcpecho.New(tcpecho.Options{BufferSize: *buf, HoldBuffers: *hold, Broadcast: *broadcast, WriteTimeout: *writeTimeout})
	})
}
