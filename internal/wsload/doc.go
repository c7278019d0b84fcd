// Package wsload is the engine of cmd/wsload, the load generator that
// `make bench` points at WebSocket servers.
//
// Each connection is one goroutine that both reads and writes, so the
// generator costs little next to the server it measures. The masked client
// frames of a connection's window are encoded once (one random mask per
// connection, deterministic payloads, a different one per slot of the
// window). The goroutine reads into a 64 KiB pooled buffer and parses the
// frames in place with Parser, which neither copies payloads nor allocates.
// After each read it writes the pongs it owes and then, in one write, the
// refill of as many messages as came back. The window is closed-loop: a
// connection keeps Inflight messages outstanding. Echoes come back in order,
// so a ring of send times gives each message's latency, which goes into a
// per-connection Hist; the Hists are merged at the end.
//
// A run moves through phases that a coordinator sets: dial, warm-up,
// measurement, drain (no new sends; wait for the last echoes), close (a
// closing handshake on every connection). Every wait is bounded, so a
// server that stalls or stops reading cannot hang the run.
//
// Run returns a Result, whose JSON form is the interface with the bench
// orchestrator.
package wsload
