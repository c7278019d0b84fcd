// Package stats serves the memory and connection figures of a benchmark
// server at /debug/vars, the same way for every server, so that wsload reads
// every library's numbers with one parser.
package stats

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/wsactor/wsactor/internal/procmem"
)

// Path is the URL path of the stats endpoint.
const Path = "/debug/vars"

// Vars is the JSON object served at Path. Every field is a top-level number.
type Vars struct {
	RSSBytes        int64 `json:"rss_bytes"`
	RSSPeakBytes    int64 `json:"rss_peak_bytes"` // VmHWM: the peak so far
	HeapInuseBytes  int64 `json:"heap_inuse_bytes"`
	StackInuseBytes int64 `json:"stack_inuse_bytes"`
	Goroutines      int64 `json:"goroutines"`
	Conns           int64 `json:"conns"`
	// Dropped counts the broadcasts the server dropped for members that did
	// not keep up; absent for a server that never drops (its broadcast
	// waits for the slowest member instead).
	Dropped *int64 `json:"dropped,omitempty"`
}

// Source is what a server reports of itself besides its memory.
type Source struct {
	// Conns returns the open WebSocket (or TCP) connections. Required.
	Conns func() int64
	// Dropped returns the broadcasts dropped so far for members that did
	// not keep up; nil for a server that never drops.
	Dropped func() int64
}

// Read measures the process now. With gc set it first runs a garbage
// collection and returns freed memory to the OS, so that RSS reflects live
// memory and two readings can be compared.
func Read(gc bool, src Source) Vars {
	if gc {
		runtime.GC()
		debug.FreeOSMemory()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	v := Vars{
		RSSBytes:        RSS(),
		RSSPeakBytes:    procmem.Peak(),
		HeapInuseBytes:  int64(ms.HeapInuse),
		StackInuseBytes: int64(ms.StackInuse),
		Goroutines:      int64(runtime.NumGoroutine()),
		Conns:           src.Conns(),
	}
	if src.Dropped != nil {
		d := src.Dropped()
		v.Dropped = &d
	}
	return v
}

// RSS returns the resident set size of the process in bytes, or -1 where
// it cannot be read.
func RSS() int64 { return procmem.RSS() }

// Handler serves Vars as JSON, with the counts of src. The query ?gc=1
// collects garbage before measuring.
func Handler(src Source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := Read(r.URL.Query().Get("gc") == "1", src)
		b, err := json.Marshal(v)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(append(b, '\n'))
	})
}

// Server is an HTTP server that serves only the stats endpoint, for servers
// whose own port speaks no HTTP (the raw gobwas loop, the TCP echo).
type Server struct {
	srv *http.Server
}

// NewServer returns a stats server reporting the counts of src.
func NewServer(src Source) *Server {
	mux := http.NewServeMux()
	mux.Handle(Path, Handler(src))
	return &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
}

// Serve serves the stats endpoint on ln until Close. It returns
// http.ErrServerClosed after Close.
func (s *Server) Serve(ln net.Listener) error {
	return s.srv.Serve(ln)
}

// Close closes the listener and every stats connection.
func (s *Server) Close() error {
	return s.srv.Close()
}

// DefaultAddr returns the default stats address for a server listening on
// addr: the same host, port plus 1000.
func DefaultAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("stats: address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p+1000 > 65535 {
		return "", fmt.Errorf("stats: address %q: port must be between 1 and 64535 to derive a stats port; give -stats-addr", addr)
	}
	return net.JoinHostPort(host, strconv.Itoa(p+1000)), nil
}
