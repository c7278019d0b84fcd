// Command gorilla is the echo server on gorilla/websocket. See package
// gorillaecho.
//
//	gorilla -addr 127.0.0.1:9001
package main

import (
	"github.com/wsactor/wsactor/bench/internal/cli"
	"github.com/wsactor/wsactor/bench/internal/servers/gorillaecho"
)

func main() {
	cli.Run("gorilla", false, func() cli.Server { return gorillaecho.New() })
}
