//go:build race

package relay_test

// raceEnabled: the race detector makes every goroutine and allocation
// several times dearer, so the heaviest tests scale down under it.
const raceEnabled = true
