package model

import (
	"bytes"
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
