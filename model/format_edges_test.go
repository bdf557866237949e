package model

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"mnist/data/fileio"
	"mnist/model/tensorfile"
)

// Edges of the file formats found by the mutation pass (scripts/mutate):
// behaviours that every other test let change.

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

// A model file's header may be padded up to the 1 MiB header limit and
// still load; any byte past the parameters is refused, whatever the size.
func TestLoadSafetensorsSizeLimit(t *testing.T) {
	good := encodeTest(t, testParams(t), map[string]string{"seed": "7"})
	n := binary.LittleEndian.Uint64(good)
	header := append(bytes.Clone(good[8:8+n]), bytes.Repeat([]byte{' '}, 1<<20-int(n))...)
	largest := append(binary.LittleEndian.AppendUint64(nil, 1<<20), append(header, good[8+n:]...)...)
	if len(largest) != 8+1<<20+437544 {
		t.Fatalf("built %d bytes, want %d", len(largest), 8+1<<20+437544)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "largest.safetensors")
	if err := os.WriteFile(path, largest, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSafetensors(context.Background(), path); err != nil {
		t.Errorf("a file with the largest header: %v", err)
	}
	if err := os.WriteFile(path, append(largest, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSafetensors(context.Background(), path); err == nil {
		t.Error("one byte past the parameters: loaded")
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
		// A header past tensorfile.MaxHeaderLen could not be read back.
		{"metadata too large", func(c *Checkpoint) { c.Train.Shuffle = make([]byte, 1<<20) }, "exceeds 1048576 (metadata too large)"},
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
// is reported as such when a model path there is checked.
func TestCheckWritableUncreatable(t *testing.T) {
	if info, err := os.Stat("/proc/self"); err != nil || !info.IsDir() {
		t.Skip("no /proc")
	}
	err := fileio.CheckTarget("/proc/m.safetensors")
	if err == nil || !strings.Contains(err.Error(), "cannot create files in folder /proc") {
		t.Errorf("CheckTarget(/proc/m.safetensors) = %v, want cannot create files", err)
	}
}

// smallCheckpoint is a valid checkpoint of three training images.
func smallCheckpoint(t testing.TB) *Checkpoint {
	t.Helper()
	opt, err := NewOptimizerState("adam")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.BatchSize = 2
	return &Checkpoint{Config: cfg, Params: testParams(t), Optimizer: opt,
		Train: TrainState{Epoch: 1, Order: []int{1, 0, 2}, Shuffle: []byte("x")}}
}

// editEntries rewrites the tensor entries of a checkpoint's header. The
// checksum covers the metadata and the data, not the entries, so it stays
// valid: what is tested is the decoder's own checks.
func editEntries(t *testing.T, file []byte, edit func(es map[string]*tensorfile.Entry)) []byte {
	t.Helper()
	n := binary.LittleEndian.Uint64(file)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(file[8:8+n], &raw); err != nil {
		t.Fatal(err)
	}
	es := map[string]*tensorfile.Entry{}
	for k, v := range raw {
		if k == tensorfile.MetadataKey {
			continue
		}
		e := &tensorfile.Entry{}
		if err := json.Unmarshal(v, e); err != nil {
			t.Fatal(err)
		}
		es[k] = e
	}
	edit(es)
	for k, e := range es {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		raw[k] = b
	}
	js, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	return append(append(binary.LittleEndian.AppendUint64(nil, uint64(len(js))), js...), file[8+n:]...)
}

// The decoder checks each tensor's dtype, shape and byte size, and the
// metadata's numbers, though the checksum matches; the data starts 8-byte
// aligned whatever the header's length.
func TestDecodeCheckpointChecksBehindTheChecksum(t *testing.T) {
	var buf bytes.Buffer
	if err := EncodeCheckpoint(&buf, smallCheckpoint(t)); err != nil {
		t.Fatal(err)
	}
	file := buf.Bytes()
	if _, err := DecodeCheckpoint(file); err != nil {
		t.Fatalf("the valid checkpoint: %v", err)
	}
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"dtype", editEntries(t, file, func(es map[string]*tensorfile.Entry) { es["dense1.bias"].Dtype = "F16" }),
			`tensor "dense1.bias" has dtype "F16", want "F32"`},
		{"shape", editEntries(t, file, func(es map[string]*tensorfile.Entry) { es["adam.m.dense1.bias"].Shape = []int{2, 64} }),
			`tensor "adam.m.dense1.bias" has shape [2 64], want [128]`},
		{"byte size", editEntries(t, file, func(es map[string]*tensorfile.Entry) {
			// Move the boundary between two neighbours by 8 bytes: the
			// tensors still tile the data, but neither has its size.
			var a, b *tensorfile.Entry
			for _, e := range es {
				for _, f := range es {
					if e.DataOffsets[1] == f.DataOffsets[0] && e.DataOffsets[1]-e.DataOffsets[0] > 8 {
						a, b = e, f
					}
				}
			}
			a.DataOffsets[1] -= 8
			b.DataOffsets[0] -= 8
		}), "bytes, want"},
		{"gap", editEntries(t, file, func(es map[string]*tensorfile.Entry) {
			es[orderName].DataOffsets[0] += 8
		}), "tensors must tile the data"},
		{"epoch not a number", resealMeta(t, file, "epoch", "one"), `metadata "epoch"`},
		// Of two broken fields the number is named, not the optimizer
		// read after it.
		{"epoch and optimizer", resealWith(t, file, nil, func(meta map[string]string) {
			meta["epoch"], meta["optimizer"] = "one", "rmsprop"
		}), `metadata "epoch"`},
		{"loss_sum not a number", resealMeta(t, file, "loss_sum", "much"), `metadata "loss_sum"`},
		{"seed not a number", resealMeta(t, file, "seed", "-1"), `metadata "seed"`},
		{"optimizer step not a number", resealMeta(t, file, "optimizer_step", "1.5"), `metadata "optimizer_step"`},
		{"setting not a number", resealMeta(t, file, "optimizer.beta1", "x"), `metadata "optimizer.beta1"`},
		{"order of two dimensions", editEntries(t, file, func(es map[string]*tensorfile.Entry) { es[orderName].Shape = []int{3, 1} }),
			`tensor "shuffle.order" is missing or not one-dimensional`},
		{"order of another dtype", editEntries(t, file, func(es map[string]*tensorfile.Entry) { es[orderName].Dtype = "F64" }),
			`tensor "shuffle.order" has dtype "F64", want "I64"`},
		{"unknown optimizer names the field", resealMeta(t, file, "optimizer", "rmsprop"), `metadata "optimizer": unknown optimizer "rmsprop"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DecodeCheckpoint(tt.file)
			if err == nil || c != nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeCheckpoint = %v, want an error saying %q", err, tt.want)
			}
		})
	}

	epoch := 1
	for range 8 { // epochs of 1 to 8 digits: headers of every length mod 8
		c := smallCheckpoint(t)
		c.Train.Epoch = epoch
		buf.Reset()
		if err := EncodeCheckpoint(&buf, c); err != nil {
			t.Fatal(err)
		}
		if n := binary.LittleEndian.Uint64(buf.Bytes()); (8+n)%8 != 0 {
			t.Errorf("epoch %d: data starts at %d, not 8-byte aligned", epoch, 8+n)
		}
		epoch *= 10
	}
}

// A float64 checkpoint reads back as float64, and a parameter that is not
// finite is refused, naming it.
func TestDecodeCheckpointFloat64AndNonFinite(t *testing.T) {
	c := smallCheckpoint(t)
	c.Config.Dtype = tensor.Float64
	p, err := NewParams(tensor.Float64, 3)
	if err != nil {
		t.Fatal(err)
	}
	c.Params = p
	var buf bytes.Buffer
	if err := EncodeCheckpoint(&buf, c); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCheckpoint(buf.Bytes())
	if err != nil || got == nil {
		t.Fatalf("float64 checkpoint: %v", err)
	}
	want := p.Tensors[2].Data().([]float64)
	if d, ok := got.Params.Tensors[2].Data().([]float64); !ok || d[7] != want[7] || got.Config.Dtype != tensor.Float64 {
		t.Errorf("float64 parameters did not read back")
	}

	p.Tensors[2].Data().([]float64)[3] = math.NaN()
	buf.Reset()
	if err := EncodeCheckpoint(&buf, c); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeCheckpoint(buf.Bytes()); err == nil || !strings.Contains(err.Error(), `tensor "dense2.weight"[3] is NaN`) {
		t.Errorf("NaN parameter: %v", err)
	}
}

// SaveCheckpoint and LoadCheckpoint: a round trip through a file, and the
// errors of a folder that is missing and a file that is.
func TestSaveLoadCheckpointFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.safetensors")
	if err := SaveCheckpoint(path, smallCheckpoint(t)); err != nil {
		t.Fatal(err)
	}
	c, err := LoadCheckpoint(context.Background(), path)
	if err != nil || c == nil || c.Train.Epoch != 1 || len(c.Train.Order) != 3 {
		t.Fatalf("LoadCheckpoint = %v, %v", c, err)
	}
	if err := SaveCheckpoint(filepath.Join(dir, "missing", "c.safetensors"), smallCheckpoint(t)); err == nil {
		t.Error("saved into a missing folder")
	}
	if _, err := LoadCheckpoint(context.Background(), filepath.Join(dir, "none.safetensors")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadCheckpoint of a missing file = %v, want fs.ErrNotExist", err)
	}
	if _, err := LoadCheckpoint(context.Background(), dir); err == nil || !strings.Contains(err.Error(), "it is a folder, not a regular file") {
		t.Errorf("LoadCheckpoint of a folder = %v, want it to say it is a directory", err)
	}
	garbage := filepath.Join(dir, "garbage.safetensors")
	if err := os.WriteFile(garbage, []byte("not a checkpoint at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadCheckpoint(context.Background(), garbage); err == nil || c != nil || !strings.Contains(err.Error(), "load checkpoint "+garbage+": ") {
		t.Errorf("LoadCheckpoint of garbage = %v, %v; want an error naming the file", c, err)
	}
	// One byte over the 64 MiB limit (a sparse file: nothing is written).
	big := filepath.Join(dir, "big.safetensors")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 64<<20+1); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCheckpoint(context.Background(), big); err == nil || !strings.Contains(err.Error(), "file too large: 67108865 bytes, more than the 67108864 allowed") {
		t.Errorf("LoadCheckpoint of 64 MiB + 1 = %v, want the size refused", err)
	}
}
