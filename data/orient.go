package data

import (
	"image"
	"image/color"
)

// orient returns img as it is displayed under the EXIF orientation o, the
// way image viewers show a phone photo stored sideways:
//
//	1 as stored            5 transposed (mirrored along the main diagonal)
//	2 mirrored left-right  6 rotated 90° clockwise
//	3 rotated 180°         7 transversed (mirrored along the other diagonal)
//	4 mirrored top-bottom  8 rotated 90° counter-clockwise
//
// Any other o leaves img as it is. The result reads img's pixels where
// they lie rather than copying them, so it costs no memory; it is meant
// for a decoded JPEG, never a palette image (whose At can panic, see
// forEachColour).
func orient(img image.Image, o int) image.Image {
	if o < 2 || o > 8 {
		return img
	}
	return oriented{src: img, o: o}
}

// oriented is an image seen under EXIF orientation o (2 to 8), its bounds
// starting at (0, 0).
type oriented struct {
	src image.Image
	o   int
}

func (m oriented) ColorModel() color.Model { return m.src.ColorModel() }

func (m oriented) Bounds() image.Rectangle {
	w, h := m.src.Bounds().Dx(), m.src.Bounds().Dy()
	if m.o >= 5 {
		w, h = h, w
	}
	return image.Rect(0, 0, w, h)
}

// At is the colour of the stored pixel that is displayed at (x, y).
func (m oriented) At(x, y int) color.Color {
	sx, sy := m.stored(x, y)
	b := m.src.Bounds()
	return m.src.At(b.Min.X+sx, b.Min.Y+sy)
}

// stored maps displayed (x, y) to the stored pixel's position, counted from
// the stored image's top-left corner.
func (m oriented) stored(x, y int) (int, int) {
	w, h := m.src.Bounds().Dx(), m.src.Bounds().Dy()
	switch m.o {
	case 2:
		return w - 1 - x, y
	case 3:
		return w - 1 - x, h - 1 - y
	case 4:
		return x, h - 1 - y
	case 5:
		return y, x
	case 6:
		return y, h - 1 - x
	case 7:
		return w - 1 - y, h - 1 - x
	case 8:
		return w - 1 - y, x
	}
	return x, y
}

// Opaque reports whether every pixel is opaque, as the stored image's own
// Opaque does (every decoded JPEG is), so that ImageToMNIST need not scan
// the alpha of each pixel.
func (m oriented) Opaque() bool {
	o, ok := m.src.(interface{ Opaque() bool })
	return ok && o.Opaque()
}
