package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// checkServeFlags rejects -serve without a model, with a bad address, and
// with flags that only mean something when training or predicting.
func checkServeFlags(o options, set map[string]bool) error {
	if o.loadPath == "" {
		return errors.New("-serve needs a model: give -load FILE (make train saves one to bin/model.safetensors)")
	}
	_, port, err := net.SplitHostPort(o.serveAddr)
	if err != nil {
		return fmt.Errorf("-serve %q: want host:port, e.g. 127.0.0.1:8080", o.serveAddr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("-serve %q: the port must be a number from 0 to 65535", o.serveAddr)
	}
	return refuseFlags(set, "serve", "only serves the -load model",
		"predict", "epochs", "lr", "optimizer", "seed", "save", "metrics-out", "plot", "download-only", "data-dir", "checkpoint-dir", "resume")
}
