//go:build !race

package echod

const raceEnabled = false
