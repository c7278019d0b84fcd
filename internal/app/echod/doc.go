// Package echod is wsactor's echo daemon as a package: cmd/wsechod runs it,
// and tests start it in-process.
//
// A Server echoes every data message on its endpoint (Config.Path, "/" by
// default) with the message's own type. The echo is zero-copy: the session
// writes the inbound message's pooled buffer and gives it back once it is on
// the wire. Echoing allocates nothing in steady state and starts no
// goroutine: the handler runs on the session's reader, which writes the
// echoes of one read before it reads again, so a client that does not read
// is slowed down by TCP instead of growing the daemon's memory. Pings are
// answered by the session; Shutdown closes every session with 1001.
//
// Every session of an endpoint shares one session.Options; what the Server
// keeps per session is a small record (its counters and start), set as the
// session's value by Options.OnOpen and kept in a table for the metrics
// and Shutdown. Its end is accounted for from Options.OnClose, so an idle
// session costs the daemon no goroutine of its own.
//
// The endpoint also answers plain HTTP. A GET without an Upgrade header
// whose Accept header names text/html (a browser's) gets a page that opens a
// WebSocket back to the daemon; any other request that is not a valid
// handshake gets the status session.Accept gives: 426 Upgrade Required with
// Sec-WebSocket-Version: 13 for a plain GET (what curl sees) or another
// version, 400 for a missing or malformed key, 403 for an origin that is
// not allowed.
//
// Beside the endpoint a Server serves /selftest (a page that checks the
// echo from a browser and writes its result as JSON), /healthz, /debug/vars
// (expvar's JSON with the Server's metrics and the process's memory
// figures) and, with Config.Broadcast, /broadcast. See Server.Handler.
//
// Serve accepts plain HTTP/1.1 on its own loop (front.go): it reads each
// request head itself and accepts a WebSocket upgrade on a WebSocket route
// with session.AcceptConnBuffered, without net/http's goroutine and
// buffers; every other request goes, with the bytes read, to net/http's
// server, which answers it as Handler does. With a certificate, Serve
// serves TLS through net/http alone.
//
// Serve bounds what a client can hold before its handshake: the request
// headers must arrive within the handshake timeout, counted from the
// accept (for a head over 4 KiB, from when net/http takes it), and fit in
// MaxHeaderBytes. Limits on frames and messages are the
// session's: a frame over Config.MaxMessage is refused with 1009 from its
// header, before anything is allocated for it. So are the bounds in time: a
// message must keep a minimum rate once begun (Config.MessageTimeout and
// MessageMinRate: a peer that trickles is closed with 1008), and a write
// the peer does not read within Config.WriteTimeout ends its session. What
// a session holds for a slow reader is bounded by Config.MaxPendingBytes:
// on /broadcast, a member over it loses messages, each counted in
// broadcast_dropped, and one that does not read at all is ended by the
// write timeout and leaves.
package echod
