//go:build linux

package netpoll

import (
	"sync"
	"syscall"
)

// Supported reports whether parking works on this platform.
func Supported() bool { return true }

// Poller waits for readability of parked sockets on one goroutine, which
// runs only while some socket is parked. The zero Poller is ready.
type Poller struct {
	mu      sync.Mutex
	epfd    int
	wake    [2]int // a pipe whose read end wakes the loop
	running bool
	waiters map[uint64]func()
	next    uint64
	gen     uint64 // changes each time the loop starts, with a new epoll set
}

var shared Poller

// Shared returns the process's poller.
func Shared() *Poller { return &shared }

// Reg is a socket's registration with a poller, kept by its owner between
// parks. The zero Reg is ready.
type Reg struct {
	gen uint64 // the poller generation the socket was added in; 0: never
}

// Arm asks for fn to be called once, on the poller's goroutine, when the
// socket behind rc is readable, reaches end of stream, or fails. fn must
// not block (start a goroutine). The token returned cancels with Disarm.
func (p *Poller) Arm(rc syscall.RawConn, reg *Reg, fn func()) (uint64, error) {
	p.mu.Lock()
	if !p.running {
		if err := p.startLocked(); err != nil {
			p.mu.Unlock()
			return 0, err
		}
	}
	p.next++
	tok := p.next
	p.waiters[tok] = fn
	epfd, gen := p.epfd, p.gen
	p.mu.Unlock()

	// Level-triggered and one-shot: bytes that arrived before the socket
	// was added fire at once, and a fired socket stays quiet until armed
	// again.
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT}
	ev.Fd, ev.Pad = int32(uint32(tok)), int32(uint32(tok>>32))
	var cerr error
	err := rc.Control(func(fd uintptr) {
		op := syscall.EPOLL_CTL_ADD
		if reg.gen == gen {
			op = syscall.EPOLL_CTL_MOD
		}
		cerr = syscall.EpollCtl(epfd, op, int(fd), &ev)
		switch {
		case cerr == syscall.EEXIST:
			cerr = syscall.EpollCtl(epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
		case cerr == syscall.ENOENT:
			cerr = syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		}
		if cerr == nil {
			reg.gen = gen
		}
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		p.Disarm(tok)
		return 0, err
	}
	return tok, nil
}

// Disarm cancels an Arm whose fn has not been called, and reports whether
// it did: false means fn was called or is being called.
func (p *Poller) Disarm(tok uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.waiters[tok]; !ok {
		return false
	}
	delete(p.waiters, tok)
	if len(p.waiters) == 0 && p.running {
		p.wakeLocked() // let the loop see that it may stop
	}
	return true
}

// Parked returns the number of sockets armed.
func (p *Poller) Parked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiters)
}

func (p *Poller) startLocked() error {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	var w [2]int
	if err := syscall.Pipe2(w[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		return err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN} // token 0: the wake pipe
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, w[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(w[0])
		syscall.Close(w[1])
		return err
	}
	p.epfd, p.wake, p.running = epfd, w, true
	p.gen++
	if p.waiters == nil {
		p.waiters = make(map[uint64]func())
	}
	go p.loop(epfd, w)
	return nil
}

func (p *Poller) wakeLocked() {
	syscall.Write(p.wake[1], []byte{1})
}

func (p *Poller) loop(epfd int, wake [2]int) {
	events := make([]syscall.EpollEvent, 256)
	var drain [64]byte
	for {
		n, err := syscall.EpollWait(epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			n = 0 // the set is broken: stop below, waking every waiter
		}
		for i := 0; i < n; i++ {
			tok := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			if tok == 0 {
				for {
					if k, _ := syscall.Read(wake[0], drain[:]); k <= 0 {
						break
					}
				}
				continue
			}
			p.mu.Lock()
			fn := p.waiters[tok]
			delete(p.waiters, tok)
			p.mu.Unlock()
			if fn != nil {
				fn()
			}
		}
		p.mu.Lock()
		if len(p.waiters) == 0 || err != nil {
			p.running = false
			fns := p.waiters
			p.waiters = nil
			syscall.Close(epfd)
			syscall.Close(wake[0])
			syscall.Close(wake[1])
			p.mu.Unlock()
			for _, fn := range fns {
				fn() // their readers find out for themselves
			}
			return
		}
		p.mu.Unlock()
	}
}
