package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"testing"
)

// idxFile builds an IDX file: magic, dimension sizes, payload.
func idxFile(magic uint32, dims []uint32, payload []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(payload)
	return b.Bytes()
}

// images builds a valid raw image file of n images of rows x cols whose
// pixels count up from seed (mod 256).
func images(n, rows, cols int, seed byte) []byte {
	px := make([]byte, n*rows*cols)
	for i := range px {
		px[i] = seed + byte(i)
	}
	return idxFile(magicImages, []uint32{uint32(n), uint32(rows), uint32(cols)}, px)
}

// labels builds a valid raw label file holding ls.
func labels(ls ...byte) []byte {
	return idxFile(magicLabels, []uint32{uint32(len(ls))}, ls)
}

func gz(tb testing.TB, raw []byte) []byte {
	tb.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(raw); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
