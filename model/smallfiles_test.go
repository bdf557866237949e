package model

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"mnist/model/tensorfile"
)

// The fuzzers of the file formats live in package tensorfile, whose test
// binary, without Gorgonia, fuzzes about ten times faster. What they
// cannot reach is this package's side: the model's names and shapes, the
// checkpoint's metadata (format, numbers, optimizer and its settings,
// dtype, tensor count and kinds). The tests of this file run the decoders
// over small files (a header and a few bytes of data) found by fuzzing
// these decoders directly: testdata/smallfiles, the smallest input of each
// distinct outcome, in the go test fuzz v1 format, and the seeds below.

// readSmallFiles returns the inputs of the corpus files in
// testdata/smallfiles/dir.
func readSmallFiles(t *testing.T, dir string) [][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "smallfiles", dir, "*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no small files in %s: %v", dir, err)
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		header, value, ok := strings.Cut(strings.TrimSpace(string(b)), "\n")
		quoted, ok2 := strings.CutPrefix(value, "[]byte(")
		quoted, ok3 := strings.CutSuffix(quoted, ")")
		s, err := strconv.Unquote(quoted)
		if header != "go test fuzz v1" || !ok || !ok2 || !ok3 || err != nil {
			t.Fatalf("%s is not one []byte in the go test fuzz v1 format (%v)", p, err)
		}
		out = append(out, []byte(s))
	}
	return out
}

// smallModelSeeds are small model files that get past the header: for each
// broken file of the table test, its header with at most 16 bytes of data
// (a valid header then fails as truncated), and our own header with no data
// at all.
func smallModelSeeds(t testing.TB) [][]byte {
	var out [][]byte
	add := func(file []byte) {
		if len(file) >= 8 {
			if n := binary.LittleEndian.Uint64(file); n <= tensorfile.MaxHeaderLen && 8+n+16 < uint64(len(file)) {
				file = file[:8+n+16]
			}
		}
		out = append(out, bytes.Clone(file))
	}
	good := encodeTest(t, testParams(t), map[string]string{"seed": "7", "architecture": Architecture})
	add(good)
	n := binary.LittleEndian.Uint64(good)
	out = append(out, bytes.Clone(good[:8+n]))
	for _, c := range brokenFiles(t) {
		add(c.file)
	}
	return out
}

// TestDecodeSafetensorsSmallFiles: the model-file reader never panics,
// gives one-line errors and no parameters with them, and whatever it
// accepts is finite, passes the checkpoint's layout check too, and
// survives writing and reading again bit for bit.
func TestDecodeSafetensorsSmallFiles(t *testing.T) {
	inputs := append(smallModelSeeds(t), readSmallFiles(t, "model")...)
	for k, in := range inputs {
		p, meta, err := DecodeSafetensors(in)
		if err != nil {
			if p != nil || meta != nil || strings.Contains(err.Error(), "\n") {
				t.Fatalf("input %d: bad error result: %v, %v, %q", k, p != nil, meta, err)
			}
			continue
		}
		if f, err := tensorfile.Split(in); err != nil {
			t.Fatalf("input %d: accepted, but Split refuses it: %v", k, err)
		} else if _, err := f.Tensors(); err != nil {
			t.Fatalf("input %d: the checkpoint layout check refuses an accepted model file: %v", k, err)
		}
		var buf bytes.Buffer
		if err := EncodeSafetensors(&buf, p, meta); err != nil {
			t.Fatalf("input %d: re-encode an accepted file: %v", k, err)
		}
		q, meta2, err := DecodeSafetensors(buf.Bytes())
		if err != nil {
			t.Fatalf("input %d: re-read our own encoding: %v", k, err)
		}
		if len(meta2) != len(meta) {
			t.Fatalf("input %d: metadata %v became %v", k, meta, meta2)
		}
		for key, v := range meta {
			if meta2[key] != v {
				t.Fatalf("input %d: metadata %q: %q became %q", k, key, v, meta2[key])
			}
		}
		for i := range p.Tensors {
			a, b := p.Tensors[i].Data().([]float32), q.Tensors[i].Data().([]float32)
			for j := range a {
				if math.IsNaN(float64(a[j])) || math.IsInf(float64(a[j]), 0) {
					t.Fatalf("input %d: %s[%d] = %v accepted", k, ParamNames()[i], j, a[j])
				}
				if math.Float32bits(a[j]) != math.Float32bits(b[j]) {
					t.Fatalf("input %d: %s[%d]: %v became %v", k, ParamNames()[i], j, a[j], b[j])
				}
			}
		}
	}
}

// tinyCheckpoint is a checkpoint with a valid checksum whose metadata is
// that of a real run of the given optimizer and dtype, but whose tensors
// are tiny: it gets through the metadata checks to the tensors'.
func tinyCheckpoint(t testing.TB, optimizer, dtype string) []byte {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Optimizer.Name = optimizer
	c := &Checkpoint{Config: cfg, Optimizer: &OptimizerState{Name: optimizer, Step: 3},
		Train: TrainState{Epoch: 1, Step: 2, LossSum: 0.5, Correct: 40, Seen: 64, Shuffle: []byte("pcg:0123456789abcdef")}}
	meta := checkpointMetadata(c)
	meta["dtype"] = dtype
	slots, err := c.Optimizer.SlotNames()
	if err != nil {
		t.Fatal(err)
	}
	var tensors []tensorfile.Tensor
	add := func(name, dt string, data ...byte) {
		tensors = append(tensors, tensorfile.Tensor{Name: name, Dtype: dt, Shape: []int{len(data) / 4}, Data: data})
	}
	for i, name := range ParamNames() {
		add(name, "F32", 0, 0, 0, 0)
		for _, slot := range slots {
			add(c.Optimizer.TensorName(slot, i), "F64", 0, 0, 0, 0, 0, 0, 0, 0)
		}
	}
	add(orderName, "I64", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	b, err := tensorfile.EncodeSealed(tensors, meta)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withChecksum returns in with its checkpoint checksum made right, or nil
// when in has no metadata to hold one, so that the checks behind the
// checksum are reached.
func withChecksum(in []byte) []byte {
	f, err := tensorfile.Split(in)
	if err != nil || f.Meta == nil {
		return nil
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(in[8:8+binary.LittleEndian.Uint64(in)], &raw) != nil {
		return nil
	}
	f.Meta[tensorfile.ChecksumKey] = tensorfile.Checksum(f.Meta, f.Data)
	m, err := json.Marshal(f.Meta)
	if err != nil {
		return nil
	}
	raw[tensorfile.MetadataKey] = m
	js, err := json.Marshal(raw)
	if err != nil {
		return nil
	}
	return rawFile(js, f.Data)
}

// TestDecodeCheckpointSmallFiles runs small files through the checkpoint
// reader, each twice: as it is, and with its checksum made right. It must
// never panic, must fail with one line and no checkpoint, and what it
// accepts must encode and decode again.
func TestDecodeCheckpointSmallFiles(t *testing.T) {
	var inputs [][]byte
	for _, opt := range OptimizerNames() {
		inputs = append(inputs, tinyCheckpoint(t, opt, "float32"))
	}
	inputs = append(inputs, tinyCheckpoint(t, sgdName, "float64"), tinyCheckpoint(t, adamName, "float16"))
	inputs = append(inputs, readSmallFiles(t, "checkpoint")...)
	accepted := 0
	check := func(k int, file []byte) {
		c, err := DecodeCheckpoint(file)
		if err != nil {
			if c != nil || strings.Contains(err.Error(), "\n") {
				t.Fatalf("input %d: bad error result: %v, %q", k, c != nil, err)
			}
			return
		}
		accepted++
		var buf bytes.Buffer
		if err := EncodeCheckpoint(&buf, c); err != nil {
			t.Fatalf("input %d: re-encode an accepted checkpoint: %v", k, err)
		}
		if _, err := DecodeCheckpoint(buf.Bytes()); err != nil {
			t.Fatalf("input %d: re-read our own encoding: %v", k, err)
		}
	}
	for k, in := range inputs {
		check(k, in)
		if fixed := withChecksum(in); fixed != nil {
			check(k, fixed)
		}
	}
	t.Logf("%d inputs, %d accepted", len(inputs), accepted)
}
