package data

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"testing"
)

// pngWithOrientation encodes img as a PNG with an eXIf chunk saying o
// right after its IHDR, where writers put it.
func pngWithOrientation(t *testing.T, img image.Image, o int) []byte {
	t.Helper()
	b := encodePNG(t, img)
	afterIHDR := len(pngMagic) + 8 + 13 + 4
	exif := pngChunk("eXIf", orientationTIFF(binary.LittleEndian, uint16(o)))
	return append(append(append([]byte(nil), b[:afterIHDR]...), exif...), b[afterIHDR:]...)
}

func TestPNGOrientation(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	ihdr := pngIHDR(60, 84)
	idat := pngChunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00})
	iend := pngChunk("IEND", nil)
	exif := func(tiff []byte) []byte { return pngChunk("eXIf", tiff) }
	whole := pngFile(ihdr, exif(orientationTIFF(le, 6)), idat, iend)
	for _, tc := range []struct {
		name string
		file []byte
		want int
	}{
		{"little-endian TIFF", whole, 6},
		{"big-endian TIFF", pngFile(ihdr, exif(orientationTIFF(be, 8)), idat, iend), 8},
		{"after other chunks", pngFile(ihdr, pngChunk("iCCP", make([]byte, 60000)), pngChunk("pHYs", make([]byte, 9)), exif(orientationTIFF(be, 5)), idat), 5},
		{"a JPEG's Exif\\0\\0 before the TIFF", pngFile(ihdr, exif(append([]byte("Exif\x00\x00"), orientationTIFF(le, 3)...)), idat), 3},
		{"upright", pngFile(ihdr, exif(orientationTIFF(le, 1)), idat), 1},
		{"no eXIf", pngFile(ihdr, idat, iend), 1},
		{"eXIf after the image data", pngFile(ihdr, idat, exif(orientationTIFF(le, 6)), iend), 1},
		{"eXIf after IEND", pngFile(ihdr, iend, exif(orientationTIFF(le, 6))), 1},
		{"eXIf cut short", whole[:len(pngMagic)+len(ihdr)+20], 1},
		{"eXIf without all of its CRC", whole[:len(pngMagic)+len(ihdr)+8+len(orientationTIFF(le, 6))+2], 1},
		{"a length past the end", pngFile(ihdr, []byte{0xff, 0xff, 0xff, 0xf0, 'e', 'X', 'I', 'f'}, exif(orientationTIFF(le, 6))), 1},
		{"damaged TIFF", pngFile(ihdr, exif(append([]byte("XX"), orientationTIFF(le, 6)[2:]...)), idat), 1},
		{"orientation out of range", pngFile(ihdr, exif(orientationTIFF(le, 9)), idat), 1},
		{"empty eXIf", pngFile(ihdr, exif(nil), idat), 1},
		{"not a PNG", jpegStart(exifSegment(orientationTIFF(le, 6))), 1},
		{"signature only", []byte(pngMagic), 1},
		{"nothing", nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pngOrientation(tc.file); got != tc.want {
				t.Errorf("pngOrientation = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestPNGOrientationDecoded: a PNG stored sideways or mirrored, with the
// eXIf chunk that says so, reads as the upright picture does, to the bit
// (PNG is lossless), through DecodeImage and the MNIST conversion.
func TestPNGOrientationDecoded(t *testing.T) {
	const w, h = 60, 84
	up := drawF(w, h)
	want, err := ImageBytesToMNIST(encodePNG(t, up))
	if err != nil {
		t.Fatal(err)
	}
	for o := 1; o <= 8; o++ {
		t.Run(fmt.Sprintf("orientation %d", o), func(t *testing.T) {
			if got := uprightMNIST(t, pngWithOrientation(t, storedAs(up, o), o), w, h); !bytes.Equal(got, want) {
				t.Error("differs from the upright PNG's 28×28")
			}
		})
	}
}

// FuzzPNGOrientation: no input panics or gives anything but 1 to 8, and
// an orientation other than 1 depends only on the bytes up to its eXIf
// chunk: bytes appended after it never change it.
func FuzzPNGOrientation(f *testing.F) {
	le, be := binary.LittleEndian, binary.BigEndian
	ihdr := pngIHDR(28, 28)
	for _, seed := range [][]byte{
		pngFile(ihdr, pngChunk("eXIf", orientationTIFF(le, 6))),
		pngFile(ihdr, pngChunk("eXIf", orientationTIFF(be, 8)), pngChunk("IEND", nil)),
		pngFile(ihdr, pngChunk("gAMA", make([]byte, 4)), pngChunk("eXIf", append([]byte("Exif\x00\x00"), orientationTIFF(le, 7)...))),
		pngFile(ihdr, pngChunk("IDAT", nil)),
		[]byte(pngMagic), nil,
	} {
		f.Add(seed)
	}
	fuzzOrientation(f, pngOrientation, pngChunk("eXIf", orientationTIFF(le, 2)))
}
