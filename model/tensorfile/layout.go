package tensorfile

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Tensor is one tensor of a file: its name, dtype, shape and bytes
// (little-endian, row-major).
type Tensor struct {
	Name  string
	Dtype string
	Shape []int
	Data  []byte
}

// Tensors returns the file's tensors by name, checking only their layout:
// each entry well formed, its offsets a span inside the data, the spans
// tiling the data exactly (sorted by offset, each starting where the one
// before ends, the last ending at the end of the file). Dtypes and shapes
// are the caller's to check (Take).
func (f *File) Tensors() (map[string]Tensor, error) {
	type span struct {
		name       string
		begin, end uint64
	}
	spans := make([]span, 0, len(f.entries))
	out := make(map[string]Tensor, len(f.entries))
	for _, name := range f.Names() { // sorted: the first bad entry is always the same one
		e, err := f.entry(name)
		if err != nil {
			return nil, err
		}
		if len(e.DataOffsets) != 2 || e.DataOffsets[1] < e.DataOffsets[0] {
			return nil, fmt.Errorf("tensor %q has bad data_offsets %v", name, e.DataOffsets)
		}
		spans = append(spans, span{name, e.DataOffsets[0], e.DataOffsets[1]})
		out[name] = Tensor{Name: name, Dtype: e.Dtype, Shape: e.Shape}
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Or(cmp.Compare(a.begin, b.begin), strings.Compare(a.name, b.name)) })
	var pos uint64
	for _, s := range spans {
		if s.begin != pos {
			return nil, fmt.Errorf("tensor %q starts at %d, want %d (tensors must tile the data)", s.name, s.begin, pos)
		}
		pos = s.end
	}
	if pos != uint64(len(f.Data)) {
		return nil, fmt.Errorf("the tensors cover %d bytes of data, the file has %d (truncated?)", pos, len(f.Data))
	}
	for _, s := range spans {
		t := out[s.name]
		t.Data = f.Data[s.begin:s.end]
		out[s.name] = t
	}
	return out, nil
}

// Take returns the bytes of tensor name of ts, checking that it has the
// given dtype and shape and the byte size they make.
func Take(ts map[string]Tensor, name, dtype string, shape []int) ([]byte, error) {
	t, ok := ts[name]
	if !ok {
		return nil, fmt.Errorf("tensor %q is missing", name)
	}
	if t.Dtype != dtype {
		return nil, fmt.Errorf("tensor %q has dtype %q, want %q", name, t.Dtype, dtype)
	}
	if !slices.Equal(t.Shape, shape) {
		return nil, fmt.Errorf("tensor %q has shape %v, want %v", name, t.Shape, shape)
	}
	n, ok := byteSize(dtype, shape)
	if !ok {
		return nil, fmt.Errorf("tensor %q: %s %v is no size this file can hold", name, dtype, shape)
	}
	if uint64(len(t.Data)) != n {
		return nil, fmt.Errorf("tensor %q has %d bytes, want %d", name, len(t.Data), n)
	}
	return t.Data, nil
}

// Spec is a tensor a caller expects: its name, dtype and shape.
type Spec struct {
	Name  string
	Dtype string
	Shape []int
}

// Exact checks that the file holds exactly the tensors of specs, no other,
// each with its dtype, shape and byte size, laid out without gaps or
// overlaps over the whole data, and returns their bytes in the order of
// specs. Unlike Tensors, it names what is wrong in terms of the tensors
// expected (a missing tensor, a gap of so many bytes after an offset).
func (f *File) Exact(specs []Spec) ([][]byte, error) {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	for _, k := range f.Names() {
		if !slices.Contains(names, k) {
			return nil, fmt.Errorf("unexpected tensor %q (want %v)", k, names)
		}
	}
	entries := make([]Entry, len(specs))
	for i, s := range specs {
		if _, ok := f.entries[s.Name]; !ok {
			return nil, fmt.Errorf("tensor %q is missing", s.Name)
		}
		e, err := f.entry(s.Name)
		if err != nil {
			return nil, err
		}
		if e.Dtype != s.Dtype {
			return nil, fmt.Errorf("tensor %q has dtype %q, want %q", s.Name, e.Dtype, s.Dtype)
		}
		if !slices.Equal(e.Shape, s.Shape) {
			return nil, fmt.Errorf("tensor %q has shape %v, want %v", s.Name, e.Shape, s.Shape)
		}
		if len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("tensor %q has %d data_offsets, want 2 ([begin, end])", s.Name, len(e.DataOffsets))
		}
		want, ok := byteSize(s.Dtype, s.Shape)
		if !ok {
			return nil, fmt.Errorf("tensor %q: %s %v is no size this file can hold", s.Name, s.Dtype, s.Shape)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if end < begin || end-begin != want {
			return nil, fmt.Errorf("tensor %q has data_offsets [%d, %d], want a span of %d bytes for %s %v", s.Name, begin, end, want, s.Dtype, s.Shape)
		}
		entries[i] = e
	}

	// The format requires the tensors to tile the data buffer exactly:
	// sorted by offset, each starts where the previous ends, the last ends
	// at the end of the file.
	order := make([]int, len(specs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Compare(entries[a].DataOffsets[0], entries[b].DataOffsets[0])
	})
	var pos uint64
	for _, i := range order {
		begin, end := entries[i].DataOffsets[0], entries[i].DataOffsets[1]
		switch {
		case begin < pos:
			return nil, fmt.Errorf("tensor %q at data_offsets [%d, %d] overlaps the tensor before it, which ends at %d", names[i], begin, end, pos)
		case begin > pos:
			return nil, fmt.Errorf("tensor %q at data_offsets [%d, %d] leaves a gap of %d bytes after offset %d", names[i], begin, end, begin-pos, pos)
		}
		pos = end
	}
	switch {
	case pos > uint64(len(f.Data)):
		return nil, fmt.Errorf("body truncated: the tensors need %d bytes of data, the file has %d", pos, len(f.Data))
	case pos < uint64(len(f.Data)):
		return nil, fmt.Errorf("%d bytes after the last tensor are not covered by any tensor", uint64(len(f.Data))-pos)
	}
	out := make([][]byte, len(specs))
	for i, e := range entries {
		out[i] = f.Data[e.DataOffsets[0]:e.DataOffsets[1]]
	}
	return out, nil
}
