package data

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// exifSearchBytes is how much of an image's start is searched for its EXIF
// orientation: room for three full 64 KB segments of a JPEG (a JFIF APP0
// and an ICC profile before the EXIF block, which cameras and phones write
// first), or a PNG's chunks before its image data.
const exifSearchBytes = 1 << 18

// readOrientation reads up to exifSearchBytes from the start of r and
// returns the EXIF orientation that orientation (jpegOrientation,
// pngOrientation) finds there, leaving r at its start. Only a failed read
// or seek is an error.
func readOrientation(r io.ReadSeeker, orientation func(head []byte) int) (int, error) {
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("read: %w", err)
	}
	head, err := io.ReadAll(io.LimitReader(r, exifSearchBytes))
	if err != nil {
		return 0, fmt.Errorf("read: %w", err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("read: %w", err)
	}
	return orientation(head), nil
}

// JPEG markers that jpegOrientation tells apart.
const (
	markerSOI  = 0xd8
	markerEOI  = 0xd9
	markerSOS  = 0xda
	markerAPP1 = 0xe1
	markerTEM  = 0x01
	markerRST0 = 0xd0
	markerRST7 = 0xd7
)

// jpegOrientation is the EXIF orientation (1 to 8) of the JPEG whose first
// bytes are b: the first APP1 segment holding "Exif\0\0" before the scan
// (SOS) is read. It is 1, upright, when b is not a JPEG, has no such
// segment, or the segment is cut short or damaged: a broken EXIF block
// never stops a readable JPEG from being read. Each step moves forward
// through b, so the work is bounded by its length.
func jpegOrientation(b []byte) int {
	if len(b) < 2 || b[0] != 0xff || b[1] != markerSOI {
		return 1
	}
	for i := 2; i+1 < len(b); {
		if b[i] != 0xff {
			return 1 // not a marker: the file is damaged here
		}
		m := b[i+1]
		switch {
		case m == 0xff: // fill byte before a marker
			i++
			continue
		case m == markerEOI || m == markerSOS:
			return 1
		case m == markerSOI || m == markerTEM || (m >= markerRST0 && m <= markerRST7):
			i += 2 // a marker without a length
			continue
		}
		if i+4 > len(b) {
			return 1
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return 1
		}
		seg := b[i+4 : i+2+n]
		if m == markerAPP1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return tiffOrientation(seg[6:])
		}
		i += 2 + n
	}
	return 1
}

// pngOrientation is the EXIF orientation (1 to 8) of the PNG whose first
// bytes are b: that of the TIFF structure in its eXIf chunk, read when it
// comes before the image data (IDAT), so that only a file's first bytes
// are searched, as for a JPEG; one after the image data is not read. The
// chunk holds the TIFF structure itself; the "Exif\0\0" of a JPEG's EXIF
// block, which some writers put before it, is skipped. It is 1, upright,
// when b is not a PNG, has no such chunk, or the chunk is cut short or
// damaged (png.Decode checks its CRC, as every chunk's). Each step moves
// forward through b.
func pngOrientation(b []byte) int {
	if !bytes.HasPrefix(b, []byte(pngMagic)) {
		return 1
	}
	for i := uint64(len(pngMagic)); i+8 <= uint64(len(b)); {
		n := uint64(binary.BigEndian.Uint32(b[i:]))
		kind := string(b[i+4 : i+8])
		if kind == "IDAT" || kind == "IEND" {
			return 1
		}
		end := i + 8 + n + 4 // the chunk's data, then its CRC
		if end > uint64(len(b)) {
			return 1
		}
		if kind == "eXIf" {
			return tiffOrientation(bytes.TrimPrefix(b[i+8:i+8+n], []byte("Exif\x00\x00")))
		}
		i = end
	}
	return 1
}

// tiffOrientation is the Orientation tag (0x0112, one SHORT) of the first
// IFD of the TIFF structure an EXIF block holds, or 1 when it is missing,
// out of range, or anything it needs lies past the end of t.
func tiffOrientation(t []byte) int {
	const (
		tagOrientation = 0x0112
		typeShort      = 3
		entrySize      = 12
	)
	if len(t) < 8 {
		return 1
	}
	var order binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		order = binary.LittleEndian
	case "MM\x00*":
		order = binary.BigEndian
	default:
		return 1
	}
	ifd := uint64(order.Uint32(t[4:]))
	if ifd+2 > uint64(len(t)) {
		return 1
	}
	entries := t[ifd+2:]
	count := int(order.Uint16(t[ifd:]))
	for k := 0; k < count && (k+1)*entrySize <= len(entries); k++ {
		e := entries[k*entrySize : (k+1)*entrySize]
		if order.Uint16(e) != tagOrientation {
			continue
		}
		if order.Uint16(e[2:]) != typeShort || order.Uint32(e[4:]) != 1 {
			return 1
		}
		if v := int(order.Uint16(e[8:])); v >= 1 && v <= 8 {
			return v
		}
		return 1
	}
	return 1
}
