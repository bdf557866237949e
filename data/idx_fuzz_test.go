package data

import (
	"bytes"
	"strings"
	"testing"
)

// fuzzSeeds are small valid files and broken ones near the interesting
// edges: truncation, wrong magic, huge headers, gzip damage, trailing bytes.
func fuzzSeeds(t testing.TB, valid []byte) [][]byte {
	g := gz(t, valid)
	return [][]byte{
		valid,
		g,
		nil,
		valid[:3],
		valid[:len(valid)-1],
		cat(valid, []byte{0}),
		g[:len(g)/2],
		g[:len(g)-4],
		cat(g, []byte{0x1f, 0x8b}),
		cat(g, g),
		gz(t, []byte("not idx at all")),
		[]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff},
		idxFile(magicImages, []uint32{0xffffffff, 0xffffffff, 0xffffffff}, nil),
		idxFile(magicImages, []uint32{1_000_000, 28, 28}, []byte{1, 2, 3}),
		idxFile(magicLabels, []uint32{0xffffffff}, nil),
		idxFile(magicLabels, []uint32{2}, []byte{9, 10}),
	}
}

func FuzzReadImages(f *testing.F) {
	for _, seed := range fuzzSeeds(f, images(2, 3, 2, 250)) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		px, n, rows, cols, err := ReadImages(bytes.NewReader(in))
		if err != nil {
			if px != nil || strings.Contains(err.Error(), "\n") {
				t.Fatalf("bad error result: %d pixels, %q", len(px), err)
			}
			return
		}
		if n < 0 || rows < 1 || cols < 1 || rows > maxSide || cols > maxSide || len(px) != n*rows*cols {
			t.Fatalf("n=%d %dx%d with %d pixels", n, rows, cols, len(px))
		}
	})
}

func FuzzReadLabels(f *testing.F) {
	for _, seed := range fuzzSeeds(f, labels(0, 9, 5, 3)) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ls, err := ReadLabels(bytes.NewReader(in))
		if err != nil {
			if ls != nil || strings.Contains(err.Error(), "\n") {
				t.Fatalf("bad error result: %d labels, %q", len(ls), err)
			}
			return
		}
		for i, l := range ls {
			if l >= NumClasses {
				t.Fatalf("label %d = %d accepted", i, l)
			}
		}
	})
}

// FuzzLoadSet fuzzes the checks between the two files (shape, counts) on
// top of the readers, through parseSet, which LoadSet runs on the files'
// contents: writing real files makes each run a thousand times slower.
func FuzzLoadSet(f *testing.F) {
	img, lbl := images(2, 28, 28, 0), labels(4, 2)
	f.Add(img, lbl)
	f.Add(gz(f, img), gz(f, lbl))
	f.Add(images(2, 28, 27, 0), lbl)
	f.Add(img, labels(4))
	f.Add(lbl, img)
	f.Add(img[:100], gz(f, lbl)[:10])
	f.Fuzz(func(t *testing.T, img, lbl []byte) {
		s, err := parseSet("i.gz", img, "l.gz", lbl)
		if err != nil {
			msg := err.Error()
			if s != nil || strings.Contains(msg, "\n") || !strings.Contains(msg, "i.gz") && !strings.Contains(msg, "l.gz") {
				t.Fatalf("bad error result: %v, %q", s, msg)
			}
			return
		}
		if len(s.Images) != s.Len()*ImageSize {
			t.Fatalf("%d images with %d pixels", s.Len(), len(s.Images))
		}
		for _, l := range s.Labels {
			if l >= NumClasses {
				t.Fatalf("label %d accepted", l)
			}
		}
	})
}
