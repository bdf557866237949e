package model

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// FuzzLoadSafetensors feeds arbitrary bytes to the model-file reader. It
// must never panic, must give one-line errors and no parameters with them,
// and whatever it accepts must be finite and survive writing and reading again bit for
// bit. The seeds are small (see smallModelSeeds): a valid file's header,
// and every broken file of the table test, with at most 16 bytes of data,
// and the tiny files of FuzzSafetensorsHeader. A whole 440 KB file as a
// seed slows the fuzzer to a few inputs a second.
func FuzzLoadSafetensors(f *testing.F) {
	for _, s := range smallModelSeeds(f) {
		f.Add(s)
	}
	for _, s := range tinyHeaderSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, meta, err := DecodeSafetensors(in)
		if err != nil {
			if p != nil || meta != nil || strings.Contains(err.Error(), "\n") {
				t.Fatalf("bad error result: %v, %v, %q", p != nil, meta, err)
			}
			return
		}
		if _, _, err := parseTensorFile(in); err != nil {
			t.Fatalf("the checkpoint layout check refuses an accepted model file: %v", err)
		}
		var buf bytes.Buffer
		if err := EncodeSafetensors(&buf, p, meta); err != nil {
			t.Fatalf("re-encode an accepted file: %v", err)
		}
		q, meta2, err := DecodeSafetensors(buf.Bytes())
		if err != nil {
			t.Fatalf("re-read our own encoding: %v", err)
		}
		if len(meta2) != len(meta) {
			t.Fatalf("metadata %v became %v", meta, meta2)
		}
		for k, v := range meta {
			if meta2[k] != v {
				t.Fatalf("metadata %q: %q became %q", k, v, meta2[k])
			}
		}
		for i := range p.Tensors {
			a, b := p.Tensors[i].Data().([]float32), q.Tensors[i].Data().([]float32)
			for j := range a {
				if math.IsNaN(float64(a[j])) || math.IsInf(float64(a[j]), 0) {
					t.Fatalf("%s[%d] = %v accepted", ParamNames()[i], j, a[j])
				}
				if math.Float32bits(a[j]) != math.Float32bits(b[j]) {
					t.Fatalf("%s[%d]: %v became %v", ParamNames()[i], j, a[j], b[j])
				}
			}
		}
	})
}
