package tensorfile

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

// The fuzzers of this package keep their inputs small (a header and a few
// bytes of data) so that they explore thousands of inputs a second: a
// whole model file is 440 KB, a checkpoint over 1 MB. Package model's
// tests check whole files, and run the small files these fuzzers found
// through its own decoders (model/testdata/smallfiles).

// tinySeeds are small files around each check of the frame and the layout:
// lengths, JSON shape, metadata, offsets that tile the data, overlap,
// leave gaps, or run past its end.
func tinySeeds() [][]byte {
	hugeLen := binary.LittleEndian.AppendUint64(nil, 1<<40)
	return [][]byte{
		nil,
		{1, 2, 3},
		rawFile(`{}`),
		rawFile(`{}`)[:9],
		append(hugeLen, `{}`...),
		rawFile(`null`),
		rawFile(`[1,2]`),
		rawFile(`   {}  `),
		rawFile(`{"__metadata__":{"format":"pt"}}`),
		rawFile(`{"__metadata__":{"seed":7}}`),
		rawFile(`{"__metadata__":null}`),
		rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 1, 2, 3, 4),
		rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 1, 2),
		rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 1, 2, 3, 4, 5),
		rawFile(`{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"b":{"dtype":"F64","shape":[0],"data_offsets":[8,8]}}`, 0, 0, 0, 0, 0, 0, 0, 0),
		rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 1, 2, 3, 4, 5, 6, 7, 8),
		rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}`, 1, 2, 3, 4, 5, 6),
		rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[6,10]}}`, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
		rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, 1, 2, 3, 4),
		rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, 1, 2, 3, 4),
		rawFile(`{"a":{"dtype":"F32","shape":"1","data_offsets":[0,18446744073709551615]}}`, 1),
		rawFile(`{"a":[1,2]}`),
	}
}

// oneLine fails t unless err is a one-line error that came without a
// result.
func oneLine(t *testing.T, err error, noResult bool) {
	t.Helper()
	if !noResult || strings.Contains(err.Error(), "\n") {
		t.Fatalf("bad error result (a result with it: %v): %q", !noResult, err)
	}
}

// FuzzSplit fuzzes the frame and header parsing (Split) and the layout
// check (Tensors). Besides never panicking and failing with one line, what
// they accept must be consistent: the data is exactly the bytes after the
// header, the metadata is not a tensor, and the tensors tile the data
// without a gap or an overlap, each holding the bytes its offsets name.
func FuzzSplit(f *testing.F) {
	for _, s := range tinySeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		file, err := Split(in)
		if err != nil {
			oneLine(t, err, file == nil)
			return
		}
		n := binary.LittleEndian.Uint64(in)
		if n > MaxHeaderLen || 8+n+uint64(len(file.Data)) != uint64(len(in)) || !bytes.Equal(file.Data, in[8+n:]) {
			t.Fatalf("header length %d, %d bytes of data, file of %d bytes", n, len(file.Data), len(in))
		}
		if slices.Contains(file.Names(), MetadataKey) {
			t.Fatalf("%s returned as a tensor", MetadataKey)
		}
		ts, err := file.Tensors()
		if err != nil {
			oneLine(t, err, ts == nil)
			return
		}
		if len(ts) != len(file.Names()) {
			t.Fatalf("Tensors: %d tensors; the header has %v", len(ts), file.Names())
		}
		type span struct {
			name       string
			begin, end uint64
		}
		var spans []span
		for name, tensor := range ts {
			var e Entry
			if err := json.Unmarshal(file.entries[name], &e); err != nil {
				t.Fatalf("tensor %q accepted with a bad entry: %v", name, err)
			}
			if tensor.Name != name || tensor.Dtype != e.Dtype || !slices.Equal(tensor.Shape, e.Shape) || len(e.DataOffsets) != 2 {
				t.Fatalf("tensor %q: %+v from the entry %+v", name, tensor, e)
			}
			begin, end := e.DataOffsets[0], e.DataOffsets[1]
			if end < begin || end > uint64(len(file.Data)) || !bytes.Equal(tensor.Data, file.Data[begin:end]) {
				t.Fatalf("tensor %q at [%d, %d] holds %d bytes of %d", name, begin, end, len(tensor.Data), len(file.Data))
			}
			spans = append(spans, span{name, begin, end})
		}
		slices.SortFunc(spans, func(a, b span) int {
			if a.begin != b.begin {
				return int(a.begin - b.begin) // small: within the data
			}
			return strings.Compare(a.name, b.name)
		})
		var pos uint64
		for _, s := range spans {
			if s.begin != pos {
				t.Fatalf("tensor %q at [%d, %d] after offset %d", s.name, s.begin, s.end, pos)
			}
			pos = s.end
		}
		if pos != uint64(len(file.Data)) {
			t.Fatalf("tensors cover %d of %d bytes", pos, len(file.Data))
		}
	})
}

// modelSpecs are the tensors of package model's files, written out here so
// that the seeds found on model files meet the checks they met there.
var modelSpecs = []Spec{
	{Name: "dense1.weight", Dtype: "F32", Shape: []int{784, 128}},
	{Name: "dense1.bias", Dtype: "F32", Shape: []int{128}},
	{Name: "dense2.weight", Dtype: "F32", Shape: []int{128, 64}},
	{Name: "dense2.bias", Dtype: "F32", Shape: []int{64}},
	{Name: "dense3.weight", Dtype: "F32", Shape: []int{64, 10}},
	{Name: "dense3.bias", Dtype: "F32", Shape: []int{10}},
}

// smallSpecs are tensors small enough for the fuzzer to build files that
// Exact accepts, of four dtypes and an empty tensor.
var smallSpecs = []Spec{
	{Name: "dense1.weight", Dtype: "F32", Shape: []int{2, 1}},
	{Name: "dense1.bias", Dtype: "F32", Shape: []int{1}},
	{Name: "n", Dtype: "I64", Shape: []int{1}},
	{Name: "h", Dtype: "F16", Shape: []int{2}},
	{Name: "z", Dtype: "F64", Shape: []int{0}},
}

// FuzzDecode decodes whole files against the tensors a caller expects
// (Exact), both the model's and a small set that the fuzzer can fill. It
// must never panic and must fail with one line and no result; what it
// accepts, Tensors must accept with the same bytes, and Encode must write
// back so that Exact reads the same bytes and metadata again.
func FuzzDecode(f *testing.F) {
	for _, s := range tinySeeds() {
		f.Add(s)
	}
	good, err := Encode([]Tensor{
		{Name: "h", Dtype: "F16", Shape: []int{2}, Data: []byte{1, 2, 3, 4}},
		{Name: "dense1.weight", Dtype: "F32", Shape: []int{2, 1}, Data: []byte{0, 0, 128, 63, 0, 0, 0, 64}},
		{Name: "dense1.bias", Dtype: "F32", Shape: []int{1}, Data: []byte{0, 0, 0, 0}},
		{Name: "n", Dtype: "I64", Shape: []int{1}, Data: []byte{7, 0, 0, 0, 0, 0, 0, 0}},
		{Name: "z", Dtype: "F64", Shape: []int{0}},
	}, map[string]string{"seed": "7"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Fuzz(func(t *testing.T, in []byte) {
		file, err := Split(in)
		if err != nil {
			return // FuzzSplit's
		}
		for _, specs := range [][]Spec{modelSpecs, smallSpecs} {
			data, err := file.Exact(specs)
			if err != nil {
				oneLine(t, err, data == nil)
				continue
			}
			ts, err := file.Tensors()
			if err != nil {
				t.Fatalf("Tensors refuses what Exact accepts: %v", err)
			}
			out := make([]Tensor, len(specs))
			for i, s := range specs {
				b, err := Take(ts, s.Name, s.Dtype, s.Shape)
				if err != nil || !bytes.Equal(b, data[i]) {
					t.Fatalf("Take(%s) = %v, %v; Exact: %v", s.Name, b, err, data[i])
				}
				out[i] = Tensor{Name: s.Name, Dtype: s.Dtype, Shape: s.Shape, Data: data[i]}
			}
			again, err := Encode(out, file.Meta)
			if err != nil {
				t.Fatalf("re-encode an accepted file: %v", err)
			}
			file2, err := Split(again)
			if err != nil {
				t.Fatalf("re-read our own encoding: %v", err)
			}
			data2, err := file2.Exact(specs)
			if err != nil {
				t.Fatalf("re-read our own encoding: %v", err)
			}
			if !slices.EqualFunc(data, data2, bytes.Equal) || !maps.Equal(file.Meta, file2.Meta) {
				t.Fatalf("written back as %v, %v; read %v, %v", data2, file2.Meta, data, file.Meta)
			}
		}
	})
}

// withChecksum returns in with its checksum made right, or nil when in has
// no metadata to hold one. Fuzzing through it reaches the checks behind
// the checksum, which random bytes almost never pass.
func withChecksum(in []byte) []byte {
	file, err := Split(in)
	if err != nil || file.Meta == nil {
		return nil
	}
	file.Meta[ChecksumKey] = Checksum(file.Meta, file.Data)
	m, err := json.Marshal(file.Meta)
	if err != nil {
		return nil
	}
	file.entries[MetadataKey] = m
	js, err := json.Marshal(file.entries)
	if err != nil {
		return nil
	}
	return rawFile(string(js), file.Data...)
}

// FuzzSealed reads files the way checkpoints are read: Split, Verify the
// checksum, Tensors, then Take each tensor with the dtype and shape its
// entry names. Each input runs twice: as it is, and with its checksum made
// right. What passes must be sealed again by EncodeSealed, in the order of
// its data, to a file that reads back to the same tensors and metadata.
func FuzzSealed(f *testing.F) {
	for _, s := range tinySeeds() {
		f.Add(s)
		if c := withChecksum(s); c != nil {
			f.Add(c)
		}
	}
	sealed, err := EncodeSealed([]Tensor{
		{Name: "a", Dtype: "F64", Shape: []int{1}, Data: make([]byte, 8)},
		{Name: "o", Dtype: "I64", Shape: []int{2}, Data: make([]byte, 16)},
	}, map[string]string{"format": "x/1"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Fuzz(func(t *testing.T, in []byte) {
		check := func(in []byte) {
			file, err := Split(in)
			if err != nil {
				return // FuzzSplit's
			}
			if err := file.Verify(); err != nil {
				if !errors.Is(err, ErrChecksum) {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			ts, err := file.Tensors()
			if err != nil {
				return // FuzzSplit's
			}
			var out []Tensor
			for _, name := range file.Names() {
				tensor := ts[name]
				b, err := Take(ts, name, tensor.Dtype, tensor.Shape)
				if err != nil {
					oneLine(t, err, b == nil)
					if n, ok := byteSize(tensor.Dtype, tensor.Shape); ok && n == uint64(len(tensor.Data)) {
						t.Fatalf("Take(%s) refuses %d bytes of %s %v: %v", name, n, tensor.Dtype, tensor.Shape, err)
					}
					return
				}
				out = append(out, tensor)
			}
			// In the order of the data, so the data comes out the same.
			slices.SortStableFunc(out, func(a, b Tensor) int { return offsetIn(file.Data, a) - offsetIn(file.Data, b) })
			meta := maps.Clone(file.Meta)
			delete(meta, ChecksumKey)
			again, err := EncodeSealed(out, meta)
			if err != nil {
				t.Fatalf("seal again: %v", err)
			}
			file2, err := Split(again)
			if err != nil {
				t.Fatalf("re-read our own encoding: %v", err)
			}
			if err := file2.Verify(); err != nil {
				t.Fatalf("re-read our own encoding: %v", err)
			}
			ts2, err := file2.Tensors()
			if err != nil || !bytes.Equal(file2.Data, file.Data) || !maps.Equal(file2.Meta, file.Meta) || len(ts2) != len(ts) {
				t.Fatalf("sealed again as %v, %v (%v); read %v, %v", ts2, file2.Meta, err, ts, file.Meta)
			}
		}
		check(in)
		if fixed := withChecksum(in); fixed != nil {
			check(fixed)
		}
	})
}

// offsetIn is where t's bytes start in data, which holds them.
func offsetIn(data []byte, t Tensor) int {
	if len(t.Data) == 0 {
		return 0 // an empty tensor may go anywhere
	}
	return cap(data) - cap(t.Data) // data[begin:end] keeps cap(data)-begin
}
