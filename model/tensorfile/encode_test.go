package tensorfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
)

// TestEncodeBytes pins the bytes Encode writes: sorted keys, the header
// padded with spaces to 8-byte aligned data, the data in the order given.
func TestEncodeBytes(t *testing.T) {
	got, err := Encode([]Tensor{
		{Name: "b", Dtype: "F32", Shape: []int{1}, Data: []byte{1, 2, 3, 4}},
		{Name: "a", Dtype: "U8", Shape: []int{2}, Data: []byte{5, 6}},
	}, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	header := `{"__metadata__":{"k":"v"},"a":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`
	header += strings.Repeat(" ", 8-(8+len(header))%8)
	want := rawFile(header, 1, 2, 3, 4, 5, 6)
	if !bytes.Equal(got, want) {
		t.Errorf("Encode =\n%q\nwant\n%q", got, want)
	}
	if (8+binary.LittleEndian.Uint64(got))%8 != 0 {
		t.Errorf("data not 8-byte aligned")
	}
}

func TestEncodePadding(t *testing.T) {
	// Metadata of every length mod 8: the data always starts aligned, with
	// only spaces added, and the file reads back.
	for n := range 9 {
		meta := map[string]string{"k": strings.Repeat("x", n)}
		b, err := Encode(nil, meta)
		if err != nil {
			t.Fatal(err)
		}
		h := binary.LittleEndian.Uint64(b)
		if (8+h)%8 != 0 || uint64(len(b)) != 8+h {
			t.Errorf("value of %d bytes: header of %d bytes in a file of %d", n, h, len(b))
		}
		js := strings.TrimRight(string(b[8:]), " ")
		if len(b)-8-len(js) >= 8 || !strings.HasSuffix(js, "}") {
			t.Errorf("value of %d bytes: header %q", n, b[8:])
		}
		f, err := Split(b)
		if err != nil || !maps.Equal(f.Meta, meta) {
			t.Errorf("value of %d bytes: read back %v, %v", n, f, err)
		}
	}
}

func TestEncodeNoMetadata(t *testing.T) {
	for _, meta := range []map[string]string{nil, {}} {
		b, err := Encode([]Tensor{{Name: "a", Dtype: "U8", Shape: []int{1}, Data: []byte{7}}}, meta)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(MetadataKey)) {
			t.Errorf("metadata %v written as %q", meta, b)
		}
	}
}

func TestEncodeHeaderLimit(t *testing.T) {
	// The limit is on the header before padding: find the longest value
	// that fits, then one byte more.
	base, err := Encode(nil, map[string]string{"k": ""})
	if err != nil {
		t.Fatal(err)
	}
	fit := MaxHeaderLen - len(strings.TrimRight(string(base[8:]), " "))
	b, err := Encode(nil, map[string]string{"k": strings.Repeat("x", fit)})
	if err != nil {
		t.Fatalf("a header of exactly %d bytes: %v", MaxHeaderLen, err)
	}
	if _, err := Split(b); err != nil {
		t.Errorf("a header at the limit does not read back: %v", err)
	}
	b, err = Encode(nil, map[string]string{"k": strings.Repeat("x", fit+1)})
	if err == nil || b != nil || err.Error() != "header of 1048577 bytes exceeds 1048576 (metadata too large)" {
		t.Errorf("a header of one byte too many: %d bytes, %v", len(b), err)
	}
}

func TestRoundTrip(t *testing.T) {
	ts := []Tensor{
		{Name: "w", Dtype: "F32", Shape: []int{2, 2}, Data: Float32Bytes([]float32{1, -2, float32(math.Inf(1)), math.Float32frombits(0x7fa00001)})},
		{Name: "b", Dtype: "F32", Shape: []int{2}, Data: Float32Bytes([]float32{0.5, -0})},
		{Name: "n", Dtype: "I64", Shape: []int{1}, Data: binary.LittleEndian.AppendUint64(nil, 42)},
		{Name: "z", Dtype: "F64", Shape: []int{0}, Data: nil},
	}
	b, err := Encode(ts, map[string]string{"a": "1"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Split(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.Exact(testSpecs)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range testSpecs {
		if !bytes.Equal(got[i], ts[i].Data) || s.Name != ts[i].Name {
			t.Errorf("%s: %v, want %v", s.Name, got[i], ts[i].Data)
		}
	}
	w := make([]float32, 4)
	Float32s(w, got[0])
	if math.Float32bits(w[3]) != 0x7fa00001 || w[1] != -2 {
		t.Errorf("F32 values %v", w)
	}
}

func TestSealed(t *testing.T) {
	ts := []Tensor{{Name: "a", Dtype: "F64", Shape: []int{2}, Data: Float64Bytes([]float64{1.5, -3})}}
	meta := map[string]string{"x": "1", "y": "2"}
	b, err := EncodeSealed(ts, meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := meta[ChecksumKey]; ok {
		t.Errorf("EncodeSealed changed the caller's metadata")
	}
	f, err := Split(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Verify(); err != nil {
		t.Fatalf("Verify of a sealed file: %v", err)
	}
	if got := f.Meta[ChecksumKey]; got != Checksum(meta, ts[0].Data) || len(got) != 64 {
		t.Errorf("checksum %q", got)
	}
	if got := Float64s(f.Data); !slices.Equal(got, []float64{1.5, -3}) {
		t.Errorf("F64 values %v", got)
	}
	// Every bit of the data and of the metadata's keys and values counts.
	for i := range f.Data {
		for bit := range 8 {
			c := &File{Meta: f.Meta, Data: bytes.Clone(f.Data)}
			c.Data[i] ^= 1 << bit
			if err := c.Verify(); !errors.Is(err, ErrChecksum) {
				t.Errorf("data byte %d bit %d flipped: Verify = %v", i, bit, err)
			}
		}
	}
	for k, v := range f.Meta {
		if k == ChecksumKey {
			continue
		}
		for _, m := range []map[string]string{{k: v + "0"}, {k + "0": v}} {
			c := &File{Meta: maps.Clone(f.Meta), Data: f.Data}
			delete(c.Meta, k)
			maps.Copy(c.Meta, m)
			if err := c.Verify(); !errors.Is(err, ErrChecksum) {
				t.Errorf("metadata %v: Verify = %v", c.Meta, err)
			}
		}
	}
	// Sealed with no metadata at all.
	b, err = EncodeSealed(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := mustSplit(t, b); f.Verify() != nil || len(f.Meta) != 1 {
		t.Errorf("sealed without metadata: %v", f.Meta)
	}
}

func mustSplit(t *testing.T, b []byte) *File {
	t.Helper()
	f, err := Split(b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestChecksum(t *testing.T) {
	meta := map[string]string{"b": "2", "a": "1"}
	// The definition, spelled out: sorted key=value lines, then the data.
	want := sha256.Sum256([]byte("a=1\nb=2\n\x01\x02"))
	sum := Checksum(meta, []byte{1, 2})
	if sum != hex.EncodeToString(want[:]) {
		t.Errorf("Checksum = %s, want %x", sum, want)
	}
	for _, other := range []struct {
		meta map[string]string
		data []byte
	}{
		{map[string]string{"a": "1", "b": "3"}, []byte{1, 2}},
		{map[string]string{"a": "1"}, []byte{1, 2}},
		{meta, []byte{1, 2, 3}},
		{meta, []byte{2, 1}},
	} {
		if Checksum(other.meta, other.data) == sum {
			t.Errorf("%v %v has the checksum of %v %v", other.meta, other.data, meta, []byte{1, 2})
		}
	}
	with := maps.Clone(meta)
	with[ChecksumKey] = "anything"
	if Checksum(with, []byte{1, 2}) != sum {
		t.Errorf("the checksum's own key counts")
	}
	f := &File{Meta: with, Data: []byte{1, 2}}
	if err := f.Verify(); !errors.Is(err, ErrChecksum) || err.Error() != "checksum mismatch: the file is damaged or truncated" {
		t.Errorf("Verify of a wrong checksum: %v", err)
	}
	with[ChecksumKey] = sum
	if err := f.Verify(); err != nil {
		t.Errorf("Verify of the right checksum: %v", err)
	}
}
