//go:build !cuda

package gpu

import (
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
)

// TestOpenCPUBuild checks what the CPU build does with -gpu and -engine: it
// always trains on the CPU, refuses GPU engines, and warns when a GPU other
// than the default was asked for, so a user never mistakes a CPU run for a
// GPU one.
func TestOpenCPUBuild(t *testing.T) {
	cases := []struct {
		name     string
		ordinal  int
		engine   string
		wantErr  string
		wantWarn bool
	}{
		{name: "defaults", ordinal: 0, engine: EngineGorgonia},
		{name: "another GPU", ordinal: 1, engine: EngineGorgonia, wantWarn: true},
		{name: "GPU engine", ordinal: 0, engine: EngineNative, wantErr: "-engine native runs on a GPU"},
		{name: "unknown engine", ordinal: 0, engine: "tpu", wantErr: `unknown engine "tpu"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log, hook := test.NewNullLogger()
			log.SetLevel(logrus.DebugLevel)
			dev, err := Open(c.ordinal, c.engine, log)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Open(%d, %q) error = %v, want one containing %q", c.ordinal, c.engine, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%d, %q): %v", c.ordinal, c.engine, err)
			}
			if dev.CUDA() || dev.Name() != "cpu" {
				t.Errorf("device = %q (CUDA %v), want the CPU", dev.Name(), dev.CUDA())
			}
			warned := false
			for _, e := range hook.AllEntries() {
				if e.Level <= logrus.WarnLevel {
					warned = true
					if !strings.Contains(e.Message, "-gpu is ignored") || e.Data["gpu"] != c.ordinal {
						t.Errorf("warning %q with gpu=%v does not say that -gpu %d is ignored", e.Message, e.Data["gpu"], c.ordinal)
					}
				}
			}
			if warned != c.wantWarn {
				t.Errorf("warned = %v, want %v (entries: %d)", warned, c.wantWarn, len(hook.AllEntries()))
			}
		})
	}
}
