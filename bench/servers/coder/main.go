// Command coder is the echo server on coder/websocket. See package
// coderecho.
//
//	coder -addr 127.0.0.1:9001
package main

import (
	"github.com/wsactor/wsactor/bench/internal/cli"
	"github.com/wsactor/wsactor/bench/internal/servers/coderecho"
)

func main() {
	cli.Run("coder", false, func() cli.Server { return coderecho.New() })
}
