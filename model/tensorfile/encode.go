package tensorfile

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
)

// Encode returns a file holding tensors, their bytes back to back in the
// order given, and meta as __metadata__ (left out when meta is empty). The
// header's keys are sorted, so the same tensors and metadata always make
// the same bytes.
func Encode(tensors []Tensor, meta map[string]string) ([]byte, error) {
	return encode(tensors, meta, false)
}

// EncodeSealed is Encode with meta's ChecksumKey set to Checksum of the
// rest of meta and the data, so that Verify can find damage anywhere but
// in the header's layout. meta is not modified.
func EncodeSealed(tensors []Tensor, meta map[string]string) ([]byte, error) {
	return encode(tensors, meta, true)
}

func encode(tensors []Tensor, meta map[string]string, seal bool) ([]byte, error) {
	size := 0
	for _, t := range tensors {
		size += len(t.Data)
	}
	body := make([]byte, 0, size)
	header := make(map[string]any, len(tensors))
	for _, t := range tensors {
		begin := uint64(len(body))
		body = append(body, t.Data...)
		header[t.Name] = Entry{Dtype: t.Dtype, Shape: t.Shape, DataOffsets: []uint64{begin, uint64(len(body))}}
	}
	if seal {
		meta = maps.Clone(meta)
		if meta == nil {
			meta = map[string]string{}
		}
		meta[ChecksumKey] = Checksum(meta, body)
	}
	if len(meta) > 0 {
		header[MetadataKey] = meta
	}
	js, err := json.Marshal(header)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if len(js) > MaxHeaderLen {
		return nil, fmt.Errorf("header of %d bytes exceeds %d (metadata too large)", len(js), MaxHeaderLen)
	}
	// Pad with spaces (allowed by the format) so that the data starts
	// 8-byte aligned, as the reference implementation writes it: readers
	// that map the file can then view the floats in place.
	if r := (8 + len(js)) % 8; r != 0 {
		js = append(js, bytes.Repeat([]byte{' '}, 8-r)...)
	}
	out := make([]byte, 0, 8+len(js)+len(body))
	out = binary.LittleEndian.AppendUint64(out, uint64(len(js)))
	out = append(out, js...)
	return append(out, body...), nil
}
