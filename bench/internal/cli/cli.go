// Package cli is the command line shared by the benchmark servers: the -addr
// flag (and -stats-addr for servers whose port speaks no HTTP), listening,
// and a clean stop on SIGINT or SIGTERM.
package cli

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/wsactor/wsactor/bench/internal/stats"
)

// Server is a benchmark server.
type Server interface {
	// Serve serves connections from ln until Close, then returns nil.
	Serve(ln net.Listener) error
	// Close stops the server and ends every connection.
	Close() error
}

// StatsServer is a Server that serves its stats endpoint on a listener of
// its own.
type StatsServer interface {
	Server
	// ServeStats serves /debug/vars on ln until Close, then returns nil.
	ServeStats(ln net.Listener) error
}

// Run parses the flags, builds the server with newServer (after parsing, so
// that newServer can read flags of its own), serves it, and exits when it
// fails or when the process receives SIGINT or SIGTERM. With separateStats
// it also takes -stats-addr (default: the port of -addr plus 1000) and
// serves the stats endpoint there.
func Run(name string, separateStats bool, newServer func() Server) {
	defer func() { os.Exit(exitCode) }()
	log.SetFlags(0)
	log.SetPrefix(name + ": ")
	addr := flag.String("addr", "127.0.0.1:9001", "listen address")
	var statsAddr *string
	if separateStats {
		statsAddr = flag.String("stats-addr", "", "listen address of the /debug/vars endpoint (default: the port of -addr plus 1000)")
	}
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this `file` until the server stops")
	certFile := flag.String("tls-cert", "", "TLS certificate `file` (PEM); with -tls-key, -addr serves TLS (wss://, and https:// for a stats endpoint on it)")
	keyFile := flag.String("tls-key", "", "TLS private key `file` (PEM)")
	flag.Parse()
	if *cpuprofile != "" {
		stop, err := startCPUProfile(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		defer stop()
	}

	srv := newServer()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if *certFile != "" || *keyFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatal(err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	msg := fmt.Sprintf("listening on %s", ln.Addr())

	if separateStats {
		ss, ok := srv.(StatsServer)
		if !ok {
			log.Fatal("this server has no separate stats endpoint")
		}
		sa := *statsAddr
		if sa == "" {
			sa, err = stats.DefaultAddr(ln.Addr().String())
			if err != nil {
				log.Fatal(err)
			}
		}
		sln, err := net.Listen("tcp", sa)
		if err != nil {
			log.Fatal(err)
		}
		go func() { errc <- ss.ServeStats(sln) }()
		msg += fmt.Sprintf(", stats on http://%s/debug/vars", sln.Addr())
	}
	log.Print(msg)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
		_ = srv.Close()
	case err := <-errc:
		_ = srv.Close()
		if err == nil {
			err = errors.New("server stopped")
		}
		log.Print(err)
		exitCode = 1
	}
}

// exitCode is the status Run exits with, after its deferred calls.
var exitCode int

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
