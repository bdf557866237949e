package tensorfile

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestTensors(t *testing.T) {
	f, err := Split(jsonFile(t, goodHeader(), goodData()...))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := f.Tensors()
	if err != nil {
		t.Fatal(err)
	}
	d := goodData()
	want := map[string]Tensor{
		"b": {"b", "F32", []int{2}, d[0:8]},
		"w": {"w", "F32", []int{2, 2}, d[8:24]},
		"n": {"n", "I64", []int{1}, d[24:32]},
		"z": {"z", "F64", []int{0}, d[32:32]},
	}
	if !maps.EqualFunc(ts, want, func(a, b Tensor) bool {
		return a.Name == b.Name && a.Dtype == b.Dtype && slices.Equal(a.Shape, b.Shape) && bytes.Equal(a.Data, b.Data)
	}) {
		t.Errorf("Tensors = %v, want %v", ts, want)
	}
}

func TestTensorsRejects(t *testing.T) {
	with := func(name string, e any) []byte {
		h := goodHeader()
		h[name] = e
		return jsonFile(t, h, goodData()...)
	}
	for _, c := range []struct {
		name, want string
		file       []byte
	}{
		{"entry not an object", `tensor "w": bad header entry: `, with("w", []int{1})},
		{"one offset", `tensor "w" has bad data_offsets [8]`, with("w", entry{"dtype": "F32", "data_offsets": []int{8}})},
		{"no offsets", `tensor "w" has bad data_offsets []`, with("w", entry{"dtype": "F32"})},
		{"three offsets", `tensor "w" has bad data_offsets [8 24 24]`, with("w", entry{"data_offsets": []int{8, 24, 24}})},
		{"end before begin", `tensor "w" has bad data_offsets [24 8]`, with("w", entry{"data_offsets": []int{24, 8}})},
		{"gap", `tensor "w" starts at 9, want 8 (tensors must tile the data)`, with("w", entry{"data_offsets": []int{9, 24}})},
		{"overlap", `tensor "w" starts at 7, want 8`, with("w", entry{"data_offsets": []int{7, 24}})},
		{"past the end", "the tensors cover 33 bytes of data, the file has 32 (truncated?)", with("z", entry{"data_offsets": []int{32, 33}})},
		{"short of the end", "the tensors cover 8 bytes of data, the file has 32", jsonFile(t, map[string]any{"b": entry{"data_offsets": []int{0, 8}}}, goodData()...)},
		{"nothing covers the data", "the tensors cover 0 bytes of data, the file has 1", rawFile(`{}`, 1)},
		{"first bad entry by name", `tensor "a": bad header entry`, jsonFile(t, map[string]any{"a": 1, "b": 2})},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := Split(c.file)
			if err != nil {
				t.Fatal(err)
			}
			ts, err := f.Tensors()
			if err == nil || ts != nil {
				t.Fatalf("Tensors = %v, %v; want an error", ts, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
	// Two tensors at the same offset: one is empty, and the names decide
	// which comes first.
	f, err := Split(rawFile(`{"b":{"data_offsets":[0,4]},"a":{"data_offsets":[0,0]}}`, 1, 2, 3, 4))
	if err != nil {
		t.Fatal(err)
	}
	if ts, err := f.Tensors(); err != nil || len(ts["a"].Data) != 0 || len(ts["b"].Data) != 4 {
		t.Errorf("an empty tensor at the offset of another: %v, %v", ts, err)
	}
}

func TestTake(t *testing.T) {
	ts := map[string]Tensor{
		"w": {"w", "F32", []int{2, 2}, make([]byte, 16)},
		"s": {"s", "F32", []int{2, 2}, make([]byte, 12)},
		"o": {"o", "I64", []int{-1}, make([]byte, 8)},
		"h": {"h", "I64", []int{1 << 61, 8}, make([]byte, 8)},
		"u": {"u", "X9", []int{1}, make([]byte, 8)},
		"e": {"e", "F64", []int{}, make([]byte, 8)},
	}
	for _, c := range []struct {
		name, dtype string
		shape       []int
		want        string // "" for success
	}{
		{"w", "F32", []int{2, 2}, ""},
		{"e", "F64", []int{}, ""},
		{"x", "F32", []int{2, 2}, `tensor "x" is missing`},
		{"w", "F64", []int{2, 2}, `tensor "w" has dtype "F32", want "F64"`},
		{"w", "F32", []int{4}, `tensor "w" has shape [2 2], want [4]`},
		{"w", "F32", []int{2, 2, 1}, `tensor "w" has shape [2 2], want [2 2 1]`},
		{"s", "F32", []int{2, 2}, `tensor "s" has 12 bytes, want 16`},
		{"o", "I64", []int{-1}, `tensor "o": I64 [-1] is no size this file can hold`},
		{"h", "I64", []int{1 << 61, 8}, `tensor "h": I64 [2305843009213693952 8] is no size this file can hold`},
		{"u", "X9", []int{1}, `tensor "u": X9 [1] is no size this file can hold`},
	} {
		b, err := Take(ts, c.name, c.dtype, c.shape)
		switch {
		case c.want == "" && (err != nil || len(b) != len(ts[c.name].Data)):
			t.Errorf("Take(%s) = %d bytes, %v", c.name, len(b), err)
		case c.want != "" && (err == nil || b != nil || err.Error() != c.want):
			t.Errorf("Take(%s) = %d bytes, %v; want the error %q", c.name, len(b), err, c.want)
		}
	}
}

func TestByteSize(t *testing.T) {
	for _, c := range []struct {
		dtype string
		shape []int
		n     uint64
		ok    bool
	}{
		{"F32", nil, 4, true},
		{"F32", []int{3, 5}, 60, true},
		{"BF16", []int{3}, 6, true},
		{"U8", []int{7}, 7, true},
		{"F64", []int{0, 9}, 0, true},
		{"I64", []int{1 << 60}, 1 << 63, true},
		{"I64", []int{1 << 61}, 0, false},
		{"U8", []int{1 << 62, 4}, 0, false},
		{"F32", []int{2, -1}, 0, false},
		{"U8", []int{-1}, 0, false},
		{"U8", []int{3, -2}, 0, false},
		{"f32", []int{1}, 0, false},
	} {
		if n, ok := byteSize(c.dtype, c.shape); n != c.n || ok != c.ok {
			t.Errorf("byteSize(%s, %v) = %d, %v; want %d, %v", c.dtype, c.shape, n, ok, c.n, c.ok)
		}
	}
}

func TestExact(t *testing.T) {
	f, err := Split(jsonFile(t, goodHeader(), goodData()...))
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.Exact(testSpecs)
	if err != nil {
		t.Fatal(err)
	}
	d := goodData()
	want := [][]byte{d[8:24], d[0:8], d[24:32], d[32:32]}
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Errorf("Exact = %v, want %v", got, want)
	}
}

func TestExactRejects(t *testing.T) {
	edit := func(f func(h map[string]any) []byte) []byte {
		h := goodHeader()
		data := f(h)
		if data == nil {
			data = goodData()
		}
		return jsonFile(t, h, data...)
	}
	set := func(name, key string, v any) []byte {
		return edit(func(h map[string]any) []byte { h[name].(entry)[key] = v; return nil })
	}
	for _, c := range []struct {
		name, want string
		file       []byte
	}{
		{"unexpected tensor", `unexpected tensor "a" (want [w b n z])`, edit(func(h map[string]any) []byte {
			h["a"] = entry{"dtype": "F32", "shape": []int{0}, "data_offsets": []int{32, 32}}
			return nil
		})},
		{"missing tensor", `tensor "n" is missing`, edit(func(h map[string]any) []byte { delete(h, "n"); return goodData()[:24] })},
		{"bad entry", `tensor "b": bad header entry: `, set("b", "shape", "2")},
		{"dtype", `tensor "w" has dtype "F64", want "F32"`, set("w", "dtype", "F64")},
		{"shape", `tensor "w" has shape [4], want [2 2]`, set("w", "shape", []int{4})},
		{"no offsets", `tensor "b" has 0 data_offsets, want 2 ([begin, end])`, set("b", "data_offsets", []int{})},
		{"three offsets", `tensor "b" has 3 data_offsets, want 2 ([begin, end])`, set("b", "data_offsets", []int{0, 8, 8})},
		{"end before begin", `tensor "b" has data_offsets [8, 0], want a span of 8 bytes for F32 [2]`, set("b", "data_offsets", []int{8, 0})},
		{"span too long", `tensor "n" has data_offsets [24, 33], want a span of 8 bytes for I64 [1]`, set("n", "data_offsets", []int{24, 33})},
		{"span too short", `tensor "w" has data_offsets [8, 20], want a span of 16 bytes for F32 [2 2]`, set("w", "data_offsets", []int{8, 20})},
		{"overlap", `tensor "w" at data_offsets [4, 20] overlaps the tensor before it, which ends at 8`, set("w", "data_offsets", []int{4, 20})},
		{"gap", `tensor "b" at data_offsets [1, 9] leaves a gap of 1 bytes after offset 0`, set("b", "data_offsets", []int{1, 9})},
		{"truncated", "body truncated: the tensors need 32 bytes of data, the file has 31", edit(func(h map[string]any) []byte { return goodData()[:31] })},
		{"not covered", "2 bytes after the last tensor are not covered by any tensor", edit(func(h map[string]any) []byte { return append(goodData(), 0, 0) })},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := Split(c.file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.Exact(testSpecs)
			if err == nil || got != nil {
				t.Fatalf("Exact = %v, %v; want an error", got, err)
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error %q does not start %q", err, c.want)
			}
		})
	}
	t.Run("unknown dtype expected", func(t *testing.T) {
		f, err := Split(rawFile(`{"q":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}`, 0))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Exact([]Spec{{"q", "Q4", []int{1}}}); err == nil || err.Error() != `tensor "q": Q4 [1] is no size this file can hold` {
			t.Errorf("Exact with a dtype of no known size: %v", err)
		}
	})
}
