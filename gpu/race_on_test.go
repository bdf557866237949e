//go:build race

package gpu

// raceDetector says the tests run under the race detector.
const raceDetector = true
