package tensorfile

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

const (
	// MaxHeaderLen caps the JSON header before anything is allocated for
	// it. The model's is under 2 KiB, a checkpoint's under 4 KiB; the
	// metadata a user might add fits easily. safetensors itself caps
	// headers at 100 MB, far more than a file of a few dozen tensors needs.
	MaxHeaderLen = 1 << 20
	// MetadataKey is the header key of the map of strings that is not a
	// tensor.
	MetadataKey = "__metadata__"
)

// Entry is one tensor's header entry: data_offsets are [begin, end)
// relative to the first byte after the header.
type Entry struct {
	Dtype       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// File is a safetensors file whose frame has been checked: the header is a
// JSON object, its metadata a map of strings. The tensors' entries are
// decoded by Tensors or Exact, which check them.
type File struct {
	// Meta is the header's __metadata__, nil when it has none.
	Meta map[string]string
	// Data is every byte after the header.
	Data []byte
	// entries are the header's tensor entries, still raw JSON.
	entries map[string]json.RawMessage
}

// Split checks b's frame and splits it into the header's tensor entries,
// its metadata and the data. b is not copied: Data is a part of it.
func Split(b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("file is %d bytes, too short for the 8-byte header length", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeaderLen {
		return nil, fmt.Errorf("header length %d exceeds the %d-byte limit (not a model file?)", n, MaxHeaderLen)
	}
	if 8+n > uint64(len(b)) {
		return nil, fmt.Errorf("header length %d goes beyond the end of the %d-byte file (truncated?)", n, len(b))
	}
	hdr, data := b[8:8+n], b[8+n:]
	// The format requires an object; "null" would otherwise decode as an
	// empty map and be reported as missing tensors.
	if t := bytes.TrimLeft(hdr, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("header is not a JSON object")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, fmt.Errorf("header is not valid JSON: %w", err)
	}
	var meta map[string]string
	if m, ok := raw[MetadataKey]; ok {
		if err := json.Unmarshal(m, &meta); err != nil {
			return nil, fmt.Errorf("%s must map strings to strings: %w", MetadataKey, err)
		}
		delete(raw, MetadataKey)
	}
	return &File{Meta: meta, Data: data, entries: raw}, nil
}

// Names returns the names of the file's tensors, sorted.
func (f *File) Names() []string {
	return slices.Sorted(maps.Keys(f.entries))
}

// safetensorsEntry is Entry under the name JSON's errors give it ("Go
// struct field safetensorsEntry.shape"), the name it had in package model,
// so that errors read as they did.
type safetensorsEntry Entry

// entry decodes the header entry of tensor name, which must exist.
func (f *File) entry(name string) (Entry, error) {
	var e safetensorsEntry
	if err := json.Unmarshal(f.entries[name], &e); err != nil {
		return Entry{}, fmt.Errorf("tensor %q: bad header entry: %w", name, err)
	}
	return Entry(e), nil
}
