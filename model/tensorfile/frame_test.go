package tensorfile

import (
	"bytes"
	"encoding/binary"
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	hugeLen := binary.LittleEndian.AppendUint64(nil, MaxHeaderLen+1)
	atLimit := rawFile(`{}` + strings.Repeat(" ", MaxHeaderLen-2))
	for _, c := range []struct {
		name, want string
		file       []byte
	}{
		{"empty", "file is 0 bytes, too short for the 8-byte header length", nil},
		{"seven bytes", "file is 7 bytes, too short", make([]byte, 7)},
		{"header past the end", "header length 2 goes beyond the end of the 9-byte file (truncated?)", rawFile(`{}`)[:9]},
		{"header one past the end", "header length 3 goes beyond the end of the 10-byte file", rawFile(`{} `)[:10]},
		{"header over the limit", "header length 1048577 exceeds the 1048576-byte limit", append(hugeLen, `{}`...)},
		{"header length 2^64-1", "exceeds the 1048576-byte limit", binary.LittleEndian.AppendUint64(nil, 1<<64-1)},
		{"empty header", "header is not a JSON object", rawFile(``)},
		{"blank header", "header is not a JSON object", rawFile(" \t\r\n")},
		{"null", "header is not a JSON object", rawFile(`null`)},
		{"array", "header is not a JSON object", rawFile(`[1]`)},
		{"broken JSON", "header is not valid JSON: ", rawFile(`{"a":`)},
		{"trailing garbage", "header is not valid JSON", rawFile(`{} x`)},
		{"metadata not strings", "__metadata__ must map strings to strings: ", rawFile(`{"__metadata__":{"seed":7}}`)},
		{"metadata an array", "__metadata__ must map strings to strings", rawFile(`{"__metadata__":["a"]}`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := Split(c.file)
			if err == nil || f != nil {
				t.Fatalf("Split = %v, %v; want an error", f, err)
			}
			if !strings.HasPrefix(err.Error(), c.want) && !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
	t.Run("header at the limit", func(t *testing.T) {
		f, err := Split(atLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Data) != 0 || f.Meta != nil || len(f.Names()) != 0 {
			t.Errorf("got %d bytes of data, metadata %v, tensors %v", len(f.Data), f.Meta, f.Names())
		}
	})
}

func TestSplitAccepts(t *testing.T) {
	for _, c := range []struct {
		name  string
		file  []byte
		meta  map[string]string
		names []string
		data  []byte
	}{
		{"empty object", rawFile(`{}`), nil, []string{}, []byte{}},
		{"blank around", rawFile(" \n{}\t ", 1, 2), nil, []string{}, []byte{1, 2}},
		{"metadata only", rawFile(`{"__metadata__":{"a":"b"}}`, 9), map[string]string{"a": "b"}, []string{}, []byte{9}},
		{"metadata null", rawFile(`{"__metadata__":null}`), nil, []string{}, []byte{}},
		{"tensors, unchecked", rawFile(`{"z":1,"a":{"dtype":"F32"},"__metadata__":{}}`, 1, 2, 3), map[string]string{}, []string{"a", "z"}, []byte{1, 2, 3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := Split(c.file)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(f.Meta, c.meta) || (f.Meta == nil) != (c.meta == nil) {
				t.Errorf("metadata %v, want %v", f.Meta, c.meta)
			}
			if !slices.Equal(f.Names(), c.names) {
				t.Errorf("tensors %v, want %v", f.Names(), c.names)
			}
			if !bytes.Equal(f.Data, c.data) {
				t.Errorf("data %v, want %v", f.Data, c.data)
			}
		})
	}
}
