package model

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// Edges of the file formats found by the mutation pass (scripts/mutate):
// behaviours that every other test let change.

// The size limit on model files is the length prefix, the largest header
// accepted (1 MiB) and the 437,544 bytes of parameters, as docs/formats.md
// says: written out here, not computed from the code's constants.
func TestMaxSafetensorsSizeIsDocumented(t *testing.T) {
	if got, want := MaxSafetensorsSize(), int64(8+1<<20+437544); got != want {
		t.Errorf("MaxSafetensorsSize() = %d, want %d", got, want)
	}
}

// EncodeSafetensors refuses what it cannot write faithfully, with an error
// naming the tensor, and writes nothing.
func TestEncodeSafetensorsRefuses(t *testing.T) {
	missing := testParams(t)
	missing.Tensors[3] = nil
	wrong := testParams(t)
	wrong.Tensors[4] = tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float32{1, 2, 3, 4}))
	tests := []struct {
		name string
		p    *Params
		meta map[string]string
		want string
	}{
		{"missing tensor", missing, nil, "dense2.bias is missing"},
		{"wrong shape", wrong, nil, "dense3.weight has shape (2, 2)"},
		{"metadata too large", testParams(t), map[string]string{"notes": strings.Repeat("x", 1<<20)}, "metadata too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := EncodeSafetensors(&buf, tt.p, tt.meta)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("EncodeSafetensors = %v, want an error saying %q", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes with the error", buf.Len())
			}
		})
	}
	// Just under the limit is fine, and reads back.
	var buf bytes.Buffer
	meta := map[string]string{"notes": strings.Repeat("x", 1<<20-2000)}
	if err := EncodeSafetensors(&buf, testParams(t), meta); err != nil {
		t.Fatalf("metadata under the limit: %v", err)
	}
	if _, got, err := DecodeSafetensors(buf.Bytes()); err != nil || got["notes"] != meta["notes"] {
		t.Errorf("read back: %v", err)
	}
}

// With several unexpected tensors the error names the first by name, the
// same every time, though the header is read into a map.
func TestDecodeSafetensorsErrorIsStable(t *testing.T) {
	names := []string{"q", "zzz", "b", "aaa", "m", "k"}
	header := map[string]any{}
	for _, n := range names {
		header[n] = map[string]any{"dtype": "F32", "shape": []int{0}, "data_offsets": []int{0, 0}}
	}
	file := stFile(t, header, nil)
	for range 50 {
		_, _, err := DecodeSafetensors(file)
		if err == nil || !strings.Contains(err.Error(), `unexpected tensor "aaa"`) {
			t.Fatalf("DecodeSafetensors = %v, want the error to name \"aaa\"", err)
		}
	}
}

// A model file may be as large as the limit, a header of exactly 1 MiB
// (padding is allowed) and the parameters; one byte more is refused by its
// size, before it is read.
func TestLoadSafetensorsSizeLimit(t *testing.T) {
	good := encodeTest(t, testParams(t), map[string]string{"seed": "7"})
	n := binary.LittleEndian.Uint64(good)
	header := append(bytes.Clone(good[8:8+n]), bytes.Repeat([]byte{' '}, 1<<20-int(n))...)
	largest := append(binary.LittleEndian.AppendUint64(nil, 1<<20), append(header, good[8+n:]...)...)
	if int64(len(largest)) != MaxSafetensorsSize() {
		t.Fatalf("built %d bytes, want %d", len(largest), MaxSafetensorsSize())
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "largest.safetensors")
	if err := os.WriteFile(path, largest, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSafetensors(path); err != nil {
		t.Errorf("a file of the largest size: %v", err)
	}
	if err := os.WriteFile(path, append(largest, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadSafetensors(path)
	if err == nil || !strings.Contains(err.Error(), "file is 1486129 bytes, larger than any model file") {
		t.Errorf("one byte over: %v, want the size named", err)
	}
}

// Saving over a folder fails at the rename, and says so; the temporary
// file goes.
func TestSaveSafetensorsOverFolder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SaveSafetensors(path, testParams(t), nil); err == nil {
		t.Fatal("saved over a folder")
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("folder holds %v (%v), want only the folder in the way", entries, err)
	}
}

// EncodeCheckpoint refuses a checkpoint it could not read back, naming
// what is wrong, and writes nothing.
func TestEncodeCheckpointRefuses(t *testing.T) {
	valid := func() *Checkpoint {
		opt, err := NewOptimizerState("adam")
		if err != nil {
			t.Fatal(err)
		}
		return &Checkpoint{Config: DefaultConfig(), Params: testParams(t), Optimizer: opt,
			Train: TrainState{Epoch: 1, Order: []int{1, 0, 2}, Shuffle: []byte("x")}}
	}
	var buf bytes.Buffer
	if err := EncodeCheckpoint(&buf, valid()); err != nil || buf.Len() == 0 {
		t.Fatalf("a valid checkpoint: %v", err)
	}
	tests := []struct {
		name string
		edit func(c *Checkpoint)
		want string
	}{
		{"no parameters", func(c *Checkpoint) { c.Params = nil }, "no parameters or no optimizer state"},
		{"no optimizer state", func(c *Checkpoint) { c.Optimizer = nil }, "no parameters or no optimizer state"},
		{"negative second moment", func(c *Checkpoint) { c.Optimizer.Slots[1][2][5] = -1 }, "adam.v.dense2.weight[5]"},
		{"unknown optimizer", func(c *Checkpoint) { c.Optimizer.Name = "rmsprop" }, `unknown optimizer "rmsprop"`},
		{"missing parameter", func(c *Checkpoint) { c.Params.Tensors[1] = nil }, "dense1.bias is missing or has the wrong size"},
		{"parameter of the wrong size", func(c *Checkpoint) {
			c.Params.Tensors[5] = tensor.New(tensor.WithShape(1, 3), tensor.WithBacking([]float32{1, 2, 3}))
		}, "dense3.bias is missing or has the wrong size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.edit(c)
			var buf bytes.Buffer
			err := EncodeCheckpoint(&buf, c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("EncodeCheckpoint = %v, want an error saying %q", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes with the error", buf.Len())
			}
		})
	}
}

// A folder in which nothing can be created (Linux's /proc, even for root)
// is reported as such by CheckWritable.
func TestCheckWritableUncreatable(t *testing.T) {
	if info, err := os.Stat("/proc/self"); err != nil || !info.IsDir() {
		t.Skip("no /proc")
	}
	err := CheckWritable("/proc/m.safetensors")
	if err == nil || !strings.Contains(err.Error(), "cannot create files in /proc: ") {
		t.Errorf("CheckWritable(/proc/m.safetensors) = %v, want cannot create files", err)
	}
}
