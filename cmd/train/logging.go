package main

import (
	"fmt"
	"io"
	"os"

	"github.com/sirupsen/logrus"
)

func newLogger(o options, out io.Writer) (*logrus.Logger, error) {
	level, err := parseLogLevel(o.logLevel)
	if err != nil {
		return nil, err
	}
	log := logrus.New()
	log.SetOutput(out)
	log.SetLevel(level)
	if o.logFormat == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	} else {
		log.SetFormatter(&logrus.TextFormatter{
			FullTimestamp:   true,
			TimestampFormat: "15:04:05",
			DisableColors:   !colorsWanted(os.Getenv("NO_COLOR"), os.Getenv("TERM")),
		})
	}
	return log, nil
}

// parseLogLevel reads -log-level: the four levels -h names, and no other
// of logrus's (trace, fatal, panic, "warning").
func parseLogLevel(s string) (logrus.Level, error) {
	switch s {
	case "debug":
		return logrus.DebugLevel, nil
	case "info":
		return logrus.InfoLevel, nil
	case "warn":
		return logrus.WarnLevel, nil
	case "error":
		return logrus.ErrorLevel, nil
	}
	return 0, fmt.Errorf("unknown log level %q: use debug, info, warn or error", s)
}

// colorsWanted says whether the text log may be coloured (on a terminal,
// which logrus checks): not when NO_COLOR is set to anything (no-color.org),
// nor on TERM=dumb, a terminal that shows escape codes as text.
func colorsWanted(noColor, term string) bool {
	return noColor == "" && term != "dumb"
}

// resultLogger writes the entries that carry a run's results (the
// evaluation, each prediction) where log writes and as it formats them,
// but at level info whatever -log-level: the level filters progress and
// diagnostics, never results, which in json mode are the run's only output.
func resultLogger(log *logrus.Logger) *logrus.Logger {
	results := logrus.New()
	results.SetOutput(log.Out)
	results.SetFormatter(log.Formatter)
	results.SetLevel(logrus.InfoLevel)
	return results
}
