//go:build !linux

package netpoll

import (
	"errors"
	"syscall"
)

// Supported reports whether parking works on this platform.
func Supported() bool { return false }

// Poller is unavailable here; Arm always fails.
type Poller struct{}

// Reg is a socket's registration with a poller.
type Reg struct{}

var shared Poller

// Shared returns the process's poller.
func Shared() *Poller { return &shared }

var errUnsupported = errors.New("netpoll: not supported on this platform")

// Arm fails: parking is not supported here.
func (p *Poller) Arm(rc syscall.RawConn, reg *Reg, fn func()) (uint64, error) {
	return 0, errUnsupported
}

// Disarm does nothing here.
func (p *Poller) Disarm(tok uint64) bool { return false }

// Parked returns 0.
func (p *Poller) Parked() int { return 0 }
