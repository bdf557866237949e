package tensorfile

import (
	"encoding/binary"
	"encoding/json"
	"testing"
)

// rawFile frames header and data as a safetensors file, whatever they hold.
func rawFile(header string, data ...byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

// jsonFile frames header, marshalled, and data.
func jsonFile(t testing.TB, header any, data ...byte) []byte {
	t.Helper()
	js, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	return rawFile(string(js), data...)
}

// entry is a header entry as JSON sees it, for headers a test breaks.
type entry = map[string]any

// specs are the tensors of the small file the tests expect, in Exact's
// order: not the order of their data in goodFile.
var testSpecs = []Spec{
	{Name: "w", Dtype: "F32", Shape: []int{2, 2}},
	{Name: "b", Dtype: "F32", Shape: []int{2}},
	{Name: "n", Dtype: "I64", Shape: []int{1}},
	{Name: "z", Dtype: "F64", Shape: []int{0}},
}

// goodHeader and goodData are a file that Exact(testSpecs) accepts, its
// tensors laid out as b, w, n, z (offsets, not header order, decide).
func goodHeader() map[string]any {
	return map[string]any{
		"b":            entry{"dtype": "F32", "shape": []int{2}, "data_offsets": []int{0, 8}},
		"w":            entry{"dtype": "F32", "shape": []int{2, 2}, "data_offsets": []int{8, 24}},
		"n":            entry{"dtype": "I64", "shape": []int{1}, "data_offsets": []int{24, 32}},
		"z":            entry{"dtype": "F64", "shape": []int{0}, "data_offsets": []int{32, 32}},
		"__metadata__": map[string]string{"k": "v"},
	}
}

func goodData() []byte {
	d := make([]byte, 32)
	for i := range d {
		d[i] = byte(i + 1)
	}
	return d
}
