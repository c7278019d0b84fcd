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
)

// scenario is one load, run against every server that can serve it.
type scenario struct {
	id       string
	mode     mode
	conns    int
	inflight int // echo: per connection; broadcast: of the one sender
	size     int
	note     string
}

// title is the scenario in words.
func (sc *scenario) title() string {
	switch sc.mode {
	case modeIdle:
		return fmt.Sprintf("idle memory, %d connections", sc.conns)
	case modeBroadcast:
		return fmt.Sprintf("broadcast %s to %d connections, one sender with %d in flight", sizeName(sc.size), sc.conns, sc.inflight)
	default:
		return fmt.Sprintf("echo %s, %d connection%s, %d in flight each", sizeName(sc.size), sc.conns, plural(sc.conns), sc.inflight)
	}
}

// short is the scenario in a progress line: "64c x 64B".
func (sc *scenario) short() string {
	if sc.mode == modeIdle {
		return fmt.Sprintf("idle %dc", sc.conns)
	}
	return fmt.Sprintf("%s %dc x %s", sc.mode, sc.conns, sizeName(sc.size))
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
		{id: "broadcast-1000c-1KiB", mode: modeBroadcast, conns: 1000, inflight: 16, size: 1 << 10},
	}
}

// quickScenarios are the subset of -quick.
func quickScenarios() []*scenario {
	return []*scenario{
		{id: "echo-64c-64B", mode: modeEcho, conns: 64, inflight: 16, size: 64},
		{id: "idle-1000c", mode: modeIdle, conns: 1000},
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
	all := append(base, append(fullScenarios(), quickScenarios()...)...)
	var out []*scenario
	for _, id := range cfg.scenarios {
		out = append(out, scenarioByID(all, id))
	}
	return out
}

// runTimeout bounds one wsload run: its own phases plus room for dialing,
// draining and closing thousands of connections.
func (sc *scenario) runTimeout(cfg config) time.Duration {
	d := cfg.warmup + cfg.duration + 2*time.Minute
	if sc.mode == modeIdle {
		d = cfg.hold + 2*time.Minute
	}
	return d
}
