package main

import (
	"fmt"
	"time"
)

// mode is wsload's -mode.
type mode string

const (
	modeEcho      mode = "echo"
	modeIdle      mode = "idle"
	modeBroadcast mode = "broadcast"
	modeFanout    mode = "fanout"
	modeStorm     mode = "storm"
)

// Storm scenarios: the connections dial stormDialers at a time, and the
// memory left behind is read stormHold after the last handshake.
const (
	stormDialers = 32
	stormHold    = 3 * time.Second
)

// scenario is one load, run against every server that can serve it.
type scenario struct {
	id       string
	mode     mode
	conns    int // fanout: members, the publisher included
	inflight int // echo: per connection; broadcast: of the one sender; fanout: set from -fanout-window
	size     int
	silent   int  // fanout: members that never read
	long     bool // fanout: a long run (10000 members, or silent members): -fanout-rounds-long rounds
	procs    int  // storm: wsload processes, each from its own source address (0: one)
	ping     bool // storm: every connection pings once after the stats
	tls      bool // storm: over TLS (wss://), against the servers that serve it
	// cross: a fan-out whose room spans daemons: it runs the cross
	// servers (one daemon, and several on NATS), and only them.
	cross bool
	// rate: fan-out at this many messages a second (wsload -rate), below
	// the servers' limit, for the latency; 0: as fast as they deliver.
	rate int
	note string
}

// title is the scenario in words.
func (sc *scenario) title() string {
	switch sc.mode {
	case modeIdle:
		return fmt.Sprintf("idle memory, %d connections", sc.conns)
	case modeStorm:
		if sc.tls {
			return fmt.Sprintf("TLS connection storm, %d connections dialed %d at a time (ECDSA P-256, TLS 1.3)", sc.conns, stormDialers)
		}
		if sc.procs > 1 {
			return fmt.Sprintf("connection storm, %d connections from %d processes and source addresses, each dialing %d at a time, then a ping on every one", sc.conns, sc.procs, stormDialers)
		}
		return fmt.Sprintf("connection storm, %d connections dialed %d at a time", sc.conns, stormDialers)
	case modeBroadcast:
		return fmt.Sprintf("broadcast %s to %d connections, one sender with %d in flight", sizeName(sc.size), sc.conns, sc.inflight)
	case modeFanout:
		if sc.cross && sc.rate > 0 {
			return fmt.Sprintf("cross-daemon fan-out %s to %d members of one room, spread over the daemons, one publisher paced at %d messages/s", sizeName(sc.size), sc.conns, sc.rate)
		}
		if sc.cross {
			return fmt.Sprintf("cross-daemon fan-out %s to %d members of one room, spread over the daemons, one publisher as fast as they deliver", sizeName(sc.size), sc.conns)
		}
		t := fmt.Sprintf("fan-out %s to %d members, one publisher as fast as the server delivers", sizeName(sc.size), sc.conns)
		if sc.silent > 0 {
			t += fmt.Sprintf(", %d of them never read", sc.silent)
		}
		return t
	default:
		return fmt.Sprintf("echo %s, %d connection%s, %d in flight each", sizeName(sc.size), sc.conns, plural(sc.conns), sc.inflight)
	}
}

// short is the scenario in a progress line: "64c x 64B".
func (sc *scenario) short() string {
	if sc.mode == modeIdle || sc.mode == modeStorm {
		if sc.tls {
			return fmt.Sprintf("%s tls %dc", sc.mode, sc.conns)
		}
		return fmt.Sprintf("%s %dc", sc.mode, sc.conns)
	}
	m := string(sc.mode)
	if sc.cross {
		m = "cross"
	}
	s := fmt.Sprintf("%s %dc x %s", m, sc.conns, sizeName(sc.size))
	if sc.silent > 0 {
		s += fmt.Sprintf(" (%d silent)", sc.silent)
	}
	if sc.rate > 0 {
		s += fmt.Sprintf(" at %d/s", sc.rate)
	}
	return s
}

// reference is the server the scenario's ratios are to: wsactor, or for
// fan-out the wsactor server on session.Group.
func (sc *scenario) reference() string {
	if sc.cross {
		return "wsechod-1"
	}
	if sc.mode == modeFanout {
		return "wsactor-group"
	}
	return "wsactor"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	default:
		return fmt.Sprintf("%dB", n)
	}
}

// fullScenarios are the scenarios of issue 5, in the order they run. Echo
// runs keep 16 messages in flight per connection, the standard load; 64 KiB
// keeps 16 too: 64 connections x 16 x 64 KiB is 64 MiB in flight, which
// every server and wsload hold without trouble.
func fullScenarios() []*scenario {
	return []*scenario{
		{id: "echo-1c-64B", mode: modeEcho, conns: 1, inflight: 16, size: 64},
		{id: "echo-64c-64B", mode: modeEcho, conns: 64, inflight: 16, size: 64},
		{id: "echo-1000c-64B", mode: modeEcho, conns: 1000, inflight: 16, size: 64},
		{id: "echo-64c-1KiB", mode: modeEcho, conns: 64, inflight: 16, size: 1 << 10},
		{id: "echo-64c-64KiB", mode: modeEcho, conns: 64, inflight: 16, size: 64 << 10},
		{id: "idle-5000c", mode: modeIdle, conns: 5000},
		{id: "storm-10000c", mode: modeStorm, conns: 10000},
		{id: "storm-tls-2000c", mode: modeStorm, conns: 2000, tls: true},
		{id: "broadcast-1000c-1KiB", mode: modeBroadcast, conns: 1000, inflight: 16, size: 1 << 10},
		{id: "fanout-2000-64B", mode: modeFanout, conns: 2000, size: 64},
		{id: "fanout-2000-1KiB", mode: modeFanout, conns: 2000, size: 1 << 10},
		{id: "fanout-10000-64B", mode: modeFanout, conns: 10000, size: 64, long: true},
		{id: "fanout-10000-1KiB", mode: modeFanout, conns: 10000, size: 1 << 10, long: true},
		{id: "fanout-2000-1KiB-slow10", mode: modeFanout, conns: 2000, size: 1 << 10, silent: 200, long: true},
		{id: "cross-daemon-1000-1KiB", mode: modeFanout, conns: 1000, size: 1 << 10, cross: true},
		{id: "cross-daemon-1000-1KiB-paced", mode: modeFanout, conns: 1000, size: 1 << 10, cross: true, rate: 200},
		{id: "cross-daemon-60-1KiB-paced", mode: modeFanout, conns: 60, size: 1 << 10, cross: true, rate: 100},
	}
}

// optInScenarios run only when -scenarios names them.
func optInScenarios() []*scenario {
	return []*scenario{
		// As many sessions as the server's 20000 descriptors allow, less a
		// hundred for its listeners, stats and slack.
		{id: "storm-19890c", mode: modeStorm, conns: 19890, procs: 3, ping: true},
	}
}

// quickScenarios are the subset of -quick.
func quickScenarios() []*scenario {
	return []*scenario{
		{id: "echo-64c-64B", mode: modeEcho, conns: 64, inflight: 16, size: 64},
		{id: "idle-1000c", mode: modeIdle, conns: 1000},
		{id: "storm-2000c", mode: modeStorm, conns: 2000},
		{id: "fanout-500-1KiB", mode: modeFanout, conns: 500, size: 1 << 10},
		{id: "cross-daemon-300-1KiB", mode: modeFanout, conns: 300, size: 1 << 10, cross: true},
	}
}

func scenarioIDs(scs []*scenario) []string {
	var ids []string
	seen := map[string]bool{}
	for _, sc := range scs {
		if !seen[sc.id] {
			ids = append(ids, sc.id)
			seen[sc.id] = true
		}
	}
	return ids
}

func scenarioByID(scs []*scenario, id string) *scenario {
	for _, sc := range scs {
		if sc.id == id {
			return sc
		}
	}
	return nil
}

// selectedScenarios are the scenarios of the mode, or those named by
// -scenarios (from either list).
func selectedScenarios(cfg config) []*scenario {
	base := fullScenarios()
	if cfg.quick {
		base = quickScenarios()
	}
	if len(cfg.scenarios) == 0 {
		return base
	}
	all := append(base, append(fullScenarios(), append(quickScenarios(), optInScenarios()...)...)...)
	var out []*scenario
	for _, id := range cfg.scenarios {
		out = append(out, scenarioByID(all, id))
	}
	return out
}

// runTimeout bounds one wsload run: its own phases plus room for dialing,
// draining and closing thousands of connections.
func (sc *scenario) runTimeout(cfg config) time.Duration {
	warmup, duration := sc.times(cfg)
	d := warmup + duration + 2*time.Minute
	switch sc.mode {
	case modeIdle:
		d = cfg.hold + 2*time.Minute
	case modeStorm:
		d = stormHold + 2*time.Minute
	}
	return d
}

// silentScale is how many times -fanout-duration the fan-out scenarios with
// silent members run: a member that does not read takes 3-4 MiB into its
// socket buffers on loopback (the server's send queue grows that far)
// before a write to it blocks, which takes 3 to 8 s at the rates measured
// here, and the servers' write timeouts (-fanout-write-timeout) must fall
// inside the run after that.
const silentScale = 6

// times are the warm-up and the measured time of each run of sc: fan-out
// scenarios have their own (-fanout-warmup, -fanout-duration, times
// silentScale with silent members).
func (sc *scenario) times(cfg config) (warmup, duration time.Duration) {
	if sc.mode != modeFanout {
		return cfg.warmup, cfg.duration
	}
	duration = cfg.fanoutDuration
	if sc.silent > 0 {
		duration *= silentScale
	}
	return cfg.fanoutWarmup, duration
}

// rounds is how many rounds sc runs.
func (sc *scenario) rounds(cfg config) int {
	switch {
	case sc.cross:
		return cfg.crossRounds
	case sc.mode == modeFanout && sc.long:
		return cfg.fanoutRoundsLong
	case sc.mode == modeFanout:
		return cfg.fanoutRounds
	}
	return cfg.rounds
}
