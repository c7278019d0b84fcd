// Package wsload is the engine of cmd/wsload, the load generator that
// `make bench` points at WebSocket servers.
//
// Each connection is one goroutine that both reads and writes, so the
// generator costs little next to the server it measures. The masked client
// frames of a connection's window are encoded once (one random mask per
// connection, deterministic payloads, a different one per slot of the
// window). The goroutine reads into a 64 KiB pooled buffer and parses the
// frames in place with codec.Parser, the runtime's own frame parser, which
// neither copies payloads nor allocates and checks every frame as a client
// must (masking, reserved bits and opcodes, control frames, continuation
// order, the UTF-8 of text): a server that breaks the protocol fails its
// connection with the close code that names the violation. In tcp mode a
// length prefix is all there is to parse (tcpFramer). After each read it
// writes the pongs it owes and then, in one write, the refill of as many
// messages as came back. The window is closed-loop: a connection keeps
// Inflight messages outstanding. Echoes come back in order, so a ring of
// send times gives each message's latency, which goes into a per-connection
// Hist; the Hists are merged at the end.
//
// A run moves through phases that a coordinator sets: dial, warm-up,
// measurement, drain (no new sends; wait for the last echoes), close (a
// closing handshake on every connection). Every wait is bounded, so a
// server that stalls or stops reading cannot hang the run.
//
// codec.Parser replaced a parser of wsload's own, which checked less, once a
// benchmark showed it no slower here (BenchmarkParse: one 64 KiB read of 992
// echoes of 64 B through the whole read path, medians of 6 runs on the
// 2-CPU machine of 2026-12-04): binary echoes, which make bench sends, took
// 18.6 µs instead of 25.7 µs, and text echoes 28.0 µs as before, the UTF-8
// check included, which the old parser skipped.
//
// The fan-out mode (ModeFanout, fanout.go) has members of their own: one
// publishes stamped messages, paced by the slowest member that reads, and
// every member counts what the server's broadcast delivers to it, with
// silent members that never read. Its members may be spread over several
// servers that share one broadcast (daemons whose rooms span them over
// NATS), and it measures the time from publishing a message to its receipt
// by the last member.
//
// The storm mode (ModeStorm, storm.go) only dials: the handshakes per
// second over the time from the first dial to the last handshake, the
// server's memory at its peak, Hold after the storm without a garbage
// collection and after one; with Ping every connection then pings once,
// all at once, and the close of them all is timed. Sources spreads the
// connections over local addresses, for more than one address has ports.
//
// Run returns a Result, whose JSON form is the interface with the bench
// orchestrator.
package wsload
