// Command gws is the echo server on lxzan/gws. See package gwsecho.
//
//	gws -addr 127.0.0.1:9001 [-parallel=false]
package main

import (
	"flag"

	"github.com/wsactor/wsactor/bench/internal/cli"
	"github.com/wsactor/wsactor/bench/internal/servers/gwsecho"
)

func main() {
	parallel := flag.Bool("parallel", true, "gws ParallelEnabled, as the README's best practice sets it (replies may be reordered)")
	cli.Run("gws", false, func() cli.Server { return gwsecho.New(gwsecho.Options{Parallel: *parallel}) })
}
