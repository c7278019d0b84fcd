// Package conformance checks the echo daemon's WebSocket handler against
// RFC 6455, case by case, the way the Autobahn test suite groups its cases:
// framing (1.x), ping and pong (2.x), reserved bits (3.x), opcodes (4.x),
// fragmentation (5.x), UTF-8 (6.x), close handling (7.x), limits (9.x), and
// permessage-deflate (RFC 7692): compressed echoes (12.x) and the
// negotiation of offers (13.x); and one group Autobahn lacks (10.x): the
// echo of a valid message comes before the close that a bad frame behind
// it causes, and bytes behind the client's close frame neither get an
// answer nor turn the server's close into a reset. The daemon runs with
// compression on; cases that offer nothing see it declined.
//
// The suite is its own client: it dials loopback TCP, sends the opening
// handshake by hand, and writes frames byte by byte as a test needs them,
// malformed ones included; it reads the server's frames with a reader that
// checks them against the rules for a server. Every case runs on its own
// connection and names the outcome the RFC asks for: the echo, the close
// code, and that the server closes TCP soon after its close frame.
//
// Run it with
//
//	go test ./conformance
//	go test ./conformance -run 'TestConformance/6\.3\.2_'  # one case
//	go test ./conformance -v -run 'TestConformance/7\.'     # one group, verbose
//
// After the tests it prints the summary line, "N passed, M failed", then
// the names of the cases that failed. go test shows a passing package's
// output only in directory mode (go test, inside conformance/) or with -v.
//
// The package holds only tests; this file exists for its documentation.
package conformance
