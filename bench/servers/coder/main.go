// Command coder is the echo server on coder/websocket. See package
// coderecho.
//
//	coder -addr 127.0.0.1:9001 [-write-timeout 10s]
package main

import (
	"flag"
	"time"

	"github.com/wsactor/wsactor/bench/internal/cli"
	"github.com/wsactor/wsactor/bench/internal/servers/coderecho"
)

func main() {
	writeTimeout := flag.Duration("write-timeout", 10*time.Second, "bound on each broadcast write: a connection that does not read is closed after it")
	cli.Run("coder", false, func() cli.Server { return coderecho.New(coderecho.Options{WriteTimeout: *writeTimeout}) })
}
