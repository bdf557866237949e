package model

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// testParams are seeded glorot weights with non-zero biases, so that a
// bias mixed up with a weight or left at zero shows.
func testParams(t testing.TB) *Params {
	t.Helper()
	p, err := NewParams(tensor.Float32, 7)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 6; i += 2 {
		d := p.Tensors[i].Data().([]float32)
		for j := range d {
			d[j] = float32(i) + float32(j)/1000
		}
	}
	return p
}

func encodeTest(t testing.TB, p *Params, meta map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := EncodeSafetensors(&buf, p, meta); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSafetensorsIndependentReader reads our file the way any safetensors
// reader does, with nothing from the package under test: the length prefix,
// the JSON header, every tensor's bytes at its offsets.
func TestSafetensorsIndependentReader(t *testing.T) {
	p := testParams(t)
	meta := map[string]string{"architecture": Architecture, "seed": "7"}
	b := encodeTest(t, p, meta)

	if len(b) < 8 {
		t.Fatalf("file is %d bytes", len(b))
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if 8+n > uint64(len(b)) {
		t.Fatalf("header length %d beyond the %d-byte file", n, len(b))
	}
	if (8+n)%8 != 0 {
		t.Errorf("data starts at %d, not 8-byte aligned", 8+n)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &header); err != nil {
		t.Fatalf("header: %v", err)
	}
	var gotMeta map[string]string
	if err := json.Unmarshal(header["__metadata__"], &gotMeta); err != nil {
		t.Fatalf("__metadata__: %v", err)
	}
	if gotMeta["architecture"] != Architecture || gotMeta["seed"] != "7" {
		t.Errorf("metadata %v", gotMeta)
	}
	buf := b[8+n:]
	wantShapes := map[string][]int{
		"dense1.weight": {784, 128}, "dense1.bias": {128},
		"dense2.weight": {128, 64}, "dense2.bias": {64},
		"dense3.weight": {64, 10}, "dense3.bias": {10},
	}
	if len(header) != 7 {
		t.Errorf("header has %d entries, want 6 tensors and __metadata__", len(header))
	}
	covered := make([]int, len(buf))
	for i, name := range []string{"dense1.weight", "dense1.bias", "dense2.weight", "dense2.bias", "dense3.weight", "dense3.bias"} {
		var e struct {
			Dtype       string `json:"dtype"`
			Shape       []int  `json:"shape"`
			DataOffsets [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(header[name], &e); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if e.Dtype != "F32" || fmt.Sprint(e.Shape) != fmt.Sprint(wantShapes[name]) {
			t.Errorf("%s: dtype %s shape %v", name, e.Dtype, e.Shape)
		}
		lo, hi := e.DataOffsets[0], e.DataOffsets[1]
		if lo < 0 || hi > len(buf) || hi-lo != 4*len(p.Tensors[i].Data().([]float32)) {
			t.Fatalf("%s: offsets [%d, %d] in a %d-byte buffer", name, lo, hi, len(buf))
		}
		for k := lo; k < hi; k++ {
			covered[k]++
		}
		for j, want := range p.Tensors[i].Data().([]float32) {
			got := math.Float32frombits(binary.LittleEndian.Uint32(buf[lo+4*j:]))
			if math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("%s[%d] = %v, want %v", name, j, got, want)
			}
		}
	}
	for k, c := range covered {
		if c != 1 {
			t.Fatalf("byte %d of the data buffer is covered by %d tensors, want exactly 1", k, c)
		}
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	p := testParams(t)
	meta := map[string]string{"test_loss": "0.0846", "empty": ""}
	got, gotMeta, err := DecodeSafetensors(encodeTest(t, p, meta))
	if err != nil {
		t.Fatal(err)
	}
	assertSameParams(t, got, p)
	if fmt.Sprint(gotMeta) != fmt.Sprint(meta) {
		t.Errorf("metadata %v, want %v", gotMeta, meta)
	}
	// Every finite float32 bit pattern survives: the smallest subnormal,
	// negative zero, the largest float32. (NaN and ±Inf are refused, see
	// brokenFiles.)
	p.Tensors[0].Data().([]float32)[44] = math.Float32frombits(0x00000001)
	p.Tensors[5].Data().([]float32)[9] = math.Float32frombits(0x80000000)
	p.Tensors[3].Data().([]float32)[0] = math.Float32frombits(0x7f7fffff)
	again, _, err := DecodeSafetensors(encodeTest(t, p, nil))
	if err != nil {
		t.Fatal(err)
	}
	assertSameParams(t, again, p)

	// Float64 parameters (the gradient tests' dtype) are written as F32.
	p64, err := NewParams(tensor.Float64, 7)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err = DecodeSafetensors(encodeTest(t, p64, nil))
	if err != nil {
		t.Fatal(err)
	}
	for i := range got.Tensors {
		for j, x := range p64.Tensors[i].Data().([]float64) {
			if got.Tensors[i].Data().([]float32)[j] != float32(x) {
				t.Fatalf("%s[%d] not float32(%v)", ParamNames()[i], j, x)
			}
		}
	}
	// The loaded tensors have Params's shapes, so SetParams takes them.
	if err := checkShapes(got, p); err != nil {
		t.Error(err)
	}
}

func assertSameParams(t *testing.T, got, want *Params) {
	t.Helper()
	for i := range want.Tensors {
		if !got.Tensors[i].Shape().Eq(want.Tensors[i].Shape()) {
			t.Fatalf("%s shape %v, want %v", ParamNames()[i], got.Tensors[i].Shape(), want.Tensors[i].Shape())
		}
		g, w := got.Tensors[i].Data().([]float32), want.Tensors[i].Data().([]float32)
		for j := range w {
			if math.Float32bits(g[j]) != math.Float32bits(w[j]) {
				t.Fatalf("%s[%d] = %v, want %v", ParamNames()[i], j, g[j], w[j])
			}
		}
	}
}

// stFile assembles a safetensors file from a header and a data buffer, the
// way another writer might: header unpadded, keys in any order.
func stFile(t testing.TB, header any, data []byte) []byte {
	t.Helper()
	js, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	return rawFile(js, data)
}

func rawFile(header, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

type entry = map[string]any

// validLayout is our six tensors' header entries, laid out in reverse
// order in the data buffer (allowed: only the offsets matter), and the
// buffer.
func validLayout(p *Params) (map[string]any, []byte) {
	h := map[string]any{}
	var data []byte
	names, shapes := ParamNames(), fileShapes()
	for i := 5; i >= 0; i-- {
		begin := len(data)
		for _, x := range p.Tensors[i].Data().([]float32) {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(x))
		}
		h[names[i]] = entry{"dtype": "F32", "shape": shapes[i], "data_offsets": []int{begin, len(data)}}
	}
	return h, data
}

func TestSafetensorsForeignLayoutLoads(t *testing.T) {
	p := testParams(t)
	h, data := validLayout(p)
	h["__metadata__"] = map[string]string{"format": "pt"}
	got, meta, err := DecodeSafetensors(stFile(t, h, data))
	if err != nil {
		t.Fatal(err)
	}
	assertSameParams(t, got, p)
	if meta["format"] != "pt" {
		t.Errorf("metadata %v", meta)
	}
	// No metadata at all is valid too.
	delete(h, "__metadata__")
	if _, meta, err := DecodeSafetensors(stFile(t, h, data)); err != nil || meta != nil {
		t.Errorf("without metadata: %v, %v", meta, err)
	}
}

// brokenFiles are the ways a model file can be wrong, each with a piece of
// the error that must name the problem. The fuzz test seeds from them too.
func brokenFiles(t testing.TB) []struct {
	name, want string
	file       []byte
} {
	p := testParams(t)
	good := encodeTest(t, p, map[string]string{"seed": "7"})
	// edit returns a file whose header is the valid layout changed by f.
	edit := func(f func(h map[string]any, data []byte) []byte) []byte {
		h, data := validLayout(p)
		data = f(h, data)
		return stFile(t, h, data)
	}
	set := func(name, key string, v any) []byte {
		return edit(func(h map[string]any, data []byte) []byte {
			h[name].(entry)[key] = v
			return data
		})
	}
	n1w := 4 * 784 * 128 // bytes of dense1.weight
	h, data := validLayout(p)
	dataLen := len(data)
	d1wBegin := dataLen - n1w // dense1.weight is last in validLayout's buffer
	hugeLen := binary.LittleEndian.AppendUint64(nil, 1<<40)

	return []struct {
		name, want string
		file       []byte
	}{
		{"empty", "0 bytes, too short", nil},
		{"short", "5 bytes, too short", []byte{1, 2, 3, 4, 5}},
		{"header length beyond file", "goes beyond the end", rawFile([]byte(`{}`), nil)[:9]},
		{"header length huge", "exceeds the 1048576-byte limit", append(hugeLen, good[8:]...)},
		{"header not JSON", "not valid JSON", rawFile([]byte(`{"dense1.weight": [`), data)},
		{"header not an object", "not a JSON object", rawFile([]byte(`[1, 2]`), data)},
		{"header null", "not a JSON object", rawFile([]byte(`null`), data)},
		{"metadata not strings", "__metadata__ must map strings to strings", edit(func(h map[string]any, d []byte) []byte {
			h["__metadata__"] = map[string]any{"seed": 7}
			return d
		})},
		{"wrong tensor name", `unexpected tensor "dense1.kernel"`, edit(func(h map[string]any, d []byte) []byte {
			h["dense1.kernel"] = h["dense1.weight"]
			delete(h, "dense1.weight")
			return d
		})},
		{"extra tensor", `unexpected tensor "dense4.bias"`, edit(func(h map[string]any, d []byte) []byte {
			h["dense4.bias"] = entry{"dtype": "F32", "shape": []int{0}, "data_offsets": []int{len(d), len(d)}}
			return d
		})},
		{"missing tensor", `tensor "dense3.bias" is missing`, edit(func(h map[string]any, d []byte) []byte {
			delete(h, "dense3.bias")
			return d[40:] // dense3.bias was first in the buffer
		})},
		{"dtype F64", `tensor "dense1.weight" has dtype "F64", want "F32"`, set("dense1.weight", "dtype", "F64")},
		{"dtype BF16", `tensor "dense2.bias" has dtype "BF16"`, set("dense2.bias", "dtype", "BF16")},
		{"shape transposed", `tensor "dense1.weight" has shape [128 784], want [784 128]`, set("dense1.weight", "shape", []int{128, 784})},
		{"bias as a row", `tensor "dense1.bias" has shape [1 128], want [128]`, set("dense1.bias", "shape", []int{1, 128})},
		{"shape not ints", `tensor "dense1.bias": bad header entry`, set("dense1.bias", "shape", "128")},
		{"three offsets", "has 3 data_offsets", set("dense3.bias", "data_offsets", []int{0, 40, 80})},
		{"negative offset", `tensor "dense3.bias": bad header entry`, set("dense3.bias", "data_offsets", []int{-40, 0})},
		{"end before begin", "want a span of 40 bytes", set("dense3.bias", "data_offsets", []int{40, 0})},
		{"span wrong", "want a span of 40 bytes", set("dense3.bias", "data_offsets", []int{0, 44})},
		{"offsets overlap", `tensor "dense3.weight" at data_offsets [36, 2596] overlaps`, set("dense3.weight", "data_offsets", []int{36, 36 + 4*64*10})},
		{"offsets leave a gap", "leaves a gap", set("dense1.weight", "data_offsets", []int{d1wBegin + 4, dataLen + 4})},
		{"offsets out of range", "leaves a gap", set("dense3.bias", "data_offsets", []int{1 << 50, 1<<50 + 40})},
		{"offsets huge", "bad header entry", set("dense3.bias", "data_offsets", []string{"1e400", "1e400"})},
		{"buffer not covered", "4 bytes after the last tensor", stFile(t, h, append(append([]byte(nil), data...), 0, 0, 0, 0))},
		{"body truncated", "body truncated: the tensors need", good[:len(good)-100]},
		{"body empty", "body truncated", good[:len(good)-dataLen]},
		// dense3.bias is first in validLayout's buffer, dense3.weight next.
		{"NaN weight", `tensor "dense3.weight" holds 1 non-finite values (the first, at index 3, is NaN)`, edit(func(h map[string]any, d []byte) []byte {
			binary.LittleEndian.PutUint32(d[40+4*3:], math.Float32bits(float32(math.NaN())))
			return d
		})},
		{"infinite biases", `tensor "dense3.bias" holds 2 non-finite values (the first, at index 0, is +Inf)`, edit(func(h map[string]any, d []byte) []byte {
			binary.LittleEndian.PutUint32(d[0:], math.Float32bits(float32(math.Inf(1))))
			binary.LittleEndian.PutUint32(d[4*9:], math.Float32bits(float32(math.Inf(-1))))
			return d
		})},
		{"checkpoint", "training checkpoint, not a model file", edit(func(h map[string]any, d []byte) []byte {
			h["__metadata__"] = map[string]string{"format": CheckpointFormat}
			return d
		})},
	}
}

func TestDecodeSafetensorsRejects(t *testing.T) {
	for _, c := range brokenFiles(t) {
		t.Run(c.name, func(t *testing.T) {
			p, _, err := DecodeSafetensors(c.file)
			if err == nil {
				t.Fatalf("accepted")
			}
			if p != nil {
				t.Errorf("returned parameters with the error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error has more than one line: %q", err)
			}
		})
	}
}

func TestLoadSafetensorsFiles(t *testing.T) {
	dir := t.TempDir()
	p := testParams(t)
	good := filepath.Join(dir, "good.safetensors")
	if err := SaveSafetensors(good, p, map[string]string{"seed": "7"}); err != nil {
		t.Fatal(err)
	}
	got, meta, err := LoadSafetensors(context.Background(), good)
	if err != nil {
		t.Fatal(err)
	}
	assertSameParams(t, got, p)
	if meta["seed"] != "7" {
		t.Errorf("metadata %v", meta)
	}
	info, err := os.Stat(good)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o644 {
		t.Errorf("saved file has mode %v, want 0644", info.Mode().Perm())
	}

	b, _ := os.ReadFile(good)
	truncated := filepath.Join(dir, "cut.safetensors")
	os.WriteFile(truncated, b[:len(b)/2], 0o644)
	tooBig := filepath.Join(dir, "big.safetensors")
	f, err := os.Create(tooBig)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(maxCheckpointSize + 1) // sparse: nothing is written
	f.Close()
	for _, c := range []struct{ path, want string }{
		{truncated, "body truncated"},
		{tooBig, "file too large"},
		{dir, "it is a folder, not a regular file"},
		{filepath.Join(dir, "missing"), "no such file"},
	} {
		_, _, err := LoadSafetensors(context.Background(), c.path)
		if err == nil || !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadSafetensors(%s) = %v, want an error naming the file and saying %q", c.path, err, c.want)
		}
	}
}

func assertDirHolds(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("folder holds %v, want %v", got, want)
	}
}
