package echod

import (
	"bytes"
	"expvar"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync/atomic"

	"github.com/wsactor/wsactor/internal/procmem"
)

// counters are one session's message counts. Only the session's reader
// goroutine adds to them; atomics let /debug/vars and the end of the session
// read them while it does.
//
// Counting per session instead of in server-wide counters keeps the per
// message cost to uncontended atomic adds on a cache line no other session
// writes: a server-wide counter would bounce its cache line between every
// core that echoes. The price: the totals are summed over the open sessions
// when read (a walk of the session set, fine for a metrics endpoint), and a
// message that a session's reader is still handling at the very moment the
// session is torn down by force may be missing from the totals.
type counters struct {
	msgsIn, bytesIn, msgsOut, bytesOut atomic.Int64
}

// metrics are the Server's expvar variables. They belong to the Server and
// are not published in expvar's global registry (a process may run several
// Servers: tests do); Publish does that for the one Server of a process.
type metrics struct {
	sessionsOpen      expvar.Int
	sessionsTotal     expvar.Int
	protocolErrors    expvar.Int
	handshakeFailures expvar.Int
	rejectedConns     expvar.Int // over MaxConns or during shutdown: 503
	echoRefused       expvar.Int // echoes refused: the session closed with 1011
	closesByCode      expvar.Map
	sessionsByProto   expvar.Map // "http1", "http2": sessions by their handshake's HTTP version

	// The message counts of the sessions that ended; the open ones are
	// added when read.
	ended struct{ msgsIn, bytesIn, msgsOut, bytesOut expvar.Int }

	vars []namedVar // in the order they are served
}

type namedVar struct {
	name string
	v    expvar.Var
}

// initMetrics sets up the variables and their names:
//
//   - sessions_open, sessions_total: sessions after their handshake
//   - sessions_by_protocol: sessions_total by the HTTP version of the
//     handshake, "http1" (an HTTP/1.1 Upgrade) or "http2" (RFC 8441)
//   - messages_in, bytes_in: data messages received (payload bytes)
//   - messages_out, bytes_out: messages handed to sessions to write, echoes
//     and broadcast deliveries (one per receiver that accepted it)
//   - broadcast_delivered: room deliveries queued to a member
//   - broadcast_dropped: room deliveries dropped because the member's
//     backlog was full (Config.MaxPendingBytes, or its mailbox): messages
//     that member never gets
//   - broadcast_slow_closed: members closed for being slow (0 with the
//     daemon's policy, which drops; session.CloseSlow counts here)
//   - rooms, room_members: the rooms with members on this daemon, and
//     their members
//   - broker_published, broker_lost, broker_remote: with Config.Broker,
//     room messages handed to the broker, refused by it (lost for the
//     other daemons: delivery is at most once), and received from other
//     daemons
//   - echo_refused: echoes the session refused (its backlog full); each
//     closes its session with 1011
//   - closes_by_code: ended sessions by session.CloseCode of their end:
//     the peer's code after a close handshake, the code sent for a protocol
//     violation, 1001 for an idle timeout, 1006 for a connection lost
//   - protocol_errors: sessions ended by a protocol violation of the peer
//   - handshake_failures: requests to an endpoint refused by the handshake
//   - rejected_conns: handshakes refused with 503 (MaxConns, shutdown)
func (s *Server) initMetrics() {
	m := &s.m
	m.closesByCode.Init()
	m.sessionsByProto.Init()
	sum := func(ended *expvar.Int, field func(*counters) *atomic.Int64) expvar.Func {
		return func() any {
			s.mu.Lock()
			defer s.mu.Unlock()
			n := ended.Value()
			for _, c := range s.conns.all() {
				n += field(&c.n).Load()
			}
			return n
		}
	}
	m.vars = []namedVar{
		{"sessions_open", &m.sessionsOpen},
		{"sessions_total", &m.sessionsTotal},
		{"sessions_by_protocol", &m.sessionsByProto},
		{"messages_in", sum(&m.ended.msgsIn, func(c *counters) *atomic.Int64 { return &c.msgsIn })},
		{"messages_out", sum(&m.ended.msgsOut, func(c *counters) *atomic.Int64 { return &c.msgsOut })},
		{"bytes_in", sum(&m.ended.bytesIn, func(c *counters) *atomic.Int64 { return &c.bytesIn })},
		{"bytes_out", sum(&m.ended.bytesOut, func(c *counters) *atomic.Int64 { return &c.bytesOut })},
		{"closes_by_code", &m.closesByCode},
		{"protocol_errors", &m.protocolErrors},
		{"handshake_failures", &m.handshakeFailures},
		{"rejected_conns", &m.rejectedConns},
		{"broadcast_delivered", expvar.Func(func() any { return s.rooms.Stats().Delivered })},
		{"broadcast_dropped", expvar.Func(func() any { return s.rooms.Stats().Dropped })},
		{"broadcast_slow_closed", expvar.Func(func() any { return s.rooms.Stats().SlowClosed })},
		{"rooms", expvar.Func(func() any { return s.rooms.Stats().Rooms })},
		{"room_members", expvar.Func(func() any { return s.rooms.Stats().Members })},
		{"broker_published", expvar.Func(func() any { return s.rooms.Stats().Published })},
		{"broker_lost", expvar.Func(func() any { return s.rooms.Stats().Lost })},
		{"broker_remote", expvar.Func(func() any { return s.rooms.Stats().Remote })},
		{"echo_refused", &m.echoRefused},
	}
}

// Publish registers the Server's metrics in expvar's global registry under
// their names (sessions_open, messages_in, ...), so that expvar.Handler and
// anything else that reads the registry sees them. Call it once per
// process: expvar.Publish panics on a name already taken.
func (s *Server) Publish() {
	for _, nv := range s.m.vars {
		expvar.Publish(nv.name, nv.v)
	}
}

// topLevel are the process figures served beside the metrics, under the
// names the benchmark harness reads.
var topLevel = []string{"rss_bytes", "rss_peak_bytes", "heap_inuse_bytes", "stack_inuse_bytes", "goroutines", "conns"}

// serveVars serves expvar's JSON document: the globally published
// variables (cmdline, memstats, ...), the Server's metrics, and the process
// figures. With ?gc=1 it collects garbage and returns freed memory to the
// OS first, so that two readings compare live memory.
func (s *Server) serveVars(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("gc") == "1" {
		runtime.GC()
		debug.FreeOSMemory()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	var b bytes.Buffer
	b.WriteString("{\n")
	first := true
	put := func(name, value string) {
		if !first {
			b.WriteString(",\n")
		}
		first = false
		fmt.Fprintf(&b, "%q: %s", name, value)
	}
	expvar.Do(func(kv expvar.KeyValue) {
		if s.ownsName(kv.Key) {
			return // ours is written below, once
		}
		put(kv.Key, kv.Value.String())
	})
	for _, nv := range s.m.vars {
		put(nv.name, nv.v.String())
	}
	put("rss_bytes", strconv.FormatInt(procmem.RSS(), 10))
	put("rss_peak_bytes", strconv.FormatInt(procmem.Peak(), 10))
	put("heap_inuse_bytes", strconv.FormatUint(ms.HeapInuse, 10))
	put("stack_inuse_bytes", strconv.FormatUint(ms.StackInuse, 10))
	put("goroutines", strconv.Itoa(runtime.NumGoroutine()))
	put("conns", s.m.sessionsOpen.String())
	b.WriteString("\n}\n")

	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b.Bytes())
}

// ownsName reports whether the Server serves a variable of that name
// itself.
func (s *Server) ownsName(name string) bool {
	for _, nv := range s.m.vars {
		if nv.name == name {
			return true
		}
	}
	for _, n := range topLevel {
		if n == name {
			return true
		}
	}
	return false
}
