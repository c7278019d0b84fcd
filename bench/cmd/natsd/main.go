// Command natsd is the NATS server of the cross-daemon benchmarks: the
// nats-server/v2 package run in a process of its own, so that benchrun
// needs nothing from outside the Go module proxy and counts the server's
// CPU with the daemons'. It listens on -addr, serves its counts at
// /debug/vars on -stats-addr (JSON: in_msgs, out_msgs, in_bytes,
// out_bytes, slow_consumers, connections, rss_bytes), and stops on
// SIGINT or SIGTERM.
//
//	natsd -addr 127.0.0.1:4222 -stats-addr 127.0.0.1:8222
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stderr, sig))
}

// run serves until a signal arrives and returns the exit status.
func run(args []string, stderr io.Writer, sig <-chan os.Signal) int {
	fs := flag.NewFlagSet("natsd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4222", "NATS client `host:port`")
	statsAddr := fs.String("stats-addr", "127.0.0.1:8222", "`host:port` of /debug/vars")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	host, portS, err := net.SplitHostPort(*addr)
	port, perr := strconv.Atoi(portS)
	if err != nil || perr != nil {
		fmt.Fprintf(stderr, "natsd: -addr %q: want host:port\n", *addr)
		return 2
	}
	ns, err := server.NewServer(&server.Options{Host: host, Port: port, NoSigs: true, NoLog: true})
	if err != nil {
		fmt.Fprintf(stderr, "natsd: %v\n", err)
		return 1
	}
	ns.Start()
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	if !ns.ReadyForConnections(10 * time.Second) {
		fmt.Fprintln(stderr, "natsd: the server is not ready after 10s")
		return 1
	}
	ln, err := net.Listen("tcp", *statsAddr)
	if err != nil {
		fmt.Fprintf(stderr, "natsd: -stats-addr: %v\n", err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/vars", func(w http.ResponseWriter, _ *http.Request) {
		v, err := ns.Varz(nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int64{
			"in_msgs":        v.InMsgs,
			"out_msgs":       v.OutMsgs,
			"in_bytes":       v.InBytes,
			"out_bytes":      v.OutBytes,
			"slow_consumers": v.SlowConsumers,
			"connections":    int64(v.Connections),
			"rss_bytes":      v.Mem,
		})
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	fmt.Fprintf(stderr, "natsd: NATS on %s, stats on http://%s/debug/vars\n", ns.ClientURL(), ln.Addr())
	<-sig
	return 0
}
