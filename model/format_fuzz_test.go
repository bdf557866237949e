package model

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
)

// The fuzzers of this file keep their inputs small (a header and a few
// bytes of data) so that they explore at thousands of inputs a second: a
// whole model file is 440 KB, a checkpoint over 1 MB, and inputs that size
// leave the fuzzer a few runs a second. Accepting whole files is what the
// table tests and round trips of safetensors_test.go and checkpoint_test.go
// check.

// tinyHeaderSeeds are small safetensors files around each check of the
// frame and the layout: lengths, JSON shape, metadata, offsets that tile
// the data, overlap, leave gaps, or run past its end.
func tinyHeaderSeeds() [][]byte {
	f := func(header string, data ...byte) []byte { return rawFile([]byte(header), data) }
	hugeLen := binary.LittleEndian.AppendUint64(nil, 1<<40)
	return [][]byte{
		nil,
		{1, 2, 3},
		f(`{}`),
		f(`{}`)[:9],
		append(hugeLen, `{}`...),
		f(`null`),
		f(`[1,2]`),
		f(`   {}  `),
		f(`{"__metadata__":{"format":"pt"}}`),
		f(`{"__metadata__":{"seed":7}}`),
		f(`{"__metadata__":null}`),
		f(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 1, 2, 3, 4),
		f(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 1, 2),
		f(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 1, 2, 3, 4, 5),
		f(`{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"b":{"dtype":"F64","shape":[0],"data_offsets":[8,8]}}`, 0, 0, 0, 0, 0, 0, 0, 0),
		f(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 1, 2, 3, 4, 5, 6, 7, 8),
		f(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}`, 1, 2, 3, 4, 5, 6),
		f(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[6,10]}}`, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
		f(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, 1, 2, 3, 4),
		f(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, 1, 2, 3, 4),
		f(`{"a":{"dtype":"F32","shape":"1","data_offsets":[0,18446744073709551615]}}`, 1),
		f(`{"a":[1,2]}`),
	}
}

// FuzzSafetensorsHeader fuzzes the frame and header parsing that model
// files and checkpoints share (splitSafetensors) and the layout check of
// checkpoints (parseTensorFile). Besides never panicking and failing with
// one line, what they accept must be consistent: the data is exactly the
// bytes after the header, the metadata is not a tensor, and the tensors
// tile the data without a gap or an overlap.
func FuzzSafetensorsHeader(f *testing.F) {
	for _, s := range tinyHeaderSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		raw, meta, data, err := splitSafetensors(in)
		if err != nil {
			if raw != nil || meta != nil || data != nil || strings.Contains(err.Error(), "\n") {
				t.Fatalf("bad error result: %v, %v, %d bytes, %q", raw, meta, len(data), err)
			}
			if _, _, err2 := parseTensorFile(in); err2 == nil {
				t.Fatalf("parseTensorFile accepted a file splitSafetensors refuses (%v)", err)
			}
			return
		}
		n := binary.LittleEndian.Uint64(in)
		if n > maxHeaderLen || 8+n+uint64(len(data)) != uint64(len(in)) || !bytes.Equal(data, in[8+n:]) {
			t.Fatalf("header length %d, %d bytes of data, file of %d bytes", n, len(data), len(in))
		}
		if _, ok := raw[metadataKey]; ok {
			t.Fatalf("%s returned as a tensor", metadataKey)
		}
		ts, meta2, err := parseTensorFile(in)
		if err != nil {
			if ts != nil || meta2 != nil || strings.Contains(err.Error(), "\n") {
				t.Fatalf("bad error result: %v, %v, %q", ts, meta2, err)
			}
			return
		}
		if !maps.Equal(meta, meta2) || len(ts) != len(raw) {
			t.Fatalf("parseTensorFile: metadata %v, %d tensors; splitSafetensors: %v, %d", meta2, len(ts), meta, len(raw))
		}
		names := slices.Collect(maps.Keys(ts))
		slices.SortFunc(names, func(a, b string) int {
			return cmp.Or(cmp.Compare(ts[a].entry.DataOffsets[0], ts[b].entry.DataOffsets[0]), strings.Compare(a, b))
		})
		var pos uint64
		for _, name := range names {
			r := ts[name]
			begin, end := r.entry.DataOffsets[0], r.entry.DataOffsets[1]
			if begin != pos || end < begin || uint64(len(r.data)) != end-begin || !bytes.Equal(r.data, data[begin:end]) {
				t.Fatalf("tensor %q at [%d, %d] with %d bytes after offset %d", name, begin, end, len(r.data), pos)
			}
			pos = end
		}
		if pos != uint64(len(data)) {
			t.Fatalf("tensors cover %d of %d bytes", pos, len(data))
		}
	})
}

// smallModelSeeds are small model files that get past the header: for each
// broken file of the table test, its header with at most 16 bytes of data
// (a valid header then fails as truncated), and our own header with no data
// at all.
func smallModelSeeds(t testing.TB) [][]byte {
	var out [][]byte
	add := func(file []byte) {
		if len(file) >= 8 {
			if n := binary.LittleEndian.Uint64(file); n <= maxHeaderLen && 8+n+16 < uint64(len(file)) {
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
	header := map[string]any{}
	var body []byte
	addTensor := func(name, dt string, data ...byte) {
		header[name] = safetensorsEntry{Dtype: dt, Shape: []int{len(data) / 4}, DataOffsets: []uint64{uint64(len(body)), uint64(len(body) + len(data))}}
		body = append(body, data...)
	}
	for i, name := range ParamNames() {
		addTensor(name, "F32", 0, 0, 0, 0)
		for _, slot := range slots {
			addTensor(c.Optimizer.TensorName(slot, i), "F64", 0, 0, 0, 0, 0, 0, 0, 0)
		}
	}
	addTensor(orderName, "I64", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	meta[checksumKey] = checkpointChecksum(meta, body)
	header[metadataKey] = meta
	return stFile(t, header, body)
}

// withChecksum returns in with its checkpoint checksum made right, or nil
// when in has no metadata to hold one. Fuzzing through it reaches the
// checks behind the checksum, which random bytes almost never pass.
func withChecksum(in []byte) []byte {
	raw, meta, data, err := splitSafetensors(in)
	if err != nil || meta == nil {
		return nil
	}
	meta[checksumKey] = checkpointChecksum(meta, data)
	m, err := json.Marshal(meta)
	if err != nil {
		return nil
	}
	raw[metadataKey] = m
	js, err := json.Marshal(raw)
	if err != nil {
		return nil
	}
	return rawFile(js, data)
}

// FuzzDecodeCheckpoint feeds small files to the checkpoint reader, each
// twice: as it is, and with its checksum made right so that the metadata
// checks (format, numbers, optimizer and its settings, dtype, tensor count
// and kinds) are explored too. It must never panic, must fail with one
// line and no checkpoint, and what it accepts must encode and decode again
// to the same metadata.
func FuzzDecodeCheckpoint(f *testing.F) {
	for _, opt := range OptimizerNames() {
		f.Add(tinyCheckpoint(f, opt, "float32"))
	}
	f.Add(tinyCheckpoint(f, sgdName, "float64"))
	f.Add(tinyCheckpoint(f, adamName, "float16"))
	for _, s := range tinyHeaderSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		check := func(file []byte) {
			c, err := DecodeCheckpoint(file)
			if err != nil {
				if c != nil || strings.Contains(err.Error(), "\n") {
					t.Fatalf("bad error result: %v, %q", c != nil, err)
				}
				return
			}
			var buf bytes.Buffer
			if err := EncodeCheckpoint(&buf, c); err != nil {
				t.Fatalf("re-encode an accepted checkpoint: %v", err)
			}
			if _, err := DecodeCheckpoint(buf.Bytes()); err != nil {
				t.Fatalf("re-read our own encoding: %v", err)
			}
		}
		check(in)
		if fixed := withChecksum(in); fixed != nil {
			check(fixed)
		}
	})
}
