//go:build !cuda

package gpu

import "github.com/sirupsen/logrus"

// BuiltWithCUDA reports whether this binary was built with the cuda tag.
const BuiltWithCUDA = false

// Open returns the device to train on with the named engine. Without the
// cuda build tag that is always the CPU with the gorgonia engine, and the
// ordinal picks nothing. A user who names a GPU other than the default one
// evidently expects a GPU, so that is a warning rather than a silent CPU run;
// it stays a warning, not an error, so that one command line works with
// either build.
func Open(ordinal int, engine string, log logrus.FieldLogger) (Device, error) {
	if err := CheckEngine(engine); err != nil {
		return nil, err
	}
	entry := log.WithField("gpu", ordinal)
	if ordinal != 0 {
		entry.Warn("this is the CPU build: -gpu is ignored and training runs on the CPU; build with `make build-cuda` to use a GPU")
	} else {
		entry.Debug("CPU build: -gpu is ignored; build with `make build-cuda` to use a GPU")
	}
	return CPU(), nil
}
