//go:build !linux

package echod

import (
	"net"
	"syscall"
	"testing"
)

// inq returns -1: the receive queue's length is read on Linux only.
func inq(net.Conn) int { return -1 }

// sendQueue returns -1: /proc/net/tcp is Linux's.
func sendQueue(local, remote string) int { return -1 }

// smallReceiveBuffer leaves the socket's receive buffer as it is.
func smallReceiveBuffer(_, _ string, _ syscall.RawConn) error { return nil }

// needFiles skips the tests that need thousands of sockets: they are
// tuned for Linux.
func needFiles(t *testing.T, n uint64) {
	t.Helper()
	t.Skipf("needs %d sockets; run on Linux", n)
}
