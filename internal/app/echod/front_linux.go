package echod

import (
	"net"
	"syscall"
)

// tryRead reads what c already holds into buf without waiting: the bytes
// read, or 0 when none have come yet (or c cannot be read so).
func tryRead(c net.Conn, buf []byte) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	raw.Read(func(fd uintptr) bool {
		m, err := syscall.Read(int(fd), buf)
		if err == nil && m > 0 {
			n = m
		}
		return true // never wait
	})
	return n
}
