package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// ifdEntry is one 12-byte entry of a TIFF IFD holding a SHORT value in the
// entry itself, where TIFF keeps it: in the first two bytes of the value
// field, in the file's byte order.
func ifdEntry(order binary.AppendByteOrder, tag, typ uint16, count uint32, short uint16) []byte {
	e := order.AppendUint16(nil, tag)
	e = order.AppendUint16(e, typ)
	e = order.AppendUint32(e, count)
	e = order.AppendUint16(e, short)
	return append(e, 0, 0)
}

// exifTIFF is the TIFF structure of an EXIF block: the header in order's
// byte order, then IFD0 at offset 8 with the entries and no next IFD.
func exifTIFF(order binary.AppendByteOrder, entries ...[]byte) []byte {
	t := []byte("II*\x00")
	if order == binary.BigEndian {
		t = []byte("MM\x00*")
	}
	t = order.AppendUint32(t, 8)
	t = order.AppendUint16(t, uint16(len(entries)))
	for _, e := range entries {
		t = append(t, e...)
	}
	return order.AppendUint32(t, 0)
}

// orientationTIFF is an EXIF block's TIFF structure holding orientation v.
func orientationTIFF(order binary.AppendByteOrder, v uint16) []byte {
	return exifTIFF(order, ifdEntry(order, 0x0112, 3, 1, v))
}

// jpegSegment is a JPEG marker segment: 0xff, the marker, its length, data.
func jpegSegment(marker byte, data []byte) []byte {
	return append(binary.BigEndian.AppendUint16([]byte{0xff, marker}, uint16(len(data)+2)), data...)
}

// exifSegment is an APP1 segment holding an EXIF block.
func exifSegment(tiff []byte) []byte {
	return jpegSegment(markerAPP1, append([]byte("Exif\x00\x00"), tiff...))
}

// jpegStart is the start of a JPEG: SOI, the segments, then the start of
// a scan (SOS) with a few bytes of it.
func jpegStart(segments ...[]byte) []byte {
	b := []byte{0xff, markerSOI}
	for _, s := range segments {
		b = append(b, s...)
	}
	return append(b, jpegSegment(markerSOS, []byte{1, 1, 0, 0, 63, 0})...)
}

func TestJPEGOrientation(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	jfif := jpegSegment(0xe0, []byte("JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"))
	xmp := jpegSegment(markerAPP1, []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta/>"))
	make6 := func(tiff []byte) []byte { return jpegStart(exifSegment(tiff)) }
	type tc struct {
		name string
		file []byte
		want int
	}
	cases := []tc{
		{"no EXIF", jpegStart(jfif), 1},
		{"after JFIF APP0", jpegStart(jfif, exifSegment(orientationTIFF(le, 6))), 6},
		{"after an XMP APP1", jpegStart(xmp, exifSegment(orientationTIFF(be, 8))), 8},
		{"fill bytes before the marker", append([]byte{0xff, markerSOI, 0xff, 0xff}, exifSegment(orientationTIFF(le, 3))[1:]...), 3},
		{"the first EXIF block counts", jpegStart(exifSegment(orientationTIFF(le, 5)), exifSegment(orientationTIFF(le, 7))), 5},
		{"a second EXIF block is not read", jpegStart(exifSegment(exifTIFF(le)), exifSegment(orientationTIFF(le, 7))), 1},
		{"tag after other tags", make6(exifTIFF(be, ifdEntry(be, 0x0100, 3, 1, 640), ifdEntry(be, 0x010f, 2, 4, 0), ifdEntry(be, 0x0112, 3, 1, 6))), 6},
		{"tag missing", make6(exifTIFF(le, ifdEntry(le, 0x0100, 3, 1, 6), ifdEntry(le, 0x0101, 3, 1, 6))), 1},
		{"empty IFD", make6(exifTIFF(le)), 1},
		{"0 is out of range", make6(orientationTIFF(le, 0)), 1},
		{"9 is out of range", make6(orientationTIFF(be, 9)), 1},
		{"0xffff is out of range", make6(orientationTIFF(le, 0xffff)), 1},
		{"type LONG", make6(exifTIFF(le, ifdEntry(le, 0x0112, 4, 1, 6))), 1},
		{"count 2", make6(exifTIFF(be, ifdEntry(be, 0x0112, 3, 2, 6))), 1},
		// A big-endian SHORT lies in the value field's first two bytes; one
		// written as a 32-bit 6 reads as 0.
		{"big-endian value in the wrong half", make6(exifTIFF(be, append(ifdEntry(be, 0x0112, 3, 1, 0)[:8], 0, 0, 0, 6))), 1},
		{"unknown byte order", make6(append([]byte("XX*\x00"), orientationTIFF(le, 6)[4:]...)), 1},
		{"TIFF header cut short", make6([]byte("II*\x00\x08\x00")), 1},
		{"IFD offset past the end", make6(append(le.AppendUint32([]byte("II*\x00"), 4000), orientationTIFF(le, 6)[8:]...)), 1},
		{"IFD offset at the last byte", make6([]byte("II*\x00\x08\x00\x00\x00\x01")), 1},
		{"IFD offset 0xffffffff", make6(append(be.AppendUint32([]byte("MM\x00*"), 0xffffffff), orientationTIFF(be, 6)[8:]...)), 1},
		{"entry count past the end", make6(orientationTIFF(le, 6)[:8+2+10]), 1},
		{"entry count larger than the entries", make6(append(le.AppendUint16(le.AppendUint32([]byte("II*\x00"), 8), 500), ifdEntry(le, 0x0112, 3, 1, 4)...)), 4},
		{"not Exif but Exif\\0", jpegStart(jpegSegment(markerAPP1, append([]byte("Exif\x00"), orientationTIFF(le, 6)...))), 1},
		{"EXIF after the scan", append(jpegStart(), exifSegment(orientationTIFF(le, 6))...), 1},
		{"EXIF after EOI", append([]byte{0xff, markerSOI, 0xff, markerEOI}, exifSegment(orientationTIFF(le, 6))...), 1},
		{"RST and TEM markers skipped", jpegStart([]byte{0xff, 0xd0, 0xff, markerTEM}, exifSegment(orientationTIFF(le, 2))), 2},
		{"not a JPEG", append([]byte(pngMagic), exifSegment(orientationTIFF(le, 6))...), 1},
		{"empty", nil, 1},
		{"only SOI", []byte{0xff, markerSOI}, 1},
		{"garbage after SOI", append([]byte{0xff, markerSOI, 0, 0, 0}, exifSegment(orientationTIFF(le, 6))...), 1},
		{"segment length under 2", jpegStart([]byte{0xff, 0xe0, 0, 1}, exifSegment(orientationTIFF(le, 6))), 1},
		{"marker without its length", []byte{0xff, markerSOI, 0xff, markerAPP1, 0}, 1},
	}
	// The segment's length, not the bytes after it, bounds the EXIF block:
	// one cut before its IFD entry reads nothing from the next segment.
	short := exifSegment(orientationTIFF(le, 6))
	binary.BigEndian.PutUint16(short[2:], uint16(len(short)-2-12))
	cases = append(cases, tc{"segment shorter than its IFD", jpegStart(short, jpegSegment(0xe2, make([]byte, 16))), 1})
	// A segment whose length runs past the end of what was read.
	long := exifSegment(orientationTIFF(be, 6))
	binary.BigEndian.PutUint16(long[2:], uint16(len(long)+50))
	cases = append(cases, tc{"segment past the end", append([]byte{0xff, markerSOI}, long...), 1})
	cut := exifSegment(orientationTIFF(le, 6))
	cases = append(cases, tc{"segment a byte past the end", append([]byte{0xff, markerSOI}, cut[:len(cut)-1]...), 1},
		tc{"SOI without its 0xff", append([]byte{0, markerSOI}, cut...), 1})
	for v := uint16(1); v <= 8; v++ {
		for _, order := range []binary.AppendByteOrder{le, be} {
			cases = append(cases, tc{order.String() + " " + string(rune('0'+v)), make6(orientationTIFF(order, v)), int(v)})
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := jpegOrientation(c.file); got != c.want {
				t.Errorf("jpegOrientation = %d, want %d", got, c.want)
			}
		})
	}
}

// TestReadOrientation: the orientation is found in a file's first
// bytes, the reader is left at its start, and a failing reader is an error.
func TestReadOrientation(t *testing.T) {
	file := append(jpegStart(exifSegment(orientationTIFF(binary.BigEndian, 7))), make([]byte, exifSearchBytes)...)
	r := bytes.NewReader(file)
	if _, err := r.Seek(100, 0); err != nil {
		t.Fatal(err)
	}
	o, err := readOrientation(r, jpegOrientation)
	if err != nil || o != 7 {
		t.Fatalf("readOrientation = %d, %v; want 7", o, err)
	}
	if pos, _ := r.Seek(0, 1); pos != 0 {
		t.Errorf("reader left at %d, want 0", pos)
	}
	// An EXIF block after three segments of the largest size (a JFIF
	// thumbnail, an ICC profile) is read; one after five is not.
	for _, c := range []struct{ before, want int }{{3, 6}, {5, 1}} {
		segments := make([][]byte, c.before)
		for i := range segments {
			segments[i] = jpegSegment(0xe2, make([]byte, 0xffff-2))
		}
		file := jpegStart(append(segments, exifSegment(orientationTIFF(binary.LittleEndian, 6)))...)
		if o := jpegOrientation(file); o != 6 {
			t.Fatalf("the whole file reads as %d, want 6", o)
		}
		if o, err := readOrientation(bytes.NewReader(file), jpegOrientation); err != nil || o != c.want {
			t.Errorf("EXIF after %d segments of 64 KB: %d, %v; want %d", c.before, o, err, c.want)
		}
	}
	if _, err := readOrientation(failingSeeker{}, jpegOrientation); err == nil || !strings.HasPrefix(err.Error(), "read: ") {
		t.Errorf("failing reader: %v, want a read error", err)
	}
}

// failingSeeker seeks but cannot be read.
type failingSeeker struct{}

func (failingSeeker) Read([]byte) (int, error)       { return 0, errors.New("disk on fire") }
func (failingSeeker) Seek(int64, int) (int64, error) { return 0, nil }

// FuzzJPEGOrientation: no input panics or gives anything but 1 to 8, and
// an orientation other than 1 depends only on the bytes up to its EXIF
// block, so that reading a file's first bytes is enough: bytes appended
// after it never change it.
func FuzzJPEGOrientation(f *testing.F) {
	le, be := binary.LittleEndian, binary.BigEndian
	for _, seed := range [][]byte{
		jpegStart(exifSegment(orientationTIFF(le, 6))),
		jpegStart(exifSegment(orientationTIFF(be, 8))),
		jpegStart(exifSegment(exifTIFF(be, ifdEntry(be, 0x0100, 3, 1, 640), ifdEntry(be, 0x0112, 3, 1, 3)))),
		jpegStart(jpegSegment(0xe0, []byte("JFIF\x00")), exifSegment(orientationTIFF(le, 5))),
		jpegStart(),
		[]byte(jpegMagic), nil,
	} {
		f.Add(seed)
	}
	fuzzOrientation(f, jpegOrientation, []byte{0xff, markerAPP1, 0xff, 0xff, 'E', 'x', 'i', 'f', 0, 0})
}

// fuzzOrientation is the body of the orientation fuzzers: orientation
// gives 1 to 8 for any input, and where it finds something other than 1,
// the same with more appended (another EXIF block's start).
func fuzzOrientation(f *testing.F, orientation func([]byte) int, more []byte) {
	f.Fuzz(func(t *testing.T, b []byte) {
		o := orientation(b)
		if o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
		if o == 1 {
			return
		}
		if got := orientation(append(append([]byte(nil), b...), more...)); got != o {
			t.Fatalf("orientation %d, %d with bytes appended", o, got)
		}
	})
}
