package main

import (
	"fmt"
	"io"

	"github.com/sirupsen/logrus"
)

func newLogger(o options, out io.Writer) (*logrus.Logger, error) {
	level, err := logrus.ParseLevel(o.logLevel)
	if err != nil {
		return nil, fmt.Errorf("unknown log level %q: use debug, info, warn or error", o.logLevel)
	}
	log := logrus.New()
	log.SetOutput(out)
	log.SetLevel(level)
	if o.logFormat == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	} else {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "15:04:05"})
	}
	return log, nil
}
