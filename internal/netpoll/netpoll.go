// Package netpoll lets an idle connection wait for bytes without a
// goroutine. A session whose peer has been quiet for a while parks its
// reader here: one goroutine for the whole process waits in epoll for every
// parked socket and, when one becomes readable, starts that session's reader
// again. An idle session then costs its heap state and no stack.
//
// The standard library's poller needs a goroutine parked per socket, and a
// parked goroutine keeps a stack of 4 KiB or more: that is most of what an
// idle connection costs in every Go WebSocket library.
package netpoll
