// Package base is what the hand-written benchmark servers (rawecho,
// tcpecho) share: the set of their listeners and connections, and their
// stats endpoint.
package base

import (
	"errors"
	"net"
	"net/http"

	"github.com/wsactor/wsactor/bench/internal/connset"
	"github.com/wsactor/wsactor/bench/internal/stats"
)

// Base is embedded in a server; Init must be called before use.
type Base struct {
	Set   connset.Set // listeners, connections and their goroutines
	stats *stats.Server
}

// Init sets up the stats endpoint.
func (b *Base) Init() { b.stats = stats.NewServer(stats.Source{Conns: b.Set.Len}) }

// Conns returns the number of open connections.
func (b *Base) Conns() int64 { return b.Set.Len() }

// ServeStats serves the stats endpoint on ln until Close.
func (b *Base) ServeStats(ln net.Listener) error {
	err := b.stats.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close closes the stats endpoint, the listeners and every connection, and
// waits for their goroutines.
func (b *Base) Close() error {
	err := b.stats.Close()
	b.Set.Close()
	return err
}
