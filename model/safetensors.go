package model

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"

	"gorgonia.org/tensor"

	"mnist/data/fileio"
)

// Saved models are safetensors files (https://github.com/huggingface/safetensors):
// an 8-byte little-endian header length N, N bytes of JSON header, then the
// tensors' bytes back to back. The header maps each tensor name to its dtype,
// shape and data_offsets [begin, end) relative to the byte after the header,
// and "__metadata__" to a map of strings.
//
// Our tensors are F32, little-endian, row-major. Weights keep the [in, out]
// layout of Params (as Keras stores kernels); biases are stored as [n], as
// Keras and PyTorch store them, and become Params's 1×n rows on loading.

const (
	// maxHeaderLen caps the JSON header before anything is allocated for
	// it. Ours is under 2 KiB; the metadata a user might add fits easily.
	// safetensors itself caps headers at 100 MB, far more than a model of
	// six tensors can need.
	maxHeaderLen = 1 << 20
	// safetensorsDtype is the only dtype we write or accept: the network
	// trains in float32, and silently narrowing F64 or widening BF16 would
	// not reproduce the saved results.
	safetensorsDtype = "F32"
	metadataKey      = "__metadata__"
)

// safetensorsEntry is one tensor's header entry.
type safetensorsEntry struct {
	Dtype       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

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

// dataBytes is the size of the data buffer of a valid file: every
// parameter as 4 bytes.
func dataBytes() int {
	n := 0
	for _, s := range paramShapes() {
		n += s.TotalSize()
	}
	return 4 * n
}

// EncodeSafetensors writes p as a safetensors file with meta as its
// "__metadata__". Values are converted to float32, which is exact for the
// float32 parameters training uses.
func EncodeSafetensors(w io.Writer, p *Params, meta map[string]string) error {
	names, shapes := ParamNames(), fileShapes()
	header := make(map[string]any, 7)
	if len(meta) > 0 {
		header[metadataKey] = meta
	}
	buf := make([]byte, 0, dataBytes())
	for i, t := range p.Tensors {
		if t == nil {
			return fmt.Errorf("encode safetensors: %s is missing", names[i])
		}
		if t.Shape().TotalSize() != paramShapes()[i].TotalSize() {
			return fmt.Errorf("encode safetensors: %s has shape %v, want %v", names[i], t.Shape(), paramShapes()[i])
		}
		begin := uint64(len(buf))
		if d, ok := t.Data().([]float32); ok {
			// Bits straight through: a detour via float64 would quieten
			// signalling NaNs, and a loaded file must save back unchanged.
			for _, x := range d {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
			}
		} else {
			for _, x := range toFloat64(t) {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(float32(x)))
			}
		}
		header[names[i]] = safetensorsEntry{Dtype: safetensorsDtype, Shape: shapes[i], DataOffsets: []uint64{begin, uint64(len(buf))}}
	}
	js, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("encode safetensors header: %w", err)
	}
	if len(js) > maxHeaderLen {
		return fmt.Errorf("encode safetensors: header of %d bytes exceeds %d (metadata too large)", len(js), maxHeaderLen)
	}
	// Pad with spaces (allowed by the format) so that the data starts
	// 8-byte aligned, as the reference implementation writes it: readers
	// that map the file can then view the floats in place.
	if r := (8 + len(js)) % 8; r != 0 {
		js = append(js, bytes.Repeat([]byte{' '}, 8-r)...)
	}
	out := make([]byte, 0, 8+len(js)+len(buf))
	out = binary.LittleEndian.AppendUint64(out, uint64(len(js)))
	out = append(out, js...)
	out = append(out, buf...)
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	return nil
}

// splitSafetensors checks a safetensors file's frame and splits it into
// the header's tensor entries (still raw JSON), its __metadata__ and the
// data buffer. Model files and checkpoints both start here. It allocates
// nothing in proportion to lengths the file claims.
func splitSafetensors(b []byte) (map[string]json.RawMessage, map[string]string, []byte, error) {
	if len(b) < 8 {
		return nil, nil, nil, fmt.Errorf("file is %d bytes, too short for the 8-byte header length", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > maxHeaderLen {
		return nil, nil, nil, fmt.Errorf("header length %d exceeds the %d-byte limit (not a model file?)", n, maxHeaderLen)
	}
	if 8+n > uint64(len(b)) {
		return nil, nil, nil, fmt.Errorf("header length %d goes beyond the end of the %d-byte file (truncated?)", n, len(b))
	}
	hdr, data := b[8:8+n], b[8+n:]
	// The format requires an object; "null" would otherwise decode as an
	// empty map and be reported as missing tensors.
	if t := bytes.TrimLeft(hdr, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, nil, nil, fmt.Errorf("header is not a JSON object")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, nil, nil, fmt.Errorf("header is not valid JSON: %w", err)
	}
	var meta map[string]string
	if m, ok := raw[metadataKey]; ok {
		if err := json.Unmarshal(m, &meta); err != nil {
			return nil, nil, nil, fmt.Errorf("%s must map strings to strings: %w", metadataKey, err)
		}
		delete(raw, metadataKey)
	}
	return raw, meta, data, nil
}

// DecodeSafetensors parses a whole safetensors file and returns float32
// Params and the metadata. It accepts exactly the six tensors of this
// network as F32 in their stored shapes, laid out without gaps or overlaps
// over the whole data buffer; anything else is an error of one line naming
// the problem. It never panics and allocates nothing in proportion to
// lengths the file claims, only to what b really holds.
func DecodeSafetensors(b []byte) (*Params, map[string]string, error) {
	raw, meta, data, err := splitSafetensors(b)
	if err != nil {
		return nil, nil, err
	}
	if meta["format"] == CheckpointFormat {
		return nil, nil, ErrCheckpointNotModel
	}

	names, shapes := ParamNames(), fileShapes()
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys) // map order is random; errors should not be
	for _, k := range keys {
		if !slices.Contains(names[:], k) {
			return nil, nil, fmt.Errorf("unexpected tensor %q (want %v)", k, names)
		}
	}
	entries := make([]safetensorsEntry, len(names))
	for i, name := range names {
		m, ok := raw[name]
		if !ok {
			return nil, nil, fmt.Errorf("tensor %q is missing", name)
		}
		e := &entries[i]
		if err := json.Unmarshal(m, e); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: bad header entry: %w", name, err)
		}
		if e.Dtype != safetensorsDtype {
			return nil, nil, fmt.Errorf("tensor %q has dtype %q, want %q", name, e.Dtype, safetensorsDtype)
		}
		if !slices.Equal(e.Shape, shapes[i]) {
			return nil, nil, fmt.Errorf("tensor %q has shape %v, want %v", name, e.Shape, shapes[i])
		}
		if len(e.DataOffsets) != 2 {
			return nil, nil, fmt.Errorf("tensor %q has %d data_offsets, want 2 ([begin, end])", name, len(e.DataOffsets))
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		want := uint64(4 * paramShapes()[i].TotalSize())
		if end < begin || end-begin != want {
			return nil, nil, fmt.Errorf("tensor %q has data_offsets [%d, %d], want a span of %d bytes for F32 %v", name, begin, end, want, shapes[i])
		}
	}

	// The format requires the tensors to tile the data buffer exactly:
	// sorted by offset, each starts where the previous ends, the last ends
	// at the end of the file.
	order := []int{0, 1, 2, 3, 4, 5}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Compare(entries[a].DataOffsets[0], entries[b].DataOffsets[0])
	})
	var pos uint64
	for _, i := range order {
		begin, end := entries[i].DataOffsets[0], entries[i].DataOffsets[1]
		switch {
		case begin < pos:
			return nil, nil, fmt.Errorf("tensor %q at data_offsets [%d, %d] overlaps the tensor before it, which ends at %d", names[i], begin, end, pos)
		case begin > pos:
			return nil, nil, fmt.Errorf("tensor %q at data_offsets [%d, %d] leaves a gap of %d bytes after offset %d", names[i], begin, end, begin-pos, pos)
		}
		pos = end
	}
	switch {
	case pos > uint64(len(data)):
		return nil, nil, fmt.Errorf("body truncated: the tensors need %d bytes of data, the file has %d", pos, len(data))
	case pos < uint64(len(data)):
		return nil, nil, fmt.Errorf("%d bytes after the last tensor are not covered by any tensor", uint64(len(data))-pos)
	}

	p := &Params{}
	for i, e := range entries {
		t, err := newZeroTensor(tensor.Float32, paramShapes()[i])
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", names[i], err)
		}
		dst := t.Data().([]float32)
		src := data[e.DataOffsets[0]:e.DataOffsets[1]]
		bad, first := 0, -1
		for j := range dst {
			dst[j] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*j:]))
			if v := float64(dst[j]); math.IsNaN(v) || math.IsInf(v, 0) {
				if bad++; first < 0 {
					first = j
				}
			}
		}
		// A NaN or infinite weight makes every prediction NaN: refuse the
		// file rather than report an accuracy of 9.8% for it.
		if bad > 0 {
			return nil, nil, fmt.Errorf("tensor %q holds %d non-finite values (the first, at index %d, is %v): the model diverged or the file is damaged", names[i], bad, first, dst[first])
		}
		p.Tensors[i] = t
	}
	return p, meta, nil
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
