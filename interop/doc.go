// Package interop checks that wsactor speaks WebSocket the way other
// implementations do: gorilla/websocket and coder/websocket as clients of a
// wsactor server and as servers for a wsactor client, and Debian's Python
// websockets library as a client (testdata/py_client.py). The same clients
// also run against the echo daemon, internal/app/echod (daemon_test.go), whose
// /debug/vars metrics must count what they did. It is a module of
// its own so that the runtime's go.mod keeps its three dependencies.
//
// Run the tests with `go test -race ./...` from this directory. The Python
// test needs python3 and python3-websockets: scripts/install-test-deps.sh installs
// them; WSACTOR_SKIP_PYTHON=1 skips that test instead.
package interop
