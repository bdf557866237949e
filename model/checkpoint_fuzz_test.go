package model

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"

	"mnist/model/tensorfile"
)

// FuzzDecodeCheckpointMetadata fuzzes what lies behind a checkpoint's
// checksum, which byte-level fuzzing of the file almost never gets past: a
// valid checkpoint has one metadata value replaced and the start of its
// shuffle order overwritten, and is sealed again, so that DecodeCheckpoint's
// own checks are what run. Whatever it accepts must be a checkpoint a run
// could resume from (every check the trainer and the optimizer make
// passes) and must survive being written and read again unchanged; whatever
// it refuses, it refuses in one line.
func FuzzDecodeCheckpointMetadata(f *testing.F) {
	var buf bytes.Buffer
	if err := EncodeCheckpoint(&buf, smallCheckpoint(f)); err != nil {
		f.Fatal(err)
	}
	base := buf.Bytes()
	keys := metadataKeys(f, base)
	for k := range keys {
		for _, v := range []string{"", "0", "1", "-1", "2", "3", "1e-7", "0.999", "1e400", "NaN", "-0", "+Inf",
			"9223372036854775807", "18446744073709551616", "adam", "sgd", "float64", "eA==", "!!"} {
			f.Add(uint8(k), v, []byte(nil))
		}
	}
	f.Add(uint8(0), "1", []byte{2})
	f.Add(uint8(0), "1", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	orderAt, orderLen := tensorOffset(f, base, orderName), 3*8
	f.Fuzz(func(t *testing.T, k uint8, value string, order []byte) {
		key := keys[int(k)%len(keys)]
		file := resealWith(t, base, func(body []byte) {
			copy(body[orderAt:orderAt+orderLen], order)
		}, func(meta map[string]string) { meta[key] = value })
		c, err := DecodeCheckpoint(file)
		if err != nil {
			if msg := err.Error(); msg == "" || strings.Contains(msg, "\n") {
				t.Fatalf("%s=%q: error %q is not one line", key, value, msg)
			}
			return
		}
		if err := c.Config.Validate(); err != nil {
			t.Fatalf("%s=%q: accepted a config no run has: %v", key, value, err)
		}
		if err := c.Train.check(); err != nil {
			t.Fatalf("%s=%q: accepted a training position no run has: %v", key, value, err)
		}
		if err := c.Optimizer.Check(); err != nil {
			t.Fatalf("%s=%q: accepted an optimizer state no run has: %v", key, value, err)
		}
		if c.Config.BatchSize > len(c.Train.Order) {
			t.Fatalf("%s=%q: accepted batch size %d for %d images", key, value, c.Config.BatchSize, len(c.Train.Order))
		}
		var again bytes.Buffer
		if err := EncodeCheckpoint(&again, c); err != nil {
			t.Fatalf("%s=%q: accepted, but cannot be written again: %v", key, value, err)
		}
		c2, err := DecodeCheckpoint(again.Bytes())
		if err != nil {
			t.Fatalf("%s=%q: written again, it reads back as %v", key, value, err)
		}
		if !reflect.DeepEqual(c2.Config, c.Config) || !reflect.DeepEqual(c2.Train, c.Train) ||
			c2.Optimizer.Step != c.Optimizer.Step || !reflect.DeepEqual(c2.Optimizer.Slots, c.Optimizer.Slots) {
			t.Fatalf("%s=%q: changed by writing and reading again:\n%+v\n%+v", key, value, c, c2)
		}
	})
}

// metadataKeys lists a file's metadata keys but the checksum, in order.
func metadataKeys(t testing.TB, file []byte) []string {
	t.Helper()
	_, meta := fileHeader(t, file)
	var keys []string
	for k := range meta {
		if k != tensorfile.ChecksumKey {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
