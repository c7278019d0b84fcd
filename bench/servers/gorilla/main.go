// Command gorilla is the echo server on gorilla/websocket. See package
// gorillaecho.
//
//	gorilla -addr 127.0.0.1:9001 [-write-timeout 10s]
package main

import (
	"flag"
	"time"

	"github.com/wsactor/wsactor/bench/internal/cli"
	"github.com/wsactor/wsactor/bench/internal/servers/gorillaecho"
)

func main() {
	writeTimeout := flag.Duration("write-timeout", 10*time.Second, "deadline of each broadcast write: a connection that does not read is closed after it")
	cli.Run("gorilla", false, func() cli.Server { return gorillaecho.New(gorillaecho.Options{WriteTimeout: *writeTimeout}) })
}
