package echod

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// inq returns the bytes waiting in nc's receive queue, unread (SIOCINQ),
// or -1 when it cannot tell.
func inq(nc net.Conn) int {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	n := int32(-1)
	rc.Control(func(fd uintptr) {
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n))); errno != 0 {
			n = -1
		}
	})
	return int(n)
}

// smallReceiveBuffer is a net.Dialer's Control that gives the socket a
// receive buffer of 4 KiB (the kernel doubles it), before it connects, so
// that the window it offers stays small.
func smallReceiveBuffer(_, _ string, rc syscall.RawConn) error {
	var err error
	rc.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
	})
	return err
}

// needFiles skips the test when the process may not open n files.
func needFiles(t *testing.T, n uint64) {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < n {
		t.Skipf("needs %d open files; the limit is %d", n, rl.Cur)
	}
}

// sendQueue returns the bytes in the send queue of the TCP socket from
// local to remote, both IPv4 host:port, as /proc/net/tcp tells (written,
// not yet acknowledged by the peer), or -1 when it cannot tell.
func sendQueue(local, remote string) int {
	l, r := procAddr(local), procAddr(remote)
	if l == "" || r == "" {
		return -1
	}
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 5 || f[1] != l || f[2] != r {
			continue
		}
		tx, _, _ := strings.Cut(f[4], ":")
		n, err := strconv.ParseInt(tx, 16, 64)
		if err != nil {
			return -1
		}
		return int(n)
	}
	return -1
}

// procAddr writes an IPv4 host:port as /proc/net/tcp does: the address as
// a 32-bit word in the host's byte order, the port, in hex.
func procAddr(hostport string) string {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil || !ap.Addr().Is4() {
		return ""
	}
	a := ap.Addr().As4()
	return fmt.Sprintf("%08X:%04X", binary.NativeEndian.Uint32(a[:]), ap.Port())
}
