//go:build linux

package netpoll

import (
	"net"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func tcpPair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

func rawConn(t *testing.T, c *net.TCPConn) syscall.RawConn {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func TestArmFiresOnData(t *testing.T) {
	var p Poller
	srv, cli := tcpPair(t)
	var reg Reg
	fired := make(chan struct{})
	if _, err := p.Arm(rawConn(t, srv), &reg, func() { close(fired) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fired:
		t.Fatal("fired before any byte arrived")
	case <-time.After(20 * time.Millisecond):
	}
	cli.Write([]byte("x"))
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("not fired after a byte arrived")
	}
	// Armed again on the same registration, with the byte still unread:
	// level-triggered, so it fires at once.
	again := make(chan struct{})
	if _, err := p.Arm(rawConn(t, srv), &reg, func() { close(again) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-again:
	case <-time.After(5 * time.Second):
		t.Fatal("re-armed socket with unread bytes did not fire")
	}
}

func TestArmFiresOnPeerClose(t *testing.T) {
	var p Poller
	srv, cli := tcpPair(t)
	var reg Reg
	fired := make(chan struct{})
	if _, err := p.Arm(rawConn(t, srv), &reg, func() { close(fired) }); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("not fired on the peer's FIN")
	}
}

func TestDisarmStopsTheLoop(t *testing.T) {
	var p Poller
	srv, cli := tcpPair(t)
	var reg Reg
	tok, err := p.Arm(rawConn(t, srv), &reg, func() { t.Error("disarmed waiter fired") })
	if err != nil {
		t.Fatal(err)
	}
	if !p.Disarm(tok) {
		t.Fatal("Disarm of an armed token reported false")
	}
	if p.Disarm(tok) {
		t.Fatal("second Disarm reported true")
	}
	cli.Write([]byte("x"))
	if n := p.Parked(); n != 0 {
		t.Fatalf("Parked = %d after Disarm", n)
	}
	// goleak in TestMain checks that the loop goroutine exited.
}

func TestManyParked(t *testing.T) {
	var p Poller
	const n = 200
	fired := make(chan int, n)
	clients := make([]*net.TCPConn, n)
	regs := make([]Reg, n)
	for i := 0; i < n; i++ {
		srv, cli := tcpPair(t)
		clients[i] = cli
		if _, err := p.Arm(rawConn(t, srv), &regs[i], func() { fired <- i }); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.Parked(); got != n {
		t.Fatalf("Parked = %d, want %d", got, n)
	}
	for _, c := range clients {
		c.Write([]byte("x"))
	}
	seen := make(map[int]bool)
	for len(seen) < n {
		select {
		case i := <-fired:
			if seen[i] {
				t.Fatalf("socket %d fired twice", i)
			}
			seen[i] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d fired", len(seen), n)
		}
	}
}
