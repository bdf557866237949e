package model

import (
	"context"
	"fmt"
	"io"
	"math"

	"gorgonia.org/tensor"

	"mnist/data/fileio"
	"mnist/model/tensorfile"
)

// Saved models are safetensors files (https://github.com/huggingface/safetensors):
// an 8-byte little-endian header length N, N bytes of JSON header, then the
// tensors' bytes back to back. The header maps each tensor name to its dtype,
// shape and data_offsets [begin, end) relative to the byte after the header,
// and "__metadata__" to a map of strings. Package tensorfile reads and
// writes that layer; this file maps the network's parameters onto it.
//
// Our tensors are F32, little-endian, row-major. Weights keep the [in, out]
// layout of Params (as Keras stores kernels); biases are stored as [n], as
// Keras and PyTorch store them, and become Params's 1×n rows on loading.

// safetensorsDtype is the only dtype we write or accept: the network
// trains in float32, and silently narrowing F64 or widening BF16 would not
// reproduce the saved results.
const safetensorsDtype = "F32"

// fileShapes are the shapes as stored: Params's shapes with the biases'
// leading 1 dropped.
func fileShapes() [6][]int {
	var out [6][]int
	for i, s := range paramShapes() {
		if i%2 == 1 {
			out[i] = []int{s[1]}
		} else {
			out[i] = []int{s[0], s[1]}
		}
	}
	return out
}

// modelSpecs are the tensors of a model file, in the order of Params.
func modelSpecs() []tensorfile.Spec {
	names, shapes := ParamNames(), fileShapes()
	specs := make([]tensorfile.Spec, len(names))
	for i := range names {
		specs[i] = tensorfile.Spec{Name: names[i], Dtype: safetensorsDtype, Shape: shapes[i]}
	}
	return specs
}

// EncodeSafetensors writes p as a safetensors file with meta as its
// "__metadata__". Values are converted to float32, which is exact for the
// float32 parameters training uses.
func EncodeSafetensors(w io.Writer, p *Params, meta map[string]string) error {
	specs := modelSpecs()
	tensors := make([]tensorfile.Tensor, len(specs))
	for i, t := range p.Tensors {
		s := specs[i]
		if t == nil {
			return fmt.Errorf("encode safetensors: %s is missing", s.Name)
		}
		if t.Shape().TotalSize() != paramShapes()[i].TotalSize() {
			return fmt.Errorf("encode safetensors: %s has shape %v, want %v", s.Name, t.Shape(), paramShapes()[i])
		}
		d, ok := t.Data().([]float32)
		if !ok {
			d = make([]float32, t.Shape().TotalSize())
			for j, x := range toFloat64(t) {
				d[j] = float32(x)
			}
		}
		// Bits straight through: a detour via float64 would quieten
		// signalling NaNs, and a loaded file must save back unchanged.
		tensors[i] = tensorfile.Tensor{Name: s.Name, Dtype: s.Dtype, Shape: s.Shape, Data: tensorfile.Float32Bytes(d)}
	}
	out, err := tensorfile.Encode(tensors, meta)
	if err != nil {
		return fmt.Errorf("encode safetensors: %w", err)
	}
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	return nil
}

// DecodeSafetensors parses a whole safetensors file and returns float32
// Params and the metadata. It accepts exactly the six tensors of this
// network as F32 in their stored shapes, laid out without gaps or overlaps
// over the whole data buffer (tensorfile's Exact), and only finite values;
// anything else is an error of one line naming the problem. It never
// panics and allocates nothing in proportion to lengths the file claims,
// only to what b really holds.
func DecodeSafetensors(b []byte) (*Params, map[string]string, error) {
	f, err := tensorfile.Split(b)
	if err != nil {
		return nil, nil, err
	}
	if f.Meta["format"] == CheckpointFormat {
		return nil, nil, ErrCheckpointNotModel
	}
	specs := modelSpecs()
	data, err := f.Exact(specs)
	if err != nil {
		return nil, nil, err
	}
	p := &Params{}
	for i, s := range specs {
		t, err := newZeroTensor(tensor.Float32, paramShapes()[i])
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		dst := t.Data().([]float32)
		tensorfile.Float32s(dst, data[i])
		// A NaN or infinite weight makes every prediction NaN: refuse the
		// file rather than report an accuracy of 9.8% for it.
		if first, v := firstNonFinite(dst); first >= 0 {
			bad := 0
			for _, x := range dst[first:] {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					bad++
				}
			}
			return nil, nil, fmt.Errorf("tensor %q holds %d non-finite values (the first, at index %d, is %v): the model diverged or the file is damaged", s.Name, bad, first, float32(v))
		}
		p.Tensors[i] = t
	}
	return p, f.Meta, nil
}

// LoadSafetensors reads a model file written by SaveSafetensors (or by any
// safetensors writer, given the same names, shapes and dtype). The file is
// read once, through fileio.ReadFile: it must be a regular file, of at most
// a checkpoint's size limit, so that a checkpoint given by mistake (2.7 MB
// against a model's 0.44 MB) is recognised and refused with
// ErrCheckpointNotModel rather than as merely too large; DecodeSafetensors
// then holds a model to its exact size. Errors are one line naming the
// file.
func LoadSafetensors(ctx context.Context, path string) (*Params, map[string]string, error) {
	b, err := fileio.ReadFile(ctx, path, maxCheckpointSize)
	if err != nil {
		return nil, nil, fmt.Errorf("load model: %w", err)
	}
	p, meta, err := DecodeSafetensors(b)
	if err != nil {
		return nil, nil, fmt.Errorf("load model %s: %w", path, err)
	}
	return p, meta, nil
}

// SaveSafetensors writes p and meta to path atomically (fileio.WriteFile):
// a reader, or a crash, sees either the old file or the complete new one,
// never a part.
func SaveSafetensors(path string, p *Params, meta map[string]string) error {
	return saveSafetensors(fileio.Writer{}, path, p, meta)
}

// saveSafetensors is SaveSafetensors through w, so tests can make a step
// of the write fail.
func saveSafetensors(w fileio.Writer, path string, p *Params, meta map[string]string) error {
	err := w.WriteFile(path, func(out io.Writer) error { return EncodeSafetensors(out, p, meta) })
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	return nil
}
