//go:build race

package echod

// raceEnabled is set under the race detector, which makes sync.Pool drop
// buffers at random: allocation counts mean nothing then.
const raceEnabled = true
