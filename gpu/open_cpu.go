//go:build !cuda

package gpu

import "github.com/sirupsen/logrus"

// BuiltWithCUDA reports whether this binary was built with the cuda tag.
const BuiltWithCUDA = false

// Open returns the device to train on with the named engine. Without the
// cuda build tag that is always the CPU with the gorgonia engine; the
// ordinal is ignored (the -gpu flag only matters in the cuda build), which
// is logged at debug level so it is not silently lost.
func Open(ordinal int, engine string, log logrus.FieldLogger) (Device, error) {
	if err := CheckEngine(engine); err != nil {
		return nil, err
	}
	log.WithField("gpu", ordinal).Debug("CPU build: -gpu is ignored; build with `make build-cuda` to use a GPU")
	return CPU(), nil
}
